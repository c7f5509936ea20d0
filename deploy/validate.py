"""Checks of the deployment assets that no off-the-shelf tool makes; deploy/validate.sh runs them.

  compose      deploy/compose.yaml parses strictly as a Compose file once interpolated with
               deploy/.env.example, and its references hold (dependencies, volumes, one port).
  env          every MERCATO_… variable a service reads (`mercato env <service> --names`) is set for its
               containers in every rendered overlay and in compose, nothing else is set, and
               the values load (`mercato env <service> --check`): nothing silently defaults.
  checkov      summarises checkov's JSON report: no failed check, every skip with its reason.
  crds         validates the rendered objects of custom kinds (External Secrets, Prometheus
               Operator) strictly against the CRD schemas vendored in deploy/schemas/, and writes
               the rest to a file for kubernetes-validate, which knows only Kubernetes' own kinds.
  rules        extracts a PrometheusRule's groups into a plain rules file (for promtool).
  dashboard    checks a Grafana dashboard's shape and writes each panel query as a recording rule,
               so promtool parses every query.
  collector    checks that an OpenTelemetry Collector config's pipelines name only components it
               defines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

# Variables a service reads that its deployment may leave unset, with why. A group is
# satisfied when any one of its names is set, or when `applies` says the group is not read
# with the deployment's other settings. Keep this list short and every reason true.
EXCEPTIONS = [
    {
        "service": "users",
        "any_of": ["MERCATO_AUTH__SIGNING_KEY", "MERCATO_AUTH__SIGNING_KEY_FILE"],
        "why": "the key comes either inline (compose) or as a file from the Secret (Kubernetes); the inline one wins",
    },
    {
        "service": "users",
        "any_of": ["MERCATO_AUTH__PUBLISHED_KEYS_FILE"],
        "why": "set only while the signing key is rotated (services/users/README.md); unset, the key set "
        "publishes the signing key alone, which is what a deployment between rotations wants",
        "unless": lambda env: True,
    },
    {
        "service": "products",
        "any_of": ["MERCATO_IMAGES__S3__ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"],
        "why": "the S3 client reads AWS_ACCESS_KEY_ID, as every AWS tool does; the MERCATO_ key only overrides it; "
        "with a web identity (IRSA: the AWS overlay) there is no static key at all",
        "unless": lambda env: "AWS_WEB_IDENTITY_TOKEN_FILE" in env,
    },
    {
        "service": "products",
        "any_of": ["MERCATO_IMAGES__S3__SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"],
        "why": "as above, for the secret key",
        "unless": lambda env: "AWS_WEB_IDENTITY_TOKEN_FILE" in env,
    },
    {
        "service": "products",
        "any_of": ["MERCATO_IMAGES__LOCAL_DIR"],
        "why": "read only with MERCATO_IMAGES__BACKEND=local; containers keep images in S3",
        "unless": lambda env: env.get("MERCATO_IMAGES__BACKEND") == "s3",
    },
    {
        "service": "carts",
        "any_of": [
            "MERCATO_DATABASE__URL",
            "MERCATO_DATABASE__MAX_CONNECTIONS",
            "MERCATO_DATABASE__MIN_CONNECTIONS",
            "MERCATO_DATABASE__ACQUIRE_TIMEOUT_MS",
            "MERCATO_DATABASE__MIGRATE_ON_START",
        ],
        "why": "read only without MERCATO_REDIS__URL (the embedded shop's SQLite); deployments keep carts in Redis",
        "unless": lambda env: bool(env.get("MERCATO_REDIS__URL")),
    },
    {
        "service": "storefront",
        "any_of": ["MERCATO_SESSION__KEY", "MERCATO_SESSION__KEY_FILE"],
        "why": "the key comes either inline from the Secret (Kubernetes) or as a file (compose); the inline one wins",
    },
    {
        "service": "storefront",
        "any_of": ["MERCATO_SESSION__GENERATE_KEY"],
        "why": "generating a missing key file is for one process (mercato up, in its data directory); a "
        "deployment's replicas must share the key they are given",
        "unless": lambda env: True,
    },
]

# Services `mercato serve` knows that the deployment assets do not run yet, with why. Every
# other service must be deployed by every overlay and by compose.
NOT_YET_DEPLOYED: dict[str, str] = {}

# Variables outside MERCATO_… that a service's container may set: the OTLP exporter's endpoint
# (read by every process), and the AWS credential chain's for products' S3 client.
TELEMETRY = {"OTEL_EXPORTER_OTLP_ENDPOINT"}
FOREIGN = {
    "gateway": TELEMETRY,
    "users": TELEMETRY,
    "products": TELEMETRY | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"},
    "orders": TELEMETRY,
    "carts": TELEMETRY,
    "storefront": TELEMETRY,
}

# Stand-ins for values kept in Secrets, so `--check` can load the rest.
def secret_stand_in(name: str) -> str:
    if name.endswith("DATABASE__URL"):
        return "postgres://check:check@database.invalid:5432/check"
    if name.endswith("REDIS__URL"):
        return "redis://:check@redis.invalid:6379"
    if name.endswith("EVENTS__URL"):
        return "amqp://check:check@rabbitmq.invalid:5672/%2f"
    if name.endswith("SESSION__KEY"):
        return "c3RhbmQtaW4tZm9yLWEtc2Vzc2lvbi1rZXktMzJieXQ="  # 32 bytes, base64
    return "stand-in-for-a-secret-value"


_SIGNING_KEY: list[Path] = []


def stand_in_signing_key() -> Path:
    """A throw-away Ed25519 key file: `--check` parses the signing key as `serve` does, and the
    real one is a Secret (mounted as a file, or inline from deploy/.env)."""
    if not _SIGNING_KEY:
        import atexit
        import tempfile

        handle, name = tempfile.mkstemp(suffix=".pem")
        os.close(handle)
        atexit.register(os.unlink, name)
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", name], check=True, capture_output=True)
        _SIGNING_KEY.append(Path(name))
    return _SIGNING_KEY[0]


def with_stand_in_keys(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    if "MERCATO_AUTH__SIGNING_KEY" in env:
        env["MERCATO_AUTH__SIGNING_KEY"] = stand_in_signing_key().read_text()
    elif "MERCATO_AUTH__SIGNING_KEY_FILE" in env and not Path(env["MERCATO_AUTH__SIGNING_KEY_FILE"]).exists():
        env["MERCATO_AUTH__SIGNING_KEY_FILE"] = str(stand_in_signing_key())
    return env


class Failure(Exception):
    pass


# ---------------------------------------------------------------- compose

INTERPOLATION = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


def read_env_file(path: Path) -> dict[str, str]:
    """A compose .env file: KEY=VALUE lines, double-quoted values may span lines."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if value.startswith('"'):
            value = value[1:]
            while not value.endswith('"') and i < len(lines):
                value += "\n" + lines[i]
                i += 1
            value = value[:-1]
        values[key.strip()] = value
    return values


def interpolate(node, env: dict[str, str], where: str = ""):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name, op, arg = match.group(2), match.group(3), match.group(4)
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op and op.endswith("-") and unset:
            return arg
        if op and op.endswith("?") and unset:
            raise Failure(f"compose{where}: ${{{name}}} is required ({arg}) and .env.example does not set it")
        if value is None:
            raise Failure(f"compose{where}: ${{{name}}} is used but .env.example does not set it")
        return value

    return INTERPOLATION.sub(substitute, node)


def load_compose(path: Path, env_file: Path) -> dict:
    raw = yaml.safe_load(path.read_text())  # resolves the << merge keys
    return interpolate(raw, read_env_file(env_file))


def check_compose(path: Path, env_file: Path) -> dict:
    from compose_spec import PyCompose

    compose = load_compose(path, env_file)
    try:
        PyCompose.from_json(json.dumps(compose)).validate()
    except ValueError as e:
        raise Failure(f"{path}: not a valid Compose file: {e}") from e
    services = compose["services"]
    volumes = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            if dependency not in services:
                raise Failure(f"compose: {name} depends on unknown service {dependency}")
            condition = how.get("condition")
            target = services[dependency]
            has_check = "healthcheck" in target and not target["healthcheck"].get("disable")
            if condition == "service_healthy" and not has_check:
                raise Failure(f"compose: {name} waits for {dependency} to be healthy, which has no health check")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                if not (path.parent / source).exists():
                    raise Failure(f"compose: {name} mounts {source}, which does not exist")
            elif source and source not in volumes:
                raise Failure(f"compose: {name} uses volume {source}, not declared under volumes:")
        for env_file_name in service.get("env_file") or []:
            if not (path.parent / env_file_name).exists():
                raise Failure(f"compose: {name} reads {env_file_name}, which does not exist")
    secrets = compose.get("secrets") or {}
    env_values = read_env_file(env_file)
    for name, secret in secrets.items():
        variable = secret.get("environment")
        if variable and variable not in env_values:
            raise Failure(f"compose: secret {name} comes from ${variable}, which .env.example does not set")
    for name, service in services.items():
        for secret in service.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret.get("source")
            if source not in secrets:
                raise Failure(f"compose: {name} uses secret {source}, not declared under secrets:")
    published = sorted(name for name, s in services.items() if s.get("ports"))
    if published != ["gateway"]:
        raise Failure(f"compose: only the gateway may publish ports, not {published}")
    print(f"compose: {len(services)} services, {len(volumes)} volumes, valid; only the gateway is published")
    return compose


# ---------------------------------------------------------------- env coverage


def mercato(binary: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([binary, *args], env={**clean, **(env or {})}, capture_output=True, text=True)


def served_services(binary: str) -> list[str]:
    """The services `mercato serve` knows, from its own help."""
    help_text = mercato(binary, "env", "--help").stdout
    match = re.search(r"\[possible values: ([^\]]+)\]", help_text)
    if not match:
        raise Failure("cannot read the service names from `mercato env --help`")
    return [s.strip() for s in match.group(1).split(",")]


def variables_read(binary: str, service: str) -> list[str]:
    result = mercato(binary, "env", service, "--names")
    if result.returncode != 0:
        raise Failure(f"mercato env {service}: {result.stderr.strip()}")
    return result.stdout.split()


def served_by(args) -> str | None:
    args = list(args or [])
    return args[1] if len(args) == 2 and args[0] == "serve" else None


def kubernetes_environments(rendered: Path) -> dict[str, dict[str, str]]:
    """service → the environment its serving container gets (secrets as stand-ins)."""
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    # EKS's pod identity webhook gives the pods of a ServiceAccount with an IAM role (IRSA) the
    # web identity variables; the manifests do not name them, the cluster adds them.
    irsa = {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ServiceAccount" and "eks.amazonaws.com/role-arn" in (d["metadata"].get("annotations") or {})
    }
    environments: dict[str, dict[str, str]] = {}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            service = served_by(container.get("args"))
            if service is None:
                continue
            env: dict[str, str] = {}
            if doc["spec"]["template"]["spec"].get("serviceAccountName") in irsa:
                env["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/stand-in"
                env["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    name = source["configMapRef"]["name"]
                    if name not in config_maps:
                        raise Failure(f"{rendered.name}: {service} reads ConfigMap {name}, which is not rendered")
                    env.update(config_maps[name])
                else:
                    raise Failure(
                        f"{rendered.name}: {service} takes a whole Secret with envFrom; "
                        "name each secret variable with a secretKeyRef so it can be checked"
                    )
            for entry in container.get("env") or []:
                if "value" in entry:
                    env[entry["name"]] = entry["value"]
                elif "secretKeyRef" in entry.get("valueFrom", {}):
                    env[entry["name"]] = secret_stand_in(entry["name"])
                else:
                    raise Failure(f"{rendered.name}: {service} sets {entry['name']} from an unchecked source")
            environments[service] = env
    return environments


def compose_environments(compose: dict, compose_dir: Path) -> dict[str, dict[str, str]]:
    environments: dict[str, dict[str, str]] = {}
    for service in compose["services"].values():
        served = served_by(service.get("command"))
        if served is None:
            continue
        env: dict[str, str] = {}
        for env_file in service.get("env_file") or []:
            for line in (compose_dir / env_file).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    key, _, value = line.partition("=")
                    env[key.strip()] = value
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        env.update({k: "" if v is None else str(v) for k, v in environment.items()})
        environments[served] = env
    return environments


def check_environment(binary: str, where: str, service: str, env: dict[str, str], read: list[str]) -> None:
    problems = []
    exempt: set[str] = set()
    for exception in EXCEPTIONS:
        if exception["service"] != service:
            continue
        names = exception["any_of"]
        if any(name in env for name in names) or exception.get("unless", lambda _: False)(env):
            exempt.update(names)
    # `MERCATO_SERVICE_CLIENTS__*`: a map whose entries are all the deployment's.
    open_maps = tuple(name[:-1] for name in read if name.endswith("__*"))
    read = [name for name in read if not name.endswith("__*")]
    missing = [name for name in read if name not in env and name not in exempt]
    if missing:
        problems.append("not set (it would silently default): " + ", ".join(missing))
    unknown = sorted(
        name
        for name in env
        if name not in read
        and name not in FOREIGN.get(service, set())
        and name not in exempt
        and not name.startswith(open_maps)
    )
    if unknown:
        problems.append("set but never read (a typo?): " + ", ".join(unknown))
    result = mercato(binary, "env", service, "--check", env=with_stand_in_keys(env))
    if result.returncode != 0:
        problems.append("values do not load: " + result.stderr.strip())
    if problems:
        raise Failure(f"{where}: {service}: " + "; ".join(problems))


def check_env(binary: str, rendered: list[Path], compose_path: Path, env_file: Path) -> None:
    services = served_services(binary)
    compose = load_compose(compose_path, env_file)
    sources = [(r.name, kubernetes_environments(r)) for r in rendered]
    sources.append((compose_path.name, compose_environments(compose, compose_path.parent)))
    expected = sorted(s for s in services if s not in NOT_YET_DEPLOYED)
    for where, environments in sources:
        deployed = sorted(environments)
        if deployed != expected:
            raise Failure(
                f"{where}: runs {deployed}, but mercato serves {sorted(services)} "
                f"(not deployed on purpose: {sorted(NOT_YET_DEPLOYED)})"
            )
        for service in expected:
            read = variables_read(binary, service)
            check_environment(binary, where, service, environments[service], read)
        print(f"env: {where}: every variable of {', '.join(expected)} is set, known and loads")
    for service, why in NOT_YET_DEPLOYED.items():
        print(f"env: {service} is not deployed yet: {why}")


# ---------------------------------------------------------------- checkov


def check_checkov(report_files: list[Path]) -> None:
    reports = []
    for report in report_files:
        data = json.loads(report.read_text() or "null")
        if not data:
            raise Failure(f"checkov wrote no report to {report} (did it run?)")
        reports.extend(data if isinstance(data, list) else [data])
    failed = 0
    for r in reports:
        summary = r.get("summary", {})
        results = r.get("results", {})
        skipped = results.get("skipped_checks", [])
        failed += summary.get("failed", 0) + summary.get("parsing_errors", 0)
        print(
            f"checkov {r.get('check_type')}: {summary.get('passed', 0)} passed, "
            f"{summary.get('failed', 0)} failed, {len(skipped)} skipped, "
            f"{summary.get('parsing_errors', 0)} parsing errors, {summary.get('resource_count', 0)} resources"
        )
        reasons: dict[tuple[str, str], list[str]] = {}
        for check in skipped:
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            if not reason or reason == "No comment provided":
                print(f"  {check['check_id']} skipped on {check.get('resource')} without a reason")
                failed += 1
            reasons.setdefault((check["check_id"], reason), []).append(check.get("resource", "?"))
        for (check_id, reason), resources in sorted(reasons.items()):
            print(f"  skipped {check_id} on {len(resources)}: {reason}")
        for check in results.get("failed_checks", []):
            print(f"  FAILED {check['check_id']} {check.get('check_name')} on {check.get('resource')} ({check.get('file_path')})")
    if failed:
        raise Failure("checkov: failed checks (or skips without a reason)")


# ---------------------------------------------------------------- custom kinds


def strict(schema):
    """The schema with unknown properties refused wherever it lists the known ones (the CRD
    schemas leave additionalProperties open), as kubernetes-validate --strict does."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def check_crds(schemas: Path, rendered: list[Path], core_out: Path) -> None:
    import jsonschema

    core_out.mkdir(parents=True, exist_ok=True)
    for path in rendered:
        core, checked = [], 0
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            group, _, version = doc["apiVersion"].rpartition("/")
            if not group or "." not in group or group.endswith(".k8s.io"):
                core.append(doc)
                continue
            schema_file = schemas / group / f"{doc['kind'].lower()}_{version}.json"
            if not schema_file.exists():
                raise Failure(f"{path.name}: no schema for {doc['apiVersion']} {doc['kind']} (vendor it into {schemas})")
            schema = strict(json.loads(schema_file.read_text()))
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            if errors:
                where = f"{path.name}: {doc['kind']} {doc['metadata']['name']}"
                raise Failure(where + ": " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))
            checked += 1
        (core_out / path.name).write_text(yaml.safe_dump_all(core, sort_keys=False))
        print(f"{path.stem}: {checked} objects of custom kinds valid against the vendored CRD schemas")


# ---------------------------------------------------------------- monitoring


# PromQL's own words, which are not metric names.
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "max", "min", "avg", "count", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "histogram_quantile", "deriv",
    "delta", "abs", "clamp_min", "clamp_max", "topk", "bottomk", "time", "vector", "scalar",
    "offset", "bool", "absent", "changes", "resets", "max_over_time", "min_over_time",
    "avg_over_time", "label_replace", "inf", "nan",
}
# Series Prometheus makes itself for every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
REPO = Path(__file__).resolve().parent.parent


def emitted_metrics() -> set[str]:
    """The names the Rust code could record a metric under: every string literal that looks like
    one (macros take them directly, from a constant or from a table), and a histogram's
    _bucket/_sum/_count series of each."""
    names = set(SCRAPE_SERIES)
    for path in list((REPO / "crates").rglob("*.rs")) + list((REPO / "services").rglob("*.rs")):
        for literal in re.findall(r'"([a-z][a-z0-9]*(?:_[a-z0-9]+)+)"', path.read_text()):
            names |= {literal, f"{literal}_bucket", f"{literal}_sum", f"{literal}_count"}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (recording rules, with a ':', left out)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    tokens = re.findall(r"(?<![0-9.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
    return {t for t in tokens if t not in PROMQL_WORDS and ":" not in t}


def check_metrics_exist(where: Path, exprs: list[str]) -> None:
    """Every metric an alert or a panel queries is one the services record: a renamed or
    never-written metric would leave the alert silent forever."""
    emitted = emitted_metrics()
    for expr in exprs:
        missing = sorted(metric_names(expr) - emitted)
        if missing:
            raise Failure(f"{where}: {', '.join(missing)} in `{expr.strip()}` is recorded by no service")


def extract_rules(rule: Path, out: Path) -> None:
    docs = [d for d in yaml.safe_load_all(rule.read_text()) if d and d.get("kind") == "PrometheusRule"]
    if len(docs) != 1:
        raise Failure(f"{rule}: expected one PrometheusRule, found {len(docs)}")
    groups = docs[0]["spec"]["groups"]
    check_metrics_exist(rule, [r["expr"] for g in groups for r in g["rules"]])
    out.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def check_dashboard(dashboard: Path, out: Path) -> None:
    data = json.loads(dashboard.read_text())
    for key in ("uid", "title", "panels"):
        if key not in data:
            raise Failure(f"{dashboard}: no {key}")
    rules, ids = [], set()
    for panel in data["panels"]:
        if panel["id"] in ids:
            raise Failure(f"{dashboard}: panel id {panel['id']} twice")
        ids.add(panel["id"])
        if not panel.get("targets"):
            raise Failure(f"{dashboard}: panel {panel['title']!r} has no query")
        for target in panel["targets"]:
            # Grafana's own interval variables are not PromQL; any fixed range parses the same.
            expr = re.sub(r"\$__(rate_)?interval", "5m", target["expr"])
            rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr})
    check_metrics_exist(dashboard, [r["expr"] for r in rules])
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))
    print(f"dashboard: {len(data['panels'])} panels, {len(rules)} queries (promtool parses them next)")


def check_collector(config: Path) -> None:
    data = yaml.safe_load(config.read_text())
    service = data.get("service") or {}
    for extension in service.get("extensions") or []:
        if extension not in (data.get("extensions") or {}):
            raise Failure(f"{config}: service uses extension {extension}, which is not defined")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        raise Failure(f"{config}: no pipeline")
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind) or []:
                if component not in (data.get(kind) or {}):
                    raise Failure(f"{config}: pipeline {name} uses {kind[:-1]} {component}, which is not defined")
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            raise Failure(f"{config}: pipeline {name} needs a receiver and an exporter")
    print(f"collector: {len(pipelines)} pipeline(s), every component defined")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compose")
    c.add_argument("compose", type=Path)
    c.add_argument("--env-file", type=Path, required=True)
    e = sub.add_parser("env")
    e.add_argument("--mercato", required=True)
    e.add_argument("--compose", type=Path, required=True)
    e.add_argument("--env-file", type=Path, required=True)
    e.add_argument("rendered", type=Path, nargs="+")
    k = sub.add_parser("checkov")
    k.add_argument("reports", type=Path, nargs="+")
    r = sub.add_parser("crds")
    r.add_argument("--schemas", type=Path, required=True)
    r.add_argument("--core-out", type=Path, required=True)
    r.add_argument("rendered", type=Path, nargs="+")
    x = sub.add_parser("rules")
    x.add_argument("rule", type=Path)
    x.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("dashboard")
    d.add_argument("dashboard", type=Path)
    d.add_argument("--out", type=Path, required=True)
    o = sub.add_parser("collector")
    o.add_argument("config", type=Path)
    args = parser.parse_args()
    try:
        if args.command == "compose":
            check_compose(args.compose, args.env_file)
        elif args.command == "env":
            check_env(args.mercato, args.rendered, args.compose, args.env_file)
        elif args.command == "crds":
            check_crds(args.schemas, args.rendered, args.core_out)
        elif args.command == "rules":
            extract_rules(args.rule, args.out)
        elif args.command == "dashboard":
            check_dashboard(args.dashboard, args.out)
        elif args.command == "collector":
            check_collector(args.config)
        else:
            check_checkov(args.reports)
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

//! The environment a service reads (`mercato env <service>`): every variable with its default
//! and whether a deployment must set it; `--names`, the bare list the deployment check compares
//! with each ConfigMap, Secret and compose service; `--check`, which validates the settings of
//! this environment as `serve` would, without starting anything; and the `MERCATO_…` variables
//! of this environment that nothing reads (typos), which `serve` and `up` warn about.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use kit::config::{EnvVariable, Settings, UnknownVariable};

use crate::serve::ServiceName;

/// Read by every process outside the typed settings (`kit::telemetry`), and set in every
/// deployment. `MERCATO_CONFIG` is not among them: containers are configured by the environment
/// alone.
const TELEMETRY_VARIABLES: [&str; 2] = ["MERCATO_LOG", "MERCATO_LOG_FORMAT"];

/// Read by the `mercato` command itself rather than by a service's settings: `up`'s options,
/// `admin create`'s password, the shop-wide broker of `up`, and the test suite's PostgreSQL,
/// Redis and RabbitMQ servers. Never a typo.
const COMMAND_VARIABLES: [&str; 8] = [
    "MERCATO_EVENTS__URL",
    "MERCATO_DATA_DIR",
    "MERCATO_LISTEN",
    "MERCATO_OPERATIONS_LISTEN",
    "MERCATO_ADMIN_PASSWORD",
    "MERCATO_TEST_POSTGRES_URL",
    "MERCATO_TEST_REDIS_URL",
    "MERCATO_TEST_AMQP_URL",
];

/// Settings without a usable default: the service refuses to start until they are set. Two
/// names for one setting are alternatives. `mercato env` marks them; a test checks each is
/// refused when unset.
const REQUIRED: [(ServiceName, &str, &str); 8] = [
    (ServiceName::Users, "MERCATO_DATABASE__URL", "required: sqlite://… or postgres://…"),
    (ServiceName::Users, "MERCATO_AUTH__SIGNING_KEY", "required, or MERCATO_AUTH__SIGNING_KEY_FILE"),
    (ServiceName::Products, "MERCATO_DATABASE__URL", "required: sqlite://… or postgres://…"),
    (ServiceName::Orders, "MERCATO_DATABASE__URL", "required: sqlite://… or postgres://…"),
    (ServiceName::Orders, "MERCATO_SERVICE_CLIENT_SECRET", "required: 16+ characters, as users has it"),
    (
        ServiceName::Carts,
        "MERCATO_REDIS__URL",
        "required: redis://… (the store), or MERCATO_DATABASE__URL=sqlite://…",
    ),
    (ServiceName::Carts, "MERCATO_SERVICE_CLIENT_SECRET", "required: 16+ characters, as users has it"),
    (
        ServiceName::Storefront,
        "MERCATO_SESSION__KEY",
        "required (32 random bytes, base64), or MERCATO_SESSION__KEY_FILE",
    ),
];

/// Notes on variables whose default alone would mislead.
const NOTES: [(&str, &str); 5] = [
    (
        "MERCATO_AUTH__SIGNING_KEY_FILE",
        "or MERCATO_AUTH__SIGNING_KEY; `up`: DATA_DIR/keys/users-signing-key.pem",
    ),
    ("MERCATO_SERVICE_CLIENTS__*", "one per client: MERCATO_SERVICE_CLIENTS__<ID>=secret (16+ characters)"),
    ("MERCATO_IMAGES__S3__BUCKET", "required when MERCATO_IMAGES__BACKEND=s3"),
    ("MERCATO_REDIS__URL", "each replica keeps its own state; redis://host:6379 shares it between replicas"),
    // Only carts shows it: the services with a database mark it required instead.
    ("MERCATO_DATABASE__URL", "carts: sqlite://… keeps carts in one process's file instead of Redis"),
];

/// Every `MERCATO_…` variable `service` reads that a deployment sets: the telemetry ones, then
/// its settings' keys (see [`kit::config::env_variables`] for how keys become names). What
/// `mercato env <service> --names` prints and deploy/validate.sh checks.
pub fn variables(service: ServiceName) -> anyhow::Result<Vec<String>> {
    Ok(TELEMETRY_VARIABLES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(settings_variables(service)?)
        .collect())
}

fn settings_variables(service: ServiceName) -> anyhow::Result<Vec<String>> {
    Ok(settings_defaults(service)?.into_iter().map(|v| v.name).collect())
}

fn settings_defaults(service: ServiceName) -> anyhow::Result<Vec<EnvVariable>> {
    Ok(match service {
        ServiceName::Gateway => kit::config::env_defaults::<gateway::GatewayConfig>(),
        ServiceName::Users => kit::config::env_defaults::<users::UsersConfig>(),
        ServiceName::Products => kit::config::env_defaults::<products::ProductsConfig>(),
        ServiceName::Orders => kit::config::env_defaults::<orders::OrdersConfig>(),
        ServiceName::Carts => kit::config::env_defaults::<carts::CartsConfig>(),
        ServiceName::Storefront => kit::config::env_defaults::<storefront::StorefrontConfig>(),
    }?)
}

/// `mercato env <service>`: every variable the service reads, with its default or "required",
/// the process-wide ones first.
pub fn describe(service: ServiceName) -> anyhow::Result<String> {
    let mut rows: Vec<(String, String)> = vec![
        ("MERCATO_LOG".into(), format!("{}   (RUST_LOG when unset)", kit::telemetry::DEFAULT_FILTER)),
        ("MERCATO_LOG_FORMAT".into(), "pretty on a terminal, else json".into()),
        ("MERCATO_CONFIG".into(), "unset: a TOML file of settings, between defaults and environment".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), "unset: traces are exported over OTLP/HTTP when set".into()),
    ];
    let process_wide = rows.len();
    for variable in settings_defaults(service)? {
        let required = REQUIRED.iter().find(|(s, name, _)| *s == service && *name == variable.name);
        let note = NOTES.iter().find(|(name, _)| *name == variable.name).map(|(_, note)| *note);
        let default = match (required, variable.default.as_deref(), note) {
            (Some((_, _, why)), _, _) => (*why).to_owned(),
            (None, None | Some(""), Some(note)) => format!("unset ({note})"),
            (None, None | Some(""), None) => "unset".to_owned(),
            (None, Some(value), Some(note)) => format!("{value}   ({note})"),
            (None, Some(value), None) => value.to_owned(),
        };
        rows.push((variable.name, default));
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::from("Every process:\n");
    for (i, (name, default)) in rows.iter().enumerate() {
        if i == process_wide {
            let _ = writeln!(
                out,
                "Settings of `mercato serve {}` (default, or what is required):",
                service.as_str()
            );
        }
        let _ = writeln!(out, "  {name:<width$}  {default}");
    }
    Ok(out)
}

/// Loads `service`'s settings from this environment and validates them as `mercato serve`
/// does before binding: the rules of the settings, and for users the signing key (it parses;
/// the file exists and is readable, unless it is to be generated). Nothing is opened for
/// writing or created.
pub fn check(service: ServiceName) -> anyhow::Result<()> {
    match service {
        ServiceName::Gateway => load::<gateway::GatewayConfig>().map(drop),
        ServiceName::Users => {
            let auth = load::<users::UsersConfig>()?.auth;
            check_signing_key(&auth)?;
            match &auth.published_keys_file {
                Some(path) => kit::signing::load_published_keys(path)
                    .map(drop)
                    .context("auth.published_keys_file (MERCATO_AUTH__PUBLISHED_KEYS_FILE)"),
                None => Ok(()),
            }
        }
        ServiceName::Products => load::<products::ProductsConfig>().map(drop),
        ServiceName::Orders => load::<orders::OrdersConfig>().map(drop),
        ServiceName::Carts => load::<carts::CartsConfig>().map(drop),
        ServiceName::Storefront => load::<storefront::StorefrontConfig>().map(drop),
    }
}

fn load<T: Settings>() -> anyhow::Result<T> {
    Ok(kit::config::load::<T>()?)
}

/// The signing key as `users::Application::build` reads it, without generating one.
fn check_signing_key(auth: &users::config::AuthConfig) -> anyhow::Result<()> {
    use users::tokens::SigningKey;
    match (&auth.signing_key, &auth.signing_key_file) {
        (Some(pem), _) => {
            SigningKey::from_pem(pem).map(drop).context("auth.signing_key (MERCATO_AUTH__SIGNING_KEY)")
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(pem) => SigningKey::from_pem(&pem)
                .map(drop)
                .with_context(|| format!("auth.signing_key_file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && auth.generate_signing_key => {
                creatable(path)
                    .with_context(|| format!("auth.signing_key_file {} is to be generated", path.display()))
            }
            Err(e) => Err(anyhow::anyhow!("cannot read the signing key file {}: {e}", path.display())),
        },
        // The settings' own rules already refused this.
        (None, None) => Ok(()),
    }
}

/// A file can be created at `path`: its nearest existing ancestor is a directory.
fn creatable(path: &Path) -> anyhow::Result<()> {
    let existing = path.ancestors().skip(1).find(|dir| dir.exists());
    match existing {
        Some(dir) if !dir.is_dir() => anyhow::bail!("{} is not a directory", dir.display()),
        _ => Ok(()),
    }
}

/// What `mercato serve <service>` reads from the environment: its variables and the
/// process-wide ones.
pub fn known_to_serve(service: ServiceName) -> anyhow::Result<Vec<String>> {
    let mut known = variables(service)?;
    known.extend(["MERCATO_CONFIG"].into_iter().chain(COMMAND_VARIABLES).map(String::from));
    Ok(known)
}

/// What `mercato up` reads from the environment: each service's settings under its prefix
/// (`MERCATO_USERS__DATABASE__URL`), and the process-wide ones. `MERCATO_CONFIG` is not read.
pub fn known_to_up() -> anyhow::Result<Vec<String>> {
    let mut known: Vec<String> =
        TELEMETRY_VARIABLES.into_iter().chain(COMMAND_VARIABLES).map(String::from).collect();
    for service in [
        ServiceName::Gateway,
        ServiceName::Users,
        ServiceName::Products,
        ServiceName::Orders,
        ServiceName::Carts,
        ServiceName::Storefront,
    ] {
        let prefix = format!("MERCATO_{}__", service.as_str().to_ascii_uppercase());
        for name in settings_variables(service)? {
            known.push(name.replacen("MERCATO_", &prefix, 1));
        }
    }
    Ok(known)
}

/// One warning per `MERCATO_…` variable of this environment that `known` does not hold: the
/// setting it was meant for silently keeps its default otherwise (a mistyped
/// `MERCATO_USER__DATABASE__URL` and the shop runs on SQLite). `command` names the reader.
pub fn unknown_variable_warnings(known: &[String], command: &str) -> Vec<String> {
    let present = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    kit::config::unknown_variables(known, present)
        .into_iter()
        .map(|UnknownVariable { name, closest }| {
            let hint = closest
                .or_else(|| moved_prefix(&name, known))
                .map_or(String::new(), |k| format!("; did you mean {k}?"));
            format!("{name} is not read by `{command}` and is ignored{hint}")
        })
        .collect()
}

/// The same setting under the other command's naming: `MERCATO_DATABASE__URL` is
/// `MERCATO_<SERVICE>__DATABASE__URL` in `mercato up`, and the other way round in `serve`.
fn moved_prefix(name: &str, known: &[String]) -> Option<String> {
    let setting = name.strip_prefix("MERCATO_")?;
    let unprefixed = setting.split_once("__").map(|(_, rest)| format!("MERCATO_{rest}"));
    let candidates: Vec<&String> = known
        .iter()
        .filter(|k| k.ends_with(&format!("__{setting}")) || unprefixed.as_deref() == Some(k.as_str()))
        .collect();
    match candidates.as_slice() {
        [] => None,
        [one] => Some((*one).clone()),
        several => {
            Some(format!("one of {}", several.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn users_variables_include_nested_keys_and_optional_secrets() {
        let names = variables(ServiceName::Users).unwrap();
        for expected in [
            "MERCATO_LOG_FORMAT",
            "MERCATO_DATABASE__URL",
            "MERCATO_HTTP__SHUTDOWN_DELAY_MS",
            "MERCATO_AUTH__SIGNING_KEY",
            "MERCATO_AUTH__SIGNING_KEY_FILE",
            "MERCATO_PASSWORDS__MEMORY_KIB",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
    }

    #[test]
    fn gateway_variables_name_default_upstreams_and_lists_once() {
        let names = variables(ServiceName::Gateway).unwrap();
        assert!(names.iter().any(|n| n == "MERCATO_UPSTREAMS__USERS"), "{names:?}");
        assert_eq!(names.iter().filter(|n| *n == "MERCATO_ROUTES").count(), 1, "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("MERCATO_ROUTES__")), "{names:?}");
    }

    #[test]
    fn every_required_variable_is_one_the_service_reads() {
        for (service, name, _) in REQUIRED {
            assert!(variables(service).unwrap().iter().any(|n| n == name), "{name} of {service:?}");
        }
        for (name, _) in NOTES {
            let read = [
                ServiceName::Gateway,
                ServiceName::Users,
                ServiceName::Products,
                ServiceName::Orders,
                ServiceName::Carts,
                ServiceName::Storefront,
            ]
            .into_iter()
            .any(|s| variables(s).unwrap().iter().any(|n| n == name));
            assert!(read, "{name} is read by some service");
        }
    }

    #[test]
    fn a_setting_under_the_other_commands_naming_is_pointed_to() {
        let up = known_to_up().unwrap();
        assert_eq!(
            moved_prefix("MERCATO_AUTH__SIGNING_KEY_FILE", &up).as_deref(),
            Some("MERCATO_USERS__AUTH__SIGNING_KEY_FILE")
        );
        assert!(moved_prefix("MERCATO_DATABASE__URL", &up).unwrap().starts_with("one of MERCATO_"));
        let serve = known_to_serve(ServiceName::Users).unwrap();
        assert_eq!(
            moved_prefix("MERCATO_USERS__DATABASE__URL", &serve).as_deref(),
            Some("MERCATO_DATABASE__URL")
        );
    }
}

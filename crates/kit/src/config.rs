//! Typed, layered configuration: defaults < optional TOML file < `MERCATO_…` environment,
//! read once at start and validated; a bad value names its key.
//!
//! Nested keys use a double underscore in the environment: `MERCATO_DATABASE__URL` sets
//! `database.url`. The optional file is named by `MERCATO_CONFIG`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable mercato reads.
pub const ENV_PREFIX: &str = "MERCATO_";

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read or has the wrong type; figment's message names the key and source.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A value was read but breaks a rule.
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), problem: problem.into() }
    }
}

/// A service's settings: serializable defaults plus the rules the values must keep.
pub trait Settings: Serialize + DeserializeOwned + Default {
    /// Checks rules that types alone cannot express. Called once by [`load`].
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Loads `T` from its defaults, then the file named by `MERCATO_CONFIG` (if set), then the
/// `MERCATO_…` environment, and validates it.
pub fn load<T: Settings>() -> Result<T, ConfigError> {
    let file = std::env::var_os("MERCATO_CONFIG");
    load_from(T::default(), file.as_deref().map(Path::new), Env::prefixed(ENV_PREFIX))
}

/// The environment variables starting with `prefix` (e.g. `MERCATO_USERS__`), as a source for
/// [`load_from`].
pub fn env_source(prefix: &str) -> Env {
    Env::prefixed(prefix)
}

/// As [`load`], with explicit defaults (for example those `mercato up` derives from its data
/// directory), file and environment source.
pub fn load_from<T: Settings>(defaults: T, file: Option<&Path>, env: Env) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(env.ignore(&["config"]).split("__"));
    let settings: T = figment.extract().map_err(|e| ConfigError::Load(describe(e)))?;
    settings.validate()?;
    Ok(settings)
}

/// The `MERCATO_…` variables that set `T`'s keys, derived from its serialized defaults, sorted
/// (what `mercato env <service> --names` prints). Nested tables join with `__`
/// (`database.url` → `MERCATO_DATABASE__URL`); a map's default entries are tables too
/// (`upstreams.users` → `MERCATO_UPSTREAMS__USERS`), and an empty table is a map whose entries
/// are all the deployment's, named with `*` (`MERCATO_SERVICE_CLIENTS__*`); a list or an option
/// that is `None` by default is one variable (`MERCATO_ROUTES`, `MERCATO_AUTH__SIGNING_KEY`).
pub fn env_variables<T: Settings>() -> Result<Vec<String>, ConfigError> {
    Ok(env_defaults::<T>()?.into_iter().map(|variable| variable.name).collect())
}

/// One variable of [`env_defaults`]: its name, and its default as the environment would
/// spell it (`None` when it is unset by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVariable {
    pub name: String,
    pub default: Option<String>,
}

/// As [`env_variables`], with each default written as the environment would set it: a string
/// as it is, a number or a boolean as text, a list or table inline (`["*"]`,
/// `[{prefix = "/api/v1/auth", upstream = "users"}]`).
pub fn env_defaults<T: Settings>() -> Result<Vec<EnvVariable>, ConfigError> {
    let defaults = serde_json::to_value(T::default()).map_err(|e| ConfigError::Load(e.to_string()))?;
    let mut variables = Vec::new();
    collect_env_variables(ENV_PREFIX.trim_end_matches('_'), &defaults, &mut variables);
    Ok(variables)
}

fn collect_env_variables(name: &str, value: &serde_json::Value, variables: &mut Vec<EnvVariable>) {
    use serde_json::Value;
    match value {
        Value::Object(table) => {
            let separator = if name.len() + 1 == ENV_PREFIX.len() { "_" } else { "__" };
            if table.is_empty() {
                variables.push(EnvVariable { name: format!("{name}{separator}*"), default: None });
            }
            for (key, value) in table {
                collect_env_variables(&format!("{name}{separator}{}", key.to_uppercase()), value, variables);
            }
        }
        Value::Null => variables.push(EnvVariable { name: name.to_owned(), default: None }),
        Value::String(text) => {
            variables.push(EnvVariable { name: name.to_owned(), default: Some(text.clone()) })
        }
        other => variables.push(EnvVariable { name: name.to_owned(), default: Some(inline_value(other)) }),
    }
}

/// A value in figment's inline syntax for environment variables (TOML-like).
fn inline_value(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Array(items) => format!("[{}]", items.iter().map(inline_value).collect::<Vec<_>>().join(", ")),
        Value::Object(table) => {
            let entries =
                table.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k} = {}", inline_value(v)));
            format!("{{{}}}", entries.collect::<Vec<_>>().join(", "))
        }
        Value::Null => String::new(),
        scalar => scalar.to_string(),
    }
}

/// A `MERCATO_…` variable of the environment that nothing reads, and the known name it most
/// likely is a typo of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub closest: Option<String>,
}

/// The names among `present` that start with `MERCATO_` (in any case, as figment matches them)
/// but are not `known`, sorted, each with the closest known name when it is a few edits away.
/// A known name ending in `*` stands for every name it starts (`MERCATO_SERVICE_CLIENTS__*`).
/// A mistyped variable is otherwise silently ignored, and its setting keeps its default.
pub fn unknown_variables(
    known: &[String],
    present: impl IntoIterator<Item = String>,
) -> Vec<UnknownVariable> {
    let is_known = |name: &str| {
        known.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == k,
        })
    };
    let mut unknown: Vec<UnknownVariable> = present
        .into_iter()
        .map(|name| name.to_ascii_uppercase())
        .filter(|name| name.starts_with(ENV_PREFIX) && !is_known(name))
        .map(|name| {
            let closest = known
                .iter()
                .map(|k| (strsim::levenshtein(&name, k.trim_end_matches('*')), k))
                .min()
                .filter(|(distance, _)| distance * 4 <= name.len())
                .map(|(_, k)| k.clone());
            UnknownVariable { name, closest }
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown.dedup();
    unknown
}

fn describe(error: figment::Error) -> String {
    error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

/// The HTTP listener of one service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are served instead, for the kubelet and
    /// Prometheus; the public listener then answers 404 for them. Unset (empty in the
    /// environment): they are served on `listen`.
    #[serde(deserialize_with = "empty_is_none")]
    pub operations_listen: Option<SocketAddr>,
    /// From accepting a connection, and from the first byte of each later request, its headers
    /// must be complete within this; otherwise the connection is closed (slow-header clients).
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout_ms: u64,
    /// Open connections per listener. At the limit the server stops accepting: new connections
    /// wait in the kernel's listen backlog (no file descriptor of the process) until one closes.
    pub max_connections: usize,
    /// A request taking longer than this answers 503.
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// After SIGTERM: how long readiness reports "draining" while still serving, so load
    /// balancers stop sending traffic before the listener closes.
    pub shutdown_delay_ms: u64,
    /// After the listener closes: how long in-flight requests may take to finish.
    pub drain_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            operations_listen: None,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            request_timeout_ms: 15_000,
            body_limit_bytes: 1024 * 1024,
            shutdown_delay_ms: 0,
            drain_timeout_ms: 20_000,
        }
    }
}

impl HttpConfig {
    pub fn with_listen(listen: SocketAddr) -> Self {
        Self { listen, ..Self::default() }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid(format!("{prefix}.request_timeout_ms"), "must be above 0"));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid(format!("{prefix}.body_limit_bytes"), "must be at least 1024"));
        }
        for (key, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(format!("{prefix}.{key}"), "must be above 0"));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::invalid(
                format!("{prefix}.max_connections"),
                "must be between 1 and 1000000",
            ));
        }
        if self.operations_listen.is_some_and(|ops| ops.port() != 0 && ops == self.listen) {
            return Err(ConfigError::invalid(
                format!("{prefix}.operations_listen"),
                "must differ from listen (leave it empty to serve them there)",
            ));
        }
        Ok(())
    }
}

/// An optional value that the environment leaves empty to mean "none"
/// (`MERCATO_HTTP__OPERATIONS_LISTEN=`).
fn empty_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A relational database: `sqlite://path/to/file.db?mode=rwc` or `postgres://user@host/db`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    /// Waiting longer than this for a connection answers 503.
    pub acquire_timeout_ms: u64,
    /// Apply pending migrations at start (the embedded default). Production runs
    /// `mercato migrate` as a Job instead.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            min_connections: 1,
            acquire_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    pub fn with_url(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }

    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = format!("{prefix}.url");
        if self.url.is_empty() {
            return Err(ConfigError::invalid(key, "is required (sqlite://… or postgres://…)"));
        }
        if !(self.url.starts_with("sqlite:")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(key, "must start with sqlite:, postgres:// or postgresql://"));
        }
        if self.max_connections == 0 || self.min_connections > self.max_connections {
            return Err(ConfigError::invalid(
                format!("{prefix}.max_connections"),
                "must be above 0 and at least min_connections",
            ));
        }
        Ok(())
    }
}

/// Timeouts, retries and circuit breaking of calls to another service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Extra attempts for idempotent requests after a transport error or a 502/503/504.
    pub retries: u32,
    /// First backoff; each retry doubles it, with full jitter.
    pub backoff_ms: u64,
    /// Consecutive failures that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit fails fast before one trial call is let through.
    pub breaker_cooldown_ms: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 1_000,
            request_timeout_ms: 5_000,
            retries: 2,
            backoff_ms: 50,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
        }
    }
}

/// The broker of a service that only consumes events (the gateway).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// As [`EventsConfig::url`].
    #[serde(deserialize_with = "empty_is_none")]
    pub url: Option<String>,
}

/// The outbox relay of a service that publishes events (`kit::events::Relay`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The RabbitMQ broker (`amqp://user:password@host:5672/%2f`); unset (empty in the
    /// environment): the in-process bus, which in `mercato up` connects every service and for a
    /// service alone only itself.
    #[serde(deserialize_with = "empty_is_none")]
    pub url: Option<String>,
    /// How often the relay looks for events to publish, in milliseconds: about the most an
    /// event waits before its consumers have it.
    pub relay_interval_ms: u64,
    /// Events published per relay round at most.
    pub relay_batch: u64,
    /// How long a published event stays in the outbox before it is pruned, in seconds.
    pub sent_retention_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { url: None, relay_interval_ms: 100, relay_batch: 256, sent_retention_secs: 3_600 }
    }
}

impl EventsConfig {
    /// Checks the values; `key` is where this section sits (`events`).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !url.starts_with("amqp://")
        {
            return Err(ConfigError::invalid(
                format!("{key}.url"),
                "must be an amqp:// URL (or empty: the in-process bus)",
            ));
        }
        if !(1..=60_000).contains(&self.relay_interval_ms) {
            return Err(ConfigError::invalid(format!("{key}.relay_interval_ms"), "must be 1 to 60000"));
        }
        if !(1..=10_000).contains(&self.relay_batch) {
            return Err(ConfigError::invalid(format!("{key}.relay_batch"), "must be 1 to 10000"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Demo {
        http: HttpConfig,
        database: DatabaseConfig,
    }

    impl Settings for Demo {
        fn validate(&self) -> Result<(), ConfigError> {
            self.http.validate("http")?;
            self.database.validate("database")
        }
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("demo.toml", "[database]\nurl = \"sqlite://file.db\"\nmax_connections = 3\n")?;
            jail.set_env("DEMOTEST_DATABASE__MAX_CONNECTIONS", "7");
            let demo: Demo =
                load_from(Demo::default(), Some(Path::new("demo.toml")), Env::prefixed("DEMOTEST_"))
                    .map_err(|e| e.to_string())?;
            assert_eq!(demo.database.url, "sqlite://file.db");
            assert_eq!(demo.database.max_connections, 7);
            Ok(())
        });
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct WithMapAndList {
        http: HttpConfig,
        key: Option<String>,
        upstreams: std::collections::BTreeMap<String, String>,
        routes: Vec<String>,
    }

    impl Settings for WithMapAndList {}

    #[test]
    fn env_variables_flatten_tables_and_keep_lists_empty_maps_and_none_as_one_variable() {
        let mut names = env_variables::<WithMapAndList>().unwrap();
        assert!(names.contains(&"MERCATO_HTTP__SHUTDOWN_DELAY_MS".to_owned()), "{names:?}");
        assert!(names.contains(&"MERCATO_KEY".to_owned()), "a None option is still a variable: {names:?}");
        assert!(names.contains(&"MERCATO_ROUTES".to_owned()), "a list is one variable: {names:?}");
        assert!(names.contains(&"MERCATO_UPSTREAMS__*".to_owned()), "an empty map's entries: {names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 9 + 3, "{names:?}");
    }

    #[test]
    fn env_defaults_are_written_as_the_environment_sets_them() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(default)]
        struct Typed {
            database: DatabaseConfig,
            origins: Vec<String>,
            routes: Vec<std::collections::BTreeMap<String, String>>,
            key: Option<String>,
        }
        impl Default for Typed {
            fn default() -> Self {
                Self {
                    database: DatabaseConfig::default(),
                    origins: vec!["*".into()],
                    routes: vec![[("prefix".into(), "/api".into())].into()],
                    key: None,
                }
            }
        }
        impl Settings for Typed {}
        let defaults = env_defaults::<Typed>().unwrap();
        let default_of = |name: &str| defaults.iter().find(|v| v.name == name).unwrap().default.clone();
        assert_eq!(default_of("MERCATO_DATABASE__MAX_CONNECTIONS").as_deref(), Some("16"));
        assert_eq!(default_of("MERCATO_DATABASE__MIGRATE_ON_START").as_deref(), Some("true"));
        assert_eq!(default_of("MERCATO_DATABASE__URL").as_deref(), Some(""));
        assert_eq!(default_of("MERCATO_ORIGINS").as_deref(), Some(r#"["*"]"#));
        assert_eq!(default_of("MERCATO_ROUTES").as_deref(), Some(r#"[{prefix = "/api"}]"#));
        assert_eq!(default_of("MERCATO_KEY"), None);
    }

    #[test]
    fn a_mistyped_variable_is_unknown_and_the_closest_known_name_suggested() {
        let known =
            ["MERCATO_USERS__DATABASE__URL", "MERCATO_LOG", "MERCATO_SERVICE_CLIENTS__*"].map(String::from);
        let present = [
            "MERCATO_USER__DATABASE__URL",
            "MERCATO_LOG",
            "mercato_log_fromat",
            "MERCATO_SERVICE_CLIENTS__ORDERS",
            "PATH",
            "MERCATO_SOMETHING_ELSE_ENTIRELY",
        ]
        .map(String::from);
        let unknown = unknown_variables(&known, present);
        assert_eq!(
            unknown,
            [
                UnknownVariable { name: "MERCATO_LOG_FROMAT".into(), closest: None },
                UnknownVariable { name: "MERCATO_SOMETHING_ELSE_ENTIRELY".into(), closest: None },
                UnknownVariable {
                    name: "MERCATO_USER__DATABASE__URL".into(),
                    closest: Some("MERCATO_USERS__DATABASE__URL".into())
                },
            ]
        );
    }

    #[test]
    fn env_variables_name_keys_the_loader_reads() {
        figment::Jail::expect_with(|jail| {
            // Every name is a real key: the nested tables refuse unknown fields.
            for name in env_variables::<Demo>().map_err(|e| e.to_string())? {
                let value = match name.as_str() {
                    "MERCATO_HTTP__LISTEN" => "127.0.0.1:9",
                    "MERCATO_HTTP__OPERATIONS_LISTEN" => "127.0.0.1:10",
                    "MERCATO_DATABASE__URL" => "sqlite://set.db",
                    "MERCATO_DATABASE__MIGRATE_ON_START" => "false",
                    _ => "7000",
                };
                jail.set_env(name.replacen("MERCATO_", "DEMOTEST_", 1), value);
            }
            let demo: Demo =
                load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).map_err(|e| e.to_string())?;
            assert_eq!(demo.database.url, "sqlite://set.db");
            assert_eq!((demo.http.shutdown_delay_ms, demo.database.max_connections), (7000, 7000));
            Ok(())
        });
    }

    #[test]
    fn operations_listen_is_an_address_or_empty_for_none() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMOTEST_DATABASE__URL", "sqlite://x.db");
            jail.set_env("DEMOTEST_HTTP__OPERATIONS_LISTEN", "0.0.0.0:9090");
            let demo: Demo =
                load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).map_err(|e| e.to_string())?;
            assert_eq!(demo.http.operations_listen, Some("0.0.0.0:9090".parse().unwrap()));
            jail.set_env("DEMOTEST_HTTP__OPERATIONS_LISTEN", "");
            let demo: Demo =
                load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).map_err(|e| e.to_string())?;
            assert_eq!(demo.http.operations_listen, None);
            jail.set_env("DEMOTEST_HTTP__OPERATIONS_LISTEN", "nine thousand");
            let err = load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).unwrap_err();
            assert!(err.to_string().to_lowercase().contains("operations_listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn connection_limits_must_be_usable() {
        let http = HttpConfig { max_connections: 0, ..HttpConfig::default() };
        assert!(http.validate("http").unwrap_err().to_string().contains("`http.max_connections`"));
        let http = HttpConfig { idle_timeout_ms: 0, ..HttpConfig::default() };
        assert!(http.validate("http").unwrap_err().to_string().contains("`http.idle_timeout_ms`"));
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let http = HttpConfig { listen, operations_listen: Some(listen), ..HttpConfig::default() };
        assert!(http.validate("http").unwrap_err().to_string().contains("`http.operations_listen`"));
    }

    #[test]
    fn relay_settings_must_be_usable() {
        assert!(EventsConfig::default().validate("events").is_ok());
        let events = EventsConfig { relay_batch: 0, ..EventsConfig::default() };
        assert!(events.validate("events").unwrap_err().to_string().contains("`events.relay_batch`"));
        let events = EventsConfig { relay_interval_ms: 0, ..EventsConfig::default() };
        assert!(events.validate("events").unwrap_err().to_string().contains("`events.relay_interval_ms`"));
    }

    #[test]
    fn bad_value_names_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMOTEST_HTTP__LISTEN", "not-an-address");
            let err = load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).unwrap_err();
            assert!(err.to_string().to_lowercase().contains("http.listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn rule_violation_names_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMOTEST_DATABASE__URL", "mysql://x");
            let err = load_from(Demo::default(), None, Env::prefixed("DEMOTEST_")).unwrap_err();
            assert!(err.to_string().contains("`database.url`"), "{err}");
            Ok(())
        });
    }
}

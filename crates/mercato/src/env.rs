//! The environment a service reads in a container (`mercato env <service>`): the list the
//! deployment check compares with each ConfigMap, Secret and compose service, and `--check`,
//! which loads and validates the settings from the current environment without starting anything.

use kit::config::{ConfigError, Settings};

use crate::serve::ServiceName;

/// Read by every process outside the typed settings (`kit::telemetry`). `MERCATO_CONFIG` is
/// left out on purpose: containers are configured by the environment alone.
const TELEMETRY_VARIABLES: [&str; 2] = ["MERCATO_LOG", "MERCATO_LOG_FORMAT"];

/// Every `MERCATO_…` variable `service` reads: the telemetry ones, then its settings' keys
/// (see [`kit::config::env_variables`] for how keys become names).
pub fn variables(service: ServiceName) -> Result<Vec<String>, ConfigError> {
    let settings = match service {
        ServiceName::Gateway => kit::config::env_variables::<gateway::GatewayConfig>(),
        ServiceName::Users => kit::config::env_variables::<users::UsersConfig>(),
        ServiceName::Products => kit::config::env_variables::<products::ProductsConfig>(),
        ServiceName::Orders => kit::config::env_variables::<orders::OrdersConfig>(),
    }?;
    Ok(TELEMETRY_VARIABLES.iter().map(|name| (*name).to_owned()).chain(settings).collect())
}

/// Loads `service`'s settings from this environment and validates them, as `mercato serve`
/// would before binding; nothing is opened or written.
pub fn check(service: ServiceName) -> Result<(), ConfigError> {
    match service {
        ServiceName::Gateway => load::<gateway::GatewayConfig>(),
        ServiceName::Users => load::<users::UsersConfig>(),
        ServiceName::Products => load::<products::ProductsConfig>(),
        ServiceName::Orders => load::<orders::OrdersConfig>(),
    }
}

fn load<T: Settings>() -> Result<(), ConfigError> {
    kit::config::load::<T>().map(drop)
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
}

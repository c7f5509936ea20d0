//! The carts service's settings (shared parts come from `kit::config`).

use std::net::SocketAddr;
use std::time::Duration;

use kit::config::{BrokerConfig, ClientConfig, ConfigError, DatabaseConfig, HttpConfig, Settings};
use kit::redis::RedisConfig;
use serde::{Deserialize, Serialize};

/// Everything the carts service reads at start. Environment: `MERCATO_REDIS__URL` (production)
/// or `MERCATO_DATABASE__URL` (SQLite, one process), `MERCATO_USERS_URL`,
/// `MERCATO_PRODUCTS_URL`, `MERCATO_ORDERS_URL`, `MERCATO_SERVICE_CLIENT_SECRET`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CartsConfig {
    /// Where it listens, and its timeouts and limits.
    pub http: HttpConfig,
    /// The carts' store in production: with a `redis.url`, carts live in Redis (and Redis not
    /// answering makes the service unready: it is the store, not a cache).
    pub redis: RedisConfig,
    /// The store without Redis: a SQLite file (one process: the embedded shop). PostgreSQL is
    /// not a cart store (see README.md).
    pub database: DatabaseConfig,
    /// A cart not written for this many days is dropped (Redis key expiry, refreshed on every
    /// write).
    pub idle_expiry_days: u32,
    /// The one ISO 4217 currency carts are priced in (the shop's, as orders has it).
    pub currency: String,
    /// Base URL of the users service (key set, service tokens).
    pub users_url: String,
    /// Base URL of the products service (lookup).
    pub products_url: String,
    /// Base URL of the orders service (checkout).
    pub orders_url: String,
    /// Timeouts, retries and circuit breaking of calls to users, products and orders.
    pub client: ClientConfig,
    /// This service's client id at the users service.
    pub service_client_id: String,
    /// Its secret (at least 16 characters; no default).
    pub service_client_secret: String,
    /// The broker carts takes `user.deleted` and `user.role_changed` from.
    pub events: BrokerConfig,
}

impl Default for CartsConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8084))),
            redis: RedisConfig::default(),
            database: DatabaseConfig::default(),
            idle_expiry_days: 30,
            currency: "USD".into(),
            users_url: "http://127.0.0.1:8081".into(),
            products_url: "http://127.0.0.1:8082".into(),
            orders_url: "http://127.0.0.1:8083".into(),
            client: ClientConfig::default(),
            service_client_id: "carts".into(),
            service_client_secret: String::new(),
            events: BrokerConfig::default(),
        }
    }
}

impl CartsConfig {
    /// How long an untouched cart is kept.
    pub fn idle_expiry(&self) -> Duration {
        Duration::from_secs(u64::from(self.idle_expiry_days) * 24 * 60 * 60)
    }
}

impl Settings for CartsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        if self.redis.is_enabled() {
            self.redis.validate("redis")?;
        } else if self.database.url.is_empty() {
            return Err(ConfigError::invalid(
                "redis.url",
                "is required (redis://host:6379), or database.url=sqlite://… for a single process",
            ));
        } else {
            self.database.validate("database")?;
            if !self.database.url.starts_with("sqlite:") {
                return Err(ConfigError::invalid(
                    "database.url",
                    "must be sqlite://… : carts live in Redis (redis.url) or, in one process, SQLite",
                ));
            }
        }
        if !(1..=365).contains(&self.idle_expiry_days) {
            return Err(ConfigError::invalid("idle_expiry_days", "must be between 1 and 365"));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid("currency", "must be an ISO 4217 code such as USD"));
        }
        for (key, url) in [
            ("users_url", &self.users_url),
            ("products_url", &self.products_url),
            ("orders_url", &self.orders_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(key, "must be an http(s) URL"));
            }
        }
        if self.service_client_secret.is_empty() {
            return Err(ConfigError::invalid(
                "service_client_secret",
                "is required: the secret of this service's client at the users service (16+ characters)",
            ));
        }
        if self.service_client_secret.len() < 16 {
            return Err(ConfigError::invalid(
                "service_client_secret",
                format!(
                    "must be a secret of at least 16 characters (it has {})",
                    self.service_client_secret.chars().count()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with_secret() -> CartsConfig {
        CartsConfig { service_client_secret: "a-secret-of-16-chars".into(), ..CartsConfig::default() }
    }

    #[test]
    fn a_store_is_required_redis_or_sqlite_never_postgres() {
        let err = with_secret().validate().unwrap_err().to_string();
        assert!(err.contains("`redis.url`"), "{err}");
        let mut redis = with_secret();
        redis.redis = RedisConfig::with_url("redis://127.0.0.1:6379");
        redis.validate().unwrap();
        let mut sqlite = with_secret();
        sqlite.database = DatabaseConfig::with_url("sqlite://carts.db?mode=rwc");
        sqlite.validate().unwrap();
        let mut postgres = with_secret();
        postgres.database = DatabaseConfig::with_url("postgres://postgres@127.0.0.1/carts");
        assert!(postgres.validate().unwrap_err().to_string().contains("`database.url`"));
    }

    #[test]
    fn the_secret_is_required() {
        let config =
            CartsConfig { redis: RedisConfig::with_url("redis://127.0.0.1:6379"), ..CartsConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("`service_client_secret`"));
    }
}

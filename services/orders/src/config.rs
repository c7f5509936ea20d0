//! The orders service's settings (shared parts come from `kit::config`).

use std::net::SocketAddr;
use std::time::Duration;

use kit::config::{ClientConfig, ConfigError, DatabaseConfig, EventsConfig, HttpConfig, Settings};
use serde::{Deserialize, Serialize};

/// Everything the orders service reads at start. Environment: `MERCATO_DATABASE__URL`,
/// `MERCATO_USERS_URL`, `MERCATO_PRODUCTS_URL`, `MERCATO_SERVICE_CLIENT_SECRET`, `MERCATO_TAX_RATE_BP`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OrdersConfig {
    /// Where it listens, and its timeouts and limits.
    pub http: HttpConfig,
    /// The orders database (SQLite or PostgreSQL).
    pub database: DatabaseConfig,
    /// The one ISO 4217 currency orders are in.
    pub currency: String,
    /// Tax rate in basis points (825 = 8.25 %), applied to the subtotal, rounded half up.
    pub tax_rate_bp: u32,
    /// Base URL of the users service (addresses, key set, service tokens).
    pub users_url: String,
    /// Base URL of the products service (lookup, reservations).
    pub products_url: String,
    /// Timeouts, retries and circuit breaking of calls to users and products.
    pub client: ClientConfig,
    /// This service's client id at the users service.
    pub service_client_id: String,
    /// Its secret (at least 16 characters; no default).
    pub service_client_secret: String,
    /// The worker that settles abandoned checkouts.
    pub recovery: RecoveryConfig,
    /// The outbox relay of the events orders sends.
    pub events: EventsConfig,
}

/// The worker that settles checkouts that never finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Whether this replica runs the worker.
    pub enabled: bool,
    /// How often it looks.
    pub interval_ms: u64,
    /// A pending order older than this is settled: confirmed if its stock is held, else
    /// released and cancelled. Must exceed the longest a checkout can take.
    pub pending_timeout_ms: u64,
    /// After a failed attempt to settle an order, the worker leaves it alone this long,
    /// doubling with each further failure up to 15 minutes.
    pub retry_backoff_ms: u64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self { enabled: true, interval_ms: 5_000, pending_timeout_ms: 30_000, retry_backoff_ms: 5_000 }
    }
}

impl RecoveryConfig {
    /// How often the worker looks.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The age at which a pending order is settled.
    pub fn pending_timeout(&self) -> Duration {
        Duration::from_millis(self.pending_timeout_ms)
    }

    /// The wait after a first failed attempt to settle an order.
    pub fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8083))),
            database: DatabaseConfig::default(),
            currency: "USD".into(),
            tax_rate_bp: 0,
            users_url: "http://127.0.0.1:8081".into(),
            products_url: "http://127.0.0.1:8082".into(),
            client: ClientConfig::default(),
            service_client_id: "orders".into(),
            service_client_secret: String::new(),
            recovery: RecoveryConfig::default(),
            events: EventsConfig::default(),
        }
    }
}

impl Settings for OrdersConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        self.database.validate("database")?;
        self.events.validate("events")?;
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid("currency", "must be an ISO 4217 code such as USD"));
        }
        if self.tax_rate_bp > 10_000 {
            return Err(ConfigError::invalid("tax_rate_bp", "must be between 0 and 10000 (100 %)"));
        }
        for (key, url) in [("users_url", &self.users_url), ("products_url", &self.products_url)] {
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
        // A checkout cannot outlive its request (http.request_timeout_ms cuts it off), so a pending
        // order older than that is abandoned, never in flight.
        if self.recovery.pending_timeout_ms <= self.http.request_timeout_ms {
            return Err(ConfigError::invalid(
                "recovery.pending_timeout_ms",
                format!(
                    "must exceed http.request_timeout_ms ({} ms), the longest a checkout can take",
                    self.http.request_timeout_ms
                ),
            ));
        }
        Ok(())
    }
}

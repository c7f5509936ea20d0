//! The users service's settings (shared parts come from `kit::config`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use kit::config::{ConfigError, DatabaseConfig, HttpConfig, Settings};
use serde::{Deserialize, Serialize};

use crate::domain::PasswordHasher;

/// Everything the users service reads at start. Environment: `MERCATO_HTTP__LISTEN`,
/// `MERCATO_DATABASE__URL`, `MERCATO_AUTH__SIGNING_KEY`, `MERCATO_SERVICE_CLIENTS__ORDERS`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UsersConfig {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// argon2id cost.
    pub passwords: PasswordHasher,
    /// Service client id → secret, for `POST /internal/v1/auth/token`. Secrets are at least 16
    /// characters; there are no defaults.
    pub service_clients: BTreeMap<String, String>,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8081))),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            passwords: PasswordHasher::default(),
            service_clients: BTreeMap::new(),
        }
    }
}

/// Token signing and lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The Ed25519 signing key as PKCS#8 PEM (production: from a Secret). Wins over the file.
    pub signing_key: Option<String>,
    /// A file holding the PEM key.
    pub signing_key_file: Option<PathBuf>,
    /// Generate the key file on first run when it does not exist (the embedded default).
    pub generate_signing_key: bool,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub service_token_ttl_secs: u64,
    /// Failed logins for one email before further attempts answer 429…
    pub max_login_failures: u32,
    /// …for this long after the last failure.
    pub login_lockout_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            signing_key_file: None,
            generate_signing_key: false,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            service_token_ttl_secs: 5 * 60,
            max_login_failures: 10,
            login_lockout_secs: 15 * 60,
        }
    }
}

impl Settings for UsersConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        self.database.validate("database")?;
        if self.auth.signing_key.is_none() && self.auth.signing_key_file.is_none() {
            return Err(ConfigError::invalid(
                "auth.signing_key",
                "is required: set MERCATO_AUTH__SIGNING_KEY (PKCS#8 PEM) or MERCATO_AUTH__SIGNING_KEY_FILE",
            ));
        }
        if !(60..=3600).contains(&self.auth.access_token_ttl_secs) {
            return Err(ConfigError::invalid("auth.access_token_ttl_secs", "must be between 60 and 3600"));
        }
        if self.auth.refresh_token_ttl_days == 0 {
            return Err(ConfigError::invalid("auth.refresh_token_ttl_days", "must be at least 1"));
        }
        for (id, secret) in &self.service_clients {
            if secret.len() < 16 {
                return Err(ConfigError::invalid(
                    format!("service_clients.{id}"),
                    "must be a secret of at least 16 characters",
                ));
            }
        }
        Ok(())
    }
}

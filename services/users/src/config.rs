//! The users service's settings (shared parts come from `kit::config`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use kit::config::{ConfigError, DatabaseConfig, EventsConfig, HttpConfig, Settings};
use kit::redis::RedisConfig;
use serde::{Deserialize, Serialize};

use crate::domain::PasswordHasher;
use crate::domain::login_guard::LoginPolicy;

/// Everything the users service reads at start. Environment: `MERCATO_HTTP__LISTEN`,
/// `MERCATO_DATABASE__URL`, `MERCATO_AUTH__SIGNING_KEY`, `MERCATO_SERVICE_CLIENTS__ORDERS`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UsersConfig {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// Login throttling, and whose `X-Forwarded-For` names the client.
    pub login: LoginConfig,
    /// Where the login throttle's counts are kept so every replica shares them (`redis.url`);
    /// empty: each replica counts on its own. Redis away: each replica counts on its own until
    /// it answers again; a login never fails because of Redis.
    pub redis: RedisConfig,
    /// argon2id cost.
    pub passwords: PasswordHasher,
    /// Service client id → secret, for `POST /internal/v1/auth/token`. Secrets are at least 16
    /// characters; there are no defaults.
    pub service_clients: BTreeMap<String, String>,
    /// The outbox relay of the events users sends.
    pub events: EventsConfig,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8081))),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            login: LoginConfig::default(),
            redis: RedisConfig::default(),
            passwords: PasswordHasher::default(),
            service_clients: BTreeMap::new(),
            events: EventsConfig::default(),
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
    /// PEM keys (Ed25519, private or public) the key set publishes beside the signing key, never
    /// signing with them: the next key before a rotation, the previous one until its tokens have
    /// expired (services/users/README.md, "Rotating the signing key").
    pub published_keys_file: Option<PathBuf>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub service_token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            signing_key_file: None,
            generate_signing_key: false,
            published_keys_file: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            service_token_ttl_secs: 5 * 60,
        }
    }
}

/// Login throttling (README, "Login throttling"): a progressive delay per account and client
/// address, and an hourly budget of failures per account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Failed logins of one account from one address answered without delay…
    pub free_failures: u32,
    /// …then the address waits this long before its next attempt, doubling with each
    /// further failure…
    pub first_delay_secs: u64,
    /// …up to this.
    pub max_delay_secs: u64,
    /// Failed logins one account takes per hour from addresses it has never signed in from,
    /// all together (the addresses it signed in from have a budget of their own).
    pub account_failures_per_hour: u32,
    /// Peers whose `X-Forwarded-For` is believed: for them the client is the rightmost entry
    /// (the address the gateway saw). Any other peer is the client itself.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            first_delay_secs: 1,
            max_delay_secs: 15 * 60,
            account_failures_per_hour: 50,
            // Loopback and private networks: the gateway of the embedded shop, or a pod or
            // container of the cluster's network. The users service is never published itself.
            trusted_proxies: [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
            ]
            .into_iter()
            .filter_map(|net| net.parse().ok())
            .collect(),
        }
    }
}

impl LoginConfig {
    /// The numbers as the login guard takes them.
    pub fn policy(&self) -> LoginPolicy {
        LoginPolicy {
            free_failures: self.free_failures,
            first_delay: Duration::from_secs(self.first_delay_secs),
            max_delay: Duration::from_secs(self.max_delay_secs),
            account_failures_per_hour: self.account_failures_per_hour,
        }
    }
}

impl Settings for UsersConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        self.database.validate("database")?;
        self.redis.validate("redis")?;
        self.events.validate("events")?;
        if self.auth.signing_key.is_none() && self.auth.signing_key_file.is_none() {
            return Err(ConfigError::invalid(
                "auth.signing_key",
                "is required: set MERCATO_AUTH__SIGNING_KEY (PKCS#8 PEM) or MERCATO_AUTH__SIGNING_KEY_FILE",
            ));
        }
        if !(60..=3600).contains(&self.auth.access_token_ttl_secs) {
            return Err(ConfigError::invalid("auth.access_token_ttl_secs", "must be between 60 and 3600"));
        }
        // The revocation feed (`/internal/v1/revocations`) is read from the outbox's sent
        // events: they must outlive every token a starting replica might still have to refuse.
        if self.events.sent_retention_secs < self.auth.access_token_ttl_secs {
            return Err(ConfigError::invalid(
                "events.sent_retention_secs",
                format!(
                    "must be at least auth.access_token_ttl_secs ({} s): starting replicas read the token revocations of that long from the sent events",
                    self.auth.access_token_ttl_secs
                ),
            ));
        }
        let login = &self.login;
        if !(1..=100).contains(&login.free_failures) {
            return Err(ConfigError::invalid("login.free_failures", "must be between 1 and 100"));
        }
        if login.first_delay_secs == 0 || login.max_delay_secs < login.first_delay_secs {
            return Err(ConfigError::invalid(
                "login.first_delay_secs",
                "must be at least 1 and at most login.max_delay_secs",
            ));
        }
        if !(1..=10_000).contains(&login.account_failures_per_hour) {
            return Err(ConfigError::invalid(
                "login.account_failures_per_hour",
                "must be between 1 and 10000",
            ));
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

//! The storefront's settings (shared parts come from `kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use kit::config::{ClientConfig, ConfigError, HttpConfig, Settings};
use serde::{Deserialize, Serialize};

/// Everything the storefront reads at start. Environment: `MERCATO_GATEWAY_URL`,
/// `MERCATO_SESSION__KEY` or `MERCATO_SESSION__KEY_FILE`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorefrontConfig {
    /// Where it listens, and its timeouts and limits.
    pub http: HttpConfig,
    /// Base URL of the gateway: the storefront calls the public API there, as any client would.
    pub gateway_url: String,
    /// Timeouts, retries and circuit breaking of calls to the gateway.
    pub client: ClientConfig,
    /// The sealed session cookie.
    pub session: SessionConfig,
    /// How many products the home page features.
    pub featured_products: u32,
    /// Products per listing or search page.
    pub page_size: u32,
}

/// The key that seals session cookies and signs CSRF tokens. Every replica needs the same one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// 32 random bytes, base64 (standard or URL-safe) or 64 hex digits.
    pub key: Option<String>,
    /// A file holding the key as above (a mounted Secret); read when `key` is unset.
    pub key_file: Option<PathBuf>,
    /// Writes a fresh key to `key_file` when it does not exist (the embedded shop does).
    pub generate_key: bool,
    /// Mark the cookie `Secure` always, not only when a request came over TLS.
    pub always_secure: bool,
    /// Believe `X-Forwarded-Proto: https` (the gateway sets it truthfully; only the gateway can
    /// reach the storefront). Off: only `always_secure` makes the cookie `Secure`.
    pub trust_forwarded_proto: bool,
}

impl Default for StorefrontConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8085))),
            gateway_url: "http://127.0.0.1:8080".into(),
            client: ClientConfig::default(),
            session: SessionConfig { trust_forwarded_proto: true, ..SessionConfig::default() },
            featured_products: 8,
            page_size: 12,
        }
    }
}

impl Settings for StorefrontConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err(ConfigError::invalid("gateway_url", "must be an http(s) URL"));
        }
        if let Some(key) = &self.session.key {
            crate::session::parse_key(key).map_err(|p| ConfigError::invalid("session.key", p))?;
        } else if self.session.key_file.is_none() {
            return Err(ConfigError::invalid(
                "session.key",
                "is required (32 random bytes, base64 or hex; e.g. `openssl rand -base64 32`), or session.key_file",
            ));
        }
        if !(1..=48).contains(&self.featured_products) {
            return Err(ConfigError::invalid("featured_products", "must be between 1 and 48"));
        }
        if !(1..=100).contains(&self.page_size) {
            return Err(ConfigError::invalid("page_size", "must be between 1 and 100"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_key_is_required_and_must_be_32_bytes() {
        let config = StorefrontConfig::default();
        assert!(config.validate().unwrap_err().to_string().contains("`session.key`"));
        let short = StorefrontConfig {
            session: SessionConfig { key: Some("c2hvcnQ=".into()), ..SessionConfig::default() },
            ..StorefrontConfig::default()
        };
        assert!(short.validate().unwrap_err().to_string().contains("32 bytes"));
        let good = StorefrontConfig {
            session: SessionConfig { key: Some("ab".repeat(32)), ..SessionConfig::default() },
            ..StorefrontConfig::default()
        };
        good.validate().unwrap();
    }
}

//! The state every gateway handler shares, built once from the configuration.

use std::time::Duration;

use kit::auth::TokenVerifier;
use kit::rate_limit::RateLimiter;

use crate::config::GatewayConfig;
use crate::forwarded::TrustedProxies;
use crate::limits::{self, BodyLimits};
use crate::proxy::{self, UpstreamClient};
use crate::routing::{self, RouteTable, Upstreams};

/// Routes, upstreams, the proxy client and the edge policies.
pub(crate) struct AppState {
    pub routes: RouteTable,
    pub upstreams: Upstreams,
    pub client: UpstreamClient,
    pub upstream_timeout: Duration,
    pub verifier: TokenVerifier,
    pub rate_limiter: Option<RateLimiter>,
    pub body_limits: BodyLimits,
    pub trusted_proxies: TrustedProxies,
    token_optional_prefixes: Vec<String>,
}

impl AppState {
    /// Builds the state of a validated `config`.
    pub fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let upstreams = routing::upstreams(config)?;
        let auth_upstream = upstreams
            .get(&config.auth_upstream)
            .ok_or_else(|| anyhow::anyhow!("auth_upstream {} is not an upstream", config.auth_upstream))?;
        Ok(Self {
            routes: RouteTable::new(config, &upstreams)?,
            verifier: crate::auth::verifier(auth_upstream.client.clone()),
            upstreams,
            client: proxy::upstream_client(Duration::from_millis(config.client.connect_timeout_ms)),
            upstream_timeout: config.upstream_timeout(),
            rate_limiter: limits::rate_limiter(&config.rate_limit),
            body_limits: BodyLimits::new(config),
            trusted_proxies: TrustedProxies::new(&config.effective_trusted_proxies()),
            token_optional_prefixes: config.token_optional_prefixes.clone(),
        })
    }

    /// On these paths a bad or expired token is ignored rather than refused (see
    /// `GatewayConfig::token_optional_prefixes`).
    pub fn token_optional(&self, path: &str) -> bool {
        self.token_optional_prefixes.iter().any(|prefix| routing::prefix_matches(prefix, path))
    }
}

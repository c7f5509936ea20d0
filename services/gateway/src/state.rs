//! The state every gateway handler shares, built once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use kit::auth::TokenVerifier;
use kit::rate_limit::SharedRateLimiter;
use kit::redis::Redis;

use crate::config::GatewayConfig;
use crate::forwarded::TrustedProxies;
use crate::limits::{self, BodyLimits};
use crate::proxy::Proxy;
use crate::routing::{self, RouteTable, Upstreams};

/// Routes, upstreams, the proxy and the edge policies.
pub(crate) struct AppState {
    pub routes: RouteTable,
    pub upstreams: Upstreams,
    /// Where the shop's web pages are served (`storefront_upstream`), if anywhere.
    pub storefront: Option<Arc<routing::Upstream>>,
    pub proxy: Proxy,
    pub verifier: Arc<TokenVerifier>,
    pub rate_limiter: Option<SharedRateLimiter>,
    /// The shared Redis, when configured (rate limits; reported by `/readyz`).
    pub redis: Option<Redis>,
    pub body_limits: BodyLimits,
    pub trusted_proxies: Arc<TrustedProxies>,
    token_optional_prefixes: Vec<String>,
}

impl AppState {
    /// Builds the state of a validated `config`.
    pub fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let upstreams = routing::upstreams(config)?;
        let auth_upstream = upstreams
            .get(&config.auth_upstream)
            .ok_or_else(|| anyhow::anyhow!("auth_upstream {} is not an upstream", config.auth_upstream))?;
        let trusted_proxies = TrustedProxies::new(&config.effective_trusted_proxies());
        let redis = Redis::connect(&config.redis)?;
        Ok(Self {
            routes: RouteTable::new(config, &upstreams)?,
            verifier: Arc::new(crate::auth::verifier(auth_upstream.client.clone())),
            storefront: config
                .storefront_upstream
                .as_deref()
                .filter(|name| !name.is_empty())
                .and_then(|name| upstreams.get(name).cloned()),
            upstreams,
            proxy: Proxy::new(
                Duration::from_millis(config.client.connect_timeout_ms),
                config.upstream_timeout(),
                trusted_proxies.clone(),
            ),
            rate_limiter: limits::rate_limiter(&config.rate_limit, redis.clone()),
            redis,
            body_limits: BodyLimits::new(config),
            trusted_proxies: Arc::new(trusted_proxies),
            token_optional_prefixes: config.token_optional_prefixes.clone(),
        })
    }

    /// On these paths a bad or expired token is ignored rather than refused (see
    /// `GatewayConfig::token_optional_prefixes`).
    pub fn token_optional(&self, path: &str) -> bool {
        self.token_optional_prefixes.iter().any(|prefix| routing::prefix_matches(prefix, path))
    }
}

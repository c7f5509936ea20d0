//! The gateway's settings: upstreams, routes and edge policies, validated at start.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use kit::config::{ClientConfig, ConfigError, HttpConfig, Settings};
use kit::redis::RedisConfig;
use serde::{Deserialize, Serialize};

/// Everything the gateway reads at start (`MERCATO_…` environment, e.g.
/// `MERCATO_UPSTREAMS__USERS=http://users:8080`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// The public listener (default `127.0.0.1:8080`) and the operations one (default
    /// `127.0.0.1:9090`: `/healthz`, `/readyz` and `/metrics` are never on the public port unless
    /// `http.operations_listen` is emptied); `http.body_limit_bytes` is the body limit of every
    /// route without its own.
    pub http: HttpConfig,
    /// Service name → base URL (scheme, host and port only), e.g. `users = "http://127.0.0.1:8081"`,
    /// or a comma-separated list of its replicas' (`"http://a:8080,http://b:8080"`).
    pub upstreams: BTreeMap<String, String>,
    /// How requests are spread over an upstream's replicas and when one is taken out.
    pub replicas: ReplicasConfig,
    /// Public path prefixes and the upstream serving them; the longest matching prefix wins and
    /// the path is forwarded unchanged.
    pub routes: Vec<RouteConfig>,
    /// Paths that accept larger bodies (image uploads), as segment globs.
    pub upload_routes: Vec<UploadRouteConfig>,
    /// The upstream serving the shop's web pages (`storefront`): every path that is not
    /// `/api/…`, `/internal/…`, an operations path or one of the gateway's own goes there,
    /// unchanged. Empty: those paths answer 404.
    pub storefront_upstream: Option<String>,
    /// The upstream serving the JSON Web Key Set (`/api/v1/auth/jwks.json`) that verifies tokens.
    pub auth_upstream: String,
    /// Paths where a bad or expired bearer token is ignored instead of answering 401: signing
    /// in and refreshing are how a client replaces a stale token it may still be sending.
    pub token_optional_prefixes: Vec<String>,
    /// A proxied request whose upstream sends no response headers within this answers 504. Must be
    /// below `http.request_timeout_ms`, which bounds every request (503).
    pub upstream_timeout_ms: u64,
    /// The gateway's quick calls to each upstream (`/readyz` for `/api/v1/status`, `/openapi.json`
    /// for the merged docs) get one attempt within this.
    pub probe_timeout_ms: u64,
    /// Connect timeout of every upstream call; timeouts, retries and circuit breaking of the
    /// key-set (JWKS) fetch.
    pub client: ClientConfig,
    /// Per-client token bucket.
    pub rate_limit: RateLimitConfig,
    /// Where the rate limits are kept so every gateway replica shares them (`redis.url`);
    /// empty: each replica limits on its own. Redis away: each replica limits on its own until
    /// it answers again, never refusing a request because of Redis.
    pub redis: RedisConfig,
    /// Cross-origin requests from browsers.
    pub cors: CorsConfig,
    /// The proxies in front of the gateway whose `X-Forwarded-*` headers count: the client is
    /// the rightmost `X-Forwarded-For` address that is not one of them. None by default: the
    /// socket's peer is the client.
    pub trusted_proxies: TrustedProxiesConfig,
    /// Where `user.deleted` and `user.role_changed` come from: RabbitMQ at `events.url`, or
    /// (unset) the in-process bus.
    pub events: kit::config::BrokerConfig,
    /// Before `trusted_proxies`: `true` took the leftmost `X-Forwarded-For` entry, which the
    /// client writes. Still read, as `trusted_proxies.hops = 1`; not listed by `mercato env`.
    #[serde(skip_serializing)]
    pub trust_forwarded_for: Option<bool>,
}

/// Proxies trusted to append to `X-Forwarded-For` (and to set `-Proto` and `-Host`), by count,
/// by address, or both.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedProxiesConfig {
    /// How many proxies in front of the gateway each append the address they saw (1 behind one
    /// ingress controller or load balancer); the nearest this many hops are trusted.
    pub hops: u32,
    /// Networks (`10.0.0.0/8`) or addresses of trusted proxies, at any distance.
    pub cidrs: Vec<String>,
}

/// Several replicas of one upstream: calls take turns; a replica that refuses a connection, or
/// fails `eject_after_failures` calls in a row (errors, 502/503/504), sits out `ejection_ms`;
/// one whose `/readyz` is not 200 (draining) gets no new requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicasConfig {
    /// How often each replica's `/readyz` is asked, for upstreams with more than one.
    pub readiness_interval_ms: u64,
    /// Consecutive failed calls that take a replica out.
    pub eject_after_failures: u32,
    /// How long a replica stays out after failing (a refused connection ends it as soon as its
    /// readiness answers 200 again).
    pub ejection_ms: u64,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Self { readiness_interval_ms: 1_000, eject_after_failures: 5, ejection_ms: 10_000 }
    }
}

/// One public prefix and the service behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix starting with `/api/`, matched on whole segments: `/api/v1/users` matches
    /// `/api/v1/users` and `/api/v1/users/me`, not `/api/v1/usersx`.
    pub prefix: String,
    /// Name of the service in `upstreams`.
    pub upstream: String,
    /// Largest request body for this prefix; `http.body_limit_bytes` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_limit_bytes: Option<usize>,
}

impl RouteConfig {
    /// A route with the default body limit.
    pub fn new(prefix: &str, upstream: &str) -> Self {
        Self { prefix: prefix.to_owned(), upstream: upstream.to_owned(), body_limit_bytes: None }
    }
}

/// Paths with a larger body limit than their route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRouteConfig {
    /// Segment glob: `*` stands for exactly one segment, e.g. `/api/v1/products/*/images`.
    pub pattern: String,
    /// Largest request body on matching paths.
    pub body_limit_bytes: usize,
}

/// Token bucket per client: a signed-in user (`user:<id>`) or else an address (`ip:<addr>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off only for load tests; operations endpoints are never limited.
    pub enabled: bool,
    /// Sustained requests per second per client.
    pub per_second: f64,
    /// Requests a client may make at once before the sustained rate applies.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { enabled: true, per_second: 100.0, burst: 200 }
    }
}

/// Which browser origins may call the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins such as `https://shop.example.com`, or `["*"]` for any (tokens travel in the
    /// `Authorization` header, never in cookies, so no credentials are allowed either way).
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self { allowed_origins: vec!["*".to_owned()], max_age_secs: 600 }
    }
}

const MIB: usize = 1024 * 1024;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig {
                operations_listen: Some(([127, 0, 0, 1], 9090).into()),
                ..HttpConfig::with_listen(([127, 0, 0, 1], 8080).into())
            },
            upstreams: BTreeMap::from([
                ("users".to_owned(), "http://127.0.0.1:8081".to_owned()),
                ("products".to_owned(), "http://127.0.0.1:8082".to_owned()),
                ("orders".to_owned(), "http://127.0.0.1:8083".to_owned()),
                ("carts".to_owned(), "http://127.0.0.1:8084".to_owned()),
                ("storefront".to_owned(), "http://127.0.0.1:8085".to_owned()),
            ]),
            replicas: ReplicasConfig::default(),
            routes: vec![
                RouteConfig::new("/api/v1/auth", "users"),
                RouteConfig::new("/api/v1/users", "users"),
                RouteConfig::new("/api/v1/products", "products"),
                RouteConfig::new("/api/v1/categories", "products"),
                RouteConfig::new("/api/v1/images", "products"),
                RouteConfig::new("/api/v1/orders", "orders"),
                RouteConfig::new("/api/v1/cart", "carts"),
            ],
            upload_routes: vec![UploadRouteConfig {
                pattern: "/api/v1/products/*/images".to_owned(),
                body_limit_bytes: 6 * MIB,
            }],
            storefront_upstream: Some("storefront".to_owned()),
            auth_upstream: "users".to_owned(),
            token_optional_prefixes: vec!["/api/v1/auth".to_owned()],
            upstream_timeout_ms: 10_000,
            probe_timeout_ms: 2_000,
            client: ClientConfig::default(),
            rate_limit: RateLimitConfig::default(),
            redis: RedisConfig::default(),
            events: kit::config::BrokerConfig::default(),
            cors: CorsConfig::default(),
            trusted_proxies: TrustedProxiesConfig::default(),
            trust_forwarded_for: None,
        }
    }
}

impl GatewayConfig {
    /// [`Self::upstream_timeout_ms`] as a duration.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    fn validate_upstreams(&self) -> Result<(), ConfigError> {
        for (name, list) in &self.upstreams {
            let bases = kit::replicas::split_urls(list);
            if bases.is_empty() {
                return Err(ConfigError::invalid(format!("upstreams.{name}"), "names no base URL"));
            }
            for base in &bases {
                check_base_url(base)
                    .map_err(|problem| ConfigError::invalid(format!("upstreams.{name}"), problem))?;
            }
        }
        let replicas = &self.replicas;
        if replicas.readiness_interval_ms == 0
            || replicas.ejection_ms == 0
            || replicas.eject_after_failures == 0
        {
            return Err(ConfigError::invalid(
                "replicas",
                "readiness_interval_ms, eject_after_failures and ejection_ms must be above 0",
            ));
        }
        if let Some(storefront) = self.storefront_upstream.as_deref().filter(|s| !s.is_empty())
            && !self.upstreams.contains_key(storefront)
        {
            return Err(ConfigError::invalid("storefront_upstream", self.not_an_upstream(storefront)));
        }
        if !self.upstreams.contains_key(&self.auth_upstream) {
            return Err(ConfigError::invalid("auth_upstream", self.not_an_upstream(&self.auth_upstream)));
        }
        Ok(())
    }

    fn validate_routes(&self) -> Result<(), ConfigError> {
        for (i, route) in self.routes.iter().enumerate() {
            check_api_path(&route.prefix)
                .map_err(|p| ConfigError::invalid(format!("routes[{i}].prefix"), p))?;
            if self.routes[..i].iter().any(|earlier| earlier.prefix == route.prefix) {
                return Err(ConfigError::invalid(format!("routes[{i}].prefix"), "is listed twice"));
            }
            if !self.upstreams.contains_key(&route.upstream) {
                let problem = self.not_an_upstream(&route.upstream);
                return Err(ConfigError::invalid(format!("routes[{i}].upstream"), problem));
            }
            if route.body_limit_bytes == Some(0) {
                return Err(ConfigError::invalid(format!("routes[{i}].body_limit_bytes"), "must be above 0"));
            }
        }
        for (i, upload) in self.upload_routes.iter().enumerate() {
            check_api_path(&upload.pattern)
                .map_err(|p| ConfigError::invalid(format!("upload_routes[{i}].pattern"), p))?;
            if upload.body_limit_bytes == 0 {
                return Err(ConfigError::invalid(
                    format!("upload_routes[{i}].body_limit_bytes"),
                    "must be above 0",
                ));
            }
        }
        Ok(())
    }

    fn validate_policies(&self) -> Result<(), ConfigError> {
        if self.upstream_timeout_ms == 0 {
            return Err(ConfigError::invalid("upstream_timeout_ms", "must be above 0"));
        }
        if self.upstream_timeout_ms >= self.http.request_timeout_ms {
            let problem = format!("must be below http.request_timeout_ms ({})", self.http.request_timeout_ms);
            return Err(ConfigError::invalid("upstream_timeout_ms", problem));
        }
        if self.probe_timeout_ms == 0 {
            return Err(ConfigError::invalid("probe_timeout_ms", "must be above 0"));
        }
        let rate = &self.rate_limit;
        if rate.enabled && !(rate.per_second.is_finite() && rate.per_second > 0.0) {
            return Err(ConfigError::invalid("rate_limit.per_second", "must be a number above 0"));
        }
        if rate.enabled && rate.burst == 0 {
            return Err(ConfigError::invalid("rate_limit.burst", "must be at least 1"));
        }
        check_origins(&self.cors.allowed_origins)
            .map_err(|p| ConfigError::invalid("cors.allowed_origins", p))?;
        for (i, cidr) in self.trusted_proxies.cidrs.iter().enumerate() {
            parse_network(cidr)
                .map_err(|p| ConfigError::invalid(format!("trusted_proxies.cidrs[{i}]"), p))?;
        }
        if self.trusted_proxies.hops > 16 {
            return Err(ConfigError::invalid("trusted_proxies.hops", "must be at most 16"));
        }
        Ok(())
    }

    /// The trusted proxies, with the old `trust_forwarded_for = true` read as one hop.
    pub(crate) fn effective_trusted_proxies(&self) -> TrustedProxiesConfig {
        let mut proxies = self.trusted_proxies.clone();
        if self.trust_forwarded_for == Some(true) && proxies.hops == 0 {
            proxies.hops = 1;
        }
        proxies
    }

    fn not_an_upstream(&self, name: &str) -> String {
        let known: Vec<&str> = self.upstreams.keys().map(String::as_str).collect();
        format!("names `{name}`, which is not in `upstreams` ({})", known.join(", "))
    }
}

impl Settings for GatewayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        self.redis.validate("redis")?;
        self.validate_upstreams()?;
        self.validate_routes()?;
        self.validate_policies()
    }
}

/// An upstream is an origin: `http(s)://host[:port]`, no path, query or credentials.
fn check_base_url(base: &str) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|e| format!("is not a URL ({e}): {base:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("must be http://host:port or https://host:port, not {base:?}"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "must be only scheme, host and port (the path is never rewritten), not {base:?}"
        ));
    }
    Ok(())
}

/// Public prefixes live under `/api/`, so `/internal/…` can never be routed.
fn check_api_path(path: &str) -> Result<(), String> {
    if !path.starts_with("/api/") || path.len() <= "/api/".len() {
        return Err(format!("must start with /api/ and name more, not {path:?}"));
    }
    if path.ends_with('/') || path.contains("//") {
        return Err(format!("must not end with / or contain an empty segment: {path:?}"));
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(format!("must not contain . or .. segments: {path:?}"));
    }
    Ok(())
}

fn check_origins(origins: &[String]) -> Result<(), String> {
    if origins.iter().any(|o| o == "*") {
        return if origins.len() == 1 {
            Ok(())
        } else {
            Err("`*` must be the only entry when present".into())
        };
    }
    for origin in origins {
        let url = url::Url::parse(origin)
            .map_err(|_| format!("{origin:?} is not an origin like https://shop.example.com"))?;
        if url.origin().ascii_serialization() != *origin {
            return Err(format!(
                "{origin:?} must be exactly scheme://host[:port], without a path or trailing /"
            ));
        }
    }
    Ok(())
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`, a /32 or /128).
pub(crate) fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a network like 10.0.0.0/8 or an address"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::providers::Env;

    fn load_with_env(prefix: &str) -> Result<GatewayConfig, ConfigError> {
        kit::config::load_from(GatewayConfig::default(), None, Env::prefixed(prefix))
    }

    #[test]
    fn defaults_are_valid_and_route_every_public_prefix() {
        let config = GatewayConfig::default();
        config.validate().unwrap();
        assert_eq!(config.http.listen.port(), 8080);
        assert_eq!(
            config.http.operations_listen.map(|ops| ops.port()),
            Some(9090),
            "operations off the public port"
        );
        let owner =
            |prefix: &str| config.routes.iter().find(|r| r.prefix == prefix).map(|r| r.upstream.as_str());
        assert_eq!(owner("/api/v1/users"), Some("users"));
        assert_eq!(owner("/api/v1/categories"), Some("products"));
        assert_eq!(owner("/api/v1/orders"), Some("orders"));
        assert_eq!(owner("/api/v1/cart"), Some("carts"));
        assert_eq!(config.upload_routes[0].body_limit_bytes, 6 * MIB);
    }

    #[test]
    fn an_upstream_is_added_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GWTEST_UPSTREAMS__PRODUCTS", "http://products:8080");
            jail.set_env("GWTEST_RATE_LIMIT__BURST", "7");
            let config = load_with_env("GWTEST_").map_err(|e| e.to_string())?;
            assert_eq!(config.upstreams["products"], "http://products:8080");
            assert_eq!(config.upstreams["users"], "http://127.0.0.1:8081");
            assert_eq!(config.rate_limit.burst, 7);
            Ok(())
        });
    }

    #[test]
    fn routes_can_be_replaced_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GWTEST_UPSTREAMS__PRODUCTS", "http://products:8080");
            jail.set_env(
                "GWTEST_ROUTES",
                r#"[{prefix="/api/v1/users", upstream="users"}, {prefix="/api/v1/products", upstream="products", body_limit_bytes=2048}]"#,
            );
            let config = load_with_env("GWTEST_").map_err(|e| e.to_string())?;
            assert_eq!(config.routes.len(), 2);
            assert_eq!(config.routes[1].upstream, "products");
            assert_eq!(config.routes[1].body_limit_bytes, Some(2048));
            Ok(())
        });
    }

    #[test]
    fn unknown_nested_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GWTEST_RATE_LIMIT__BRUST", "7");
            let err = load_with_env("GWTEST_").unwrap_err();
            assert!(err.to_string().contains("brust"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn route_to_an_unknown_upstream_names_the_route_key() {
        let mut config = GatewayConfig::default();
        config.routes.push(RouteConfig::new("/api/v1/returns", "returns"));
        let key = format!("`routes[{}].upstream`", config.routes.len() - 1);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(&key) && err.contains("returns"), "{err}");
    }

    #[test]
    fn route_prefix_outside_api_is_refused() {
        let mut config = GatewayConfig::default();
        config.routes[1].prefix = "/internal/users".to_owned();
        assert!(config.validate().unwrap_err().to_string().contains("`routes[1].prefix`"));
    }

    #[test]
    fn upstream_with_a_path_is_refused() {
        let mut config = GatewayConfig::default();
        config.upstreams.insert("users".to_owned(), "http://users:8080/v1".to_owned());
        assert!(config.validate().unwrap_err().to_string().contains("`upstreams.users`"));
    }

    #[test]
    fn an_upstream_may_list_its_replicas_in_one_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GWTEST_UPSTREAMS__PRODUCTS", "http://products-a:8080, http://products-b:8080");
            let config = load_with_env("GWTEST_").map_err(|e| e.to_string())?;
            config.validate().map_err(|e| e.to_string())?;
            assert_eq!(
                kit::replicas::split_urls(&config.upstreams["products"]),
                ["http://products-a:8080", "http://products-b:8080"]
            );
            Ok(())
        });
        let mut config = GatewayConfig::default();
        config.upstreams.insert("users".into(), "http://a:1,http://b:2/path".into());
        assert!(config.validate().unwrap_err().to_string().contains("`upstreams.users`"));
    }

    #[test]
    fn auth_upstream_must_exist() {
        let config = GatewayConfig { auth_upstream: "accounts".to_owned(), ..GatewayConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("`auth_upstream`"));
    }

    #[test]
    fn wildcard_origin_cannot_be_mixed_with_others_and_origins_have_no_path() {
        assert!(check_origins(&["*".to_owned()]).is_ok());
        assert!(
            check_origins(&["https://shop.example.com".to_owned(), "http://localhost:3000".to_owned()])
                .is_ok()
        );
        assert!(check_origins(&["*".to_owned(), "https://a.example".to_owned()]).is_err());
        assert!(check_origins(&["https://shop.example.com/".to_owned()]).is_err());
    }

    #[test]
    fn upstream_timeout_must_fit_inside_the_request_timeout() {
        let config = GatewayConfig { upstream_timeout_ms: 20_000, ..GatewayConfig::default() };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`upstream_timeout_ms`") && err.contains("15000"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_read_from_the_environment_and_the_old_switch_means_one_hop() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GWTEST_TRUSTED_PROXIES__CIDRS", r#"["10.0.0.0/8", "192.0.2.7"]"#);
            let config = load_with_env("GWTEST_").map_err(|e| e.to_string())?;
            assert_eq!(config.trusted_proxies.cidrs, ["10.0.0.0/8", "192.0.2.7"]);
            assert_eq!(config.effective_trusted_proxies().hops, 0);
            jail.set_env("GWTEST_TRUST_FORWARDED_FOR", "true");
            let config = load_with_env("GWTEST_").map_err(|e| e.to_string())?;
            assert_eq!(config.effective_trusted_proxies().hops, 1);
            Ok(())
        });
        let names = kit::config::env_variables::<GatewayConfig>().unwrap();
        assert!(!names.iter().any(|n| n == "MERCATO_TRUST_FORWARDED_FOR"), "{names:?}");
        assert!(names.iter().any(|n| n == "MERCATO_TRUSTED_PROXIES__HOPS"), "{names:?}");
    }

    #[test]
    fn a_trusted_proxy_network_that_is_not_one_names_its_key() {
        let mut config = GatewayConfig::default();
        config.trusted_proxies.cidrs = vec!["10.0.0.0/8".into(), "ingress".into()];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`trusted_proxies.cidrs[1]`"), "{err}");
    }

    #[test]
    fn disabled_rate_limit_skips_its_number_checks() {
        let rate_limit = RateLimitConfig { enabled: false, per_second: 0.0, burst: 0 };
        let mut config = GatewayConfig { rate_limit, ..GatewayConfig::default() };
        config.validate().unwrap();
        config.rate_limit.enabled = true;
        assert!(config.validate().unwrap_err().to_string().contains("`rate_limit.per_second`"));
    }
}

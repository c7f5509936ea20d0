//! The route table: which upstream serves a public path (longest whole-segment prefix wins).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use kit::client::ServiceClient;
use kit::config::ClientConfig;
use kit::replicas::{EjectionPolicy, Replicas};

use crate::config::GatewayConfig;

/// A service behind the gateway, at one or more replicas.
pub(crate) struct Upstream {
    /// Its name in `upstreams`, used in problems, logs and the status page.
    pub name: String,
    /// Its replicas' base URLs and health: which one a request goes to.
    pub replicas: Replicas,
    /// Each replica's scheme and authority, as `replicas` lists them.
    origins: Vec<(Scheme, Authority)>,
    /// For the key-set fetch: the configured timeouts, retries and breaker, over every replica.
    pub client: ServiceClient,
    /// For each replica's readiness and OpenAPI document: one attempt within the probe timeout.
    pub probes: Vec<ServiceClient>,
}

impl Upstream {
    fn new(name: &str, list: &str, config: &GatewayConfig) -> anyhow::Result<Self> {
        let bases = kit::replicas::split_urls(list);
        let origins = bases
            .iter()
            .map(|base| {
                let uri: Uri = base.parse().with_context(|| format!("upstreams.{name} is not a URI"))?;
                match (uri.scheme().cloned(), uri.authority().cloned()) {
                    (Some(scheme), Some(authority)) => Ok((scheme, authority)),
                    _ => anyhow::bail!("upstreams.{name} must be http://host:port, not {base:?}"),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!origins.is_empty(), "upstreams.{name} names no base URL");
        let policy = EjectionPolicy {
            failures: config.replicas.eject_after_failures,
            ejection: Duration::from_millis(config.replicas.ejection_ms),
        };
        Ok(Self {
            name: name.to_owned(),
            client: ServiceClient::new(name, list, config.client.clone()),
            probes: bases.iter().map(|base| ServiceClient::new(name, base, probe_config(config))).collect(),
            replicas: Replicas::new(bases, policy),
            origins,
        })
    }

    /// The same path and query on replica `replica`.
    pub fn uri_for(&self, replica: usize, path_and_query: PathAndQuery) -> Result<Uri, http::Error> {
        let (scheme, authority) = &self.origins[replica];
        Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// The probe of the replica whose turn it is (in service first).
    pub fn any_probe(&self) -> &ServiceClient {
        let first = self.replicas.order().first().copied().unwrap_or(0);
        &self.probes[first]
    }
}

/// One attempt and no breaker: a readiness check must see a replica come back at once, not
/// after a cooldown its own refused checks started.
fn probe_config(config: &GatewayConfig) -> ClientConfig {
    ClientConfig {
        retries: 0,
        request_timeout_ms: config.probe_timeout_ms,
        breaker_failures: u32::MAX,
        ..config.client.clone()
    }
}

/// Every upstream by name.
pub(crate) type Upstreams = BTreeMap<String, Arc<Upstream>>;

/// Builds the upstreams of `config` (already validated).
pub(crate) fn upstreams(config: &GatewayConfig) -> anyhow::Result<Upstreams> {
    config
        .upstreams
        .iter()
        .map(|(name, base)| Ok((name.clone(), Arc::new(Upstream::new(name, base, config)?))))
        .collect()
}

/// One public prefix and where it goes.
pub(crate) struct Route {
    pub prefix: String,
    pub upstream: Arc<Upstream>,
    pub body_limit_bytes: Option<usize>,
}

/// The configured routes, longest prefix first.
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(config: &GatewayConfig, upstreams: &Upstreams) -> anyhow::Result<Self> {
        let mut routes = config
            .routes
            .iter()
            .map(|route| {
                let upstream = upstreams.get(&route.upstream).with_context(|| {
                    format!("route {} names unknown upstream {}", route.prefix, route.upstream)
                })?;
                Ok(Route {
                    prefix: route.prefix.clone(),
                    upstream: Arc::clone(upstream),
                    body_limit_bytes: route.body_limit_bytes,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Ok(Self { routes })
    }

    /// The route serving `path`, if any: the longest prefix that matches on segment boundaries.
    pub fn resolve(&self, path: &str) -> Option<&Route> {
        if has_dot_segment(path) {
            return None;
        }
        self.routes.iter().find(|route| prefix_matches(&route.prefix, path))
    }
}

/// `/api/v1/users` matches `/api/v1/users`, `/api/v1/users/` and `/api/v1/users/me`, but not
/// `/api/v1/usersx`.
pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `.` and `..` segments (also percent-encoded) are refused: a server that normalises them
/// behind the gateway could otherwise be steered out of the routed prefix, e.g. to `/internal`.
pub(crate) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

    fn table(routes: &[(&str, &str)]) -> RouteTable {
        let mut config = GatewayConfig::default();
        config.upstreams.insert("products".into(), "http://127.0.0.1:8082".into());
        config.upstreams.insert("media".into(), "http://127.0.0.1:8084".into());
        config.routes = routes.iter().map(|(prefix, upstream)| RouteConfig::new(prefix, upstream)).collect();
        RouteTable::new(&config, &upstreams(&config).unwrap()).unwrap()
    }

    fn upstream_of<'a>(table: &'a RouteTable, path: &str) -> Option<&'a str> {
        table.resolve(path).map(|route| route.upstream.name.as_str())
    }

    #[test]
    fn prefix_matches_itself_and_paths_below_it() {
        assert!(prefix_matches("/api/v1/users", "/api/v1/users"));
        assert!(prefix_matches("/api/v1/users", "/api/v1/users/"));
        assert!(prefix_matches("/api/v1/users", "/api/v1/users/me/addresses"));
    }

    #[test]
    fn prefix_does_not_match_inside_a_segment_or_above_itself() {
        assert!(!prefix_matches("/api/v1/users", "/api/v1/usersx"));
        assert!(!prefix_matches("/api/v1/users", "/api/v1/user"));
        assert!(!prefix_matches("/api/v1/users", "/api/v1"));
        assert!(!prefix_matches("/api/v1/users", "/API/v1/users"));
    }

    #[test]
    fn longest_prefix_wins_whatever_the_configured_order() {
        let table = table(&[("/api/v1/products", "products"), ("/api/v1/products/media", "media")]);
        assert_eq!(upstream_of(&table, "/api/v1/products/media/1"), Some("media"));
        assert_eq!(upstream_of(&table, "/api/v1/products/mediax"), Some("products"));
        assert_eq!(upstream_of(&table, "/api/v1/products"), Some("products"));
    }

    #[test]
    fn unrouted_paths_resolve_to_nothing() {
        let table = table(&[("/api/v1/users", "users")]);
        assert_eq!(upstream_of(&table, "/api/v1/orders"), None);
        assert_eq!(upstream_of(&table, "/internal/users"), None);
        assert_eq!(upstream_of(&table, "/"), None);
    }

    #[test]
    fn dot_segments_are_never_routed_even_when_encoded() {
        let table = table(&[("/api/v1/users", "users")]);
        assert_eq!(upstream_of(&table, "/api/v1/users/../../../internal/x"), None);
        assert_eq!(upstream_of(&table, "/api/v1/users/%2E%2e/x"), None);
        assert_eq!(upstream_of(&table, "/api/v1/users/./me"), None);
        assert_eq!(upstream_of(&table, "/api/v1/users/me.json"), Some("users"));
    }

    #[test]
    fn upstream_uri_keeps_path_and_query() {
        let table = table(&[("/api/v1/users", "users")]);
        let route = table.resolve("/api/v1/users/me").unwrap();
        let uri = route.upstream.uri_for(0, PathAndQuery::from_static("/api/v1/users/me?x=1&y=%20")).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:8081/api/v1/users/me?x=1&y=%20");
    }
}

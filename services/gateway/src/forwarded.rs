//! The client on the network: its address, and the `X-Forwarded-*` headers sent upstream.
//!
//! A proxy in front of the gateway appends the address it saw to `X-Forwarded-For`, so the
//! chain a request carries is `[what the client wrote…, what each proxy saw…]` followed by the
//! socket peer. Only the right end was written by proxies we trust; the client is the rightmost
//! address that is not a trusted proxy (as nginx's `real_ip_recursive`, Envoy's
//! `xff_num_trusted_hops` and most load balancers do). `X-Forwarded-Proto` and `-Host` are
//! believed only when the peer itself is a trusted proxy, and then only their rightmost value.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use ipnet::IpNet;

use crate::config::{TrustedProxiesConfig, parse_network};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Which hops in front of the gateway are proxies we trust: the nearest `hops` of them by
/// count, and any whose address is in `networks`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    hops: usize,
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// From validated configuration (unparsable networks were refused at start).
    pub fn new(config: &TrustedProxiesConfig) -> Self {
        Self {
            hops: usize::try_from(config.hops).unwrap_or(usize::MAX),
            networks: config.cidrs.iter().filter_map(|cidr| parse_network(cidr).ok()).collect(),
        }
    }

    /// Whether the hop `distance` places left of the socket peer (the peer is 0), at `address`,
    /// is a trusted proxy.
    fn trusts(&self, distance: usize, address: IpAddr) -> bool {
        distance < self.hops || self.networks.iter().any(|network| network.contains(&address))
    }

    /// True when the socket peer is a trusted proxy, so its `X-Forwarded-*` headers count.
    pub fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|peer| self.trusts(0, peer))
    }

    /// The client's address: walking from the socket peer leftwards through
    /// `X-Forwarded-For`, the first address that is not a trusted proxy. An entry that is not
    /// an address ends the walk at the trusted hop right of it (nothing left of it is
    /// believable); a chain of trusted hops only ends at its leftmost.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        let mut client = peer;
        let mut distance = 0;
        if !self.trusts(distance, client) {
            return Some(client);
        }
        for entry in forwarded_for_entries(headers).rev() {
            distance += 1;
            let Ok(address) = entry.parse::<IpAddr>() else { break };
            client = address;
            if !self.trusts(distance, address) {
                break;
            }
        }
        Some(client)
    }

    /// True when the client reached the edge over TLS, as a trusted proxy says.
    pub fn came_over_tls(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
        self.trusts_peer(peer)
            && rightmost(headers, &X_FORWARDED_PROTO).is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
    }

    /// Sets `X-Forwarded-For`, `-Proto` and `-Host` on a request about to go upstream, given the
    /// headers the client sent. From a trusted proxy the chain is extended and its proto and host
    /// kept; otherwise incoming values are replaced, never passed on.
    pub fn set_forwarding_headers(
        &self,
        outgoing: &mut HeaderMap,
        incoming: &HeaderMap,
        peer: Option<IpAddr>,
    ) {
        let trusted = self.trusts_peer(peer);
        let earlier = trusted.then(|| joined_forwarded_for(incoming)).flatten();
        let chain = match (earlier, peer) {
            (Some(chain), Some(peer)) => Some(format!("{chain}, {peer}")),
            (Some(chain), None) => Some(chain),
            (None, Some(peer)) => Some(peer.to_string()),
            (None, None) => None,
        };
        set_or_remove(outgoing, &X_FORWARDED_FOR, chain.as_deref());

        let proto = if self.came_over_tls(incoming, peer) { "https" } else { "http" };
        outgoing.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));

        let trusted_host = trusted.then(|| rightmost(incoming, &X_FORWARDED_HOST)).flatten();
        let host = trusted_host.or_else(|| incoming.get(header::HOST).and_then(|v| v.to_str().ok()));
        set_or_remove(outgoing, &X_FORWARDED_HOST, host);
    }
}

/// The socket peer of a request (set by the server's `ConnectInfo`).
pub(crate) fn peer_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// Every `X-Forwarded-For` entry, left to right, across repeated headers.
fn forwarded_for_entries(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = &str> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

fn joined_forwarded_for(headers: &HeaderMap) -> Option<String> {
    let entries: Vec<&str> = forwarded_for_entries(headers).collect();
    (!entries.is_empty()).then(|| entries.join(", "))
}

/// The last value of a comma-separated header: the one the nearest proxy wrote.
fn rightmost<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|value| !value.is_empty())
}

fn set_or_remove(headers: &mut HeaderMap, name: &HeaderName, value: Option<&str>) {
    match value.and_then(|v| HeaderValue::from_str(v).ok()) {
        Some(value) => headers.insert(name.clone(), value),
        None => headers.remove(name),
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn forwarded_for(chain: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_FOR, chain.parse().unwrap());
        headers
    }

    fn by_hops(hops: usize) -> TrustedProxies {
        TrustedProxies { hops, networks: Vec::new() }
    }

    fn by_networks(networks: &[&str]) -> TrustedProxies {
        TrustedProxies { hops: 0, networks: networks.iter().map(|n| parse_network(n).unwrap()).collect() }
    }

    #[test]
    fn without_trusted_proxies_the_client_is_the_socket_peer() {
        let headers = forwarded_for("203.0.113.7, 10.0.0.1");
        assert_eq!(TrustedProxies::default().client_ip(&headers, ip("10.0.0.9")), ip("10.0.0.9"));
    }

    #[test]
    fn by_count_the_client_is_the_address_the_outermost_trusted_proxy_saw() {
        let headers = forwarded_for("198.51.100.1, 203.0.113.7");
        assert_eq!(by_hops(1).client_ip(&headers, ip("10.0.0.9")), ip("203.0.113.7"), "one proxy appended");
        let headers = forwarded_for("198.51.100.1, 203.0.113.7, 10.0.0.5");
        assert_eq!(by_hops(2).client_ip(&headers, ip("10.0.0.9")), ip("203.0.113.7"), "two proxies");
    }

    #[test]
    fn by_network_trusted_addresses_are_skipped_from_the_right() {
        let trusted = by_networks(&["10.0.0.0/8", "192.0.2.7"]);
        let headers = forwarded_for("198.51.100.1, 203.0.113.7, 192.0.2.7, 10.1.2.3");
        assert_eq!(trusted.client_ip(&headers, ip("10.0.0.9")), ip("203.0.113.7"));
        assert_eq!(
            trusted.client_ip(&headers, ip("203.0.113.99")),
            ip("203.0.113.99"),
            "a peer outside the trusted networks is the client, whatever it forwards"
        );
    }

    #[test]
    fn a_chain_of_trusted_hops_ends_at_its_leftmost_and_garbage_stops_the_walk() {
        let trusted = by_networks(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_ip(&forwarded_for("10.0.0.2, 10.0.0.3"), ip("10.0.0.9")), ip("10.0.0.2"));
        let headers = forwarded_for("198.51.100.1, not-an-ip, 10.0.0.3");
        assert_eq!(trusted.client_ip(&headers, ip("10.0.0.9")), ip("10.0.0.3"));
        assert_eq!(by_hops(1).client_ip(&HeaderMap::new(), ip("10.0.0.9")), ip("10.0.0.9"), "no header");
    }

    #[test]
    fn untrusted_forwarding_headers_are_replaced() {
        let mut incoming = forwarded_for("1.2.3.4");
        incoming.insert(&X_FORWARDED_PROTO, "https".parse().unwrap());
        incoming.insert(&X_FORWARDED_HOST, "evil.example".parse().unwrap());
        incoming.insert(header::HOST, "shop.example.com".parse().unwrap());
        let mut outgoing = incoming.clone();
        TrustedProxies::default().set_forwarding_headers(&mut outgoing, &incoming, ip("10.0.0.9"));
        assert_eq!(outgoing[&X_FORWARDED_FOR], "10.0.0.9");
        assert_eq!(outgoing[&X_FORWARDED_PROTO], "http");
        assert_eq!(outgoing[&X_FORWARDED_HOST], "shop.example.com");
    }

    #[test]
    fn a_trusted_proxys_headers_are_extended_and_its_own_values_kept() {
        let mut incoming = forwarded_for("1.2.3.4");
        incoming.insert(&X_FORWARDED_PROTO, "https".parse().unwrap());
        incoming.insert(&X_FORWARDED_HOST, "evil.example, shop.example.com".parse().unwrap());
        let mut outgoing = HeaderMap::new();
        by_networks(&["10.0.0.0/8"]).set_forwarding_headers(&mut outgoing, &incoming, ip("10.0.0.9"));
        assert_eq!(outgoing[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        assert_eq!(outgoing[&X_FORWARDED_PROTO], "https");
        assert_eq!(outgoing[&X_FORWARDED_HOST], "shop.example.com", "the nearest proxy's value");
    }

    #[test]
    fn tls_is_believed_only_from_a_trusted_peer_and_from_its_own_value() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_PROTO, "https".parse().unwrap());
        assert!(!TrustedProxies::default().came_over_tls(&headers, ip("10.0.0.9")));
        assert!(by_hops(1).came_over_tls(&headers, ip("10.0.0.9")));
        headers.insert(&X_FORWARDED_PROTO, "https, http".parse().unwrap());
        assert!(
            !by_hops(1).came_over_tls(&headers, ip("10.0.0.9")),
            "the client wrote https, the proxy http"
        );
    }

    #[test]
    fn networks_are_cidrs_or_single_addresses() {
        assert!(parse_network("10.0.0.0/8").unwrap().contains(&"10.9.9.9".parse::<IpAddr>().unwrap()));
        assert!(parse_network("2001:db8::1").unwrap().contains(&"2001:db8::1".parse::<IpAddr>().unwrap()));
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("proxy.local").is_err());
    }
}

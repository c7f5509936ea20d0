//! The client on the network: its address, and the `X-Forwarded-*` headers sent upstream.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The socket peer of a request (set by the server's `ConnectInfo`).
pub(crate) fn peer_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// The client's address: the first `X-Forwarded-For` entry when `trust_forwarded_for` (the
/// gateway sits behind a proxy that sets it), otherwise the socket peer.
pub(crate) fn client_ip<B>(request: &Request<B>, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for.then(|| first_forwarded_for(request.headers())).flatten();
    forwarded.or_else(|| peer_ip(request))
}

fn first_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get(&X_FORWARDED_FOR)?.to_str().ok()?;
    value.split(',').next()?.trim().parse().ok()
}

/// True when the client reached the edge over TLS, as the TLS-terminating proxy says.
pub(crate) fn came_over_tls(headers: &HeaderMap) -> bool {
    headers
        .get(&X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` on a request about to go upstream, given the
/// headers the client sent. Untrusted incoming values are replaced, never passed on.
pub(crate) fn set_forwarding_headers(
    outgoing: &mut HeaderMap,
    incoming: &HeaderMap,
    peer: Option<IpAddr>,
    trust_forwarded_for: bool,
) {
    let chain = forwarded_for_chain(incoming, peer, trust_forwarded_for);
    set_or_remove(outgoing, &X_FORWARDED_FOR, chain.as_deref());

    let proto = if trust_forwarded_for && came_over_tls(incoming) { "https" } else { "http" };
    outgoing.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));

    let trusted_host = trust_forwarded_for.then(|| incoming.get(&X_FORWARDED_HOST)).flatten();
    match trusted_host.or_else(|| incoming.get(header::HOST)) {
        Some(host) => outgoing.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => outgoing.remove(&X_FORWARDED_HOST),
    };
}

/// The proxies a request passed: the trusted incoming chain plus the peer, or just the peer.
fn forwarded_for_chain(
    incoming: &HeaderMap,
    peer: Option<IpAddr>,
    trust_forwarded_for: bool,
) -> Option<String> {
    let earlier = trust_forwarded_for
        .then(|| incoming.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()))
        .flatten()
        .map(str::trim)
        .filter(|chain| !chain.is_empty());
    match (earlier, peer) {
        (Some(chain), Some(peer)) => Some(format!("{chain}, {peer}")),
        (Some(chain), None) => Some(chain.to_owned()),
        (None, Some(peer)) => Some(peer.to_string()),
        (None, None) => None,
    }
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

    fn request_from(peer: &str, forwarded_for: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        if let Some(chain) = forwarded_for {
            request.headers_mut().insert(&X_FORWARDED_FOR, chain.parse().unwrap());
        }
        request
    }

    #[test]
    fn client_is_the_socket_peer_unless_forwarded_for_is_trusted() {
        let request = request_from("10.0.0.9:5000", Some("203.0.113.7, 10.0.0.1"));
        assert_eq!(client_ip(&request, false), Some("10.0.0.9".parse().unwrap()));
        assert_eq!(client_ip(&request, true), Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn unparsable_forwarded_for_falls_back_to_the_peer() {
        let request = request_from("10.0.0.9:5000", Some("not-an-ip"));
        assert_eq!(client_ip(&request, true), Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn untrusted_forwarding_headers_are_replaced() {
        let mut incoming = HeaderMap::new();
        incoming.insert(&X_FORWARDED_FOR, "1.2.3.4".parse().unwrap());
        incoming.insert(&X_FORWARDED_PROTO, "https".parse().unwrap());
        incoming.insert(header::HOST, "shop.example.com".parse().unwrap());
        let mut outgoing = incoming.clone();
        set_forwarding_headers(&mut outgoing, &incoming, Some("10.0.0.9".parse().unwrap()), false);
        assert_eq!(outgoing[&X_FORWARDED_FOR], "10.0.0.9");
        assert_eq!(outgoing[&X_FORWARDED_PROTO], "http");
        assert_eq!(outgoing[&X_FORWARDED_HOST], "shop.example.com");
    }

    #[test]
    fn trusted_forwarding_headers_are_extended() {
        let mut incoming = HeaderMap::new();
        incoming.insert(&X_FORWARDED_FOR, "1.2.3.4".parse().unwrap());
        incoming.insert(&X_FORWARDED_PROTO, "https".parse().unwrap());
        let mut outgoing = HeaderMap::new();
        set_forwarding_headers(&mut outgoing, &incoming, Some("10.0.0.9".parse().unwrap()), true);
        assert_eq!(outgoing[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        assert_eq!(outgoing[&X_FORWARDED_PROTO], "https");
    }
}

//! Who is calling: the live account behind a bearer token (and whether it is an admin), and the
//! client's address as the login throttle keys it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use kit::ApiError;
use kit::auth::{CurrentUser, Role};

use crate::domain::User;
use crate::state::AppState;

/// The client's address as the login throttle keys it: the socket peer, or, when the peer is
/// a trusted proxy (the gateway), the rightmost `X-Forwarded-For` entry — the address that
/// proxy saw; entries further left are whatever the client wrote and are never believed.
/// `None` without a peer (a router driven in-process).
pub(crate) fn client_address(
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
    trusted_proxies: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// The client's address for the login throttle (see [`client_address`]); the unspecified
/// address when the router runs without a socket.
pub(crate) struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let client = client_address(peer, &parts.headers, &state.trusted_proxies);
        Ok(ClientAddress(client.unwrap_or(IpAddr::from([0, 0, 0, 0]))))
    }
}

/// A signed-in user whose account still exists: a deleted user's tokens stop working here at
/// once, not when they expire.
pub(crate) struct LiveUser(pub User);

impl FromRequestParts<AppState> for LiveUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        state
            .accounts
            .live(current.id)
            .await?
            .map(LiveUser)
            .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))
    }
}

/// A live user whose stored role is admin (a demoted admin loses access at once).
pub(crate) struct LiveAdmin(pub User);

impl FromRequestParts<AppState> for LiveAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let LiveUser(user) = LiveUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::forbidden("this route is for admins"));
        }
        Ok(LiveAdmin(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_trusted_proxys_last_forwarded_entry_is_the_client() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let gateway = Some(ip("10.1.2.3"));
        let client = |forwarded: &[&str]| client_address(gateway, &headers(forwarded), &trusted);
        assert_eq!(client(&["203.0.113.7"]), Some(ip("203.0.113.7")));
        assert_eq!(client(&["1.1.1.1, 203.0.113.7"]), Some(ip("203.0.113.7")), "the client wrote the first");
        assert_eq!(client(&["1.1.1.1", "2001:db8::1"]), Some(ip("2001:db8::1")), "the last header counts");
        assert_eq!(client(&["203.0.113.7, not-an-address"]), gateway, "garbage is not believed");
        assert_eq!(client(&[]), gateway);
    }

    #[test]
    fn any_other_peer_is_the_client_whatever_it_forwards() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let stranger = Some(ip("198.51.100.9"));
        assert_eq!(client_address(stranger, &headers(&["203.0.113.7"]), &trusted), stranger);
        assert_eq!(client_address(None, &headers(&["203.0.113.7"]), &trusted), None);
    }
}

//! HTTP surface of the users service: one module per resource; handlers extract, call the
//! store and domain, and map errors. Every route is listed in [`router`].

mod addresses;
mod admin;
mod auth;
mod internal;
mod me;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use chrono::{DateTime, Utc};
use http::request::Parts;
use kit::ApiError;
use kit::auth::{CurrentUser, Role, TokenVerifier};
use kit::http::BearerAuth;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::config::UsersConfig;
use crate::domain::{LoginGuard, PasswordHasher};
use crate::store::{UserStore, address, user};
use crate::tokens::{TokenIssuer, hash_token};

/// A saved address as users answers it; the type is the contract orders reads it with.
pub use contracts::users::AddressView;

/// What every handler of the users service shares.
#[derive(Clone)]
pub struct AppState {
    store: UserStore,
    issuer: Arc<TokenIssuer>,
    verifier: Arc<TokenVerifier>,
    passwords: PasswordHasher,
    refresh_ttl: chrono::Duration,
    login_guard: Arc<LoginGuard>,
    /// Peers whose `X-Forwarded-For` names the client (see [`client_address`]).
    trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Bounds argon2 work in flight: each hash holds `passwords.memory_kib` of memory, so a
    /// burst of logins must queue rather than exhaust the pod's memory.
    hashing: Arc<tokio::sync::Semaphore>,
    /// client id → SHA-256 of its secret.
    service_clients: Arc<BTreeMap<String, String>>,
}

impl AppState {
    pub fn new(
        store: UserStore,
        issuer: TokenIssuer,
        verifier: Arc<TokenVerifier>,
        config: &UsersConfig,
    ) -> Self {
        Self {
            store,
            issuer: Arc::new(issuer),
            verifier,
            passwords: config.passwords,
            refresh_ttl: chrono::Duration::days(config.auth.refresh_token_ttl_days as i64),
            hashing: Arc::new(tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map(usize::from).unwrap_or(2),
            )),
            login_guard: Arc::new(LoginGuard::new(config.login.policy())),
            trusted_proxies: Arc::new(config.login.trusted_proxies.clone()),
            service_clients: Arc::new(
                config.service_clients.iter().map(|(id, secret)| (id.clone(), hash_token(secret))).collect(),
            ),
        }
    }
}

impl AppState {
    /// Runs password hashing or verification off the async threads, at most a few at a time.
    async fn hash_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self.hashing.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato users", description = "Accounts, credentials, tokens, addresses and roles."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users"), (name = "addresses"), (name = "admin"))
)]
struct ApiDoc;

/// Every route of the service, with its public OpenAPI document. The `/internal/` routes are
/// served but left out of the document: only other services call them, and the gateway never
/// routes them.
pub fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (internal, _internal_doc) = OpenApiRouter::new()
        .routes(routes!(internal::service_token))
        .with_state(state.clone())
        .split_for_parts();
    let (public, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::jwks))
        .routes(routes!(me::get_me, me::update_me, me::delete_me))
        .routes(routes!(addresses::list_addresses, addresses::create_address))
        .routes(routes!(addresses::get_address, addresses::update_address, addresses::delete_address))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user, admin::update_user, admin::delete_user))
        .with_state(state)
        .split_for_parts();
    (public.merge(internal), openapi)
}

/// A user as the API shows it; never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Present on single-user answers; omitted in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressView>>,
}

impl UserView {
    fn summary(model: user::Model) -> Self {
        Self {
            id: model.id,
            name: model.name,
            email: model.email,
            phone: model.phone,
            role: role_of(&model.role),
            created_at: model.created_at,
            addresses: None,
        }
    }

    fn with_addresses(model: user::Model, addresses: Vec<address::Model>) -> Self {
        Self {
            addresses: Some(addresses.into_iter().map(AddressView::from).collect()),
            ..Self::summary(model)
        }
    }
}

/// Roles are written by this service only; anything unexpected is treated as the least privilege.
fn role_of(stored: &str) -> Role {
    match stored {
        "admin" => Role::Admin,
        _ => Role::Customer,
    }
}

impl From<address::Model> for AddressView {
    fn from(m: address::Model) -> Self {
        Self {
            id: m.id,
            line1: m.line1,
            line2: m.line2,
            city: m.city,
            state: m.state,
            postal_code: m.postal_code,
            country: m.country,
            is_default: m.is_default,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The client's address as the login throttle keys it: the socket peer, or, when the peer is
/// a trusted proxy (the gateway), the rightmost `X-Forwarded-For` entry — the address that
/// proxy saw; entries further left are whatever the client wrote and are never believed.
/// `None` without a peer (a router driven in-process).
pub fn client_address(
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
pub struct ClientAddress(pub IpAddr);

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
pub struct LiveUser(pub user::Model);

impl FromRequestParts<AppState> for LiveUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        state
            .store
            .find_live(current.id)
            .await?
            .map(LiveUser)
            .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))
    }
}

/// A live user whose stored role is admin (a demoted admin loses access at once).
pub struct LiveAdmin(pub user::Model);

impl FromRequestParts<AppState> for LiveAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let LiveUser(user) = LiveUser::from_request_parts(parts, state).await?;
        if role_of(&user.role) != Role::Admin {
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

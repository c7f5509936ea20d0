//! HTTP surface of the users service: one module per resource; handlers extract, call the
//! store and domain, and map errors. Every route is listed in [`router`].

mod addresses;
mod admin;
mod auth;
mod internal;
mod me;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
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

/// What every handler of the users service shares.
#[derive(Clone)]
pub struct AppState {
    store: UserStore,
    issuer: Arc<TokenIssuer>,
    verifier: Arc<TokenVerifier>,
    passwords: PasswordHasher,
    refresh_ttl: chrono::Duration,
    login_guard: Arc<LoginGuard>,
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
            login_guard: Arc::new(LoginGuard::new(
                config.auth.max_login_failures,
                std::time::Duration::from_secs(config.auth.login_lockout_secs),
            )),
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

/// A postal address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub id: Uuid,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

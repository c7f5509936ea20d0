//! HTTP surface of the users service: one module per resource; handlers extract, parse input
//! into domain types, call one use case, and map its error to a problem. Every route is listed
//! in [`router`].

mod addresses;
mod admin;
mod auth;
mod caller;
mod internal;
mod me;
mod views;

use kit::ApiError;
use kit::http::BearerAuth;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::store::StoreError;

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato users", description = "Accounts, credentials, tokens, addresses and roles."),
    modifiers(&BearerAuth),
    components(schemas(kit::error::ProblemBody)),
    tags((name = "auth"), (name = "users"), (name = "addresses"), (name = "admin"))
)]
struct ApiDoc;

/// Every route of the service, with its public OpenAPI document. The `/internal/` routes are
/// served but left out of the document: only other services call them, and the gateway never
/// routes them.
pub(crate) fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (internal, _internal_doc) = OpenApiRouter::new()
        .routes(routes!(internal::service_token))
        .routes(routes!(internal::revocations))
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
    let mut openapi = openapi;
    utoipa::Modify::modify(&addresses::AddressRules, &mut openapi);
    (public.merge(internal), openapi)
}

/// The store's own refusals are answered by each use case's error; what reaches here is the
/// database failing (503 when it is unreachable, 500 otherwise, as kit maps it).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => ApiError::conflict(EMAIL_TAKEN),
            StoreError::LastAdmin => ApiError::conflict(LAST_ADMIN),
            StoreError::Db(db) => db.into(),
        }
    }
}

const EMAIL_TAKEN: &str = "an account with this email already exists";
const LAST_ADMIN: &str = "this is the shop's last administrator: make another account an admin first";

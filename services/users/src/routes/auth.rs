//! Registration, login, token refresh with rotation, logout, and the public key set.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use kit::auth::Role;
use kit::extract::Json;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppState, ClientAddress, UserView};
use crate::domain::{Email, Password, Phone, UserName};
use crate::store::{NewUser, Rotation, user};
use crate::tokens::{hash_token, new_refresh_token};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    name: String,
    email: String,
    /// At least 8 characters.
    password: String,
    phone: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// A signed-in session: the user and a token pair.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    user: UserView,
    access_token: String,
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

/// Creates a customer account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 400, description = "invalid field"), (status = 409, description = "email taken")))]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let mut errors = FieldErrors::default();
    let name = errors.take("name", UserName::parse(&body.name));
    let email = errors.take("email", Email::parse(&body.email));
    let password = errors.take("password", Password::parse(&body.password));
    let phone = errors.take("phone", body.phone.as_deref().map(Phone::parse).transpose());
    let (name, email, password, phone) = errors.finish(|| Some((name?, email?, password?, phone?)))?;

    if state.store.find_live_by_email(&email.normalized()).await?.is_some() {
        return Err(ApiError::conflict("an account with this email already exists"));
    }
    let passwords = state.passwords;
    let password_hash =
        state.hash_work(move || passwords.hash(&password)).await?.map_err(ApiError::internal)?;
    let user = state
        .store
        .create_user(NewUser {
            name: name.into_inner(),
            email: email.as_str().to_owned(),
            email_normalized: email.normalized(),
            phone: phone.map(Phone::into_inner),
            password_hash,
            role: Role::Customer,
        })
        .await?;
    tracing::info!(user_id = %user.id, "registered");
    let session = start_session(&state, user, Uuid::now_v7()).await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// Signs in with email and password. Wrong password, unknown email and deleted account all
/// answer the same 401. Failed attempts slow down per account and client address, and each
/// account takes a bounded number of failures per hour (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "wrong credentials"),
        (status = 429, description = "too many failed logins for this account from this address, or in all this hour")))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(body): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    const REFUSED: &str = "invalid email or password";
    let Ok(email) = Email::parse(&body.email) else {
        return Err(ApiError::unauthorized(REFUSED));
    };
    let account = email.normalized();
    // Counted before the hash, so a burst of parallel guesses cannot pass before one fails.
    let reservation = state.login_guard.reserve(&account, client, Instant::now()).map_err(|wait| {
        tracing::info!(retry_after_ms = wait.as_millis() as u64, "login throttled");
        ApiError::too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64)
    })?;
    let found = state.store.find_live_by_email(&account).await?;
    let passwords = state.passwords;
    let candidate = body.password;
    let (found, matches) = state
        .hash_work(move || match found {
            Some(user) => {
                let ok = passwords.verify(&user.password_hash, &candidate);
                (Some(user), ok)
            }
            None => {
                passwords.verify_dummy(&candidate);
                (None, false)
            }
        })
        .await?;
    match (found, matches) {
        (Some(user), true) => {
            state.login_guard.succeeded(reservation);
            Ok(axum::Json(start_session(&state, user, Uuid::now_v7()).await?))
        }
        // The reservation stays counted as the failure.
        _ => Err(ApiError::unauthorized(REFUSED)),
    }
}

/// Exchanges a refresh token for a new pair. The presented token stops working; presenting it
/// again revokes every token of that sign-in.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid, expired or reused token")))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<impl IntoResponse> {
    let successor = new_refresh_token().map_err(ApiError::internal)?;
    let expires_at = chrono::Utc::now() + state.refresh_ttl;
    let rotation = state
        .store
        .rotate_refresh_token(&hash_token(&body.refresh_token), hash_token(&successor), expires_at)
        .await?;
    let user_id = match rotation {
        Rotation::Rotated { user_id } => user_id,
        Rotation::Reused => {
            tracing::warn!("a used refresh token was presented again; its sign-in is revoked");
            return Err(ApiError::unauthorized("this refresh token was already used; sign in again"));
        }
        Rotation::Refused => return Err(ApiError::unauthorized("the refresh token is invalid or expired")),
    };
    let user = state
        .store
        .find_live(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
    let access =
        state.issuer.access_token(user.id, super::role_of(&user.role)).map_err(ApiError::internal)?;
    Ok(axum::Json(TokenResponse {
        user: UserView::summary(user),
        access_token: access.token,
        refresh_token: successor,
        token_type: "Bearer",
        expires_in: access.expires_in,
    }))
}

/// Ends the sign-in the refresh token belongs to. Always 204.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state.store.revoke_refresh_family(&hash_token(&body.refresh_token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The JSON Web Key Set that verifies access tokens.
#[utoipa::path(get, path = "/api/v1/auth/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    ([(http::header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.issuer.jwks()))
}

/// Issues an access token and a new refresh token (family `family`) for `user`.
async fn start_session(state: &AppState, user: user::Model, family: Uuid) -> ApiResult<TokenResponse> {
    let access =
        state.issuer.access_token(user.id, super::role_of(&user.role)).map_err(ApiError::internal)?;
    let refresh = new_refresh_token().map_err(ApiError::internal)?;
    state
        .store
        .insert_refresh_token(user.id, family, hash_token(&refresh), chrono::Utc::now() + state.refresh_ttl)
        .await?;
    Ok(TokenResponse {
        user: UserView::summary(user),
        access_token: access.token,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: access.expires_in,
    })
}

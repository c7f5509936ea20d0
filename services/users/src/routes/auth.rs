//! Registration, login, token refresh with rotation, logout, and the public key set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::Json;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::{Deserialize, Serialize};

use super::EMAIL_TAKEN;
use super::caller::ClientAddress;
use super::views::UserView;
use crate::app::accounts::RegisterError;
use crate::app::sessions::{LoginError, RefreshError, Session, SessionError};
use crate::domain::{Email, NewAccount, Password, Phone, UserName};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    /// 1 to 100 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// Unique among live accounts, in any case.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    /// Digits with an optional leading `+` and separators (space, `-`, `.`, parentheses); 6 to
    /// 15 digits, at most 32 characters.
    #[schema(nullable, max_length = 32, pattern = "^\\+?[ ().-]*([0-9][ ().-]*){6,15}$")]
    phone: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

/// A signed-in session: the user and a token pair.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    user: UserView,
    access_token: String,
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

impl From<Session> for TokenResponse {
    fn from(session: Session) -> Self {
        Self {
            user: UserView::summary(session.user),
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: "Bearer",
            expires_in: session.expires_in,
        }
    }
}

/// Creates a customer account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse),
        (status = 400, description = "malformed body or invalid fields", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "email taken", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<TokenResponse>)> {
    let mut errors = FieldErrors::default();
    let name = errors.take("name", UserName::parse(&body.name));
    let email = errors.take("email", Email::parse(&body.email));
    let password = errors.take("password", Password::parse(&body.password));
    let phone = errors.take("phone", body.phone.as_deref().map(Phone::parse).transpose());
    let account = errors
        .finish(|| Some(NewAccount { name: name?, email: email?, password: password?, phone: phone? }))?;
    let session = state.accounts.register(account).await?;
    Ok((StatusCode::CREATED, axum::Json(session.into())))
}

/// Signs in with email and password. Wrong password, unknown email and deleted account all
/// answer the same 401. Failed attempts slow down per account and client address, and each
/// account takes a bounded number of failures per hour (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, description = "malformed body", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "wrong credentials", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 429, description = "too many failed logins for this account from this address, or in all this hour", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(body): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let session = state.sessions.login(&body.email, body.password, client).await?;
    Ok(axum::Json(session.into()))
}

/// Exchanges a refresh token for a new pair. The presented token stops working; presenting it
/// again revokes every token of that sign-in.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, description = "malformed body", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "invalid, expired or reused token", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let session = state.sessions.refresh(&body.refresh_token).await?;
    Ok(axum::Json(session.into()))
}

/// Ends the sign-in the refresh token belongs to. 204 for any token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "signed out"),
        (status = 400, description = "malformed body", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state.sessions.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The JSON Web Key Set that verifies access tokens.
#[utoipa::path(get, path = "/api/v1/auth/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    ([(http::header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.sessions.key_set()))
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::Store(store) => store.into(),
            SessionError::Tokens(cause) => ApiError::internal(cause),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(err: RegisterError) -> Self {
        match err {
            RegisterError::EmailTaken => ApiError::conflict(EMAIL_TAKEN),
            RegisterError::Store(store) => store.into(),
            RegisterError::Session(session) => session.into(),
            RegisterError::Hashing(cause) => ApiError::internal(cause),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(err: LoginError) -> Self {
        match err {
            LoginError::Refused => ApiError::unauthorized("invalid email or password"),
            // Whole seconds, at least one: `Retry-After` has no fractions.
            LoginError::Throttled(wait) => {
                ApiError::too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
            LoginError::Session(session) => session.into(),
            LoginError::Store(store) => store.into(),
            LoginError::Hashing(cause) => ApiError::internal(cause),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::Invalid | RefreshError::Reused | RefreshError::AccountGone => {
                ApiError::unauthorized(err.to_string())
            }
            RefreshError::Session(session) => session.into(),
            RefreshError::Store(store) => store.into(),
        }
    }
}

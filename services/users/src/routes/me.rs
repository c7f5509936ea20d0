//! The signed-in user's own account: read, change, delete.

use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::Json;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;

use super::caller::LiveUser;
use super::views::UserView;
use super::{EMAIL_TAKEN, LAST_ADMIN};
use crate::app::accounts::{DeleteAccountError, ProfileError};
use crate::domain::{Email, Phone, ProfileChanges, UserName};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMeRequest {
    /// 1 to 100 characters, not blank, no control characters; `null` keeps it.
    #[serde(default)]
    #[schema(
        nullable,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// `null` keeps it.
    #[serde(default)]
    #[schema(nullable, format = Email, max_length = 254)]
    email: Option<String>,
    /// `null` removes the phone number.
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 32, pattern = "^\\+?[ ().-]*([0-9][ ().-]*){6,15}$")]
    phone: Option<Option<String>>,
}

/// The caller's account with addresses.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn get_me(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
) -> ApiResult<axum::Json<UserView>> {
    let profile = state.accounts.profile(user).await?;
    Ok(axum::Json(profile.into()))
}

/// Changes the caller's name, email or phone.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView),
        (status = 400, description = "malformed body or invalid fields", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "email taken", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn update_me(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Json(body): Json<UpdateMeRequest>,
) -> ApiResult<axum::Json<UserView>> {
    let mut errors = FieldErrors::default();
    let name = errors.take("name", body.name.as_deref().map(UserName::parse).transpose());
    let email = errors.take("email", body.email.as_deref().map(Email::parse).transpose());
    let phone =
        errors.take("phone", body.phone.map(|p| p.as_deref().map(Phone::parse).transpose()).transpose());
    let changes = errors.finish(|| Some(ProfileChanges { name: name?, email: email?, phone: phone? }))?;
    let profile = state.accounts.update_profile(&user, changes).await?;
    Ok(axum::Json(profile.into()))
}

/// Deletes the caller's account (soft delete: orders keep their history). Its tokens stop
/// working and the email can register again. The shop's last admin cannot (409).
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "deleted"),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "the last admin cannot delete itself", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn delete_me(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
) -> ApiResult<StatusCode> {
    state.accounts.delete(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<ProfileError> for ApiError {
    fn from(err: ProfileError) -> Self {
        match err {
            ProfileError::EmailTaken => ApiError::conflict(EMAIL_TAKEN),
            ProfileError::AccountGone => ApiError::unauthorized("this account no longer exists"),
            ProfileError::Store(store) => store.into(),
        }
    }
}

impl From<DeleteAccountError> for ApiError {
    fn from(err: DeleteAccountError) -> Self {
        match err {
            DeleteAccountError::LastAdmin => ApiError::conflict(LAST_ADMIN),
            DeleteAccountError::Store(store) => store.into(),
        }
    }
}

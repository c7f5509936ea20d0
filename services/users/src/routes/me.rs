//! The signed-in user's own account: read, change, delete.

use axum::extract::State;
use axum::http::StatusCode;
use kit::extract::Json;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;

use super::{AppState, LiveUser, UserView};
use crate::domain::{Email, Phone, UserName};
use crate::store::UserPatch;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    name: Option<String>,
    email: Option<String>,
    /// `null` removes the phone number.
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
}

/// The caller's account with addresses.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, description = "not signed in")))]
pub async fn get_me(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
) -> ApiResult<axum::Json<UserView>> {
    let addresses = state.store.addresses(user.id).await?;
    Ok(axum::Json(UserView::with_addresses(user, addresses)))
}

/// Changes the caller's name, email or phone.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 400, description = "invalid field"), (status = 409, description = "email taken")))]
pub async fn update_me(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Json(body): Json<UpdateMeRequest>,
) -> ApiResult<axum::Json<UserView>> {
    let mut errors = FieldErrors::default();
    let name = errors.take("name", body.name.as_deref().map(UserName::parse).transpose());
    let email = errors.take("email", body.email.as_deref().map(Email::parse).transpose());
    let phone =
        errors.take("phone", body.phone.map(|p| p.as_deref().map(Phone::parse).transpose()).transpose());
    let (name, email, phone) = errors.finish(|| Some((name?, email?, phone?)))?;

    if let Some(email) = &email
        && email.normalized() != user.email_normalized
        && state.store.find_live_by_email(&email.normalized()).await?.is_some()
    {
        return Err(ApiError::conflict("an account with this email already exists"));
    }
    let patch = UserPatch {
        name: name.map(UserName::into_inner),
        email: email.map(|e| (e.as_str().to_owned(), e.normalized())),
        phone: phone.map(|p| p.map(Phone::into_inner)),
        ..UserPatch::default()
    };
    let updated = state
        .store
        .update_user(user.id, patch)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
    let addresses = state.store.addresses(updated.id).await?;
    Ok(axum::Json(UserView::with_addresses(updated, addresses)))
}

/// Deletes the caller's account (soft delete: orders keep their history). Its tokens stop
/// working and the email can register again. The shop's last admin cannot (409).
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 409, description = "the last admin cannot delete itself")))]
pub async fn delete_me(State(state): State<AppState>, LiveUser(user): LiveUser) -> ApiResult<StatusCode> {
    state.store.soft_delete(user.id).await?;
    tracing::info!(user_id = %user.id, "account deleted by its owner");
    Ok(StatusCode::NO_CONTENT)
}

//! Admin management of accounts: list and search, read, change role or name, delete.

use axum::extract::State;
use axum::http::StatusCode;
use kit::auth::Role;
use kit::extract::{Json, Path, Query};
use kit::pagination::{Page, PageRequest};
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;
use uuid::Uuid;

use super::{AppState, LiveAdmin, UserView};
use crate::domain::{UserName, UserSearch};
use crate::store::UserPatch;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UserFilter {
    /// Case-insensitive substring of name or email (at most 200 characters).
    q: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateRequest {
    /// `customer` or `admin`.
    role: Option<String>,
    name: Option<String>,
}

const NOT_FOUND: &str = "no such user";

/// Live users, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = [])),
    params(UserFilter, ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Page<UserView>), (status = 403, description = "not an admin")))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: LiveAdmin,
    page: PageRequest,
    Query(filter): Query<UserFilter>,
) -> ApiResult<axum::Json<Page<UserView>>> {
    let search = filter
        .q
        .as_deref()
        .map(UserSearch::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("q", e))?
        .flatten();
    let (users, total) = state.store.list_users(search.as_ref(), page.offset(), page.limit()).await?;
    Ok(axum::Json(Page::new(users, page, total).map(UserView::summary)))
}

/// One user with addresses.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "absent or deleted")))]
pub async fn get_user(
    State(state): State<AppState>,
    _admin: LiveAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<UserView>> {
    let user = state.store.find_live(id).await?.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let addresses = state.store.addresses(id).await?;
    Ok(axum::Json(UserView::with_addresses(user, addresses)))
}

/// Changes a user's role or name. Demoting the shop's last admin answers 409.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = AdminUpdateRequest, responses((status = 200, body = UserView), (status = 404, description = "absent or deleted"),
        (status = 409, description = "the last admin cannot be demoted")))]
pub async fn update_user(
    State(state): State<AppState>,
    LiveAdmin(admin): LiveAdmin,
    Path(id): Path<Uuid>,
    Json(body): Json<AdminUpdateRequest>,
) -> ApiResult<axum::Json<UserView>> {
    let mut errors = FieldErrors::default();
    let role = errors.take("role", body.role.as_deref().map(parse_person_role).transpose());
    let name = errors.take("name", body.name.as_deref().map(UserName::parse).transpose());
    let patch = errors.finish(|| {
        Some(UserPatch { role: role?, name: name?.map(UserName::into_inner), ..UserPatch::default() })
    })?;
    let updated = state.store.update_user(id, patch).await?.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    tracing::info!(admin_id = %admin.id, user_id = %id, role = %updated.role, "user changed by admin");
    let addresses = state.store.addresses(id).await?;
    Ok(axum::Json(UserView::with_addresses(updated, addresses)))
}

/// Soft-deletes a user; their tokens stop working. Deleting the shop's last admin answers 409.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 404, description = "absent or already deleted"),
        (status = 409, description = "the last admin cannot be deleted")))]
pub async fn delete_user(
    State(state): State<AppState>,
    LiveAdmin(admin): LiveAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if !state.store.soft_delete(id).await? {
        return Err(ApiError::not_found(NOT_FOUND));
    }
    tracing::info!(admin_id = %admin.id, user_id = %id, "user deleted by admin");
    Ok(StatusCode::NO_CONTENT)
}

fn parse_person_role(raw: &str) -> Result<Role, String> {
    match raw.parse::<Role>() {
        Ok(role @ (Role::Customer | Role::Admin)) => Ok(role),
        _ => Err("must be `customer` or `admin`".into()),
    }
}

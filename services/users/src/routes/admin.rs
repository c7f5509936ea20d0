//! Admin management of accounts: list and search, read, change role or name, delete.

use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path, Query};
use kit::pagination::{Page, PageParams, PageRequest};
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;
use uuid::Uuid;

use super::LAST_ADMIN;
use super::caller::LiveAdmin;
use super::views::UserView;
use crate::app::admin::AdminError;
use crate::domain::{AdminChanges, PersonRole, UserName, UserSearch};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserFilter {
    /// Case-insensitive substring of name or email: at most 200 characters, no control
    /// characters.
    #[param(nullable = false, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    q: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminUpdateRequest {
    /// `customer` or `admin`; `null` keeps it.
    #[serde(default)]
    #[schema(nullable, value_type = Option<String>, pattern = "^(customer|admin)$")]
    role: Option<String>,
    /// 1 to 100 characters, not blank, no control characters; `null` keeps it.
    #[serde(default)]
    #[schema(
        nullable,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
}

/// Live users, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = [])),
    params(UserFilter, PageParams),
    responses((status = 200, body = Page<UserView>),
        (status = 400, description = "invalid page, limit or q", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn list_users(
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
    let (users, total) = state.admin.list(search.as_ref(), page).await?;
    Ok(axum::Json(Page::new(users, page, total).map(UserView::summary)))
}

/// One user with addresses.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or deleted", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    _admin: LiveAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<UserView>> {
    let profile = state.admin.get(id).await?;
    Ok(axum::Json(profile.into()))
}

/// Changes a user's role or name. Demoting the shop's last admin answers 409.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = AdminUpdateRequest,
    responses((status = 200, body = UserView),
        (status = 400, description = "malformed body, invalid fields, or the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or deleted", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "the last admin cannot be demoted", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    LiveAdmin(admin): LiveAdmin,
    Path(id): Path<Uuid>,
    Json(body): Json<AdminUpdateRequest>,
) -> ApiResult<axum::Json<UserView>> {
    let mut errors = FieldErrors::default();
    let role = errors.take("role", body.role.as_deref().map(PersonRole::parse).transpose());
    let name = errors.take("name", body.name.as_deref().map(UserName::parse).transpose());
    let changes = errors.finish(|| Some(AdminChanges { role: role?, name: name? }))?;
    let profile = state.admin.change(&admin, id, changes).await?;
    Ok(axum::Json(profile.into()))
}

/// Soft-deletes a user; their tokens stop working. Deleting the shop's last admin answers 409.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or already deleted", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "the last admin cannot be deleted", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    LiveAdmin(admin): LiveAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.admin.delete(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NotFound => ApiError::not_found(err.to_string()),
            AdminError::LastAdmin => ApiError::conflict(LAST_ADMIN),
            AdminError::Store(store) => store.into(),
        }
    }
}

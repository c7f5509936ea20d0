//! Service-to-service credentials: a configured client id and secret buy a short-lived token
//! with role `service`; and the revocation feed replicas of the other services read when they
//! start. Lives under `/internal/`, which the gateway never routes.

use axum::extract::State;
use chrono::{DateTime, Utc};
use contracts::users::{RevocationEvents, ServiceTokenRequest, ServiceTokenResponse};
use kit::extract::{Json, Query};
use kit::{ApiError, ApiResult};
use serde::Deserialize;

use crate::app::service_tokens::ServiceTokenError;
use crate::state::AppState;

/// Exchanges client credentials for a service token.
#[utoipa::path(post, path = "/internal/v1/auth/token", tag = "internal", request_body = ServiceTokenRequest,
    responses((status = 200, body = ServiceTokenResponse), (status = 401, description = "unknown client or wrong secret")))]
pub(crate) async fn service_token(
    State(state): State<AppState>,
    Json(body): Json<ServiceTokenRequest>,
) -> ApiResult<axum::Json<ServiceTokenResponse>> {
    let token = state.service_tokens.issue(&body.client_id, &body.client_secret)?;
    Ok(axum::Json(ServiceTokenResponse::bearer(token.token, token.expires_in)))
}

/// `?since=&after=` of the revocation feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevocationsQuery {
    /// RFC 3339: the oldest event wanted.
    since: DateTime<Utc>,
    /// The `next_after` of the previous page.
    #[serde(default)]
    after: i64,
}

/// The `user.deleted` and `user.role_changed` events since `since`, oldest first, paged: what a
/// replica of orders, products or the gateway applies to its deny-list when it starts. Not
/// authenticated, like the key set it complements (both only help refuse tokens); only
/// reachable inside the cluster.
#[utoipa::path(get, path = "/internal/v1/revocations", tag = "internal", params(RevocationsQuery),
    responses((status = 200, body = RevocationEvents), (status = 400, description = "a bad `since` or `after`")))]
pub(crate) async fn revocations(
    State(state): State<AppState>,
    Query(query): Query<RevocationsQuery>,
) -> ApiResult<axum::Json<RevocationEvents>> {
    Ok(axum::Json(state.revocations.page(query.since, query.after).await?))
}

impl From<ServiceTokenError> for ApiError {
    fn from(err: ServiceTokenError) -> Self {
        match err {
            ServiceTokenError::Refused => ApiError::unauthorized(err.to_string()),
            ServiceTokenError::Signing(cause) => ApiError::internal(cause),
        }
    }
}

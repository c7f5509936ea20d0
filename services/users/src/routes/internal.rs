//! Service-to-service credentials: a configured client id and secret buy a short-lived token
//! with role `service`. Lives under `/internal/`, which the gateway never routes.

use axum::extract::State;
use kit::extract::Json;
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

use super::ObjectBody;
use crate::app::service_tokens::ServiceTokenError;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceTokenRequest {
    client_id: String,
    client_secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ServiceTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// Exchanges client credentials for a service token.
#[utoipa::path(post, path = "/internal/v1/auth/token", tag = "internal", request_body = ServiceTokenRequest,
    responses((status = 200, body = ServiceTokenResponse), (status = 401, description = "unknown client or wrong secret")))]
pub(crate) async fn service_token(
    State(state): State<AppState>,
    Json(ObjectBody(body)): Json<ObjectBody<ServiceTokenRequest>>,
) -> ApiResult<axum::Json<ServiceTokenResponse>> {
    let token = state.service_tokens.issue(&body.client_id, &body.client_secret)?;
    Ok(axum::Json(ServiceTokenResponse {
        access_token: token.token,
        token_type: "Bearer",
        expires_in: token.expires_in,
    }))
}

impl From<ServiceTokenError> for ApiError {
    fn from(err: ServiceTokenError) -> Self {
        match err {
            ServiceTokenError::Refused => ApiError::unauthorized(err.to_string()),
            ServiceTokenError::Signing(cause) => ApiError::internal(cause),
        }
    }
}

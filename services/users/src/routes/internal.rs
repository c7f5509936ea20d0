//! Service-to-service credentials: a configured client id and secret buy a short-lived token
//! with role `service`. Lives under `/internal/`, which the gateway never routes.

use axum::extract::State;
use contracts::users::{ServiceTokenRequest, ServiceTokenResponse};
use kit::extract::Json;
use kit::{ApiError, ApiResult};

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

impl From<ServiceTokenError> for ApiError {
    fn from(err: ServiceTokenError) -> Self {
        match err {
            ServiceTokenError::Refused => ApiError::unauthorized(err.to_string()),
            ServiceTokenError::Signing(cause) => ApiError::internal(cause),
        }
    }
}

//! Service-to-service credentials: a configured client id and secret buy a short-lived token
//! with role `service`. Lives under `/internal/`, which the gateway never routes.

use axum::extract::State;
use contracts::users::{ServiceTokenRequest, ServiceTokenResponse};
use kit::extract::Json;
use kit::{ApiError, ApiResult};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::tokens::hash_token;

/// Exchanges client credentials for a service token.
#[utoipa::path(post, path = "/internal/v1/auth/token", tag = "internal", request_body = ServiceTokenRequest,
    responses((status = 200, body = ServiceTokenResponse), (status = 401, description = "unknown client or wrong secret")))]
pub async fn service_token(
    State(state): State<AppState>,
    Json(body): Json<ServiceTokenRequest>,
) -> ApiResult<axum::Json<ServiceTokenResponse>> {
    let presented = hash_token(&body.client_secret);
    let known = state.service_clients.get(&body.client_id);
    // Compare digests in constant time; an unknown client costs the same comparison.
    let matches = match known {
        Some(expected) => expected.as_bytes().ct_eq(presented.as_bytes()).into(),
        None => {
            let _ = presented.as_bytes().ct_eq(presented.as_bytes());
            false
        }
    };
    if !matches {
        return Err(ApiError::unauthorized("unknown client or wrong secret"));
    }
    let token = state.issuer.service_token(&body.client_id).map_err(ApiError::internal)?;
    Ok(axum::Json(ServiceTokenResponse::bearer(token.token, token.expires_in)))
}

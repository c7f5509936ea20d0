//! Every `/api/…` path without a gateway route of its own goes to the service owning it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use kit::ApiError;

use crate::state::AppState;

/// Picks the upstream by the longest matching prefix and the body limit of the path, then
/// forwards the request.
pub(crate) async fn forward(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let Some(route) = state.routes.resolve(path) else {
        return Err(ApiError::not_found(format!("no service serves {path}")));
    };
    let limit = state.body_limits.for_path(path, route.body_limit_bytes);
    let upstream = Arc::clone(&route.upstream);
    state.proxy.forward(&upstream, request, limit).await
}

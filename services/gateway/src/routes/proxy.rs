//! Every `/api/…` path without a gateway route of its own goes to the service owning it, and
//! every other path that is not reserved to the shop's machinery goes to the storefront.

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

/// Fallback for every path no route serves: the storefront's web pages, unless the path is
/// reserved (`/api/…` unrouted, `/internal/…`, the operations endpoints) or no storefront is
/// configured; then a 404 problem.
pub(crate) async fn storefront(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let Some(upstream) = state.storefront.clone().filter(|_| !is_reserved(path)) else {
        return Err(super::not_found(request).await);
    };
    let limit = state.body_limits.for_path(path, None);
    state.proxy.forward(&upstream, request, limit).await
}

/// Paths never sent to the storefront: the API's, internal service-to-service ones (never
/// routed at all), the operations endpoints, and any with a dot segment.
fn is_reserved(path: &str) -> bool {
    let under = |prefix: &str| crate::routing::prefix_matches(prefix, path);
    under("/api")
        || under("/internal")
        || ["/healthz", "/readyz", "/metrics"].contains(&path)
        || crate::routing::has_dot_segment(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_internal_and_operations_paths_never_reach_the_storefront() {
        for path in [
            "/api",
            "/api/v1/nothing",
            "/internal",
            "/internal/v1/revocations",
            "/healthz",
            "/readyz",
            "/metrics",
            "/p/../internal/x",
        ] {
            assert!(is_reserved(path), "{path}");
        }
        for path in ["/", "/p/123", "/c/shoes", "/cart", "/apiary", "/internals"] {
            assert!(!is_reserved(path), "{path}");
        }
    }
}

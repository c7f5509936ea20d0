//! The gateway's own endpoints: the status page, the merged API docs and the fallbacks.

pub(crate) mod docs;
pub(crate) mod status;

use axum::extract::Request;
use kit::ApiError;

/// Fallback for paths no route serves, `/internal/…` among them.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no public route for {} {}", request.method(), request.uri().path()))
}

/// Fallback for a gateway endpoint called with the wrong method.
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(format!("{} is not allowed on {}", request.method(), request.uri().path()))
}

//! The gateway's HTTP surface: the middleware stack in the order a request meets it, admission
//! (token check, rate limit), its own endpoints (status page, merged API docs), the proxy for
//! every other `/api/…` path, and the fallbacks. Every route is listed in [`router`].

mod admission;
mod docs;
mod proxy;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::{any, get};
use kit::ApiError;
use tower_http::catch_panic::CatchPanicLayer;

use crate::browser;
use crate::config::GatewayConfig;
use crate::state::AppState;

/// The gateway's name in logs, spans and metrics.
pub(crate) const SERVICE: &str = "gateway";

/// The answer for paths nothing serves, `/internal/…` among them.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no public route for {} {}", request.method(), request.uri().path()))
}

/// Fallback for a gateway endpoint called with the wrong method.
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(format!("{} is not allowed on {}", request.method(), request.uri().path()))
}

/// The whole stack, in the order a request meets it: panic → 500 problem; request span, request
/// id and metrics; security headers; CORS (preflights end here); then either the operations
/// endpoints (only when they have no listener of their own), or the overall deadline
/// (`http.request_timeout_ms`, 503), admission (token check, rate limit) and the gateway's
/// routes or the proxy.
pub(crate) fn router(state: Arc<AppState>, config: &GatewayConfig, operations: Option<Router>) -> Router {
    let public = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/openapi.json", get(docs::openapi))
        .route("/asyncapi.json", get(docs::asyncapi))
        .route("/docs", get(docs::page))
        .route("/docs/{asset}", get(docs::asset))
        .route("/api/{*path}", any(proxy::forward))
        // The gateway's own routes above win; every other page goes to the storefront.
        .fallback(proxy::storefront)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), admission::admit));
    let public =
        kit::http::with_request_timeout(public, config.http.request_timeout()).with_state(Arc::clone(&state));
    operations
        .unwrap_or_default()
        .merge(public)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(browser::cors_layer(&config.cors))
        .layer(middleware::from_fn_with_state(Arc::clone(&state.trusted_proxies), browser::security_headers))
        .layer(middleware::from_fn(|request: Request, next: Next| {
            kit::telemetry::trace_request(SERVICE, request, next)
        }))
        .layer(CatchPanicLayer::custom(kit::http::panic_response))
}

//! The gateway as a server: binding, the middleware stack in request order, running and draining.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::{any, get};
use kit::config::Settings;
use kit::http::{Draining, HttpServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::GatewayConfig;
use crate::routes::{docs, status};
use crate::state::AppState;
use crate::{browser, health, limits, proxy, routes};

/// The gateway's name in logs, spans and metrics.
const SERVICE: &str = "gateway";

/// A bound gateway, ready to run.
pub struct Application {
    server: HttpServer,
    state: Arc<AppState>,
    readiness_interval: std::time::Duration,
}

impl Application {
    /// Validates `config`, binds `config.http.listen` (port 0 picks a free port) and assembles
    /// the router. Nothing is called upstream until requests arrive.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        config.validate()?;
        // Install the metrics recorder now, so requests before the first scrape are counted.
        kit::metrics::handle();
        let state = Arc::new(AppState::new(&config)?);
        let draining = Draining::default();
        // The gateway is ready when it serves; upstreams have their own readiness (see /api/v1/status).
        let ready = kit::http::ready_check(|| async { Ok(()) });
        let operations = match config.http.operations_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (http.operations_listen)"))?,
            ),
            None => None,
        };
        // Without a listener of their own the operations endpoints join the public router.
        let public_operations =
            operations.is_none().then(|| kit::http::operations_router(ready.clone(), draining.clone()));
        let router = router(Arc::clone(&state), &config, public_operations);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
        let mut server = HttpServer::from_parts(SERVICE, listener, router, draining.clone(), &config.http);
        if let Some(listener) = operations {
            server =
                server.with_operations(listener, kit::http::operations_service(SERVICE, ready, draining));
        }
        let readiness_interval = std::time::Duration::from_millis(config.replicas.readiness_interval_ms);
        Ok(Self { server, state, readiness_interval })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served (`http.operations_listen`).
    pub fn operations_addr(&self) -> SocketAddr {
        self.server.operations_addr()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let watch =
            health::watch_replicas(self.state.upstreams.clone(), self.readiness_interval, shutdown.clone());
        let watcher = tokio::spawn(watch);
        let served = self.server.run(shutdown).await.context("the gateway stopped serving");
        watcher.abort();
        served
    }
}

/// The whole stack, in the order a request meets it: panic → 500 problem; request span, request
/// id and metrics; security headers; CORS (preflights end here); then either the operations
/// endpoints (only when they have no listener of their own), or the overall deadline
/// (`http.request_timeout_ms`, 503), admission (token check, rate limit) and the gateway's
/// routes or the proxy.
fn router(state: Arc<AppState>, config: &GatewayConfig, operations: Option<Router>) -> Router {
    let public = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .route("/docs/{asset}", get(docs::asset))
        .route("/api/{*path}", any(proxy::forward))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), limits::admit))
        .layer(middleware::from_fn_with_state(config.http.request_timeout(), kit::http::enforce_timeout))
        .with_state(Arc::clone(&state));
    operations
        .unwrap_or_default()
        .merge(public)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(browser::cors_layer(&config.cors))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), browser::security_headers))
        .layer(middleware::from_fn(|request: Request, next: Next| {
            kit::telemetry::trace_request(SERVICE, request, next)
        }))
        .layer(CatchPanicLayer::custom(kit::http::panic_response))
}

//! The HTTP bootstrap every service shares: the operations endpoints (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`), the middleware stack, binding (port 0 in tests) and graceful
//! shutdown: on SIGTERM or Ctrl-C readiness turns to "draining", the listener closes after the
//! configured delay, and in-flight requests finish before [`HttpServer::run`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use http::{HeaderValue, StatusCode, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::HttpConfig;
use crate::error::ApiError;

/// The body limit in force for a request, for the 413 message. Set by [`body_limit`].
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Checks a service's own dependencies for `/readyz`; `Err` says which one is unreachable.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Wraps an async closure as a [`ReadyCheck`].
pub fn ready_check<F, Fut>(check: F) -> ReadyCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(check()))
}

/// A service as the bootstrap needs it: its name, API routes, OpenAPI document and readiness.
pub struct Service {
    pub name: &'static str,
    pub api: Router,
    pub openapi: utoipa::openapi::OpenApi,
    pub ready: ReadyCheck,
}

/// True once shutdown has begun; `/readyz` then answers 503 so traffic moves elsewhere.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A bound, not yet running, HTTP server.
pub struct HttpServer {
    name: &'static str,
    listener: TcpListener,
    router: Router,
    draining: Draining,
    shutdown_delay: Duration,
    drain_timeout: Duration,
}

impl HttpServer {
    /// Binds `http.listen` and assembles the full router of `service`.
    pub async fn bind(service: Service, http: &HttpConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(http.listen).await?;
        let draining = Draining::default();
        let router =
            service_router(service.name, service.api, service.openapi, service.ready, draining.clone(), http);
        Ok(Self::from_parts(service.name, listener, router, draining, http))
    }

    /// A server for a router assembled elsewhere (the gateway builds its own stack).
    pub fn from_parts(
        name: &'static str,
        listener: TcpListener,
        router: Router,
        draining: Draining,
        http: &HttpConfig,
    ) -> Self {
        Self {
            name,
            listener,
            router,
            draining,
            shutdown_delay: Duration::from_millis(http.shutdown_delay_ms),
            drain_timeout: Duration::from_millis(http.drain_timeout_ms),
        }
    }

    /// The address actually bound (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` is cancelled, then drains and returns.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Self { name, listener, router, draining, shutdown_delay, drain_timeout } = self;
        let addr = listener.local_addr()?;
        tracing::info!(service = name, %addr, "listening");
        let signal = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                draining.start();
                tracing::info!(service = name, "shutting down: readiness is now 503");
                tokio::time::sleep(shutdown_delay).await;
                tracing::info!(service = name, "listener closed; draining in-flight requests");
            }
        };
        let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(signal);
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(shutdown_delay + drain_timeout).await;
        };
        tokio::select! {
            result = serve => {
                tracing::info!(service = name, "stopped");
                result
            }
            () = deadline => {
                tracing::warn!(service = name, "drain timeout passed; abandoning in-flight requests");
                Ok(())
            }
        }
    }
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
        child.cancel();
    });
    token
}

/// The service's API plus operations endpoints, wrapped in the shared middleware stack
/// (outermost first): panic → 500 problem, request span + metrics + request id, timeout → 503,
/// body limit.
pub fn service_router(
    name: &'static str,
    api: Router,
    openapi: utoipa::openapi::OpenApi,
    ready: ReadyCheck,
    draining: Draining,
    http: &HttpConfig,
) -> Router {
    // Install the recorder before the first request is counted.
    crate::metrics::handle();
    let openapi = Arc::new(openapi);
    let ops = operations_router(ready, draining)
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }));
    let timeout = http.request_timeout();
    api.merge(ops)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit(http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(timeout, enforce_timeout))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            crate::telemetry::trace_request(name, req, next)
        }))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// `/healthz` (alive), `/readyz` (503 while draining or when `ready` fails) and `/metrics`,
/// for a service that assembles its own stack (the gateway serves its own `/openapi.json`).
pub fn operations_router(ready: ReadyCheck, draining: Draining) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state((ready, draining)))
        .route("/metrics", get(metrics_text))
}

/// An OpenAPI modifier declaring the `bearer` (JWT) security scheme that protected routes name
/// with `security(("bearer" = []))`. Import it and use `#[openapi(modifiers(&BearerAuth))]`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// A layer setting the largest body a route accepts (and the number its 413 names).
pub fn body_limit(bytes: usize) -> tower::layer::util::Stack<DefaultBodyLimit, axum::Extension<BodyLimit>> {
    tower::layer::util::Stack::new(DefaultBodyLimit::max(bytes), axum::Extension(BodyLimit(bytes)))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State((ready, draining)): State<(ReadyCheck, Draining)>) -> Response {
    if draining.is_draining() {
        return ApiError::unavailable("shutting down").into_response();
    }
    match ready().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(why) => ApiError::unavailable(format!("not ready: {why}")).into_response(),
    }
}

async fn metrics_text() -> Response {
    let mut response = crate::metrics::render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Middleware (`from_fn_with_state(timeout, enforce_timeout)`): a request whose response has not
/// started within `timeout` answers 503. A streamed body, once started, is not cut.
pub async fn enforce_timeout(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!("the request took longer than {} ms", timeout.as_millis()))
            .into_response(),
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(format!("{} is not allowed on {}", request.method(), request.uri().path()))
}

/// The 500 problem answered when a handler panics, for `CatchPanicLayer::custom`.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let mut response = ApiError::internal(anyhow::anyhow!("handler panicked")).into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn status_of(router: Router, path: &str) -> StatusCode {
        let request = Request::builder().uri(path).body(axum::body::Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn operations_router_answers_health_readiness_and_metrics() {
        let router = operations_router(ready_check(|| async { Ok(()) }), Draining::default());
        assert_eq!(status_of(router.clone(), "/healthz").await, StatusCode::OK);
        assert_eq!(status_of(router.clone(), "/readyz").await, StatusCode::OK);
        assert_eq!(status_of(router, "/metrics").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn readiness_is_503_while_draining_or_when_the_check_fails() {
        let draining = Draining::default();
        draining.start();
        let router = operations_router(ready_check(|| async { Ok(()) }), draining);
        assert_eq!(status_of(router, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        let router = operations_router(ready_check(|| async { Err("db".to_owned()) }), Draining::default());
        assert_eq!(status_of(router, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_response_not_started_within_the_timeout_is_503() {
        let router = Router::new()
            .route("/slow", get(std::future::pending::<()>))
            .route("/fast", get(healthz))
            .layer(middleware::from_fn_with_state(Duration::from_millis(20), enforce_timeout));
        assert_eq!(status_of(router.clone(), "/slow").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(router, "/fast").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn made_up_methods_and_paths_add_no_metric_series() {
        const SERVICE: &str = "metrics-bound-test";
        let router = service_router(
            SERVICE,
            Router::new().route("/things/{id}", get(healthz)),
            Default::default(),
            ready_check(|| async { Ok(()) }),
            Draining::default(),
            &HttpConfig::default(),
        );
        let series = || crate::metrics::render().lines().filter(|l| l.contains(SERVICE)).count();
        let hostile = |i: usize| {
            let method = http::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
            Request::builder()
                .method(method)
                .uri(format!("/nowhere/{i}"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        for i in 0..3 {
            router.clone().oneshot(hostile(i)).await.unwrap();
        }
        let after_a_few = series();
        for i in 3..300 {
            router.clone().oneshot(hostile(i)).await.unwrap();
            let known =
                Request::builder().uri(format!("/things/{i}")).body(axum::body::Body::empty()).unwrap();
            router.clone().oneshot(known).await.unwrap();
        }
        let text = crate::metrics::render();
        assert!(
            text.contains(&format!(r#"service="{SERVICE}",method="_OTHER",route="unmatched""#)),
            "{text}"
        );
        // The known route added its own series once; the 297 hostile requests added none.
        let one_route = text.lines().filter(|l| l.contains(SERVICE) && l.contains("/things/{id}")).count();
        assert_eq!(series(), after_a_few + one_route, "{text}");
    }

    #[test]
    fn panic_response_is_a_500_problem() {
        let response = panic_response(Box::new("boom"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], crate::error::PROBLEM_JSON);
    }
}

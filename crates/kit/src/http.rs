//! The HTTP bootstrap every service shares: the operations endpoints (`/healthz`, `/readyz`,
//! `/metrics`, on their own listener when `http.operations_listen` is set), the middleware
//! stack, binding (port 0 in tests), the connection limits (header-read and idle timeouts, a
//! cap on open connections) and graceful shutdown: on SIGTERM or Ctrl-C readiness turns to
//! "draining", the listeners close after the configured delay, and in-flight requests finish
//! before [`HttpServer::run`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::HttpConfig;
use crate::error::ApiError;

/// The body limit in force for a request, for the 413 message. Set by [`body_limit`].
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Checks a service's own dependencies for `/readyz`; `Err` says which required one is
/// unreachable, `Ok` lists the optional ones that are (see [`with_optional`]).
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<Readiness, String>> + Send + Sync>;

/// What a passing readiness check found: the optional dependencies that do not answer, by
/// name, each with why. The service serves without them (less well: Redis away means
/// per-replica rate limits and caches), so it stays ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Optional dependency → why it does not answer; empty when all do.
    pub degraded: std::collections::BTreeMap<&'static str, String>,
}

/// Wraps an async closure checking the required dependencies as a [`ReadyCheck`].
pub fn ready_check<F, Fut>(check: F) -> ReadyCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || {
        let checked = check();
        Box::pin(async move { checked.await.map(|()| Readiness::default()) })
    })
}

/// `ready`, plus an optional dependency `name` checked at the same time: when `check` fails the
/// service is reported degraded (`/readyz` still answers 200, naming it), never unready.
pub fn with_optional<F, Fut>(ready: ReadyCheck, name: &'static str, check: F) -> ReadyCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || {
        let required = ready();
        let optional = check();
        Box::pin(async move {
            let (required, optional) = tokio::join!(required, optional);
            let mut readiness = required?;
            if let Err(why) = optional {
                readiness.degraded.insert(name, why);
            }
            Ok(readiness)
        })
    })
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

/// A bound, not yet running, HTTP server: the service's listener and, when
/// `http.operations_listen` is set, a second one for the operations endpoints.
pub struct HttpServer {
    name: &'static str,
    public: Listener,
    operations: Option<Listener>,
    draining: Draining,
    shutdown_delay: Duration,
    drain_timeout: Duration,
}

/// One bound socket and what it serves.
struct Listener {
    role: &'static str,
    socket: TcpListener,
    router: Router,
    limits: ConnectionLimits,
}

impl HttpServer {
    /// Binds `http.listen` (and `http.operations_listen`, when set) and assembles the full
    /// router of `service`.
    pub async fn bind(service: Service, http: &HttpConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(http.listen).await?;
        Self::bind_on(service, listener, http).await
    }

    /// As [`Self::bind`], serving on `listener`, bound already (a shop that must tell another
    /// service where this one listens before building it); `http.operations_listen` is bound
    /// here.
    pub async fn bind_on(
        service: Service,
        listener: TcpListener,
        http: &HttpConfig,
    ) -> std::io::Result<Self> {
        let draining = Draining::default();
        let operations = match http.operations_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let ready = service.ready.clone();
        let router =
            service_router(service.name, service.api, service.openapi, service.ready, draining.clone(), http);
        let server = Self::from_parts(service.name, listener, router, draining.clone(), http);
        Ok(match operations {
            Some(socket) => server.with_operations(socket, operations_service(service.name, ready, draining)),
            None => server,
        })
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
            public: Listener { role: "public", socket: listener, router, limits: ConnectionLimits::of(http) },
            operations: None,
            draining,
            shutdown_delay: Duration::from_millis(http.shutdown_delay_ms),
            drain_timeout: Duration::from_millis(http.drain_timeout_ms),
        }
    }

    /// Also serves `router` (see [`operations_service`]) on `listener`, with its own connection
    /// limit, so probes and scrapes are answered even while the public listener is full.
    pub fn with_operations(mut self, listener: TcpListener, router: Router) -> Self {
        let limits = self.public.limits;
        self.operations = Some(Listener { role: "operations", socket: listener, router, limits });
        self
    }

    /// The address actually bound (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.public.local_addr()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served: the operations listener, or the
    /// public one when there is none.
    pub fn operations_addr(&self) -> SocketAddr {
        self.operations.as_ref().map_or_else(|| self.local_addr(), Listener::local_addr)
    }

    /// Serves until `shutdown` is cancelled, then drains and returns: readiness turns 503 at
    /// once, the listeners close after the shutdown delay, and open connections get the drain
    /// timeout to finish their requests (idle ones close at once).
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Self { name, public, operations, draining, shutdown_delay, drain_timeout } = self;
        let close = CancellationToken::new();
        let abandon = CancellationToken::new();
        let signal = async {
            shutdown.cancelled().await;
            draining.start();
            tracing::info!(service = name, "shutting down: readiness is now 503");
            tokio::time::sleep(shutdown_delay).await;
            tracing::info!(service = name, "listener closed; draining in-flight requests");
            close.cancel();
        };
        let operations = async {
            match operations {
                Some(listener) => {
                    Some(listener.serve(name, draining.clone(), close.clone(), abandon.clone()).await)
                }
                None => None,
            }
        };
        let (public, operations, ()) = tokio::join!(
            public.serve(name, draining.clone(), close.clone(), abandon.clone()),
            operations,
            signal
        );
        let drained = async {
            public.drained().await;
            if let Some(operations) = operations {
                operations.drained().await;
            }
        };
        if tokio::time::timeout(drain_timeout, drained).await.is_err() {
            tracing::warn!(service = name, "drain timeout passed; abandoning in-flight requests");
            abandon.cancel();
        } else {
            tracing::info!(service = name, "stopped");
        }
        Ok(())
    }
}

/// What a listener's connections may do (see `HttpConfig`).
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
}

impl ConnectionLimits {
    fn of(http: &HttpConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(http.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            max_connections: http.max_connections.max(1),
        }
    }
}

/// The connections a listener has open, counted by the permits they hold.
struct OpenConnections {
    permits: Arc<Semaphore>,
    max: usize,
}

impl OpenConnections {
    /// Resolves once every connection has closed.
    async fn drained(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

impl Listener {
    fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Accepts until `close`, each connection under the limits. At `max_connections` open, it
    /// stops accepting: new connections wait in the kernel's listen backlog, holding no file
    /// descriptor of this process, until one closes (past the backlog the kernel refuses them).
    async fn serve(
        self,
        name: &'static str,
        draining: Draining,
        close: CancellationToken,
        abandon: CancellationToken,
    ) -> OpenConnections {
        let Self { role, socket, router, limits } = self;
        match socket.local_addr() {
            Ok(addr) => tracing::info!(service = name, listener = role, %addr, "listening"),
            Err(_) => tracing::info!(service = name, listener = role, "listening"),
        }
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let gauge = metrics::gauge!("http_server_open_connections", "service" => name, "listener" => role);
        loop {
            let permit = tokio::select! {
                () = close.cancelled() => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = close.cancelled() => break,
                accepted = socket.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, or a connection reset before it was taken:
                        // pause rather than spin.
                        tracing::warn!(service = name, listener = role, error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let connection = serve_connection(
                stream,
                peer,
                router.clone(),
                limits,
                draining.clone(),
                (close.clone(), abandon.clone()),
            );
            let gauge = gauge.clone();
            gauge.increment(1.0);
            tokio::spawn(async move {
                connection.await;
                gauge.decrement(1.0);
                drop(permit);
            });
        }
        // Dropping the socket closes it: new connections are refused from here on.
        drop(socket);
        OpenConnections { permits, max: limits.max_connections }
    }
}

/// Serves one connection (HTTP/1.1, keep-alive) until the client closes it, a timeout of
/// `limits` passes, or shutdown: on `close` it finishes the request in flight and closes (an
/// idle one at once), on `abandon` it is dropped. While `draining`, every response says
/// `connection: close`, so clients stop reusing connections to a server about to go away and
/// none is idle in their pools when its listener closes (a request racing that close could
/// fail where it cannot safely be sent again).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    draining: Draining,
    (close, abandon): (CancellationToken, CancellationToken),
) {
    let clock = Arc::new(ConnectionClock::new(limits));
    let io = TokioIo::new(Watched { inner: stream, clock: Arc::clone(&clock) });
    let service = {
        let clock = Arc::clone(&clock);
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            let in_flight = InFlight::start(Arc::clone(&clock));
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let answer = router.clone().oneshot(request);
            let draining = draining.clone();
            async move {
                let mut response = answer.await?;
                if draining.is_draining() {
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Tracked { body, _in_flight: in_flight }),
                )
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = clock.expired() => {
                tracing::debug!(%peer, "closing a connection: no request headers in time, or idle");
                return;
            }
            () = close.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = abandon.cancelled() => return,
        }
    }
}

/// The deadlines of one connection, as Go's `http.Server` has them: from accepting it, the
/// request headers must arrive within the header-read timeout; while a request is in flight
/// nothing is timed (the request timeout bounds it); once its response is sent, the next request
/// must start within the idle timeout, and its headers must then be complete within the
/// header-read timeout. Past a deadline the connection is closed.
struct ConnectionClock {
    state: Mutex<ClockState>,
    /// Set while idle between requests, so the read path checks the lock only then.
    awaiting_next: AtomicBool,
    changed: Notify,
    limits: ConnectionLimits,
}

struct ClockState {
    in_flight: usize,
    deadline: Option<tokio::time::Instant>,
}

impl ConnectionClock {
    fn new(limits: ConnectionLimits) -> Self {
        let deadline = Some(tokio::time::Instant::now() + limits.header_read_timeout);
        Self {
            state: Mutex::new(ClockState { in_flight: 0, deadline }),
            awaiting_next: AtomicBool::new(false),
            changed: Notify::new(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: if the connection was idle, a request is starting.
    fn bytes_read(&self) {
        if self.awaiting_next.swap(false, Ordering::Relaxed) {
            let mut state = self.lock();
            if state.in_flight == 0 {
                state.deadline = Some(tokio::time::Instant::now() + self.limits.header_read_timeout);
                self.changed.notify_one();
            }
        }
    }

    fn request_started(&self) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.deadline = None;
        self.awaiting_next.store(false, Ordering::Relaxed);
        self.changed.notify_one();
    }

    fn response_finished(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.deadline = Some(tokio::time::Instant::now() + self.limits.idle_timeout);
            self.awaiting_next.store(true, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// Resolves when the current deadline passes without being moved.
    async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            let deadline = self.lock().deadline;
            match deadline {
                None => changed.await,
                Some(deadline) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline) => {
                            if self.lock().deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A request being served on a connection; dropped when its response has been sent (or the
/// request was given up), which starts the connection's idle timeout.
struct InFlight(Arc<ConnectionClock>);

impl InFlight {
    fn start(clock: Arc<ConnectionClock>) -> Self {
        clock.request_started();
        Self(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.response_finished();
    }
}

/// A response body that keeps its request [`InFlight`] until the server has sent it all.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<ConnectionClock>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
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

/// The service's API and `/openapi.json`, plus the operations endpoints unless they have their
/// own listener (`http.operations_listen`), wrapped in the shared middleware stack (outermost
/// first): panic → 500 problem, request span + metrics + request id, timeout → 503
/// ([`with_request_timeout`]), body limit.
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
    let document =
        Router::new().route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }));
    // With their own listener, the operations endpoints are not on this one (404 here).
    let api = match http.operations_listen {
        Some(_) => api.merge(document),
        None => api.merge(document).merge(operations_router(ready, draining)),
    };
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit(http.body_limit_bytes));
    with_request_timeout(api, http.request_timeout())
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            crate::telemetry::trace_request(name, req, next)
        }))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// What an operations listener serves: [`operations_router`] in the request span and panic
/// layers, anything else a 404 problem.
pub fn operations_service(name: &'static str, ready: ReadyCheck, draining: Draining) -> Router {
    crate::metrics::handle();
    operations_router(ready, draining)
        .fallback(not_found)
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
    match tokio::time::timeout(READY_TIMEOUT, ready()).await {
        Ok(Ok(readiness)) if readiness.degraded.is_empty() => {
            Json(serde_json::json!({ "status": "ready" })).into_response()
        }
        Ok(Ok(readiness)) => {
            Json(serde_json::json!({ "status": "ready", "degraded": readiness.degraded })).into_response()
        }
        Ok(Err(why)) => ApiError::unavailable(format!("not ready: {why}")).into_response(),
        Err(_) => ApiError::unavailable(format!(
            "not ready: the dependencies did not answer within {} ms",
            READY_TIMEOUT.as_millis()
        ))
        .into_response(),
    }
}

/// `/readyz` answers within this: a dependency slower than that (a database that is down
/// makes the pool wait its whole acquire timeout) is not ready. Below the kubelet probe's
/// two-second timeout, so the probe sees the 503 rather than its own timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

async fn metrics_text() -> Response {
    let mut response = crate::metrics::render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// `router` with a deadline: a request whose response has not started within `timeout` answers
/// 503 problem. A streamed body, once started, is not cut. (tower's timeout layer, its elapsed
/// error turned into the problem.)
pub fn with_request_timeout<S>(router: Router<S>, timeout: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_elapsed: tower::BoxError| async move {
                ApiError::unavailable(format!("the request took longer than {} ms", timeout.as_millis()))
            }))
            .layer(tower::timeout::TimeoutLayer::new(timeout)),
    )
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
    async fn an_optional_dependency_that_fails_is_degraded_not_unready() {
        let ready = with_optional(ready_check(|| async { Ok(()) }), "redis", || async {
            Err("connection refused".to_owned())
        });
        let request = Request::builder().uri("/readyz").body(axum::body::Body::empty()).unwrap();
        let answer = operations_router(ready, Draining::default()).oneshot(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, serde_json::json!({"status": "ready", "degraded": {"redis": "connection refused"}}));
        // A failing required dependency still makes the service unready.
        let ready =
            with_optional(ready_check(|| async { Err("db".to_owned()) }), "redis", || async { Ok(()) });
        assert_eq!(
            status_of(operations_router(ready, Draining::default()), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn a_readiness_check_that_hangs_answers_503_within_its_bound() {
        let router = operations_router(ready_check(std::future::pending), Draining::default());
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(READY_TIMEOUT * 3, status_of(router, "/readyz")).await;
        assert_eq!(answer.expect("readiness answered"), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() >= READY_TIMEOUT);
    }

    #[tokio::test]
    async fn a_response_not_started_within_the_timeout_is_503() {
        let router =
            Router::new().route("/slow", get(std::future::pending::<()>)).route("/fast", get(healthz));
        let router = with_request_timeout(router, Duration::from_millis(20));
        let request = Request::builder().uri("/slow").body(axum::body::Body::empty()).unwrap();
        let slow = router.clone().oneshot(request).await.unwrap();
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(slow.headers()[header::CONTENT_TYPE], crate::error::PROBLEM_JSON);
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

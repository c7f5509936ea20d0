//! Graceful shutdown as a Kubernetes rolling update relies on it: on SIGTERM (here, cancelling
//! the token) readiness turns 503 while the listener still accepts, the listener then closes,
//! in-flight requests finish, and `run` returns within shutdown delay + drain timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::StatusCode;
use kit::config::HttpConfig;
use kit::http::{HttpServer, Service, ready_check};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A handler that tells the test it has started, then waits until the test releases it.
#[derive(Clone)]
struct SlowRequest {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

async fn slow(State(slow): State<SlowRequest>) -> &'static str {
    let released = slow.release.notified();
    let _ = slow.started.send(());
    released.await;
    "finished"
}

struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start(api: Router, shutdown_delay_ms: u64, drain_timeout_ms: u64) -> Running {
    let http = HttpConfig { shutdown_delay_ms, drain_timeout_ms, ..HttpConfig::default() };
    let service = Service {
        name: "shutdown-test",
        api,
        openapi: Default::default(),
        ready: ready_check(|| async { Ok(()) }),
    };
    let server = HttpServer::bind(service, &http).await.unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    let server = tokio::spawn(server.run(stop.clone()));
    Running { addr, stop, server }
}

/// A client that opens a new connection per request, as a kubelet probe or a new visitor does.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

async fn status_of(addr: SocketAddr, path: &str) -> Result<StatusCode, reqwest::Error> {
    fresh_client().get(format!("http://{addr}{path}")).send().await.map(|r| r.status())
}

/// Whether the server asks to close the connection after answering `path`.
async fn closes_after(addr: SocketAddr, path: &str) -> bool {
    let response = fresh_client().get(format!("http://{addr}{path}")).send().await.unwrap();
    response.headers().get("connection").is_some_and(|v| v == "close")
}

/// Polls `condition` every few milliseconds until it holds; fails the test after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigterm_during_a_slow_request_drains_it_and_refuses_new_connections() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let api = Router::new()
        .route("/slow", get(slow))
        .with_state(SlowRequest { started: started_tx, release: release.clone() });
    let shutdown_delay = Duration::from_millis(2_500);
    let drain_timeout = Duration::from_secs(10);
    let running = start(api, shutdown_delay.as_millis() as u64, drain_timeout.as_millis() as u64).await;
    let addr = running.addr;
    assert_eq!(status_of(addr, "/readyz").await.unwrap(), StatusCode::OK);
    assert!(!closes_after(addr, "/healthz").await, "keep-alive while serving");

    let in_flight = tokio::spawn(async move {
        let response = fresh_client().get(format!("http://{addr}/slow")).send().await?;
        Ok::<_, reqwest::Error>((response.status(), response.text().await?))
    });
    started.recv().await.expect("the slow request reached its handler");

    // SIGTERM.
    let terminated_at = Instant::now();
    running.stop.cancel();

    // During the shutdown delay the listener still accepts, and readiness says 503 so that
    // endpoints and load balancers stop sending traffic here.
    eventually(Duration::from_secs(2), "readiness turns 503 after SIGTERM", || async {
        status_of(addr, "/readyz").await.is_ok_and(|status| status == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(
        terminated_at.elapsed() < shutdown_delay,
        "readiness must turn 503 while the listener is still open"
    );
    assert_eq!(status_of(addr, "/healthz").await.unwrap(), StatusCode::OK, "still alive while draining");
    assert!(
        closes_after(addr, "/healthz").await,
        "while draining, no connection is kept for reuse: none is idle in a client's pool when the listener closes"
    );

    // After the delay the listener closes: a new connection is refused.
    eventually(shutdown_delay + Duration::from_secs(2), "the listener closes after the delay", || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    assert!(terminated_at.elapsed() >= shutdown_delay, "the listener stayed open for the whole delay");
    assert!(!running.server.is_finished(), "run waits for the in-flight request");

    // The in-flight request still completes normally.
    release.notify_one();
    let (status, body) = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "finished");

    let grace = shutdown_delay + drain_timeout;
    let result =
        tokio::time::timeout(grace, running.server).await.expect("run returns within the grace period");
    result.unwrap().expect("run returns Ok");
    assert!(terminated_at.elapsed() < grace);
}

#[tokio::test]
async fn a_request_outliving_the_drain_timeout_does_not_hold_the_process() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let never_released = Arc::new(Notify::new());
    let api = Router::new()
        .route("/slow", get(slow))
        .with_state(SlowRequest { started: started_tx, release: never_released });
    let running = start(api, 0, 300).await;
    let addr = running.addr;

    let abandoned =
        tokio::spawn(async move { fresh_client().get(format!("http://{addr}/slow")).send().await });
    started.recv().await.expect("the slow request reached its handler");

    let terminated_at = Instant::now();
    running.stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("run gives up on the request after the drain timeout");
    result.unwrap().expect("run returns Ok");
    assert!(terminated_at.elapsed() >= Duration::from_millis(300), "the request had its drain timeout");
    abandoned.abort();
}

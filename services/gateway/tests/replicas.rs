//! The gateway in front of several replicas of one upstream, each a real server on port 0:
//! requests take turns, a failing replica is taken out, a request goes to another replica only
//! when that is safe, and a replica stopped (as on SIGTERM) and started again under a steady
//! client loop costs no request.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use gateway::{Application, GatewayConfig};
use http::StatusCode;
use kit::config::HttpConfig;
use kit::http::{HttpServer, Service, ready_check};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WHO: &str = "/api/v1/products/who";

/// A replica of the `products` service: kit's server answering `WHO` with its name (GET and
/// POST), counting what it served; readiness 503 while it drains.
struct Replica {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Replica {
    async fn start(name: &'static str, addr: SocketAddr, shutdown_delay_ms: u64) -> Self {
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let answer = move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                name
            }
        };
        let api = Router::new().route(WHO, get(answer.clone()).post(answer));
        let service =
            Service { name, api, openapi: Default::default(), ready: ready_check(|| async { Ok(()) }) };
        let http = HttpConfig { listen: addr, shutdown_delay_ms, ..HttpConfig::default() };
        let server = HttpServer::bind(service, &http).await.unwrap();
        let addr = server.local_addr();
        let stop = CancellationToken::new();
        let task = tokio::spawn(server.run(stop.clone()));
        Self { addr, served, stop, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Stops it as SIGTERM would and waits until it has drained and returned.
    async fn terminate(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A replica that answers every API call 503 but says it is ready (its dependency is down).
async fn failing_replica() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route("/readyz", get(|| async { "ready" })).fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            StatusCode::SERVICE_UNAVAILABLE
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), hits)
}

/// A replica that says it is ready, but reads each API request's head and then dies without
/// answering; counts those.
async fn dying_replica() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            if head.windows(7).any(|w| w == b"/readyz") {
                let ready = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nready";
                let _ = socket.write_all(ready.as_bytes()).await;
            } else {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ = socket.shutdown().await;
        }
    });
    (format!("http://{addr}"), hits)
}

struct TestGateway {
    url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestGateway {
    async fn send(&self, method: reqwest::Method) -> reqwest::Result<(StatusCode, String)> {
        let response =
            self.http.request(method, format!("{}{WHO}", self.url)).json(&json!({"n": 1})).send().await?;
        Ok((response.status(), response.text().await?))
    }
}

/// The gateway with `products` at `replicas`, no rate limit (one client sends everything).
async fn spawn_gateway(replicas: &[String], adjust: impl FnOnce(&mut GatewayConfig)) -> TestGateway {
    kit::telemetry::init("gateway-replica-tests");
    let mut config = GatewayConfig::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.operations_listen = Some("127.0.0.1:0".parse().unwrap());
    config.rate_limit.enabled = false;
    config.upstreams.insert("products".into(), replicas.join(","));
    adjust(&mut config);
    let app = Application::build(config).await.unwrap();
    let url = format!("http://{}", app.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestGateway { url, http: reqwest::Client::new(), shutdown }
}

/// Polls `condition` every few milliseconds until it holds; fails the test after `within`.
async fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn requests_take_turns_between_replicas() {
    let a = Replica::start("a", "127.0.0.1:0".parse().unwrap(), 0).await;
    let b = Replica::start("b", "127.0.0.1:0".parse().unwrap(), 0).await;
    let gw = spawn_gateway(&[a.url(), b.url()], |_| {}).await;
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(gw.send(reqwest::Method::GET).await.unwrap().1);
    }
    assert_eq!((a.served(), b.served()), (5, 5), "{answers:?}");
}

#[tokio::test]
async fn a_replica_failing_calls_in_a_row_is_taken_out() {
    let (failing, failing_hits) = failing_replica().await;
    let healthy = Replica::start("healthy", "127.0.0.1:0".parse().unwrap(), 0).await;
    let gw =
        spawn_gateway(&[failing, healthy.url()], |config| config.replicas.eject_after_failures = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(gw.send(reqwest::Method::GET).await.unwrap().0);
    }
    assert_eq!(failing_hits.load(Ordering::SeqCst), 2, "out after two failures in a row: {statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

#[tokio::test]
async fn a_replica_refusing_connections_is_skipped_even_for_a_post() {
    // The readiness watch asks once at start and then not for a minute: only the refused
    // connection itself can tell the gateway that the stopped replica is gone.
    let stopping = Replica::start("stopping", "127.0.0.1:0".parse().unwrap(), 0).await;
    let live = Replica::start("live", "127.0.0.1:0".parse().unwrap(), 0).await;
    let gw = spawn_gateway(&[stopping.url(), live.url()], |config| {
        config.replicas.readiness_interval_ms = 60_000;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(gw.send(reqwest::Method::GET).await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(stopping.served(), 1, "both replicas in service");
    stopping.terminate().await;
    for _ in 0..6 {
        let (status, who) = gw.send(reqwest::Method::POST).await.unwrap();
        assert_eq!((status, who.as_str()), (StatusCode::OK, "live"));
    }
    assert_eq!(live.served(), 1 + 6);
}

#[tokio::test]
async fn a_post_whose_replica_died_mid_request_is_not_sent_again_but_a_get_is() {
    let (dying, dying_hits) = dying_replica().await;
    let live = Replica::start("live", "127.0.0.1:0".parse().unwrap(), 0).await;
    let gw = spawn_gateway(&[dying, live.url()], |_| {}).await;

    // The first request goes to the first replica, which reads it and dies.
    let (status, body) = gw.send(reqwest::Method::POST).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!((dying_hits.load(Ordering::SeqCst), live.served()), (1, 0), "the POST was not replayed");

    // The next turn is the live replica's; the one after is the dying one's again, and a GET
    // that dies there is safe to send to the live one.
    assert_eq!(gw.send(reqwest::Method::GET).await.unwrap().0, StatusCode::OK);
    assert_eq!(gw.send(reqwest::Method::GET).await.unwrap().0, StatusCode::OK);
    assert_eq!((dying_hits.load(Ordering::SeqCst), live.served()), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_stopped_and_started_in_turn_under_a_client_loop_fail_no_request() {
    // As in a rolling restart: readiness turns 503 for the shutdown delay before the listener
    // closes, and the gateway asks every 20 ms.
    const DELAY_MS: u64 = 300;
    let a = Replica::start("a", "127.0.0.1:0".parse().unwrap(), DELAY_MS).await;
    let b = Replica::start("b", "127.0.0.1:0".parse().unwrap(), DELAY_MS).await;
    let gw = Arc::new(
        spawn_gateway(&[a.url(), b.url()], |config| config.replicas.readiness_interval_ms = 20).await,
    );
    let mut replicas = vec![("a", a), ("b", b)];

    let running = CancellationToken::new();
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (gw, running, outcomes) = (Arc::clone(&gw), running.clone(), Arc::clone(&outcomes));
            tokio::spawn(async move {
                let method = if i % 2 == 0 { reqwest::Method::GET } else { reqwest::Method::POST };
                while !running.is_cancelled() {
                    let outcome = gw.send(method.clone()).await.map(|(status, _)| status);
                    outcomes.lock().unwrap().push(outcome.map_err(|e| e.to_string()));
                }
            })
        })
        .collect();

    eventually(Duration::from_secs(10), "both replicas get traffic", || {
        replicas.iter().all(|(_, replica)| replica.served() > 0)
    })
    .await;
    for turn in 0..replicas.len() {
        let (name, replica) = replicas.remove(turn);
        let addr = replica.addr;
        replica.terminate().await;
        let restarted = Replica::start(name, addr, DELAY_MS).await;
        eventually(Duration::from_secs(10), "the restarted replica gets traffic again", || {
            restarted.served() > 0
        })
        .await;
        replicas.insert(turn, (name, restarted));
    }
    running.cancel();
    for client in clients {
        client.await.unwrap();
    }

    let outcomes = outcomes.lock().unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| !matches!(o, Ok(StatusCode::OK))).collect();
    assert!(outcomes.len() > 100, "the loop kept sending: {}", outcomes.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(replicas.iter().all(|(_, replica)| replica.served() > 0));
}

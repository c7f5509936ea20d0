//! What a client cannot do to kit's server by holding connections (slowloris): a socket that
//! never finishes its request headers is closed after the header-read timeout, an idle
//! keep-alive connection after the idle timeout, while a slow request in flight is not cut;
//! and the operations endpoints can have a listener of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use kit::config::HttpConfig;
use kit::http::{HttpServer, Service, ready_check};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Running {
    server: HttpServer,
}

impl Running {
    async fn start(http: HttpConfig) -> (SocketAddr, SocketAddr, CancellationToken) {
        let api = Router::new().route("/hello", get(|| async { "hello" })).route(
            "/slow",
            get(|| async {
                // The behaviour under test: a handler slower than both connection timeouts.
                tokio::time::sleep(Duration::from_millis(700)).await;
                "slow"
            }),
        );
        let service = Service {
            name: "connections-test",
            api,
            openapi: Default::default(),
            ready: ready_check(|| async { Ok(()) }),
        };
        let running = Running { server: HttpServer::bind(service, &http).await.unwrap() };
        let (public, operations) = (running.server.local_addr(), running.server.operations_addr());
        let stop = CancellationToken::new();
        tokio::spawn(running.server.run(stop.clone()));
        (public, operations, stop)
    }
}

fn limits(header_read_timeout_ms: u64, idle_timeout_ms: u64) -> HttpConfig {
    HttpConfig { header_read_timeout_ms, idle_timeout_ms, ..HttpConfig::default() }
}

/// Reads until the server closes the connection (or `within` passes, failing the test);
/// answers what was read.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut read = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
    });
    closed.await.expect("the server closes the connection");
    String::from_utf8_lossy(&read).into_owned()
}

/// Reads one response whose body is `body` (the test's own handlers' answers are known).
async fn read_response(stream: &mut TcpStream, body: &str) -> String {
    let mut read = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&read).ends_with(body) {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the response: {}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&read).into_owned()
}

#[tokio::test]
async fn a_socket_that_never_finishes_its_headers_is_closed_after_the_header_timeout() {
    let (addr, _, _stop) = Running::start(limits(300, 60_000)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n").await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(opened.elapsed() >= Duration::from_millis(300), "not before the timeout");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn headers_trickled_in_still_have_to_finish_within_the_timeout() {
    let (addr, _, _stop) = Running::start(limits(400, 60_000)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    // A byte every 50 ms keeps the socket busy but never completes the headers.
    let trickle = async {
        for byte in b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    assert!(opened.elapsed() < Duration::from_secs(3), "the server cut the trickle off");
    read_until_closed(&mut stream, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (addr, _, _stop) = Running::start(limits(10_000, 300)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut stream, "hello").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered = Instant::now();
    // Still usable right after the answer: keep-alive works.
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    read_response(&mut stream, "hello").await;
    let rest = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answered.elapsed() >= Duration::from_millis(300), "not before the idle timeout");
    assert_eq!(rest, "", "closed without another answer");
}

#[tokio::test]
async fn a_request_in_flight_longer_than_both_timeouts_is_answered() {
    let (addr, _, _stop) = Running::start(limits(200, 200)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut stream, "slow").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn operations_on_their_own_listener_are_not_on_the_public_one() {
    let http =
        HttpConfig { operations_listen: Some("127.0.0.1:0".parse().unwrap()), ..HttpConfig::default() };
    let (public, operations, _stop) = Running::start(http).await;
    assert_ne!(public, operations);
    let client = reqwest::Client::new();
    let status = |addr: SocketAddr, path: &'static str| {
        let client = client.clone();
        async move { client.get(format!("http://{addr}{path}")).send().await.unwrap().status().as_u16() }
    };
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(status(operations, path).await, 200, "{path} on the operations listener");
        assert_eq!(status(public, path).await, 404, "{path} on the public listener");
    }
    assert_eq!(status(public, "/hello").await, 200);
    assert_eq!(status(public, "/openapi.json").await, 200, "the document stays with the API");
    assert_eq!(status(operations, "/hello").await, 404);
}

#[tokio::test]
async fn without_an_operations_listener_they_are_served_on_the_public_one() {
    let (public, operations, _stop) = Running::start(HttpConfig::default()).await;
    assert_eq!(public, operations);
    let response = reqwest::get(format!("http://{public}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200);
}

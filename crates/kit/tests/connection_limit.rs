//! At `http.max_connections` open connections the server stops accepting: more connections wait
//! in the kernel's listen backlog, holding no file descriptor of the process, and are served as
//! soon as one of the open ones closes. The operations listener has its own limit, so probes
//! are answered meanwhile.
//!
//! Alone in its test binary: it counts this process's open file descriptors.
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

const CAP: usize = 4;
const WAITING: usize = 20;

fn open_file_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0)
}

/// The server's own count of open connections on its public listener, from `/metrics` (asked
/// on the operations listener, which the full public one does not block). One client, whose
/// one kept-alive connection is open before the descriptors are first counted.
async fn open_connections(client: &reqwest::Client, operations: SocketAddr) -> usize {
    let response = client.get(format!("http://{operations}/metrics")).send().await.unwrap();
    let metrics = response.text().await.unwrap();
    metrics
        .lines()
        .find(|line| {
            line.starts_with("http_server_open_connections") && line.contains(r#"listener="public""#)
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |open| open as usize)
}

async fn eventually_open(client: &reqwest::Client, operations: SocketAddr, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_connections(client, operations).await != expected {
        assert!(Instant::now() < deadline, "never {expected} open connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_in_the_backlog_without_file_descriptors() {
    let http = HttpConfig {
        max_connections: CAP,
        header_read_timeout_ms: 30_000,
        operations_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..HttpConfig::default()
    };
    let api = Router::new().route("/hello", get(|| async { "hello" }));
    let service = Service {
        name: "connection-limit-test",
        api,
        openapi: Default::default(),
        ready: ready_check(|| async { Ok(()) }),
    };
    let server = HttpServer::bind(service, &http).await.unwrap();
    let (addr, operations) = (server.local_addr(), server.operations_addr());
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let client = reqwest::Client::new();
    eventually_open(&client, operations, 0).await;

    let before = open_file_descriptors();
    // CAP clients that never finish their headers hold every slot.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    eventually_open(&client, operations, CAP).await;

    // More connect (the kernel completes the handshake into the backlog) but are not accepted.
    let mut waiting = Vec::new();
    for _ in 0..WAITING {
        waiting.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut first = waiting.remove(0);
    first.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    let early = tokio::time::timeout(Duration::from_millis(300), first.read_to_string(&mut answer)).await;
    assert!(early.is_err(), "answered past the limit: {answer}");
    assert_eq!(open_connections(&client, operations).await, CAP);
    let grown = open_file_descriptors() - before;
    // Each client socket is one descriptor here; the server holds one per accepted connection.
    assert!(grown <= CAP + WAITING + CAP + 2, "{grown} descriptors for {CAP} accepted and {WAITING} waiting");

    // One held connection goes away: the waiting one is accepted and answered.
    drop(held.remove(0));
    let answered = tokio::time::timeout(Duration::from_secs(5), first.read_to_string(&mut answer)).await;
    answered.expect("answered once a slot is free").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"), "{answer}");
    stop.cancel();
}

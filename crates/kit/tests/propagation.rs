//! A request's id and trace travel through a service into its calls to other services.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::HeaderMap;
use kit::client::ServiceClient;
use kit::config::{ClientConfig, HttpConfig};
use kit::http::{HttpServer, Service, ready_check};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn start(name: &'static str, api: Router, stop: &CancellationToken) -> SocketAddr {
    let service = Service { name, api, openapi: Default::default(), ready: ready_check(|| async { Ok(()) }) };
    let server = HttpServer::bind(service, &HttpConfig::default()).await.unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run(stop.clone()));
    addr
}

/// The downstream service shows which ids it was called with.
async fn echo_ids(headers: HeaderMap) -> axum::Json<Value> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(json!({ "request_id": header("x-request-id"), "traceparent": header("traceparent") }))
}

/// The upstream service calls the downstream one while serving a request.
async fn call_downstream(State(client): State<ServiceClient>) -> axum::Json<Value> {
    axum::Json(client.get_json::<Value>("/echo", None).await.unwrap())
}

#[tokio::test]
async fn request_id_and_trace_id_reach_the_next_service() {
    kit::telemetry::init("propagation-test");
    let stop = CancellationToken::new();
    let downstream = start("downstream", Router::new().route("/echo", get(echo_ids)), &stop).await;
    let client = ServiceClient::new("downstream", &format!("http://{downstream}"), ClientConfig::default());
    let upstream =
        start("upstream", Router::new().route("/call", get(call_downstream)).with_state(client), &stop).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let seen: Value = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .header("x-request-id", "req-42")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["request_id"], "req-42");
    let traceparent = seen["traceparent"].as_str().expect("traceparent forwarded");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "same trace, new parent span: {traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "the parent is the upstream's own span");
    stop.cancel();
}

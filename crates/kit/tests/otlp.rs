//! With an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` in production), spans are exported
//! over OTLP/HTTP. Its own test binary: the exporter is chosen once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_collector() {
    let received = Arc::new(Notify::new());
    let collector = Router::new()
        .route(
            "/v1/traces",
            post(|State(received): State<Arc<Notify>>, body: axum::body::Bytes| async move {
                assert!(!body.is_empty(), "an OTLP export has a protobuf body");
                received.notify_one();
                ""
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    kit::telemetry::init_with_exporter(
        "otlp-test",
        kit::telemetry::LogFormat::Json,
        Some(kit::telemetry::OtlpEndpoint::Url(format!("http://{addr}"))),
    );
    tracing::info_span!("checkout").in_scope(|| tracing::info!("inside a span"));
    tokio::task::spawn_blocking(kit::telemetry::shutdown).await.unwrap();

    tokio::time::timeout(std::time::Duration::from_secs(10), received.notified())
        .await
        .expect("the collector received a trace export");
}

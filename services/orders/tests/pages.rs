//! Order lists through the real router on 127.0.0.1:0: pages and cursors are client input, and
//! out-of-range values answer 400 naming the field, never a 500.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use kit::config::HttpConfig;
use kit::testing::{Backend, TestAuth, TestDatabase};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct TestApp {
    base: String,
    http: reqwest::Client,
    admin: String,
    shutdown: CancellationToken,
    _auth: TestAuth,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn loopback() -> HttpConfig {
    HttpConfig::with_listen("127.0.0.1:0".parse().expect("address"))
}

/// The orders service with tokens from `TestAuth`; products is never called by lists.
async fn spawn_app(backend: Backend) -> TestApp {
    kit::telemetry::init("orders-test");
    let shutdown = CancellationToken::new();
    let auth = TestAuth::start().await;
    let admin = auth.admin(uuid::Uuid::now_v7());
    let http = reqwest::Client::new();

    let db = TestDatabase::new(backend, "orders_pages").await;
    let config = orders::OrdersConfig {
        http: loopback(),
        database: db.config.clone(),
        users_url: auth.url().to_owned(),
        service_client_secret: "orders-secret-for-tests-0123456789".into(),
        ..orders::OrdersConfig::default()
    };
    let app = orders::Application::build(config).await.expect("orders starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(shutdown.clone()));
    TestApp { base, http, admin, shutdown, _auth: auth, _db: db }
}

impl TestApp {
    /// The field named by the 400 problem `GET path` answers.
    async fn bad_field(&self, path: &str) -> String {
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.admin).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let body: Value = response.json().await.unwrap();
        body["errors"][0]["field"].as_str().unwrap_or_default().to_owned()
    }
}

async fn huge_pages_and_forged_cursors_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    // The document's bound: page 10,001 at most, whatever the page size.
    for deep in [
        "page=9223372036854775807",
        "page=200000000000000000&limit=100",
        "page=10000001&limit=100",
        "page=10002&limit=1",
    ] {
        assert_eq!(app.bad_field(&format!("/api/v1/orders?{deep}")).await, "page", "{deep}");
    }
    let id = "0190f0a0-0000-7000-8000-000000000000";
    for key in [
        json!({"at": i64::MAX, "id": id}),
        json!({"at": i64::MIN, "id": id}),
        json!({"at": 1, "id": "not-a-uuid"}),
        json!({"at": "yesterday", "id": id}),
        json!({"offset": 5}),
    ] {
        let cursor = kit::pagination::encode_cursor(&key);
        assert_eq!(app.bad_field(&format!("/api/v1/orders?cursor={cursor}")).await, "cursor", "{key}");
    }
    assert_eq!(app.bad_field(&format!("/api/v1/orders?cursor={}", "A".repeat(5000))).await, "cursor");
    let first =
        app.http.get(format!("{}/api/v1/orders?cursor=", app.base)).bearer_auth(&app.admin).send().await;
    assert_eq!(first.unwrap().status(), 200);
    let deepest = app
        .http
        .get(format!("{}/api/v1/orders?page=10001&limit=100", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await;
    assert_eq!(deepest.unwrap().status(), 200);
}

/// The document describes a cursor exactly (a pattern every string of which the list reads), so
/// no well-formed cursor is refused and every other is.
async fn every_cursor_the_document_describes_is_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let document: Value =
        app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let parameters = document["paths"]["/api/v1/orders"]["get"]["parameters"].as_array().unwrap();
    let cursor = parameters.iter().find(|p| p["name"] == "cursor").unwrap();
    assert_eq!(cursor["schema"]["pattern"], "^([0-9a-f]{48})?$");
    let list = |cursor: String| {
        let request =
            app.http.get(format!("{}/api/v1/orders?cursor={cursor}", app.base)).bearer_auth(&app.admin);
        async move { request.send().await.unwrap().status() }
    };
    for described in [
        "0".repeat(48),
        "f".repeat(48),
        format!("7fffffffffffffff{}", "f".repeat(32)),
        format!("{}{}", "8".repeat(16), "0".repeat(32)),
        String::new(),
    ] {
        assert_eq!(list(described.clone()).await, 200, "{described}");
    }
    for other in ["F".repeat(48), "0".repeat(47), "g".repeat(48), format!("%20{}", "0".repeat(48))] {
        assert_eq!(app.bad_field(&format!("/api/v1/orders?cursor={other}")).await, "cursor", "{other}");
    }
}

#[tokio::test]
async fn every_cursor_the_document_describes_is_read_on_sqlite() {
    every_cursor_the_document_describes_is_read(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_cursor_the_document_describes_is_read_on_postgres() {
    every_cursor_the_document_describes_is_read(Backend::Postgres).await;
}

#[tokio::test]
async fn huge_pages_and_forged_cursors_are_400_on_sqlite() {
    huge_pages_and_forged_cursors_are_400(Backend::Sqlite).await;
}

#[tokio::test]
async fn huge_pages_and_forged_cursors_are_400_on_postgres() {
    huge_pages_and_forged_cursors_are_400(Backend::Postgres).await;
}

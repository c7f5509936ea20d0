//! Starts the real products service on 127.0.0.1:0 with a fresh database and image directory,
//! next to `kit::testing::TestAuth`, which issues the tokens it checks as the users service would.
#![allow(dead_code)]

use kit::config::HttpConfig;
use kit::testing::{Backend, TestAuth, TestDatabase};
use products::ProductsConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub auth: TestAuth,
    pub http: reqwest::Client,
    pub config: ProductsConfig,
    pub admin: String,
    pub service: String,
    shutdown: CancellationToken,
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

pub async fn spawn_app(backend: Backend) -> TestApp {
    kit::telemetry::init("products-test");
    let shutdown = CancellationToken::new();
    let http = reqwest::Client::new();
    let auth = TestAuth::start().await;
    let admin = auth.admin(uuid::Uuid::now_v7());
    let service = auth.service("orders");

    let db = TestDatabase::new(backend, "products_api").await;
    let mut config = ProductsConfig {
        http: loopback(),
        database: db.config.clone(),
        users_url: auth.url().to_owned(),
        ..ProductsConfig::default()
    };
    config.images.local_dir = db.dir.path().join("images");
    let app = products::Application::build(config.clone()).await.expect("products starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(shutdown.clone()));
    TestApp { base, auth, http, config, admin, service, shutdown, _db: db }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A signed-in customer's token (each call a new customer).
    pub async fn customer_token(&self, _email: &str) -> String {
        self.auth.customer(uuid::Uuid::now_v7())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("sent")
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("sent")
    }

    /// Creates a product as admin and answers it.
    pub async fn create(&self, body: Value) -> Value {
        let response =
            self.send(reqwest::Method::POST, "/api/v1/products", Some(body), Some(&self.admin)).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }
}

pub fn product(name: &str, cents: i64, stock: i64) -> Value {
    json!({
        "name": name,
        "description": format!("{name}. Made to last."),
        "price": {"amount": cents, "currency": "USD"},
        "category": "Kitchen",
        "brand": "Acme",
        "stock": stock,
    })
}

pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.expect("problem json")
}

//! Starts the real products service on 127.0.0.1:0 with a fresh database and image directory,
//! next to a real users service that issues the tokens it checks.
#![allow(dead_code)]

use kit::config::HttpConfig;
use kit::testing::{Backend, TestDatabase};
use products::ProductsConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const SERVICE_SECRET: &str = "orders-secret-for-tests-0123456789";

pub struct TestApp {
    pub base: String,
    pub users_base: String,
    pub http: reqwest::Client,
    pub config: ProductsConfig,
    pub admin: String,
    pub service: String,
    shutdown: CancellationToken,
    _dbs: (TestDatabase, TestDatabase),
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

    let users_db = TestDatabase::new(Backend::Sqlite, "products_users").await;
    let mut users_config = users::UsersConfig {
        http: loopback(),
        database: users_db.config.clone(),
        passwords: users::domain::PasswordHasher { memory_kib: 256, iterations: 1, parallelism: 1 },
        ..users::UsersConfig::default()
    };
    users_config.auth.signing_key_file = Some(users_db.dir.path().join("signing.pem"));
    users_config.auth.generate_signing_key = true;
    users_config.service_clients.insert("orders".into(), SERVICE_SECRET.into());
    let users_app = users::Application::build(users_config.clone()).await.expect("users starts");
    let users_base = format!("http://{}", users_app.local_addr());
    tokio::spawn(users_app.run(shutdown.clone()));

    users::create_admin(
        &users_config.database,
        users_config.passwords,
        "Admin",
        "admin@shop.test",
        "admin password 1",
    )
    .await
    .expect("admin");
    let admin = token(
        &http,
        &format!("{users_base}/api/v1/auth/login"),
        json!({"email": "admin@shop.test", "password": "admin password 1"}),
    )
    .await;
    let service = token(
        &http,
        &format!("{users_base}/internal/v1/auth/token"),
        json!({"client_id": "orders", "client_secret": SERVICE_SECRET}),
    )
    .await;

    let db = TestDatabase::new(backend, "products_api").await;
    let mut config = ProductsConfig {
        http: loopback(),
        database: db.config.clone(),
        users_url: users_base.clone(),
        ..ProductsConfig::default()
    };
    config.images.local_dir = db.dir.path().join("images");
    let app = products::Application::build(config.clone()).await.expect("products starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run(shutdown.clone()));
    TestApp { base, users_base, http, config, admin, service, shutdown, _dbs: (users_db, db) }
}

async fn token(http: &reqwest::Client, url: &str, body: Value) -> String {
    let response: Value = http.post(url).json(&body).send().await.expect("sent").json().await.expect("json");
    response["access_token"].as_str().expect("a token").to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn customer_token(&self, email: &str) -> String {
        token(
            &self.http,
            &format!("{}/api/v1/auth/register", self.users_base),
            json!({"name": "Shopper", "email": email, "password": "correct horse"}),
        )
        .await
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

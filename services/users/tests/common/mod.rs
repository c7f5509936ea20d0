//! Starts the real users service on 127.0.0.1:0 with a fresh database, for HTTP tests.
#![allow(dead_code)]

use kit::config::HttpConfig;
use kit::testing::{Backend, TestDatabase};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use users::UsersConfig;
use users::domain::PasswordHasher;

pub const SERVICE_SECRET: &str = "orders-secret-for-tests-0123456789";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub config: UsersConfig,
    shutdown: CancellationToken,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Cheap hashing keeps tests fast; production cost is the default.
pub fn test_config(db: &TestDatabase) -> UsersConfig {
    let mut config = UsersConfig {
        http: HttpConfig::with_listen("127.0.0.1:0".parse().expect("address")),
        database: db.config.clone(),
        passwords: PasswordHasher { memory_kib: 256, iterations: 1, parallelism: 1 },
        ..UsersConfig::default()
    };
    config.auth.signing_key_file = Some(db.dir.path().join("signing.pem"));
    config.auth.generate_signing_key = true;
    config.service_clients.insert("orders".into(), SERVICE_SECRET.into());
    config
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// As [`spawn_app`], with `configure` applied to the test configuration.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut UsersConfig)) -> TestApp {
    kit::telemetry::init("users-test");
    let db = TestDatabase::new(backend, "users_api").await;
    let mut config = test_config(&db);
    configure(&mut config);
    let app = users::Application::build(config.clone()).await.expect("users service builds");
    let base = format!("http://{}", app.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestApp { base, http: reqwest::Client::new(), config, shutdown, _db: db }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in as `email` with `password`, the request forwarded by the gateway for `client`.
    pub async fn login_from(
        &self,
        client: impl Into<String>,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", client.into())
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn patch(&self, path: &str, body: Value, token: &str) -> reqwest::Response {
        self.http.patch(self.url(path)).json(&body).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// Registers a customer and answers the token response.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                json!({"name": "Test User", "email": email, "password": "correct horse"}),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "register {email}");
        response.json().await.expect("json")
    }

    /// Creates an admin through the same path `mercato admin create` uses, then signs in.
    pub async fn admin_token(&self, email: &str) -> String {
        users::create_admin(&self.config.database, self.config.passwords, "Admin", email, "admin password 1")
            .await
            .expect("admin created");
        let response = self
            .post("/api/v1/auth/login", json!({"email": email, "password": "admin password 1"}), None)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }
}

pub async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "errors are problem+json"
    );
    response.json().await.expect("problem body")
}

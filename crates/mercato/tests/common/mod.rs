//! The embedded shop for end-to-end tests: started in-process on free loopback ports with
//! cheap password hashing, an admin signed in, and helpers to call the gateway.
#![allow(dead_code)]

use std::net::SocketAddr;

use mercato::embedded::{EmbeddedOptions, Overrides, Shop};
use reqwest::Method;
use serde_json::{Value, json};

/// Password hashing cheap enough for tests that register many users.
pub const CHEAP_HASHING: users::domain::PasswordHasher =
    users::domain::PasswordHasher { memory_kib: 256, iterations: 1, parallelism: 1 };

pub struct TestShop {
    pub shop: Shop,
    pub base: String,
    pub http: reqwest::Client,
    /// An admin's access token.
    pub admin: String,
    pub dir: tempfile::TempDir,
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.shop.shutdown_token().cancel();
    }
}

/// Starts the shop with `overrides` (password hashing is made cheap on top) and signs in an admin
/// created the way `mercato admin create` does.
pub async fn start(overrides: Overrides) -> TestShop {
    start_as_given(Overrides { users: |c| c.passwords = CHEAP_HASHING, ..overrides }).await
}

/// [`start`] with `overrides` as they are: their `users` must make hashing cheap itself.
pub async fn start_as_given(overrides: Overrides) -> TestShop {
    kit::telemetry::init("mercato-e2e");
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        overrides,
        ..EmbeddedOptions::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let shop = Shop::start(options).await.unwrap();
    let base = format!("http://{}", shop.gateway);
    let http = reqwest::Client::new();
    let database = mercato::embedded::sqlite_in(dir.path(), "users");
    users::create_admin(&database, CHEAP_HASHING, "Root", "root@shop.test", "root password 1").await.unwrap();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "root@shop.test", "password": "root password 1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["access_token"].as_str().unwrap().to_owned();
    TestShop { shop, base, http, admin, dir }
}

impl TestShop {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// GET expecting 200, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let response = self.send(Method::GET, path, None, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Registers a customer and answers their access token.
    pub async fn customer(&self, email: &str) -> String {
        let body = json!({"name": "Shopper", "email": email, "password": "correct horse"});
        let session: Value =
            self.send(Method::POST, "/api/v1/auth/register", Some(body), None).await.json().await.unwrap();
        session["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a product as the admin and answers it.
    pub async fn create_product(&self, name: &str, category: &str, cents: i64, stock: i64) -> Value {
        let body = json!({"name": name, "description": format!("{name}. Well made."), "category": category,
                          "price": {"amount": cents, "currency": "USD"}, "stock": stock, "brand": "Acme"});
        let response = self.send(Method::POST, "/api/v1/products", Some(body), Some(&self.admin)).await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }
}

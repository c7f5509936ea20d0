//! End to end through the gateway of the embedded shop (every service in this process, SQLite
//! files in a temporary directory), as a client of the public API sees it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::SocketAddr;

use base64::Engine;
use mercato::embedded::{EmbeddedOptions, Shop};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct TestShop {
    base: String,
    /// The gateway's operations listener.
    operations: String,
    /// Each service's own address, behind the gateway.
    services: [(&'static str, SocketAddr); 4],
    http: reqwest::Client,
    data_dir: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start_shop() -> TestShop {
    kit::telemetry::init("mercato-e2e");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let shop = Shop::start(EmbeddedOptions::new(data_dir.path(), SocketAddr::from(([127, 0, 0, 1], 0))))
        .await
        .expect("the shop starts");
    let base = format!("http://{}", shop.gateway);
    let operations = format!("http://{}", shop.gateway_operations);
    let services =
        [("users", shop.users), ("products", shop.products), ("orders", shop.orders), ("carts", shop.carts)];
    let stop = CancellationToken::new();
    tokio::spawn(shop.run_until(stop.clone()));
    TestShop { base, operations, services, http: reqwest::Client::new(), data_dir, stop }
}

impl TestShop {
    async fn send(
        &self,
        method: reqwest::Method,
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
        request.send().await.expect("the gateway answers")
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(body), None).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, None, token).await
    }

    async fn register(&self, email: &str, password: &str) -> Value {
        let response = self
            .post("/api/v1/auth/register", json!({"name": "Shopper", "email": email, "password": password}))
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }
}

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[tokio::test]
async fn account_lifecycle_register_login_me_refresh_logout() {
    let shop = start_shop().await;
    shop.register("ada@example.com", "correct horse").await;

    let login = shop
        .post("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "correct horse"}))
        .await;
    assert_eq!(login.status(), 200);
    assert!(login.headers().contains_key("x-request-id"), "the gateway sets a request id");
    let session: Value = login.json().await.unwrap();
    let access = session["access_token"].as_str().unwrap();

    let me: Value = shop.get("/api/v1/users/me", Some(access)).await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["addresses"], json!([]));

    let old_refresh = session["refresh_token"].clone();
    let renewed = shop.post("/api/v1/auth/refresh", json!({"refresh_token": old_refresh})).await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    assert_problem(shop.post("/api/v1/auth/refresh", json!({"refresh_token": old_refresh})).await, 401).await;

    // The reuse above revoked the sign-in; log in again for a clean logout.
    let fresh: Value = shop
        .post("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "correct horse"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shop.post("/api/v1/auth/logout", json!({"refresh_token": fresh["refresh_token"]})).await.status(),
        204
    );
    assert_problem(
        shop.post("/api/v1/auth/refresh", json!({"refresh_token": fresh["refresh_token"]})).await,
        401,
    )
    .await;
    assert_problem(
        shop.post("/api/v1/auth/refresh", json!({"refresh_token": renewed["refresh_token"]})).await,
        401,
    )
    .await;
}

fn signing_pem(shop: &TestShop) -> String {
    std::fs::read_to_string(shop.data_dir.path().join("keys/users-signing-key.pem"))
        .expect("the shop made its key")
}

fn sign(pem: &str, claims: Value) -> String {
    let kid = users::tokens::SigningKey::from_pem(pem).unwrap().kid().to_owned();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap())
        .unwrap()
}

#[tokio::test]
async fn tampered_expired_and_unsigned_tokens_are_refused() {
    let shop = start_shop().await;
    let session = shop.register("ada@example.com", "correct horse").await;
    let token = session["access_token"].as_str().unwrap();
    let user_id = session["user"]["id"].as_str().unwrap();

    // Tampered: the payload now claims admin, the signature is the old one.
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    assert_problem(shop.get("/api/v1/users", Some(&tampered)).await, 401).await;

    // alg: none, no signature.
    let none_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", b64.encode(claims.to_string()));
    assert_problem(shop.get("/api/v1/users/me", Some(&unsigned)).await, 401).await;

    // Properly signed, but expired a minute ago.
    let now = chrono::Utc::now().timestamp();
    let expired = sign(
        &signing_pem(&shop),
        json!({"sub": user_id, "role": "customer", "iat": now - 960, "exp": now - 60,
               "iss": "mercato-users", "aud": "mercato", "jti": "x"}),
    );
    let body = assert_problem(shop.get("/api/v1/users/me", Some(&expired)).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");

    // Garbage and a wrong scheme.
    assert_problem(shop.get("/api/v1/users/me", Some("not.a.jwt")).await, 401).await;
    let basic = shop
        .http
        .get(format!("{}/api/v1/users/me", shop.base))
        .header("authorization", "Basic eDp5")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401).await;
}

#[tokio::test]
async fn customers_get_403_on_admin_routes_and_admins_get_through() {
    let shop = start_shop().await;
    let customer = shop.register("ada@example.com", "correct horse").await;
    let token = customer["access_token"].as_str().unwrap();
    assert_problem(shop.get("/api/v1/users", Some(token)).await, 403).await;
    assert_problem(shop.get("/api/v1/users", None).await, 401).await;

    // `mercato admin create` on the shop's own database.
    let database = mercato::embedded::sqlite_in(shop.data_dir.path(), "users");
    users::create_admin(&database, Default::default(), "Root", "root@shop.test", "root password 1")
        .await
        .unwrap();
    let admin: Value = shop
        .post("/api/v1/auth/login", json!({"email": "root@shop.test", "password": "root password 1"}))
        .await
        .json()
        .await
        .unwrap();
    let list = shop.get("/api/v1/users?limit=10", admin["access_token"].as_str()).await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["page"], 1);
}

#[tokio::test]
async fn bad_input_answers_4xx_problems() {
    let shop = start_shop().await;
    let bad_email = shop
        .post("/api/v1/auth/register", json!({"name": "A", "email": "not-an-email", "password": "12345678"}))
        .await;
    assert_eq!(assert_problem(bad_email, 400).await["errors"][0]["field"], "email");

    let short = shop
        .post("/api/v1/auth/register", json!({"name": "A", "email": "a@example.com", "password": "short"}))
        .await;
    assert_eq!(assert_problem(short, 400).await["errors"][0]["field"], "password");

    let unknown = shop
        .post(
            "/api/v1/auth/register",
            json!({"name": "A", "email": "a@example.com", "password": "12345678", "admin": true}),
        )
        .await;
    assert!(assert_problem(unknown, 400).await["detail"].as_str().unwrap().contains("admin"));

    let malformed = shop
        .http
        .post(format!("{}/api/v1/auth/login", shop.base))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": }"#)
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;

    let oversized = shop
        .http
        .post(format!("{}/api/v1/auth/register", shop.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(oversized, 413).await;

    assert_problem(shop.get("/internal/v1/auth/token", None).await, 404).await;
    assert_problem(shop.get("/api/v1/nowhere", None).await, 404).await;

    // Nothing half-written: the failed registrations left no account behind.
    let retry = shop
        .post("/api/v1/auth/register", json!({"name": "A", "email": "a@example.com", "password": "12345678"}))
        .await;
    assert_eq!(retry.status(), 201);
}

#[tokio::test]
async fn a_missing_field_is_named_as_a_field_problem_like_a_bad_value() {
    let shop = start_shop().await;
    // The README tour's error example.
    let missing = shop.post("/api/v1/auth/register", json!({"email": "x"})).await;
    let problem = assert_problem(missing, 400).await;
    assert_eq!(problem["errors"][0], json!({"field": "name", "message": "is required"}), "{problem}");
    assert_eq!(problem["detail"], "name: is required");
}

#[tokio::test]
async fn deleted_user_token_stops_working_and_login_fails() {
    let shop = start_shop().await;
    let session = shop.register("ada@example.com", "correct horse").await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(shop.send(reqwest::Method::DELETE, "/api/v1/users/me", None, Some(token)).await.status(), 204);
    assert_problem(shop.get("/api/v1/users/me", Some(token)).await, 401).await;
    assert_problem(
        shop.post("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "correct horse"}))
            .await,
        401,
    )
    .await;
    assert_problem(
        shop.post("/api/v1/auth/refresh", json!({"refresh_token": session["refresh_token"]})).await,
        401,
    )
    .await;
}

#[tokio::test]
async fn status_and_docs_show_the_shop() {
    let shop = start_shop().await;
    let status: Value = shop.get("/api/v1/status", None).await.json().await.unwrap();
    assert_eq!(status["services"]["users"]["ready"], true);
    assert_eq!(status["services"]["carts"]["ready"], true);
    let openapi: Value = shop.get("/openapi.json", None).await.json().await.unwrap();
    assert!(
        openapi["paths"]["/api/v1/auth/login"]["post"].is_object(),
        "the merged document has the users API"
    );
    assert!(openapi["paths"]["/api/v1/cart/checkout"]["post"].is_object(), "and the carts API");
    assert_eq!(shop.get("/healthz", None).await.status(), 404, "not on the public port");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = shop.http.get(format!("{}{path}", shop.operations)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} on the operations listener");
    }
}

/// The schemas of the `/internal/` routes (`contracts`' products and service-token types),
/// which only other services call.
const INTERNAL_SCHEMAS: [&str; 11] = [
    "LookupRequest",
    "LookupResponse",
    "ProductInfo",
    "ReserveRequest",
    "ReserveItem",
    "ReservedItem",
    "Reservation",
    "ReservationStatus",
    "ReleaseResponse",
    "ServiceTokenRequest",
    "ServiceTokenResponse",
];

#[tokio::test]
async fn openapi_documents_publish_no_internal_route_or_schema() {
    let shop = start_shop().await;
    let mut documents = vec![("gateway (merged)".to_owned(), format!("{}/openapi.json", shop.base))];
    documents.extend(
        shop.services.iter().map(|(name, addr)| ((*name).to_owned(), format!("http://{addr}/openapi.json"))),
    );
    for (name, url) in documents {
        let document: Value = shop.http.get(&url).send().await.unwrap().json().await.unwrap();
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert!(!paths.is_empty(), "{name} publishes its API");
        assert!(paths.iter().all(|path| !path.starts_with("/internal/")), "{name}: {paths:?}");
        let schemas = document["components"]["schemas"].as_object().cloned().unwrap_or_default();
        let leaked: Vec<&str> = INTERNAL_SCHEMAS.into_iter().filter(|s| schemas.contains_key(*s)).collect();
        assert!(leaked.is_empty(), "{name} publishes internal schemas {leaked:?}");
        let tags = document["tags"].as_array().cloned().unwrap_or_default();
        assert!(tags.iter().all(|tag| tag["name"] != "internal"), "{name}: {tags:?}");
    }
}

#[tokio::test]
async fn client_request_id_is_kept_through_the_gateway() {
    let shop = start_shop().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = shop
        .http
        .get(format!("{}/api/v1/auth/jwks.json", shop.base))
        .header("x-request-id", "e2e-request-1")
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "e2e-request-1");
}

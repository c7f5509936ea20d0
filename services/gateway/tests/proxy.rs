//! The gateway on a real port in front of a real (fake) upstream: routing, ids and traces,
//! failures, limits, tokens, browser headers, status and docs.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::extract::{Request, State};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use gateway::{Application, GatewayConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const KID: &str = "test-key-1";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The fake upstream: serves keys, readiness and an OpenAPI document, hangs on `/…/hang`, and
// echoes every other request as JSON while counting it.

#[derive(Clone)]
struct Upstream {
    jwks: Value,
    echoed: Arc<AtomicUsize>,
}

async fn echo(State(upstream): State<Upstream>, request: Request) -> axum::Json<Value> {
    upstream.echoed.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(value.to_str().unwrap_or("?").to_owned())))
        .collect();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(&body[..body.len().min(4096)]),
    }))
}

fn upstream_openapi() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "users", "version": "0.1.0"},
        "paths": {
            "/api/v1/users/me": {"get": {"responses": {"200": {"description": "me"}}}},
            "/internal/users/{id}": {"get": {"responses": {"200": {"description": "internal"}}}}
        },
        "components": {"schemas": {"User": {"type": "object"}}}
    })
}

async fn start_upstream(jwks: Value) -> (SocketAddr, Arc<AtomicUsize>) {
    let echoed = Arc::new(AtomicUsize::new(0));
    let state = Upstream { jwks, echoed: Arc::clone(&echoed) };
    let router = Router::new()
        .route("/api/v1/auth/jwks.json", get(|State(s): State<Upstream>| async move { axum::Json(s.jwks) }))
        .route("/readyz", get(|| async { axum::Json(json!({"status": "ready"})) }))
        .route("/openapi.json", get(|| async { axum::Json(upstream_openapi()) }))
        // What the gateway reads as it starts: nobody was revoked.
        .route(
            "/internal/v1/revocations",
            get(|| async { axum::Json(json!({"items": [], "next_after": null})) }),
        )
        .route("/api/v1/users/hang", get(std::future::pending::<()>))
        .fallback(echo)
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, echoed)
}

/// A port nobody listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// Tokens signed the way the users service signs them.

struct Keys {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl Keys {
    fn generate() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self { pkcs8: pkcs8.as_ref().to_vec(), public: pair.public_key().as_ref().to_vec() }
    }

    fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": KID, "x": URL_SAFE_NO_PAD.encode(&self.public),
        }]})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(sub: &str, expires_in_secs: i64) -> Value {
    json!({
        "sub": sub, "role": "customer", "iat": now(), "exp": now() + expires_in_secs,
        "iss": "mercato-users", "aud": "mercato", "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------------
// The gateway under test.

struct TestGateway {
    url: String,
    /// The operations listener: `/healthz`, `/readyz`, `/metrics`.
    operations: String,
    http: reqwest::Client,
    keys: Keys,
    echoed: Arc<AtomicUsize>,
    upstream: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestGateway {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// GET on the operations listener.
    async fn operations_get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.operations)).send().await.unwrap()
    }

    async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    fn echoed(&self) -> usize {
        self.echoed.load(Ordering::SeqCst)
    }
}

/// Upstreams: `users`, `products` and `carts` are the fake upstream, `orders` is down.
async fn spawn_gateway(adjust: impl FnOnce(&mut GatewayConfig)) -> TestGateway {
    kit::telemetry::init("gateway-tests");
    let keys = Keys::generate();
    let (upstream, echoed) = start_upstream(keys.jwks()).await;
    let mut config = GatewayConfig::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.operations_listen = Some("127.0.0.1:0".parse().unwrap());
    config.upstreams.insert("users".into(), format!("http://{upstream}"));
    config.upstreams.insert("products".into(), format!("http://{upstream}"));
    config.upstreams.insert("carts".into(), format!("http://{upstream}"));
    config.upstreams.insert("orders".into(), format!("http://127.0.0.1:{}", dead_port()));
    // No storefront unless a test names one, so unknown paths stay 404 problems here.
    config.upstreams.remove("storefront");
    config.storefront_upstream = None;
    adjust(&mut config);
    let app = Application::build(config).await.unwrap();
    let url = format!("http://{}", app.local_addr());
    let operations = format!("http://{}", app.operations_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestGateway { url, operations, http: reqwest::Client::new(), keys, echoed, upstream, shutdown }
}

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}

// ---------------------------------------------------------------------------------------------
// Routing

#[tokio::test]
async fn method_path_query_headers_and_body_reach_the_upstream_unchanged() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw
        .http
        .patch(gw.url("/api/v1/users/me/addresses/42?b=2&a=x%20y&a=z"))
        .header("x-custom", "kept")
        .header("content-type", "application/json")
        .body(r#"{"city":"Lyon"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "PATCH");
    assert_eq!(seen["path"], "/api/v1/users/me/addresses/42");
    assert_eq!(seen["query"], "b=2&a=x%20y&a=z");
    assert_eq!(seen["body"], r#"{"city":"Lyon"}"#);
    assert_eq!(seen["headers"]["x-custom"], "kept");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["headers"]["host"], gw.upstream.to_string());
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-forwarded-host"], gw.url.trim_start_matches("http://"));
}

#[tokio::test]
async fn a_prefix_matches_whole_segments_only() {
    let gw = spawn_gateway(|_| {}).await;
    assert_eq!(gw.get("/api/v1/users").await.status(), StatusCode::OK);
    problem(gw.get("/api/v1/usersx").await, StatusCode::NOT_FOUND).await;
    assert_eq!(gw.echoed(), 1);
}

#[tokio::test]
async fn internal_paths_are_never_routed() {
    let gw = spawn_gateway(|_| {}).await;
    problem(gw.get("/internal/x").await, StatusCode::NOT_FOUND).await;
    problem(gw.get("/internal/users/42").await, StatusCode::NOT_FOUND).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn pages_go_to_the_storefront_but_api_internal_operations_and_docs_do_not() {
    let gw = spawn_gateway(|config| {
        let products = config.upstreams["products"].clone();
        config.upstreams.insert("storefront".into(), products);
        config.storefront_upstream = Some("storefront".into());
    })
    .await;
    for page in ["/", "/p/42", "/c/shoes?sort=name", "/signin"] {
        assert_eq!(gw.get(page).await.status(), StatusCode::OK, "{page}");
    }
    assert_eq!(gw.echoed(), 4);
    problem(gw.get("/internal/x").await, StatusCode::NOT_FOUND).await;
    problem(gw.get("/api/v1/nothing/here").await, StatusCode::NOT_FOUND).await;
    problem(gw.get("/healthz").await, StatusCode::NOT_FOUND).await;
    assert_eq!(gw.get("/docs").await.status(), StatusCode::OK);
    assert_eq!(gw.get("/asyncapi.json").await.status(), StatusCode::OK);
    assert_eq!(gw.echoed(), 4, "reserved paths and the gateway's own never reach the storefront");
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let gw = spawn_gateway(|_| {}).await;
    let body = problem(gw.get("/api/v1/nothing/here").await, StatusCode::NOT_FOUND).await;
    assert_eq!(body["type"], "urn:mercato:problem:not-found");
    problem(gw.get("/nothing").await, StatusCode::NOT_FOUND).await;
    assert_eq!(gw.echoed(), 0);
}

// ---------------------------------------------------------------------------------------------
// Request ids and traces

#[tokio::test]
async fn a_request_id_is_generated_when_absent_and_forwarded() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw.get("/api/v1/users/me").await;
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-request-id"], id);
}

#[tokio::test]
async fn the_clients_request_id_is_kept_and_forwarded() {
    let gw = spawn_gateway(|_| {}).await;
    let response =
        gw.http.get(gw.url("/api/v1/users/me")).header("x-request-id", "client-id-7").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-7");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-request-id"], "client-id-7");
}

#[tokio::test]
async fn traceparent_continues_the_callers_trace() {
    let gw = spawn_gateway(|_| {}).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let response =
        gw.http.get(gw.url("/api/v1/users/me")).header("traceparent", &incoming).send().await.unwrap();
    let seen: Value = response.json().await.unwrap();
    let forwarded = seen["headers"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(parts[1], trace_id, "{forwarded}");
    assert_ne!(parts[2], "00f067aa0ba902b7", "the gateway's own span is the parent: {forwarded}");
}

// ---------------------------------------------------------------------------------------------
// Failing upstreams

#[tokio::test]
async fn a_down_upstream_is_a_quick_503_naming_the_service() {
    let gw = spawn_gateway(|_| {}).await;
    let started = Instant::now();
    let body = problem(gw.get("/api/v1/orders").await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(body["detail"].as_str().unwrap().contains("orders"), "{body}");
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_after_the_timeout() {
    let gw = spawn_gateway(|config| config.upstream_timeout_ms = 200).await;
    let started = Instant::now();
    let body = problem(gw.get("/api/v1/users/hang").await, StatusCode::GATEWAY_TIMEOUT).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(body["detail"].as_str().unwrap().contains("users"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Body limits

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_without_reaching_the_upstream() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw.http.post(gw.url("/api/v1/users/me")).body(vec![b'x'; 2 * MIB]).send().await.unwrap();
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413() {
    let gw = spawn_gateway(|_| {}).await;
    let chunks = (0..32).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024])));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = gw.http.post(gw.url("/api/v1/users/me")).body(body).send().await.unwrap();
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn the_upload_pattern_accepts_a_2_mib_body_streamed_through() {
    let gw = spawn_gateway(|_| {}).await;
    let response =
        gw.http.post(gw.url("/api/v1/products/42/images")).body(vec![b'x'; 2 * MIB]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["body_len"], 2 * MIB);
}

#[tokio::test]
async fn a_body_within_the_limit_passes_even_without_a_length() {
    let gw = spawn_gateway(|_| {}).await;
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024])));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = gw.http.post(gw.url("/api/v1/users/me")).body(body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["body_len"], 4 * 64 * 1024);
}

/// Sends `request` as raw bytes on a fresh connection and reads the answer until the gateway
/// closes the connection: (status, head and body as text).
async fn raw_exchange(addr: &str, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    });
    read.await.expect("the gateway answers");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_400_not_the_upstreams_503() {
    let gw = spawn_gateway(|_| {}).await;
    let addr = gw.url.trim_start_matches("http://");
    let request = format!(
        "POST /api/v1/users/me HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\nzz\r\n1}}\r\n0\r\n\r\n"
    );
    let (status, answer) = raw_exchange(addr, request.as_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_lowercase().contains("content-type: application/problem+json"), "{answer}");
    assert!(!answer.contains("users service"), "the upstream is not blamed: {answer}");
}

// ---------------------------------------------------------------------------------------------
// Rate limits

fn small_bucket(config: &mut GatewayConfig) {
    config.rate_limit.per_second = 0.01;
    config.rate_limit.burst = 3;
}

#[tokio::test]
async fn past_the_burst_a_client_gets_429_with_retry_after() {
    let gw = spawn_gateway(small_bucket).await;
    for _ in 0..3 {
        assert_eq!(gw.get("/api/v1/users/me").await.status(), StatusCode::OK);
    }
    let response = gw.get("/api/v1/users/me").await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(gw.echoed(), 3);
}

#[tokio::test]
async fn two_gateways_sharing_redis_admit_what_one_would() {
    let redis = kit::testing::TestRedis::new();
    let shared = |config: &mut GatewayConfig| {
        small_bucket(config);
        config.redis = redis.config.clone();
    };
    let first = spawn_gateway(shared).await;
    let second = spawn_gateway(shared).await;
    let mut statuses = Vec::new();
    for n in 0..8 {
        let gateway = if n % 2 == 0 { &first } else { &second };
        statuses.push(gateway.get("/api/v1/users/me").await.status());
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert_eq!(first.echoed() + second.echoed(), 3, "one burst between the two gateways");
    let refused = second.get("/api/v1/users/me").await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 1, "the shared wait is the bucket's: {retry_after} s");
    let ready: Value = first.operations_get("/readyz").await.json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready"}), "Redis answers, nothing is degraded");
}

#[tokio::test]
async fn with_redis_unreachable_each_gateway_still_serves_and_limits_on_its_own() {
    let gw = spawn_gateway(|config| {
        small_bucket(config);
        config.redis = kit::redis::RedisConfig::with_url(format!("redis://127.0.0.1:{}", dead_port()));
    })
    .await;
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(gw.get("/api/v1/users/me").await.status(), StatusCode::OK);
    }
    problem(gw.get("/api/v1/users/me").await, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let ready = gw.operations_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "Redis away is degraded, not unready");
    let ready: Value = ready.json().await.unwrap();
    assert!(ready["degraded"]["redis"].is_string(), "{ready}");
    let metrics = gw.operations_get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("redis_fallback_total{use=\"rate_limit\"}"), "{metrics}");
}

#[tokio::test]
async fn operations_endpoints_are_not_limited() {
    let gw = spawn_gateway(small_bucket).await;
    for _ in 0..3 {
        gw.get("/api/v1/users/me").await;
    }
    assert_eq!(gw.get("/api/v1/users/me").await.status(), StatusCode::TOO_MANY_REQUESTS);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(gw.operations_get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn signed_in_users_have_their_own_bucket() {
    let gw = spawn_gateway(small_bucket).await;
    let alice = gw.keys.sign(&claims(&new_user(), 300));
    let bob = gw.keys.sign(&claims(&new_user(), 300));
    for _ in 0..3 {
        assert_eq!(gw.get_with_token("/api/v1/users/me", &alice).await.status(), StatusCode::OK);
    }
    assert_eq!(gw.get_with_token("/api/v1/users/me", &alice).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(gw.get_with_token("/api/v1/users/me", &bob).await.status(), StatusCode::OK);
    assert_eq!(
        gw.get("/api/v1/users/me").await.status(),
        StatusCode::OK,
        "the address's own bucket is untouched"
    );
}

#[tokio::test]
async fn behind_a_proxy_the_client_cannot_choose_its_rate_limit_key() {
    // One trusted proxy in front appends the address it saw; what the client wrote before it
    // (a new made-up address each time) must not give it a fresh bucket.
    let gw = spawn_gateway(|config| {
        small_bucket(config);
        config.trusted_proxies.hops = 1;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let chain = format!("198.51.100.{i}, 203.0.113.7");
        let response =
            gw.http.get(gw.url("/api/v1/users/me")).header("x-forwarded-for", chain).send().await.unwrap();
        statuses.push(response.status());
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let other = gw
        .http
        .get(gw.url("/api/v1/users/me"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK, "another client behind the same proxy has its own bucket");
}

#[tokio::test]
async fn the_default_allows_a_burst_of_200() {
    let gw = spawn_gateway(|_| {}).await;
    let requests = (0..200).map(|_| gw.http.get(gw.url("/api/v1/users/me")).send());
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(requests).await.into_iter().map(|r| r.unwrap().status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn a_valid_token_passes_and_reaches_the_upstream() {
    let gw = spawn_gateway(|_| {}).await;
    let token = gw.keys.sign(&claims(&new_user(), 300));
    let response = gw.get_with_token("/api/v1/users/me", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {token}"));
}

#[tokio::test]
async fn a_tampered_token_is_401_before_the_upstream() {
    let gw = spawn_gateway(|_| {}).await;
    let token = gw.keys.sign(&claims(&new_user(), 300));
    let mut admin = claims(&new_user(), 300);
    admin["role"] = json!("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let response = gw.get_with_token("/api/v1/users/me", &tampered).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let gw = spawn_gateway(|_| {}).await;
    let token = gw.keys.sign(&claims(&new_user(), -3600));
    let body = problem(gw.get_with_token("/api/v1/users/me", &token).await, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn an_expired_token_does_not_block_signing_in_or_refreshing() {
    let gw = spawn_gateway(|_| {}).await;
    let token = gw.keys.sign(&claims(&new_user(), -3600));
    let response = gw.get_with_token("/api/v1/auth/refresh", &token).await;
    assert_eq!(response.status(), StatusCode::OK, "the auth routes ignore a stale token");
    assert_eq!(gw.echoed(), 1);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_401() {
    let gw = spawn_gateway(|_| {}).await;
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": KID}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims(&new_user(), 300).to_string());
    let token = format!("{header}.{payload}.");
    problem(gw.get_with_token("/api/v1/users/me", &token).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_401() {
    let gw = spawn_gateway(|_| {}).await;
    let token = Keys::generate().sign(&claims(&new_user(), 300));
    problem(gw.get_with_token("/api/v1/users/me", &token).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn a_token_is_503_when_the_keys_cannot_be_fetched() {
    let gw = spawn_gateway(|config| config.auth_upstream = "orders".into()).await;
    let token = gw.keys.sign(&claims(&new_user(), 300));
    problem(gw.get_with_token("/api/v1/users/me", &token).await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(gw.get("/api/v1/users/me").await.status(), StatusCode::OK, "no token, no key needed");
}

// ---------------------------------------------------------------------------------------------
// Browsers

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let gw = spawn_gateway(|_| {}).await;
    for path in ["/api/v1/users/me", "/api/v1/nothing", "/docs", "/api/v1/orders"] {
        let response = gw.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "{path}: plain HTTP gets no HSTS");
    }
}

#[tokio::test]
async fn hsts_is_sent_when_a_trusted_proxy_says_the_client_came_over_tls() {
    let gw = spawn_gateway(|config| config.trusted_proxies.cidrs = vec!["127.0.0.1".into()]).await;
    let response =
        gw.http.get(gw.url("/api/v1/users/me")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn a_client_claiming_tls_without_a_trusted_proxy_is_not_believed() {
    let gw = spawn_gateway(|_| {}).await;
    let response =
        gw.http.get(gw.url("/api/v1/users/me")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none());
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn a_cors_preflight_is_answered_by_the_gateway() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/api/v1/users/me"))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("PATCH"));
    assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert_eq!(headers["access-control-max-age"], "600");
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn only_configured_origins_are_allowed() {
    let gw =
        spawn_gateway(|config| config.cors.allowed_origins = vec!["https://shop.example.com".into()]).await;
    let allowed =
        gw.http.get(gw.url("/docs")).header("origin", "https://shop.example.com").send().await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://shop.example.com");
    let other = gw.http.get(gw.url("/docs")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

// ---------------------------------------------------------------------------------------------
// Status, operations and docs

#[tokio::test]
async fn status_shows_ready_and_down_upstreams_without_their_addresses() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw.get("/api/v1/status").await;
    assert_eq!(response.status(), StatusCode::OK);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["status"], "degraded");
    assert_eq!(status["services"]["users"], json!({"ready": true}));
    assert_eq!(status["services"]["orders"], json!({"ready": false}), "no address, latency or detail");
    let text = status.to_string();
    assert!(!text.contains("127.0.0.1"), "{text}");

    let customer = gw.keys.sign(&claims(&new_user(), 300));
    let status: Value = gw.get_with_token("/api/v1/status", &customer).await.json().await.unwrap();
    assert_eq!(status["services"]["users"], json!({"ready": true}), "a customer sees what anyone sees");
}

#[tokio::test]
async fn an_admin_sees_each_replicas_address_latency_and_detail() {
    let gw = spawn_gateway(|_| {}).await;
    let mut admin = claims(&new_user(), 300);
    admin["role"] = json!("admin");
    let token = gw.keys.sign(&admin);
    let status: Value = gw.get_with_token("/api/v1/status", &token).await.json().await.unwrap();
    let users = &status["services"]["users"]["replicas"][0];
    assert_eq!(users["url"], format!("http://{}", gw.upstream));
    assert_eq!(users["ready"], true);
    assert!(users["latency_ms"].is_u64());
    let orders = &status["services"]["orders"]["replicas"][0];
    assert_eq!(orders["ready"], false);
    assert!(orders["detail"].is_string());
}

#[tokio::test]
async fn status_answers_keep_their_shape() {
    let gw = spawn_gateway(|_| {}).await;
    let anyone: Value = gw.get("/api/v1/status").await.json().await.unwrap();
    insta::assert_json_snapshot!("status", anyone);
    let mut admin = claims(&new_user(), 300);
    admin["role"] = json!("admin");
    let token = gw.keys.sign(&admin);
    let admins: Value = gw.get_with_token("/api/v1/status", &token).await.json().await.unwrap();
    insta::assert_json_snapshot!("status_for_admins", admins, {
        ".services.*.replicas[].url" => "[url]",
        ".services.*.replicas[].latency_ms" => "[ms]",
        ".services.*.replicas[].detail" => "[why]",
    });
}

#[tokio::test]
async fn status_is_ok_when_every_upstream_is_ready() {
    let gw = spawn_gateway(|config| {
        config.upstreams.remove("orders");
        config.routes.retain(|route| route.upstream != "orders");
    })
    .await;
    let status: Value = gw.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["status"], "ok");
}

#[tokio::test]
async fn the_gateway_is_ready_while_an_upstream_is_down() {
    let gw = spawn_gateway(|_| {}).await;
    assert_eq!(gw.operations_get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(gw.operations_get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn operations_endpoints_are_on_their_own_port_and_not_on_the_public_one() {
    let gw = spawn_gateway(|_| {}).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        problem(gw.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(gw.operations_get(path).await.status(), StatusCode::OK, "{path}");
    }
    problem(gw.operations_get("/api/v1/users/me").await, StatusCode::NOT_FOUND).await;
    assert_eq!(gw.echoed(), 0);
}

#[tokio::test]
async fn metrics_count_requests_and_upstream_calls() {
    let gw = spawn_gateway(|_| {}).await;
    gw.get("/api/v1/users/me").await;
    gw.get("/api/v1/orders").await;
    let metrics = gw.operations_get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"service="gateway""#), "{metrics}");
    assert!(
        metrics.contains(r#"gateway_upstream_requests_total{upstream="users",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gateway_upstream_requests_total{upstream="orders",status="503"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn openapi_merges_the_upstreams_and_skips_those_down() {
    let gw = spawn_gateway(|_| {}).await;
    let document: Value = gw.get("/openapi.json").await.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/status"), "{paths:?}");
    assert!(paths.contains_key("/api/v1/users/me"), "{paths:?}");
    assert!(!paths.contains_key("/internal/users/{id}"), "{paths:?}");
    assert!(document["components"]["schemas"].get("User").is_some());
    assert!(document["info"]["description"].as_str().unwrap().contains("orders"));
}

/// The events' contract is served beside the HTTP one: the AsyncAPI document the repository
/// keeps in docs/asyncapi.json, generated from the same `contracts` types.
#[tokio::test]
async fn the_asyncapi_document_is_served_beside_the_openapi_one() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw.get("/asyncapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["asyncapi"].as_str().unwrap().starts_with("3."), "{document}");
    let committed: Value = serde_json::from_str(include_str!("../../../docs/asyncapi.json"))
        .expect("docs/asyncapi.json is JSON");
    assert_eq!(document, committed);
}

#[tokio::test]
async fn docs_page_and_its_assets_come_from_the_gateway_under_a_same_origin_policy() {
    let gw = spawn_gateway(|_| {}).await;
    let response = gw.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.starts_with("default-src 'none'; script-src 'self'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("://"), "{page}");
    for (asset, media_type) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
        ("/docs/docs.js", "text/javascript"),
    ] {
        assert!(page.contains(&format!("\"{asset}\"")), "{asset} not on the page");
        let response = gw.get(asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(media_type), "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
    assert_eq!(gw.get("/docs/nothing.js").await.status(), StatusCode::NOT_FOUND);
}

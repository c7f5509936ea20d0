//! Checkout when the answers between orders and products get lost: a proxy this test controls
//! sits between the two and can swallow responses. A 503 that says "nothing was taken" must stay
//! true: the order ends cancelled, its stock back on the shelf, and the recovery worker never
//! confirms it later. Replaying the Idempotency-Key returns that settled outcome.
//!
//! One test per file: the orders service learns the proxy's port through a static, read by the
//! shop's settings override (a plain `fn`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::TestShop;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mercato::embedded::Overrides;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The port orders reaches products through.
static PROXY_PORT: AtomicU16 = AtomicU16::new(0);

/// What the proxy breaks.
#[derive(Default)]
struct Faults {
    /// Reservations reach products, their answers never reach orders.
    drop_reservations: AtomicBool,
    /// Releases never reach products (as if it were unreachable for them).
    refuse_releases: AtomicBool,
    /// Requests naming one of these orders never reach products.
    poisoned: Mutex<HashSet<String>>,
}

impl Faults {
    fn refuses(&self, path: &str) -> bool {
        (path.ends_with("/release") && self.refuse_releases.load(Ordering::SeqCst))
            || path.rsplit('/').any(|segment| self.poisoned.lock().unwrap().contains(segment))
    }
}

/// Forwards every request to products (set once the shop runs), except as `faults` say: a lost
/// answer means products did the work and the connection then closes without an answer; a
/// refused request closes the connection without forwarding it.
async fn start_lossy_proxy(target: Arc<OnceLock<SocketAddr>>, faults: Arc<Faults>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (client, target, faults) = (client.clone(), Arc::clone(&target), Arc::clone(&faults));
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let (client, target, faults) = (client.clone(), Arc::clone(&target), Arc::clone(&faults));
                    async move { forward(&client, &target, &faults, request).await }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    port
}

async fn forward(
    client: &reqwest::Client,
    target: &OnceLock<SocketAddr>,
    faults: &Faults,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let path = parts.uri.path().to_owned();
    if faults.refuses(&path) {
        return Err(std::io::Error::other("products unreachable on purpose"));
    }
    let url = format!("http://{}{}", target.get().expect("the proxy's target is set"), parts.uri);
    let mut outgoing = client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.map_err(std::io::Error::other)?;
    if path == "/internal/v1/reservations" && faults.drop_reservations.load(Ordering::SeqCst) {
        // Products did the work; its answer dies with the connection.
        return Err(std::io::Error::other("answer lost on purpose"));
    }
    let mut response = hyper::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    response.body(Full::new(bytes)).map_err(std::io::Error::other)
}

async fn stock(t: &TestShop, product: &str) -> i64 {
    t.get(&format!("/api/v1/products/{product}")).await["stock"].as_i64().unwrap()
}

async fn order(t: &TestShop, token: &str, body: &Value, key: &str) -> reqwest::Response {
    t.http
        .post(format!("{}/api/v1/orders", t.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn order_status(t: &TestShop, token: &str, id: &str) -> String {
    let order: Value =
        t.send(Method::GET, &format!("/api/v1/orders/{id}"), None, Some(token)).await.json().await.unwrap();
    order["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_503_for_a_lost_reservation_answer_is_true_and_recovery_never_confirms_it() {
    let target = Arc::new(OnceLock::new());
    let faults = Arc::new(Faults::default());
    PROXY_PORT.store(start_lossy_proxy(Arc::clone(&target), Arc::clone(&faults)).await, Ordering::SeqCst);
    let overrides = Overrides {
        gateway: |c| c.rate_limit.enabled = false,
        orders: |c| {
            c.products_url = format!("http://127.0.0.1:{}", PROXY_PORT.load(Ordering::SeqCst));
            c.client.request_timeout_ms = 2_000;
            c.client.retries = 1;
            // The poisoned orders below fail on purpose; they must not open the circuit for the rest.
            c.client.breaker_failures = 10_000;
            c.recovery.enabled = false;
        },
        ..Overrides::default()
    };
    let t = common::start(overrides).await;
    target.set(t.shop.products).unwrap();
    let recovery = t.shop.recovery().unwrap();

    let mug = t.create_product("Mug", "Kitchen", 1000, 5).await["id"].as_str().unwrap().to_owned();
    let ada = t.customer("ada@example.com").await;
    let address =
        json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"});
    let body = json!({"items": [{"product_id": mug, "quantity": 2}], "shipping_address": address});

    // 1. The reservation's answer is lost, the release gets through: settled before answering.
    faults.drop_reservations.store(true, Ordering::SeqCst);
    let answer = order(&t, &ada, &body, "lost-1").await;
    assert_eq!(answer.status(), 503);
    let problem: Value = answer.json().await.unwrap();
    let first = problem["order_id"].as_str().expect("the 503 names the order").to_owned();
    assert_eq!(stock(&t, &mug).await, 5, "the stock products held was given back before the answer");
    assert_eq!(order_status(&t, &ada, &first).await, "cancelled");

    // 2. The reservation's answer is lost and products cannot be reached to release: the 503
    // still names the order, and stock is held for now…
    faults.refuse_releases.store(true, Ordering::SeqCst);
    let answer = order(&t, &ada, &body, "lost-2").await;
    assert_eq!(answer.status(), 503);
    let problem: Value = answer.json().await.unwrap();
    let second = problem["order_id"].as_str().expect("the 503 names the order").to_owned();
    assert_eq!(stock(&t, &mug).await, 3, "products holds the stock; orders could not release it yet");

    // …and once products answers again, recovery only ever cancels what the client was told failed.
    faults.drop_reservations.store(false, Ordering::SeqCst);
    faults.refuse_releases.store(false, Ordering::SeqCst);
    recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    for id in [&first, &second] {
        assert_eq!(order_status(&t, &ada, id).await, "cancelled", "order {id}");
    }
    assert_eq!(stock(&t, &mug).await, 5, "every unit is back on the shelf");

    // Replaying a key returns the settled outcome, and takes no stock.
    for (key, id) in [("lost-1", &first), ("lost-2", &second)] {
        let replay = order(&t, &ada, &body, key).await;
        assert_eq!(replay.status(), 200, "{key}");
        let replayed: Value = replay.json().await.unwrap();
        assert_eq!(
            (replayed["id"].as_str(), replayed["status"].as_str()),
            (Some(id.as_str()), Some("cancelled"))
        );
    }
    assert_eq!(stock(&t, &mug).await, 5);

    // With the faults gone, a new key buys normally.
    assert_eq!(order(&t, &ada, &body, "fine").await.status(), 201);
    assert_eq!(stock(&t, &mug).await, 3);

    // Orders that fail to settle for good do not starve the others: more of them than one
    // recovery batch, older than a healthy one.
    let store = orders_store(&t).await;
    let mut stuck = Vec::new();
    for _ in 0..120 {
        stuck.push(pending_order(&store, &mug).await);
    }
    faults.poisoned.lock().unwrap().extend(stuck.iter().cloned());
    let healthy = pending_order(&store, &mug).await;
    let settled = recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(settled.deferred, 120, "{settled:?}");
    assert_eq!(order_status(&t, &t.admin, &healthy).await, "cancelled", "the healthy order was settled");
    let again = recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(again, Default::default(), "deferred orders wait for their backoff before the next try");
    assert_eq!(order_status(&t, &t.admin, &stuck[0]).await, "pending");
}

async fn orders_store(t: &TestShop) -> orders::store::OrderStore {
    let database = mercato::embedded::sqlite_in(t.dir.path(), "orders");
    orders::store::OrderStore::new(kit::db::connect(&database).await.unwrap())
}

/// A pending order with nothing reserved, as a checkout that died mid-saga leaves it.
async fn pending_order(store: &orders::store::OrderStore, product: &str) -> String {
    use orders::domain::{PricedLine, Totals};
    let line = PricedLine::new(product.parse().unwrap(), "SKU-1".into(), "Mug".into(), 1000, 1).unwrap();
    let totals = Totals::of(std::slice::from_ref(&line), 0).unwrap();
    let new = orders::store::NewOrder {
        user_id: uuid::Uuid::now_v7(),
        currency: "USD".into(),
        lines: vec![line],
        totals,
        shipping_address: serde_json::from_value(
            json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"}),
        )
        .unwrap(),
        idempotency_key: None,
        fingerprint: "x".repeat(64),
    };
    store.create_pending(new).await.unwrap().id.to_string()
}

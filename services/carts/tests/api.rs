//! The carts service through its real router on 127.0.0.1:0, on SQLite, with products and
//! orders faked at the HTTP level (wiremock, speaking `contracts` types and orders' public
//! answers) and users played by `kit::testing::TestAuth` (key set and service tokens): a read
//! refreshes the catalog in one lookup, deleted products stay shown unavailable, the bounds,
//! checkout passing orders' answers through (idempotent replays, failures leaving the cart as
//! it was), and the store not answering being a 503, never a 500. The stores themselves are
//! tested on SQLite and Redis in `store.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use carts::CartsConfig;
use contracts::Money;
use contracts::products::{LookupRequest, LookupResponse, ProductInfo};
use kit::config::{ClientConfig, HttpConfig};
use kit::testing::{Backend, TestAuth, TestDatabase};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SHOPPER: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0b01);
const MUG: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0001);
const TEA: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0002);
/// Deleted before the test starts.
const GONE: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0003);
/// Never existed.
const GHOST: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0004);

// ---------------------------------------------------------------------------------------------
// The fakes

/// The catalog products' lookup answers from; tests change it between calls.
type Catalog = Arc<Mutex<HashMap<Uuid, ProductInfo>>>;

fn product(id: Uuid, name: &str, cents: i64) -> ProductInfo {
    ProductInfo {
        id,
        sku: format!("SKU-{}", &id.simple().to_string()[28..]),
        name: name.into(),
        price: Money::new(cents, "USD"),
        deleted: false,
        image: Some(format!("/api/v1/images/{id}.webp")),
    }
}

/// Products' `POST /internal/v1/products/lookup` over the current catalog.
struct Lookup(Catalog);

impl Respond for Lookup {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: LookupRequest = request.body_json().unwrap();
        let catalog = self.0.lock().unwrap();
        let items = asked.ids.iter().filter_map(|id| catalog.get(id).cloned()).collect();
        let missing = asked.ids.iter().filter(|id| !catalog.contains_key(id)).copied().collect();
        ResponseTemplate::new(200).set_body_json(LookupResponse { items, missing })
    }
}

/// Orders' `POST /api/v1/orders`: a new order (201) per request, and for a known
/// `Idempotency-Key` the order placed with it (200) when the request is the same, 422 when it
/// is not, as orders answers.
#[derive(Clone, Default)]
struct Orders {
    /// Key → the request's items and the order.
    by_key: Arc<Mutex<HashMap<String, (Value, Value)>>>,
}

impl Respond for Orders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap();
        let key = request.headers.get("idempotency-key").map(|v| v.to_str().unwrap().to_owned());
        if let Some((items, order)) = key.as_ref().and_then(|k| self.by_key.lock().unwrap().get(k).cloned()) {
            if items != body["items"] {
                return problem(422, "this Idempotency-Key was used for a different order");
            }
            return ResponseTemplate::new(200).set_body_json(order);
        }
        let id = Uuid::now_v7();
        let items: Vec<Value> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                json!({"product_id": i["product_id"], "sku": "SKU", "name": "Thing",
                "unit_price": {"amount": 100, "currency": "USD"}, "quantity": i["quantity"],
                "line_total": {"amount": 100, "currency": "USD"}})
            })
            .collect();
        let order = json!({"id": id, "user_id": SHOPPER, "status": "confirmed", "items": items});
        if let Some(key) = key {
            self.by_key.lock().unwrap().insert(key, (body["items"].clone(), order.clone()));
        }
        ResponseTemplate::new(201)
            .insert_header("location", format!("/api/v1/orders/{id}").as_str())
            .set_body_json(order)
    }
}

fn problem(status: u16, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        serde_json::to_vec(
            &json!({"type": "about:blank", "title": "from orders", "status": status, "detail": detail}),
        )
        .unwrap(),
        "application/problem+json",
    )
}

// ---------------------------------------------------------------------------------------------
// The app

struct TestApp {
    base: String,
    http: reqwest::Client,
    products: MockServer,
    orders: MockServer,
    catalog: Catalog,
    shopper: String,
    shutdown: CancellationToken,
    _auth: TestAuth,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

async fn spawn_with(adjust: impl FnOnce(&mut CartsConfig)) -> TestApp {
    kit::telemetry::init("carts-test");
    let auth = TestAuth::start().await;
    let products = MockServer::start().await;
    let orders = MockServer::start().await;
    let catalog: Catalog = Arc::new(Mutex::new(HashMap::from([
        (MUG, product(MUG, "Enamel Mug", 1250)),
        (TEA, product(TEA, "Green Tea", 499)),
        (GONE, ProductInfo { deleted: true, ..product(GONE, "Discontinued Kettle", 3000) }),
    ])));
    Mock::given(method("POST"))
        .and(path("/internal/v1/products/lookup"))
        .respond_with(Lookup(catalog.clone()))
        .mount(&products)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/orders"))
        .respond_with(Orders::default())
        .with_priority(5)
        .mount(&orders)
        .await;
    let db = TestDatabase::new(Backend::Sqlite, "carts").await;
    let mut config = CartsConfig {
        http: HttpConfig::with_listen(([127, 0, 0, 1], 0).into()),
        database: db.config.clone(),
        users_url: auth.url().to_owned(),
        products_url: products.uri(),
        orders_url: orders.uri(),
        client: ClientConfig { retries: 0, ..ClientConfig::default() },
        service_client_secret: "carts-test-secret-0123".into(),
        ..CartsConfig::default()
    };
    adjust(&mut config);
    let app = carts::Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        products,
        orders,
        catalog,
        shopper: auth.customer(SHOPPER),
        shutdown,
        _auth: auth,
        _db: db,
    }
}

impl TestApp {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.shopper);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    async fn cart(&self) -> Value {
        let answer = self.call(Method::GET, "/api/v1/cart", None, None).await;
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }

    async fn put(&self, product: Uuid, quantity: Value) -> reqwest::Response {
        self.call(
            Method::PUT,
            &format!("/api/v1/cart/items/{product}"),
            Some(json!({"quantity": quantity})),
            None,
        )
        .await
    }

    async fn checkout(&self, key: Option<&str>) -> reqwest::Response {
        let address =
            json!({"line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"});
        self.call(Method::POST, "/api/v1/cart/checkout", Some(json!({"shipping_address": address})), key)
            .await
    }

    async fn lookups(&self) -> Vec<LookupRequest> {
        self.products.received_requests().await.unwrap().iter().map(|r| r.body_json().unwrap()).collect()
    }

    async fn orders_received(&self) -> Vec<Request> {
        self.orders.received_requests().await.unwrap()
    }
}

/// The (product, quantity) lines of a cart answer.
fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["product_id"].as_str().unwrap().to_owned(), i["quantity"].as_i64().unwrap()))
        .collect()
}

async fn assert_problem(answer: reqwest::Response, status: u16) -> Value {
    assert_eq!(answer.status(), status);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    answer.json().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Reading and changing the cart

#[tokio::test]
async fn a_read_refreshes_prices_names_images_and_availability_in_one_lookup() {
    let app = spawn_app().await;
    assert_eq!(app.put(MUG, json!(2)).await.status(), 200);
    assert_eq!(app.put(TEA, json!(1)).await.status(), 200);
    {
        let mut catalog = app.catalog.lock().unwrap();
        let mug = catalog.get_mut(&MUG).unwrap();
        mug.price = Money::new(1500, "USD");
        mug.name = "Enamel Mug, blue".into();
        catalog.get_mut(&TEA).unwrap().deleted = true;
    }
    app.products.reset().await;
    Mock::given(method("POST"))
        .and(path("/internal/v1/products/lookup"))
        .respond_with(Lookup(app.catalog.clone()))
        .mount(&app.products)
        .await;

    let cart = app.cart().await;
    let lookups = app.lookups().await;
    assert_eq!(lookups.len(), 1, "one batched lookup for the whole cart");
    assert_eq!(lookups[0].ids, [MUG, TEA]);
    let mug = &cart["items"][0];
    assert_eq!(mug["name"], "Enamel Mug, blue");
    assert_eq!(mug["unit_price"], json!({"amount": 1500, "currency": "USD"}));
    assert_eq!(mug["line_total"], json!({"amount": 3000, "currency": "USD"}));
    assert_eq!(mug["image"], format!("/api/v1/images/{MUG}.webp"));
    assert_eq!(mug["available"], true);
    let tea = &cart["items"][1];
    assert_eq!(
        (tea["product_id"].as_str(), &tea["available"]),
        (Some(TEA.to_string().as_str()), &json!(false))
    );
    assert_eq!(cart["subtotal"], json!({"amount": 3000, "currency": "USD"}), "only available lines count");
    assert_eq!(cart["item_count"], 3);
    assert!(cart["updated_at"].is_string());
}

#[tokio::test]
async fn a_product_deleted_while_in_the_cart_stays_shown_unavailable() {
    let app = spawn_app().await;
    app.put(MUG, json!(1)).await;
    app.catalog.lock().unwrap().get_mut(&MUG).unwrap().deleted = true;
    let cart = app.cart().await;
    assert_eq!(lines(&cart), [(MUG.to_string(), 1)], "it does not vanish");
    assert_eq!(cart["items"][0]["available"], false);
    assert_eq!(cart["items"][0]["name"], "Enamel Mug");
    assert_eq!(cart["subtotal"]["amount"], 0);
}

#[tokio::test]
async fn quantities_are_1_to_99_zero_removes_and_bad_bodies_are_400() {
    let app = spawn_app().await;
    assert_eq!(app.put(MUG, json!(99)).await.status(), 200);
    for bad in [json!(100), json!(-1), json!(1.5), json!("2")] {
        assert_problem(app.put(MUG, bad).await, 400).await;
    }
    let unknown_field = app
        .call(Method::PUT, &format!("/api/v1/cart/items/{MUG}"), Some(json!({"quantity": 1, "qty": 1})), None)
        .await;
    assert_problem(unknown_field, 400).await;
    assert_problem(
        app.call(Method::PUT, "/api/v1/cart/items/not-a-uuid", Some(json!({"quantity": 1})), None).await,
        400,
    )
    .await;
    assert_eq!(lines(&app.cart().await), [(MUG.to_string(), 99)], "nothing refused was written");

    let removed: Value = app.put(MUG, json!(0)).await.json().await.unwrap();
    assert!(lines(&removed).is_empty());
    app.put(TEA, json!(2)).await;
    let answer = app.call(Method::DELETE, &format!("/api/v1/cart/items/{TEA}"), None, None).await;
    assert_eq!(answer.status(), 200);
    assert!(lines(&answer.json().await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_cart_holds_at_most_100_lines() {
    let app = spawn_app().await;
    let many: Vec<Uuid> = (0..101).map(|n| Uuid::from_u128(0x1000 + n)).collect();
    {
        let mut catalog = app.catalog.lock().unwrap();
        for id in &many {
            catalog.insert(*id, product(*id, "Thing", 100));
        }
    }
    for id in &many[..100] {
        assert_eq!(app.put(*id, json!(1)).await.status(), 200);
    }
    let full = assert_problem(app.put(many[100], json!(1)).await, 400).await;
    assert!(full["detail"].as_str().unwrap().contains("100 lines"), "{full}");
    assert_eq!(app.put(many[0], json!(5)).await.status(), 200, "a line in the cart may still change");
    let cart = app.cart().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 100);
    assert_eq!(cart["item_count"], 104);
}

#[tokio::test]
async fn an_unknown_or_deleted_product_is_422() {
    let app = spawn_app().await;
    for id in [GHOST, GONE] {
        let refused = assert_problem(app.put(id, json!(1)).await, 422).await;
        assert_eq!(refused["products"], json!([id]));
    }
    assert!(lines(&app.cart().await).is_empty());
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let app = spawn_app().await;
    let routes = [
        (Method::GET, "/api/v1/cart".to_owned()),
        (Method::DELETE, "/api/v1/cart".to_owned()),
        (Method::PUT, format!("/api/v1/cart/items/{MUG}")),
        (Method::DELETE, format!("/api/v1/cart/items/{MUG}")),
        (Method::POST, "/api/v1/cart/checkout".to_owned()),
    ];
    for (method, path) in routes {
        let answer = app
            .http
            .request(method, format!("{}{path}", app.base))
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_problem(answer, 401).await;
    }
}

#[tokio::test]
async fn deleting_the_cart_empties_it() {
    let app = spawn_app().await;
    app.put(MUG, json!(1)).await;
    assert_eq!(app.call(Method::DELETE, "/api/v1/cart", None, None).await.status(), 204);
    let cart = app.cart().await;
    assert!(lines(&cart).is_empty());
    assert_eq!(cart["updated_at"], Value::Null);
    assert_eq!(cart["subtotal"], json!({"amount": 0, "currency": "USD"}));
}

// ---------------------------------------------------------------------------------------------
// Checkout

#[tokio::test]
async fn checkout_passes_the_key_on_and_a_replay_returns_the_same_order_without_emptying_twice() {
    let app = spawn_app().await;
    app.put(MUG, json!(2)).await;
    app.put(TEA, json!(1)).await;

    let placed = app.checkout(Some("cart-1")).await;
    assert_eq!(placed.status(), 201);
    let location = placed.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = placed.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/orders/{}", order["id"].as_str().unwrap()));
    let sent = &app.orders_received().await[0];
    assert_eq!(sent.headers["idempotency-key"], "cart-1");
    assert_eq!(sent.headers["authorization"], format!("Bearer {}", app.shopper).as_str());
    let body: Value = sent.body_json().unwrap();
    assert_eq!(
        body["items"],
        json!([{"product_id": MUG, "quantity": 2}, {"product_id": TEA, "quantity": 1}])
    );
    assert_eq!(body["shipping_address"]["city"], "London");
    assert!(lines(&app.cart().await).is_empty(), "the ordered lines left the cart");

    // The same checkout again (its answer was lost, say), the cart now empty: the same order.
    let replay = app.checkout(Some("cart-1")).await;
    assert_eq!(replay.status(), 200, "not 400 for the emptied cart");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], order["id"]);

    // A new line, then the same checkout once more: the same order, and the new line stays.
    app.put(MUG, json!(1)).await;
    let replay = app.checkout(Some("cart-1")).await;
    assert_eq!(replay.status(), 200);
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"], order["id"]);
    assert_eq!(lines(&app.cart().await), [(MUG.to_string(), 1)], "a replay empties nothing twice");
    let sent: Vec<Value> = app
        .orders_received()
        .await
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["items"].clone())
        .collect();
    assert!(sent.iter().all(|items| *items == sent[0]), "every replay sent the original lines: {sent:?}");

    // A new key orders what the cart holds now.
    assert_eq!(app.checkout(Some("cart-2")).await.status(), 201);
    assert!(lines(&app.cart().await).is_empty());
}

#[tokio::test]
async fn a_failed_checkout_answers_what_orders_answered_and_leaves_the_cart_unchanged() {
    for status in [409, 422, 503] {
        let app = spawn_app().await;
        app.put(MUG, json!(2)).await;
        let before = app.cart().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/orders"))
            .respond_with(problem(status, "orders says no"))
            .with_priority(1)
            .mount(&app.orders)
            .await;
        let refused = assert_problem(app.checkout(Some("k")).await, status).await;
        assert_eq!(refused["detail"], "orders says no", "orders' problem, passed through");
        assert_eq!(app.cart().await, before, "the cart is unchanged after {status}");
    }
}

/// A replayed key whose order was cancelled (its stock could not be held) answers 200 with the
/// cancelled order: passed through, and the cart stays.
#[tokio::test]
async fn a_replayed_cancelled_order_is_answered_and_leaves_the_cart_unchanged() {
    let app = spawn_app().await;
    app.put(MUG, json!(2)).await;
    let cancelled = json!({"id": Uuid::now_v7(), "status": "cancelled", "status_reason": "insufficient stock",
        "items": [{"product_id": MUG, "quantity": 2}]});
    Mock::given(method("POST"))
        .and(path("/api/v1/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled.clone()))
        .with_priority(1)
        .mount(&app.orders)
        .await;
    let replay = app.checkout(Some("k")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap(), cancelled);
    assert_eq!(lines(&app.cart().await), [(MUG.to_string(), 2)]);
}

#[tokio::test]
async fn an_empty_cart_cannot_be_checked_out_and_orders_is_not_called() {
    let app = spawn_app().await;
    let refused = assert_problem(app.checkout(None).await, 400).await;
    assert!(refused["detail"].as_str().unwrap().contains("empty"));
    assert!(app.orders_received().await.is_empty());
}

#[tokio::test]
async fn orders_unreachable_is_503_and_the_cart_is_kept() {
    let app = spawn_with(|c| c.orders_url = "http://127.0.0.1:1".into()).await;
    app.put(MUG, json!(1)).await;
    assert_problem(app.checkout(Some("k")).await, 503).await;
    assert_eq!(lines(&app.cart().await), [(MUG.to_string(), 1)]);
}

// ---------------------------------------------------------------------------------------------
// Redis as the store

/// Redis is the store, not a cache: when it does not answer the service is not ready and cart
/// calls are 503 problems, never 500s.
#[tokio::test]
async fn redis_not_answering_is_unready_and_503() {
    let app = spawn_with(|c| {
        c.redis = kit::redis::RedisConfig {
            command_timeout_ms: 200,
            ..kit::redis::RedisConfig::with_url("redis://127.0.0.1:1")
        };
    })
    .await;
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_problem(app.call(Method::GET, "/api/v1/cart", None, None).await, 503).await;
    assert_problem(app.put(MUG, json!(1)).await, 503).await;
}

#[tokio::test]
async fn on_redis_the_cart_works_end_to_end() {
    let redis = kit::testing::TestRedis::new();
    let config = redis.config.clone();
    let app = spawn_with(move |c| c.redis = config).await;
    assert_eq!(app.http.get(format!("{}/readyz", app.base)).send().await.unwrap().status(), 200);
    app.put(MUG, json!(2)).await;
    app.put(TEA, json!(1)).await;
    assert_eq!(app.checkout(Some("redis-1")).await.status(), 201);
    assert!(lines(&app.cart().await).is_empty());
    assert!(!redis.keys().is_empty(), "the cart lived in Redis");
}

//! The orders service through its real router on 127.0.0.1:0, with the users and products
//! services faked at the HTTP level (wiremock, speaking `contracts` types) and tokens from
//! `kit::testing::TestAuth`: one test per branch of the checkout saga, the recovery worker's
//! part in them, the admin's status changes, and snapshots of the public answers
//! (`tests/snapshots/`, ids and times redacted), the same on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::Mutex;
use std::sync::mpsc as blocking;
use std::time::{Duration, Instant};

use contracts::Money;
use contracts::products::{
    LookupRequest, LookupResponse, ProductInfo, ReleaseResponse, Reservation, ReservationConflict,
    ReservationStatus, ReserveRequest, ReservedItem, Shortage,
};
use contracts::users::{AddressView, ServiceTokenResponse};
use kit::address::PostalAddress;
use kit::config::{ClientConfig, HttpConfig};
use kit::testing::{Backend, TestAuth, TestDatabase};
use orders::config::RecoveryConfig;
use orders::domain::{OrderStatus, PricedLine, Totals};
use orders::store::{NewOrder, OrderStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BUYER: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0b01);
const OTHER_BUYER: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0b02);
const ADMIN: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0ad1);
const MUG: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0001);
const TEA: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0002);
/// Deleted: still known to products, not for sale.
const GONE: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0003);
/// Never existed.
const GHOST: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0004);
/// The buyer's saved address.
const HOME: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0a01);
/// Someone else's saved address (users answers 404 for it, as for any address not the caller's).
const NOT_MINE: Uuid = Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0a02);

const ABANDONED: &str =
    "checkout could not be completed (the products service did not answer); nothing was charged";

kit::on_both_backends!(
    a_quote_prices_and_taxes_like_the_order_and_records_nothing,
    a_placed_order_is_confirmed_with_its_stock_held,
    short_stock_is_409_naming_the_products_and_the_order_is_cancelled,
    a_product_not_for_sale_is_422_and_nothing_is_recorded,
    whole_quantities_written_with_a_decimal_point_are_accepted,
    a_saved_address_that_is_not_the_buyers_is_422_and_nothing_is_recorded,
    users_failing_is_503_and_nothing_is_recorded,
    a_failing_lookup_is_503_and_nothing_is_recorded,
    a_failing_reservation_is_503_and_the_order_is_cancelled_and_released,
    a_lost_reservation_answer_is_503_and_the_order_is_cancelled_and_released,
    when_the_release_fails_too_recovery_releases_later_and_never_confirms,
    a_reservation_released_meanwhile_is_409_and_the_order_is_never_confirmed,
    an_order_cancelled_while_its_stock_is_reserved_is_409_and_its_stock_released,
    replaying_a_key_with_the_same_body_returns_the_order_and_takes_no_more_stock,
    a_key_reused_for_another_order_is_422,
    a_replay_while_the_first_request_is_pending_is_503_then_the_order,
    an_admin_confirms_a_pending_order_only_while_its_stock_is_held,
    buyers_list_and_cancel_their_own_orders,
    admins_see_sales_stats,
);

// ---------------------------------------------------------------------------------------------
// The app and its fakes

struct TestApp {
    base: String,
    http: reqwest::Client,
    users: MockServer,
    products: MockServer,
    /// The token orders presents to products (minted by the fake users service).
    service_token: String,
    buyer: String,
    other_buyer: String,
    admin: String,
    recovery: orders::RecoveryHandle,
    /// A second handle on the orders database, to stage what a request cannot (a pending order
    /// left by a dead process, a cancel landing mid-saga).
    store: OrderStore,
    shutdown: CancellationToken,
    _auth: TestAuth,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The orders service with generous client timeouts (tests that hold an answer back stay
/// within them).
async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_timeout(backend, Duration::from_secs(10)).await
}

/// The orders service whose calls to users and products time out after `request_timeout`; its
/// recovery worker runs only when a test says so.
async fn spawn_app_with_timeout(backend: Backend, request_timeout: Duration) -> TestApp {
    kit::telemetry::init("orders-test");
    let auth = TestAuth::start().await;
    let users = MockServer::start().await;
    let products = MockServer::start().await;
    let service_token = auth.service("orders");
    let buyer = auth.customer(BUYER);

    Mock::given(method("GET"))
        .and(path(kit::auth::JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(auth.jwks()))
        .mount(&users)
        .await;
    Mock::given(method("POST"))
        .and(path("/internal/v1/auth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(ServiceTokenResponse::bearer(service_token.clone(), 900)),
        )
        .mount(&users)
        .await;
    // The buyer's address, read with the buyer's own token; any other answers 404, as users does.
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/users/me/addresses/{HOME}")))
        .and(header("authorization", format!("Bearer {buyer}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(home()))
        .with_priority(2)
        .mount(&users)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/v1/users/me/addresses/"))
        .respond_with(problem(kit::ApiError::not_found("no such address among yours")))
        .with_priority(3)
        .mount(&users)
        .await;
    Mock::given(method("POST"))
        .and(path("/internal/v1/products/lookup"))
        .and(header("authorization", format!("Bearer {service_token}")))
        .respond_with(lookup)
        .with_priority(2)
        .mount(&products)
        .await;

    let db = TestDatabase::new(backend, "orders_api").await;
    let config = orders::OrdersConfig {
        http: HttpConfig::with_listen("127.0.0.1:0".parse().expect("address")),
        database: db.config.clone(),
        users_url: users.uri(),
        products_url: products.uri(),
        tax_rate_bp: 825,
        client: ClientConfig {
            request_timeout_ms: request_timeout.as_millis() as u64,
            retries: 1,
            ..ClientConfig::default()
        },
        service_client_secret: "orders-secret-for-tests-0123456789".into(),
        recovery: RecoveryConfig { enabled: false, retry_backoff_ms: 0, ..RecoveryConfig::default() },
        ..orders::OrdersConfig::default()
    };
    let app = orders::Application::build(config).await.expect("orders starts");
    let base = format!("http://{}", app.local_addr());
    let recovery = app.recovery_handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    let store = OrderStore::new(kit::db::connect(&db.config).await.unwrap());
    TestApp {
        base,
        http: reqwest::Client::new(),
        users,
        products,
        service_token,
        buyer,
        other_buyer: auth.customer(OTHER_BUYER),
        admin: auth.admin(ADMIN),
        recovery,
        store,
        shutdown,
        _auth: auth,
        _db: db,
    }
}

fn home() -> AddressView {
    AddressView {
        id: HOME,
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        state: Some("IL".into()),
        postal_code: "62701".into(),
        country: "US".into(),
        is_default: true,
        created_at: "2026-11-01T09:30:00Z".parse().unwrap(),
        updated_at: "2026-11-01T09:30:00Z".parse().unwrap(),
    }
}

/// The catalogue products knows.
fn catalogue() -> Vec<ProductInfo> {
    let product = |id, sku: &str, name: &str, cents, deleted| ProductInfo {
        id,
        sku: sku.into(),
        name: name.into(),
        price: Money::new(cents, "USD"),
        deleted,
        image: None,
    };
    vec![
        product(MUG, "MUG-001", "Enamel Mug", 1250, false),
        product(TEA, "TEA-001", "Green Tea", 499, false),
        product(GONE, "OLD-001", "Discontinued Kettle", 3000, true),
    ]
}

/// Products' lookup over [`catalogue`].
fn lookup(request: &Request) -> ResponseTemplate {
    let asked: LookupRequest = request.body_json().unwrap();
    let known = catalogue();
    let items = known.iter().filter(|p| asked.ids.contains(&p.id)).cloned().collect();
    let missing = asked.ids.iter().filter(|id| !known.iter().any(|p| p.id == **id)).copied().collect();
    ResponseTemplate::new(200).set_body_json(LookupResponse { items, missing })
}

/// Products holding a reservation: the answer to the request it is given.
fn held(request: &Request) -> ResponseTemplate {
    let asked: ReserveRequest = request.body_json().unwrap();
    ResponseTemplate::new(201).set_body_json(Reservation {
        order_id: asked.order_id,
        status: ReservationStatus::Held,
        items: asked
            .items
            .iter()
            .map(|i| ReservedItem { product_id: i.product_id, quantity: i.quantity })
            .collect(),
    })
}

/// Products releasing an order's stock.
fn released(request: &Request) -> ResponseTemplate {
    let order_id = order_in_path(request);
    ResponseTemplate::new(200).set_body_json(ReleaseResponse {
        order_id,
        status: ReservationStatus::Released,
        released_now: true,
    })
}

/// An order's reservation in `status`.
fn reservation_in(status: ReservationStatus) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        ResponseTemplate::new(200).set_body_json(Reservation {
            order_id: order_in_path(request),
            status,
            items: vec![],
        })
    }
}

fn order_in_path(request: &Request) -> Uuid {
    let segments: Vec<&str> = request.url.path().split('/').collect();
    segments[4].parse().unwrap()
}

/// A problem+json answer, as kit writes it.
fn problem(error: kit::ApiError) -> ResponseTemplate {
    ResponseTemplate::new(error.status().as_u16())
        .set_body_raw(serde_json::to_vec(&error.body()).unwrap(), "application/problem+json")
}

/// A reservation's 409 with its reason, as products answers it.
fn conflict(reason: ReservationConflict) -> ResponseTemplate {
    problem(kit::ApiError::conflict("refused").with_extra(serde_json::to_value(reason).unwrap()))
}

/// A reservation answer held back: the order id is reported when the request arrives, and the
/// answer (held) leaves only when the test opens the gate. It blocks the fake products
/// service's own thread, which is fine while orders waits on this very answer.
struct Gate {
    arrived: mpsc::UnboundedSender<Uuid>,
    open: Mutex<blocking::Receiver<()>>,
}

impl Respond for Gate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: ReserveRequest = request.body_json().unwrap();
        self.arrived.send(asked.order_id).unwrap();
        self.open.lock().unwrap().recv_timeout(Duration::from_secs(30)).unwrap();
        held(request)
    }
}

/// A [`Gate`], the receiver of the ids it reports, and the sender that opens it.
fn gate() -> (Gate, mpsc::UnboundedReceiver<Uuid>, blocking::Sender<()>) {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let (opener, open) = blocking::channel();
    (Gate { arrived, open: Mutex::new(open) }, arrivals, opener)
}

/// The products endpoints orders calls.
#[derive(Debug, Clone, Copy)]
enum Products {
    Lookup,
    Reserve,
    Release,
    ReservationState,
}

impl Products {
    fn method(self) -> &'static str {
        match self {
            Products::ReservationState => "GET",
            _ => "POST",
        }
    }

    fn path_regex(self) -> &'static str {
        match self {
            Products::Lookup => "^/internal/v1/products/lookup$",
            Products::Reserve => "^/internal/v1/reservations$",
            Products::Release => "^/internal/v1/reservations/[0-9a-f-]{36}/release$",
            Products::ReservationState => "^/internal/v1/reservations/[0-9a-f-]{36}$",
        }
    }

    fn is(self, request: &Request) -> bool {
        let path = request.url.path();
        let order = |rest: &str| rest.parse::<Uuid>().is_ok();
        request.method.as_str() == self.method()
            && match self {
                Products::Lookup => path == "/internal/v1/products/lookup",
                Products::Reserve => path == "/internal/v1/reservations",
                Products::Release => path
                    .strip_prefix("/internal/v1/reservations/")
                    .and_then(|rest| rest.strip_suffix("/release"))
                    .is_some_and(order),
                Products::ReservationState => {
                    path.strip_prefix("/internal/v1/reservations/").is_some_and(order)
                }
            }
    }
}

impl TestApp {
    /// Products answers `endpoint` (called as this service: its token) with `answer`.
    async fn products_answer(&self, endpoint: Products, answer: impl Respond + 'static) {
        self.products_mock(endpoint, answer).mount(&self.products).await;
    }

    /// Products answers the next `times` calls of `endpoint` with `answer`, over what else
    /// answers it. (Not a scoped mock: wiremock 0.6 reorders its mocks by priority as it
    /// serves, so dropping a scoped mock's guard after a request can unmount another one.)
    async fn products_answer_next(&self, endpoint: Products, times: u64, answer: impl Respond + 'static) {
        self.products_mock(endpoint, answer)
            .with_priority(1)
            .up_to_n_times(times)
            .mount(&self.products)
            .await;
    }

    fn products_mock(&self, endpoint: Products, answer: impl Respond + 'static) -> Mock {
        Mock::given(method(endpoint.method()))
            .and(path_regex(endpoint.path_regex()))
            .and(header("authorization", format!("Bearer {}", self.service_token)))
            .respond_with(answer)
    }

    /// The requests products received at `endpoint`.
    async fn products_received(&self, endpoint: Products) -> Vec<Request> {
        self.products.received_requests().await.unwrap().into_iter().filter(|r| endpoint.is(r)).collect()
    }

    /// How often products was asked to release `order_id`'s stock.
    async fn releases_of(&self, order_id: &str) -> usize {
        let release = format!("/internal/v1/reservations/{order_id}/release");
        self.products_received(Products::Release).await.iter().filter(|r| r.url.path() == release).count()
    }

    async fn send(&self, verb: Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.http.request(verb, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Places `body` as the buyer, with `key` as its Idempotency-Key.
    async fn place(
        &self,
        body: &Value,
        key: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request =
            self.http.post(format!("{}/api/v1/orders", self.base)).bearer_auth(&self.buyer).json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        if !status.is_success() {
            assert_eq!(headers["content-type"], "application/problem+json", "{status}");
        }
        (status, response.json().await.unwrap(), headers)
    }

    async fn json(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self.send(Method::GET, path, token, None).await;
        (response.status(), response.json().await.unwrap())
    }

    /// An order as an admin sees it.
    async fn order(&self, id: &str) -> Value {
        let (status, order) = self.json(&format!("/api/v1/orders/{id}"), &self.admin).await;
        assert_eq!(status, 200, "{order}");
        order
    }

    /// How many orders are recorded, for anyone.
    async fn orders_recorded(&self) -> u64 {
        self.json("/api/v1/orders", &self.admin).await.1["total"].as_u64().unwrap()
    }

    /// A pending order, recorded as a checkout that died before it reserved leaves it.
    async fn pending_order(&self) -> String {
        let line = PricedLine::new(MUG, "MUG-001".into(), "Enamel Mug".into(), 1250, 1).unwrap();
        let totals = Totals::of(std::slice::from_ref(&line), 825).unwrap();
        let home = home();
        let order = self
            .store
            .create_pending(NewOrder {
                user_id: BUYER,
                currency: "USD".into(),
                lines: vec![line],
                totals,
                shipping_address: PostalAddress {
                    line1: home.line1,
                    line2: home.line2,
                    city: home.city,
                    state: home.state,
                    postal_code: home.postal_code,
                    country: home.country,
                },
                idempotency_key: None,
                fingerprint: "x".repeat(64),
            })
            .await
            .unwrap();
        order.id.to_string()
    }
}

fn order_body(lines: &[(Uuid, i64)]) -> Value {
    let items: Vec<Value> = lines.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect();
    json!({"items": items, "shipping_address_id": HOME})
}

/// Snapshots a public answer with its ids, times and request id redacted.
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".id" => "[order id]",
            ".order_id" => "[order id]",
            ".created_at" => "[time]",
            ".updated_at" => "[time]",
            ".request_id" => "[request id]",
            ".items[].id" => "[order id]",
            ".items[].created_at" => "[time]",
            ".items[].updated_at" => "[time]",
        })
    };
}

// ---------------------------------------------------------------------------------------------
// The saga, branch by branch

/// A checkout page's review: the same money as the order would have, nothing reserved or
/// recorded; bounds and unknown products refused as placing would refuse them.
async fn a_quote_prices_and_taxes_like_the_order_and_records_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let items = json!({"items": [{"product_id": TEA, "quantity": 1}, {"product_id": MUG, "quantity": 2}]});
    let response = app.send(Method::POST, "/api/v1/orders/quote", &app.buyer, Some(items)).await;
    assert_eq!(response.status(), 200);
    let quote: Value = response.json().await.unwrap();
    // 2 × 12.50 + 4.99 = 29.99; tax 8.25 % = 2.474… → 2.47, as the placed order has it.
    assert_eq!(
        (&quote["subtotal"]["amount"], &quote["tax"]["amount"], &quote["total"]["amount"]),
        (&json!(2999), &json!(247), &json!(3246))
    );
    assert_eq!(quote["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.orders_recorded().await, 0, "nothing recorded");
    assert!(app.products_received(Products::Reserve).await.is_empty(), "nothing reserved");

    let gone = json!({"items": [{"product_id": GONE, "quantity": 1}]});
    assert_eq!(app.send(Method::POST, "/api/v1/orders/quote", &app.buyer, Some(gone)).await.status(), 422);
    let too_many = json!({"items": [{"product_id": TEA, "quantity": 1000}]});
    assert_eq!(
        app.send(Method::POST, "/api/v1/orders/quote", &app.buyer, Some(too_many)).await.status(),
        400
    );
    let empty = json!({"items": []});
    assert_eq!(app.send(Method::POST, "/api/v1/orders/quote", &app.buyer, Some(empty)).await.status(), 400);
    let anonymous =
        app.http.post(format!("{}/api/v1/orders/quote", app.base)).json(&json!({"items": []})).send();
    assert_eq!(anonymous.await.unwrap().status(), 401);
}

async fn a_placed_order_is_confirmed_with_its_stock_held(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;

    let (status, order, headers) = app.place(&order_body(&[(TEA, 1), (MUG, 2)]), Some("first")).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/api/v1/orders/{id}"));
    assert_eq!(order["status"], "confirmed");
    // 2 × 12.50 + 4.99 = 29.99; tax 8.25 % = 2.474… → 2.47.
    assert_eq!(
        (&order["subtotal"]["amount"], &order["tax"]["amount"], &order["total"]["amount"]),
        (&json!(2999), &json!(247), &json!(3246))
    );
    snapshot!("placed_order", &order);
    assert_eq!(app.json(&format!("/api/v1/orders/{id}"), &app.buyer).await, (StatusCode::OK, order.clone()));

    let lookups = app.products_received(Products::Lookup).await;
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].body_json::<LookupRequest>().unwrap(), LookupRequest { ids: vec![MUG, TEA] });
    let reservations = app.products_received(Products::Reserve).await;
    assert_eq!(reservations.len(), 1, "one reservation, keyed by the order");
    let reserved: ReserveRequest = reservations[0].body_json().unwrap();
    assert_eq!(reserved.order_id.to_string(), id);
    let lines: Vec<(Uuid, i64)> = reserved.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    assert_eq!(lines, [(MUG, 2), (TEA, 1)]);
    assert_eq!(app.releases_of(id).await, 0);
}

async fn short_stock_is_409_naming_the_products_and_the_order_is_cancelled(backend: Backend) {
    let app = spawn_app(backend).await;
    let short = vec![Shortage { product_id: MUG, requested: 3, available: 1 }];
    app.products_answer(Products::Reserve, conflict(ReservationConflict::Short { short: short.clone() }))
        .await;
    app.products_answer(Products::Release, released).await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 3)]), Some("short")).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["short"], serde_json::to_value(&short).unwrap());
    snapshot!("insufficient_stock", &problem);
    let id = problem["order_id"].as_str().unwrap();
    let order = app.order(id).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["status_reason"], "insufficient stock: Enamel Mug (asked 3, available 1)");

    // Nothing was taken, so nothing is released, now or by the recovery worker.
    let settled = app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(settled, orders::Settled::default());
    assert_eq!(app.releases_of(id).await, 0);

    // The key replays the order as it was settled.
    let (status, replayed, _) = app.place(&order_body(&[(MUG, 3)]), Some("short")).await;
    assert_eq!(
        (status, &replayed["id"], &replayed["status"]),
        (StatusCode::OK, &json!(id), &json!("cancelled"))
    );
    assert_eq!(app.products_received(Products::Reserve).await.len(), 1);
}

async fn a_product_not_for_sale_is_422_and_nothing_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 1), (GONE, 1), (GHOST, 2)]), None).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["products"], json!([GONE, GHOST]));
    snapshot!("not_for_sale", &problem);
    assert_eq!(app.orders_recorded().await, 0);
    assert!(app.products_received(Products::Reserve).await.is_empty());
}

/// JSON Schema's `integer` (the document's type for a quantity) takes `2.0`, so the server does.
async fn whole_quantities_written_with_a_decimal_point_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;
    let body = json!({"items": [{"product_id": MUG, "quantity": 2.0}], "shipping_address_id": HOME});
    let (status, order, _) = app.place(&body, None).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["items"][0]["quantity"], 2);
    for fraction in [json!(2.5), json!(1e300), json!(-0.5)] {
        let body = json!({"items": [{"product_id": MUG, "quantity": fraction}], "shipping_address_id": HOME});
        let (status, problem, _) = app.place(&body, None).await;
        assert_eq!(
            (status, &problem["errors"][0]["field"]),
            (StatusCode::BAD_REQUEST, &json!("items[0].quantity"))
        );
    }
}

async fn a_saved_address_that_is_not_the_buyers_is_422_and_nothing_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"items": [{"product_id": MUG, "quantity": 1}], "shipping_address_id": NOT_MINE});
    let (status, problem, _) = app.place(&body, None).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["detail"], "shipping_address_id is not one of your addresses");
    assert_eq!(app.orders_recorded().await, 0);
    assert!(app.products.received_requests().await.unwrap().is_empty(), "nothing priced or reserved");
}

async fn users_failing_is_503_and_nothing_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/users/me/addresses/{HOME}")))
        .respond_with(problem(kit::ApiError::internal(anyhow::anyhow!("down"))))
        .with_priority(1)
        .mount(&app.users)
        .await;
    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().starts_with("could not read the shipping address"),
        "{problem}"
    );
    assert_eq!(app.orders_recorded().await, 0);
    assert!(app.products.received_requests().await.unwrap().is_empty(), "nothing priced or reserved");
}

async fn a_failing_lookup_is_503_and_nothing_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer_next(Products::Lookup, 1, problem(kit::ApiError::internal(anyhow::anyhow!("down"))))
        .await;
    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["detail"], "could not price the order: products answered 500 Internal Server Error");
    assert_eq!(app.products_received(Products::Lookup).await.len(), 1);
    assert_eq!(app.orders_recorded().await, 0);
    assert!(app.products_received(Products::Reserve).await.is_empty());
}

async fn a_failing_reservation_is_503_and_the_order_is_cancelled_and_released(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, problem(kit::ApiError::internal(anyhow::anyhow!("bug")))).await;
    app.products_answer(Products::Release, released).await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 503, "{problem}");
    snapshot!("abandoned", &problem);
    let id = problem["order_id"].as_str().unwrap();
    let order = app.order(id).await;
    assert_eq!((&order["status"], &order["status_reason"]), (&json!("cancelled"), &json!(ABANDONED)));
    assert_eq!(app.releases_of(id).await, 1, "whatever products may hold is released at once");
    let settled = app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(settled, orders::Settled::default(), "nothing is left for the recovery worker");
}

async fn a_lost_reservation_answer_is_503_and_the_order_is_cancelled_and_released(backend: Backend) {
    let timeout = Duration::from_millis(1_000);
    let app = spawn_app_with_timeout(backend, timeout).await;
    // Products holds the stock, but its answer comes too late for orders to hear it.
    app.products_answer(Products::Reserve, move |request: &Request| held(request).set_delay(timeout * 3))
        .await;
    app.products_answer(Products::Release, released).await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 503, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("did not answer within 1000 ms"), "{problem}");
    let id = problem["order_id"].as_str().unwrap();
    assert_eq!(app.order(id).await["status"], "cancelled");
    assert_eq!(app.releases_of(id).await, 1, "the stock products may hold is released");
    assert!(!app.products_received(Products::Reserve).await.is_empty());
    assert_eq!(app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap(), orders::Settled::default());
    assert_eq!(app.order(id).await["status"], "cancelled", "never confirmed");
}

async fn when_the_release_fails_too_recovery_releases_later_and_never_confirms(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, problem(kit::ApiError::internal(anyhow::anyhow!("bug")))).await;
    // Products claims to hold the stock: the worker must still never confirm a cancelled order.
    app.products_answer(Products::ReservationState, reservation_in(ReservationStatus::Held)).await;
    app.products_answer(Products::Release, released).await;
    app.products_answer_next(Products::Release, 1, problem(kit::ApiError::internal(anyhow::anyhow!("bug"))))
        .await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 503, "{problem}");
    let id = problem["order_id"].as_str().unwrap().to_owned();
    assert_eq!(app.order(&id).await["status"], "cancelled");
    assert_eq!(app.releases_of(&id).await, 1, "tried at once, and failed");

    let settled = app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(settled, orders::Settled { released: 1, ..Default::default() });
    assert_eq!(app.releases_of(&id).await, 2);
    assert_eq!(app.order(&id).await["status"], "cancelled");
    assert!(
        app.products_received(Products::ReservationState).await.is_empty(),
        "a cancelled order is not weighed for confirming"
    );
    assert_eq!(app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap(), orders::Settled::default());
    assert_eq!(app.releases_of(&id).await, 2, "released once for good");
}

async fn a_reservation_released_meanwhile_is_409_and_the_order_is_never_confirmed(backend: Backend) {
    let app = spawn_app(backend).await;
    // The order was given up (by the recovery worker of another replica) before its
    // reservation arrived: products refuses it.
    app.products_answer(Products::Reserve, conflict(ReservationConflict::Released)).await;
    app.products_answer(Products::ReservationState, reservation_in(ReservationStatus::Released)).await;
    app.products_answer(Products::Release, released).await;

    let (status, problem, _) = app.place(&order_body(&[(MUG, 1)]), None).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["detail"], "the order was cancelled while it was being placed");
    let listed = app.json("/api/v1/orders", &app.buyer).await.1;
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(app.order(&id).await["status"], "confirmed");
    let settled = app.recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
    assert_eq!(settled, orders::Settled { cancelled: 1, ..Default::default() });
    assert_eq!(app.order(&id).await["status"], "cancelled");
}

async fn an_order_cancelled_while_its_stock_is_reserved_is_409_and_its_stock_released(backend: Backend) {
    let app = spawn_app(backend).await;
    let (gate, mut arrivals, open) = gate();
    app.products_answer(Products::Reserve, gate).await;
    app.products_answer(Products::Release, released).await;

    let placing = {
        let (http, base, buyer) = (app.http.clone(), app.base.clone(), app.buyer.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/orders"))
                .bearer_auth(buyer)
                .json(&order_body(&[(MUG, 1)]))
                .send()
                .await
        })
    };
    let id = arrivals.recv().await.unwrap();
    // An admin's cancel lands while products is reserving.
    app.store
        .transition(id, &OrderStatus::cancellable(), OrderStatus::Cancelled, Some("cancelled by an admin"))
        .await
        .unwrap()
        .unwrap();
    open.send(()).unwrap();

    let response = placing.await.unwrap().unwrap();
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["detail"], "the order was cancelled while it was being placed");
    assert_eq!(app.order(&id.to_string()).await["status"], "cancelled");
    assert_eq!(app.releases_of(&id.to_string()).await, 1, "the stock held for a cancelled order goes back");
}

async fn replaying_a_key_with_the_same_body_returns_the_order_and_takes_no_more_stock(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;
    let body = order_body(&[(MUG, 1)]);
    let (status, first, _) = app.place(&body, Some("once")).await;
    assert_eq!(status, 201, "{first}");
    let (status, replayed, headers) = app.place(&body, Some("once")).await;
    assert_eq!(status, 200, "{replayed}");
    assert!(headers.get("location").is_none());
    assert_eq!(replayed, first);
    assert_eq!(app.products_received(Products::Reserve).await.len(), 1, "no more stock taken");
    assert_eq!(app.orders_recorded().await, 1);
}

async fn a_key_reused_for_another_order_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;
    let (status, _, _) = app.place(&order_body(&[(MUG, 1)]), Some("reused")).await;
    assert_eq!(status, 201);
    let (status, problem, _) = app.place(&order_body(&[(MUG, 2)]), Some("reused")).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("Idempotency-Key was used for a different order"));
    assert_eq!(app.products_received(Products::Reserve).await.len(), 1);
    assert_eq!(app.orders_recorded().await, 1);
}

async fn a_replay_while_the_first_request_is_pending_is_503_then_the_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let (gate, mut arrivals, open) = gate();
    app.products_answer(Products::Reserve, gate).await;
    let body = order_body(&[(MUG, 1)]);
    let first = {
        let (http, base, buyer, body) = (app.http.clone(), app.base.clone(), app.buyer.clone(), body.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/orders"))
                .bearer_auth(buyer)
                .header("idempotency-key", "in-flight")
                .json(&body)
                .send()
                .await
        })
    };
    let id = arrivals.recv().await.unwrap();

    let started = Instant::now();
    let (status, problem, _) = app.place(&body, Some("in-flight")).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["order_id"], json!(id), "a pending order is not shown as placed");
    assert!(started.elapsed() >= Duration::from_secs(4), "the replay waited for the first request");

    open.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), 201);
    let (status, replayed, _) = app.place(&body, Some("in-flight")).await;
    assert_eq!((status, &replayed["status"]), (StatusCode::OK, &json!("confirmed")));
    assert_eq!(app.products_received(Products::Reserve).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// After checkout

async fn an_admin_confirms_a_pending_order_only_while_its_stock_is_held(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.pending_order().await;
    let path = format!("/api/v1/orders/{id}/status");
    let confirm = || app.send(Method::PATCH, &path, &app.admin, Some(json!({"status": "confirmed"})));

    app.products_answer_next(
        Products::ReservationState,
        1,
        problem(kit::ApiError::not_found("never reserved")),
    )
    .await;
    let refused = confirm().await;
    assert_eq!(refused.status(), 409);
    let problem_body: Value = refused.json().await.unwrap();
    assert!(problem_body["detail"].as_str().unwrap().contains("stock is not held"), "{problem_body}");

    app.products_answer_next(
        Products::ReservationState,
        1,
        problem(kit::ApiError::internal(anyhow::anyhow!("bug"))),
    )
    .await;
    assert_eq!(confirm().await.status(), 503);
    assert_eq!(app.order(&id).await["status"], "pending");

    let customer = app.send(Method::PATCH, &path, &app.buyer, Some(json!({"status": "confirmed"}))).await;
    assert_eq!(customer.status(), 403);

    app.products_answer(Products::ReservationState, reservation_in(ReservationStatus::Held)).await;
    let confirmed = confirm().await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(confirmed.json::<Value>().await.unwrap()["status"], "confirmed");
    let again = confirm().await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["detail"],
        "an order that is confirmed cannot become confirmed"
    );

    for (to, code) in
        [("paid", 200), ("delivered", 409), ("shipped", 200), ("delivered", 200), ("cancelled", 409)]
    {
        let response = app.send(Method::PATCH, &path, &app.admin, Some(json!({"status": to}))).await;
        assert_eq!(response.status(), code, "→ {to}");
    }
    assert_eq!(app.releases_of(&id).await, 0);
}

async fn buyers_list_and_cancel_their_own_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;
    app.products_answer(Products::Release, released).await;
    let mut ids = Vec::new();
    for quantity in 1..=3 {
        let (status, order, _) = app.place(&order_body(&[(MUG, quantity)]), None).await;
        assert_eq!(status, 201);
        ids.push(order["id"].as_str().unwrap().to_owned());
    }

    let (status, page) = app.json("/api/v1/orders?limit=2", &app.buyer).await;
    assert_eq!(status, 200);
    assert_eq!((&page["total"], &page["total_pages"]), (&json!(3), &json!(2)));
    assert_eq!(page["items"][0]["id"], json!(ids[2]), "newest first");
    snapshot!("order_page", &page);

    let (_, first) = app.json("/api/v1/orders?cursor=&limit=2", &app.buyer).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, last) = app.json(&format!("/api/v1/orders?cursor={cursor}&limit=2"), &app.buyer).await;
    assert_eq!(last["next_cursor"], Value::Null);
    assert_eq!(last["items"][0]["id"], json!(ids[0]));
    snapshot!("order_cursor_page_last", &last);

    let (_, theirs) = app.json("/api/v1/orders", &app.other_buyer).await;
    assert_eq!(theirs["total"], 0, "another buyer sees none of them");
    let (status, _) = app.json(&format!("/api/v1/orders/{}", ids[0]), &app.other_buyer).await;
    assert_eq!(status, 404);
    let (status, _) = app.json(&format!("/api/v1/orders?user_id={BUYER}"), &app.other_buyer).await;
    assert_eq!(status, 403);
    let (_, by_admin) =
        app.json(&format!("/api/v1/orders?user_id={BUYER}&status=confirmed"), &app.admin).await;
    assert_eq!(by_admin["total"], 3);

    let cancel = format!("/api/v1/orders/{}/cancel", ids[0]);
    assert_eq!(app.send(Method::POST, &cancel, &app.other_buyer, None).await.status(), 404);
    let cancelled = app.send(Method::POST, &cancel, &app.buyer, None).await;
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    snapshot!("cancelled_order", &cancelled);
    assert_eq!(app.releases_of(&ids[0]).await, 1, "its stock goes back");
    let again = app.send(Method::POST, &cancel, &app.buyer, None).await;
    assert_eq!(again.status(), 409);
    assert_eq!(app.releases_of(&ids[0]).await, 1, "exactly once");
}

async fn admins_see_sales_stats(backend: Backend) {
    let app = spawn_app(backend).await;
    app.products_answer(Products::Reserve, held).await;
    app.products_answer(Products::Release, released).await;
    for lines in [&[(MUG, 1)][..], &[(MUG, 2), (TEA, 1)], &[(TEA, 3)]] {
        assert_eq!(app.place(&order_body(lines), None).await.0, 201);
    }
    let (_, listed) = app.json("/api/v1/orders?limit=1", &app.buyer).await;
    let newest = listed["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.send(Method::POST, &format!("/api/v1/orders/{newest}/cancel"), &app.buyer, None).await.status(),
        200
    );

    let (status, stats) = app.json("/api/v1/orders/stats", &app.admin).await;
    assert_eq!(status, 200, "{stats}");
    snapshot!("stats", &stats);
    let (status, _) = app.json("/api/v1/orders/stats", &app.buyer).await;
    assert_eq!(status, 403);
    let (status, problem) = app.json("/api/v1/orders/stats?from=yesterday", &app.admin).await;
    assert_eq!((status, &problem["errors"][0]["field"]), (StatusCode::BAD_REQUEST, &json!("from")));
}

// ---------------------------------------------------------------------------------------------
// The document

/// The OpenAPI document says what the server does: every problem answer as problem+json with
/// kit's `ProblemBody`, one way of naming the shipping address, the address rules, the dates
/// stats reads. (tests/fuzz/fuzz.sh checks the server against it.)
#[tokio::test]
async fn the_document_describes_the_answers_and_the_input_the_server_takes() {
    let app = spawn_app(Backend::Sqlite).await;
    let document: Value =
        app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let operation = |path: &str, verb: &str| document["paths"][path][verb].clone();
    let problem_ref = json!({"$ref": "#/components/schemas/ProblemBody"});
    for (path, verb, statuses) in [
        ("/api/v1/orders", "post", &["400", "401", "409", "413", "415", "422", "503"][..]),
        ("/api/v1/orders", "get", &["400", "401", "403"]),
        ("/api/v1/orders/{id}", "get", &["400", "401", "404"]),
        ("/api/v1/orders/{id}/cancel", "post", &["400", "401", "404", "409"]),
        ("/api/v1/orders/{id}/status", "patch", &["400", "401", "403", "404", "409", "413", "415", "503"]),
        ("/api/v1/orders/stats", "get", &["400", "401", "403", "422"]),
    ] {
        let responses = &operation(path, verb)["responses"];
        for status in statuses {
            let schema = &responses[status]["content"]["application/problem+json"]["schema"];
            assert_eq!(schema, &problem_ref, "{verb} {path} {status}");
        }
    }

    let body = &operation("/api/v1/orders", "post")["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["$ref"], "#/components/schemas/PlaceOrderBody");
    let naming = &document["components"]["schemas"]["PlaceOrderBody"]["allOf"][1]["oneOf"];
    assert_eq!(
        (&naming[0]["required"], &naming[1]["required"]),
        (&json!(["shipping_address_id"]), &json!(["shipping_address"]))
    );
    let address = &document["components"]["schemas"]["AddressBody"];
    assert_eq!(
        (&address["properties"]["line1"]["maxLength"], &address["properties"]["postal_code"]["maxLength"]),
        (&json!(200), &json!(20))
    );
    assert!(address["properties"]["country"]["enum"].as_array().unwrap().contains(&json!("DE")));
    assert_eq!(address["additionalProperties"], false);

    let list = operation("/api/v1/orders", "get");
    let page = list["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "page").unwrap();
    assert_eq!((&page["schema"]["minimum"], &page["schema"]["maximum"]), (&json!(1), &json!(10001)));
    let shapes = &document["components"]["schemas"]["OrderList"]["oneOf"];
    assert_eq!(shapes.as_array().unwrap().len(), 2, "an offset page or a keyset page");
    let stats = operation("/api/v1/orders/stats", "get");
    let from = stats["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "from").unwrap();
    let formats: Vec<&Value> =
        from["schema"]["oneOf"].as_array().unwrap().iter().map(|s| &s["format"]).collect();
    assert_eq!(formats, [&json!("date"), &json!("date-time")]);
}

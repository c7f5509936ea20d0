//! Checkout end to end through the gateway of the embedded shop: the happy path, idempotency,
//! the last units under contention, and dependencies that go down mid-run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use std::time::{Duration, Instant};

use common::TestShop;
use mercato::embedded::{Member, Overrides};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The shop with a rate limit that 50 buyers behind one address cannot hit, short client
/// timeouts and recovery passes run by the tests; everything else as `mercato up` runs it.
async fn start() -> TestShop {
    let overrides = Overrides {
        gateway: |c| c.rate_limit.enabled = false,
        orders: |c| {
            c.tax_rate_bp = 825;
            c.client.request_timeout_ms = 2_000;
            c.client.retries = 1;
            c.client.breaker_cooldown_ms = 200;
            // Tests run recovery passes themselves, and retry what failed at once.
            c.recovery.enabled = false;
            c.recovery.retry_backoff_ms = 0;
        },
        ..Overrides::default()
    };
    common::start(overrides).await
}

trait Shopping {
    async fn product(&self, name: &str, cents: i64, stock: i64) -> String;
    async fn stock(&self, product: &str) -> i64;
    async fn order(&self, token: &str, body: &Value, key: Option<&str>) -> reqwest::Response;
}

impl Shopping for TestShop {
    async fn product(&self, name: &str, cents: i64, stock: i64) -> String {
        self.create_product(name, "Kitchen", cents, stock).await["id"].as_str().unwrap().to_owned()
    }

    async fn stock(&self, product: &str) -> i64 {
        let p: Value = self
            .send(Method::GET, &format!("/api/v1/products/{product}"), None, None)
            .await
            .json()
            .await
            .unwrap();
        p["stock"].as_i64().unwrap()
    }

    async fn order(&self, token: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut request =
            self.http.post(format!("{}/api/v1/orders", self.base)).bearer_auth(token).json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }
}

fn inline_address() -> Value {
    json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"})
}

#[tokio::test]
async fn order_two_products_see_it_hide_it_cancel_it() {
    let t = start().await;
    let (mug, tea) = (t.product("Mug", 1250, 5).await, t.product("Tea", 499, 5).await);
    let ada = t.customer("ada@example.com").await;
    let address: Value = t
        .send(Method::POST, "/api/v1/users/me/addresses", Some(json!({"line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"})), Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    let body = json!({"items": [{"product_id": mug, "quantity": 2}, {"product_id": tea, "quantity": 1}], "shipping_address_id": address["id"]});
    let placed = t.order(&ada, &body, Some("ada-1")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["subtotal"], json!({"amount": 2999, "currency": "USD"}));
    assert_eq!(order["tax"]["amount"], 247, "8.25 % of 29.99, rounded half up");
    assert_eq!(order["total"]["amount"], 3246);
    assert_eq!(order["items"][0]["line_total"]["amount"], 2500);
    assert_eq!(order["shipping_address"]["city"], "London");
    assert_eq!((t.stock(&mug).await, t.stock(&tea).await), (3, 4));

    let id = order["id"].as_str().unwrap();
    let mine: Value = t.send(Method::GET, "/api/v1/orders", None, Some(&ada)).await.json().await.unwrap();
    assert_eq!((mine["total"].as_u64(), mine["items"][0]["id"].as_str()), (Some(1), Some(id)));

    let bob = t.customer("bob@example.com").await;
    assert_eq!(t.send(Method::GET, &format!("/api/v1/orders/{id}"), None, Some(&bob)).await.status(), 404);
    assert_eq!(
        t.send(Method::POST, &format!("/api/v1/orders/{id}/cancel"), None, Some(&bob)).await.status(),
        404
    );
    let bobs: Value = t.send(Method::GET, "/api/v1/orders", None, Some(&bob)).await.json().await.unwrap();
    assert_eq!(bobs["total"], 0);
    let bob_address = t
        .order(
            &bob,
            &json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address_id": address["id"]}),
            None,
        )
        .await;
    assert_eq!(bob_address.status(), 422, "another user's address");

    let cancelled = t.send(Method::POST, &format!("/api/v1/orders/{id}/cancel"), None, Some(&ada)).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "cancelled");
    assert_eq!((t.stock(&mug).await, t.stock(&tea).await), (5, 5), "the stock came back");
    assert_eq!(
        t.send(Method::POST, &format!("/api/v1/orders/{id}/cancel"), None, Some(&ada)).await.status(),
        409
    );
}

#[tokio::test]
async fn idempotent_replay_returns_the_original_and_takes_no_more_stock() {
    let t = start().await;
    let mug = t.product("Mug", 1000, 10).await;
    let ada = t.customer("ada@example.com").await;
    let body = json!({"items": [{"product_id": mug, "quantity": 3}], "shipping_address": inline_address()});
    let first = t.order(&ada, &body, Some("key-1")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = t.order(&ada, &body, Some("key-1")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(t.stock(&mug).await, 7);

    let other = json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address": inline_address()});
    assert_eq!(t.order(&ada, &other, Some("key-1")).await.status(), 422, "same key, different order");

    // Two concurrent requests with one key create one order.
    let (a, b) = tokio::join!(t.order(&ada, &body, Some("key-2")), t.order(&ada, &body, Some("key-2")));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"]);
    assert_eq!(t.stock(&mug).await, 4);
}

#[tokio::test]
async fn bad_checkouts_are_refused_without_taking_stock() {
    let t = start().await;
    let mug = t.product("Mug", 1000, 2).await;
    let ada = t.customer("ada@example.com").await;
    let unknown = json!({"items": [{"product_id": uuid::Uuid::now_v7(), "quantity": 1}], "shipping_address": inline_address()});
    assert_eq!(t.order(&ada, &unknown, None).await.status(), 422);
    t.send(
        Method::DELETE,
        &format!("/api/v1/products/{}", t.product("Gone", 100, 5).await),
        None,
        Some(&t.admin),
    )
    .await;
    let too_many =
        json!({"items": [{"product_id": mug, "quantity": 3}], "shipping_address": inline_address()});
    let short = t.order(&ada, &too_many, None).await;
    assert_eq!(short.status(), 409);
    let problem: Value = short.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("Mug"), "{problem}");
    assert_eq!(t.stock(&mug).await, 2, "no stock taken");
    for bad in [
        json!({"items": [], "shipping_address": inline_address()}),
        json!({"items": [{"product_id": mug, "quantity": 0}], "shipping_address": inline_address()}),
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
        json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address": inline_address(), "tax": 0}),
        json!({"items": [{"product_id": "not-a-uuid", "quantity": 1}], "shipping_address": inline_address()}),
    ] {
        assert_eq!(t.order(&ada, &bad, None).await.status(), 400, "{bad}");
    }
    assert_eq!(t.send(Method::POST, "/api/v1/orders", Some(json!({})), None).await.status(), 401);
    let mine: Value =
        t.send(Method::GET, "/api/v1/orders?status=confirmed", None, Some(&ada)).await.json().await.unwrap();
    assert_eq!(mine["total"], 0);
}

#[tokio::test]
async fn fifty_buyers_of_the_last_ten_units() {
    let t = start().await;
    let last = t.product("Limited Edition", 5000, 10).await;
    let mut buyers = Vec::new();
    for i in 0..50 {
        buyers.push(t.customer(&format!("buyer{i}@example.com")).await);
    }
    let body = json!({"items": [{"product_id": last, "quantity": 1}], "shipping_address": inline_address()});
    let attempts = buyers.iter().map(|token| t.order(token, &body, None));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 40, "{statuses:?}");
    assert_eq!(t.stock(&last).await, 0);
    let confirmed: Value = t
        .send(Method::GET, "/api/v1/orders?status=confirmed", None, Some(&t.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(confirmed["total"], 10);
}

#[tokio::test]
async fn admin_moves_orders_along_the_status_machine_and_reads_stats() {
    let t = start().await;
    let mug = t.product("Mug", 1000, 10).await;
    let ada = t.customer("ada@example.com").await;
    let body = json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address": inline_address()});
    let order: Value = t.order(&ada, &body, None).await.json().await.unwrap();
    let path = format!("/api/v1/orders/{}/status", order["id"].as_str().unwrap());
    let patch = |status: &str| json!({ "status": status });
    assert_eq!(t.send(Method::PATCH, &path, Some(patch("paid")), Some(&ada)).await.status(), 403);
    assert_eq!(
        t.send(Method::PATCH, &path, Some(patch("shipped")), Some(&t.admin)).await.status(),
        409,
        "confirmed cannot skip paid"
    );
    for status in ["paid", "shipped", "delivered"] {
        let moved = t.send(Method::PATCH, &path, Some(patch(status)), Some(&t.admin)).await;
        assert_eq!(moved.status(), 200, "{status}");
    }
    assert_eq!(t.send(Method::PATCH, &path, Some(patch("cancelled")), Some(&t.admin)).await.status(), 409);
    let cancel = format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap());
    assert_eq!(
        t.send(Method::POST, &cancel, None, Some(&ada)).await.status(),
        409,
        "delivered orders stay delivered"
    );
    assert_eq!(t.send(Method::PATCH, &path, Some(patch("lost")), Some(&t.admin)).await.status(), 400);

    t.order(
        &ada,
        &json!({"items": [{"product_id": mug, "quantity": 2}], "shipping_address": inline_address()}),
        None,
    )
    .await;
    let stats: Value = t
        .send(Method::GET, "/api/v1/orders/stats?from=2000-01-01&to=2999-12-31", None, Some(&t.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["orders"], 2);
    assert_eq!(stats["revenue"], json!({"amount": 1083 + 2165, "currency": "USD"}));
    assert_eq!(stats["average_order_value"]["amount"], 1624);
    assert_eq!(
        (stats["by_status"]["delivered"].as_u64(), stats["by_status"]["confirmed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        t.send(Method::GET, "/api/v1/orders/stats?from=yesterday", None, Some(&t.admin)).await.status(),
        400
    );
    assert_eq!(t.send(Method::GET, "/api/v1/orders/stats", None, Some(&ada)).await.status(), 403);
}

#[tokio::test]
async fn products_down_mid_run_answers_503_and_recovery_leaves_no_stock_held() {
    let mut t = start().await;
    let initial = 40;
    let mug = t.product("Mug", 1000, initial).await;
    let ada = t.customer("ada@example.com").await;
    let body = json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address": inline_address()});

    // A confirmed order to cancel while products is down.
    let kept: Value = t.order(&ada, &body, None).await.json().await.unwrap();

    // Checkouts in flight while the products service goes away.
    let in_flight: Vec<_> = (0..20)
        .map(|i| {
            let (http, base, token, body) = (t.http.clone(), t.base.clone(), ada.clone(), body.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 5)).await;
                http.post(format!("{base}/api/v1/orders"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    t.shop.stop(Member::Products).await.unwrap();
    for attempt in in_flight {
        let status = attempt.await.unwrap().unwrap();
        assert!([201, 503].contains(&status), "each checkout either completed or said 503, got {status}");
    }

    // With products down: a clear 503 within the client timeout, never a hang.
    let started = Instant::now();
    let down = t.order(&ada, &body, None).await;
    assert_eq!(down.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    let cancel = t
        .send(
            Method::POST,
            &format!("/api/v1/orders/{}/cancel", kept["id"].as_str().unwrap()),
            None,
            Some(&ada),
        )
        .await;
    assert_eq!(cancel.status(), 200, "the cancel stands; the stock comes back when products does");

    t.shop.restart(Member::Products).await.unwrap();
    // The worker's passes: the first ones may find the circuit to products still open.
    let recovery = t.shop.recovery().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let settled = recovery.settle_once(Some(Duration::ZERO)).await.unwrap();
        if settled.deferred == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "recovery still deferred: {settled:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // No unconfirmed order holds stock: every unit is on the shelf or in a confirmed order.
    let pending: Value = t
        .send(Method::GET, "/api/v1/orders?status=pending&limit=100", None, Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["total"], 0, "nothing left pending");
    let confirmed: Value = t
        .send(Method::GET, "/api/v1/orders?status=confirmed&limit=100", None, Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    let held: i64 = confirmed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["items"][0]["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(t.stock(&mug).await + held, initial);
}

#[tokio::test]
async fn users_service_down_answers_503() {
    let mut t = start().await;
    let mug = t.product("Mug", 1000, 5).await;
    let ada = t.customer("ada@example.com").await;
    let address: Value = t
        .send(
            Method::POST,
            "/api/v1/users/me/addresses",
            Some(json!({"line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"})),
            Some(&ada),
        )
        .await
        .json()
        .await
        .unwrap();
    // Warm the key caches, then take the users service away.
    assert_eq!(t.send(Method::GET, "/api/v1/orders", None, Some(&ada)).await.status(), 200);
    t.shop.stop(Member::Users).await.unwrap();
    let started = Instant::now();
    let response = t
        .order(
            &ada,
            &json!({"items": [{"product_id": mug, "quantity": 1}], "shipping_address_id": address["id"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(t.stock(&mug).await, 5);
}

/// Records a pending order straight in the orders database, as a checkout that died between
/// recording the order and reserving its stock leaves it.
async fn pending_order_without_stock(t: &TestShop, product: &str) -> String {
    use orders::domain::{PricedLine, Totals};
    use orders::store::{NewOrder, OrderStore};
    let database = mercato::embedded::sqlite_in(t.dir.path(), "orders");
    let store = OrderStore::new(kit::db::connect(&database).await.unwrap());
    let line = PricedLine::new(product.parse().unwrap(), "SKU-1".into(), "Mug".into(), 1000, 1).unwrap();
    let totals = Totals::of(std::slice::from_ref(&line), 0).unwrap();
    let order = store
        .create_pending(NewOrder {
            user_id: uuid::Uuid::now_v7(),
            currency: "USD".into(),
            lines: vec![line],
            totals,
            shipping_address: serde_json::from_value(inline_address()).unwrap(),
            idempotency_key: None,
            fingerprint: "x".repeat(64),
        })
        .await
        .unwrap();
    order.id.to_string()
}

#[tokio::test]
async fn an_admin_cannot_confirm_a_pending_order_whose_stock_is_not_held() {
    let t = start().await;
    let mug = t.product("Mug", 1000, 3).await;
    let id = pending_order_without_stock(&t, &mug).await;
    let path = format!("/api/v1/orders/{id}/status");
    let refused = t.send(Method::PATCH, &path, Some(json!({"status": "confirmed"})), Some(&t.admin)).await;
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("stock"), "{problem}");
    let order: Value = t
        .send(Method::GET, &format!("/api/v1/orders/{id}"), None, Some(&t.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "pending");
    assert_eq!(t.stock(&mug).await, 3);
}

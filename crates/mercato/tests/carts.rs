//! The cart end to end through the gateway of the embedded shop (every service in this process,
//! SQLite files in a temporary directory): fill a cart, change it, check it out with a new
//! address, and find the order in the order history and the cart empty; a replay of the
//! checkout answers the same order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::TestShop;
use mercato::embedded::Overrides;
use reqwest::Method;
use serde_json::{Value, json};

async fn start() -> TestShop {
    common::start(Overrides { gateway: |c| c.rate_limit.enabled = false, ..Overrides::default() }).await
}

#[tokio::test]
async fn fill_change_and_check_out_a_cart_then_find_the_order() {
    let t = start().await;
    let shopper = t.customer("cart@shop.test").await;
    let mug = t.create_product("Enamel Mug", "Kitchen", 1250, 10).await["id"].as_str().unwrap().to_owned();
    let tea = t.create_product("Green Tea", "Kitchen", 499, 10).await["id"].as_str().unwrap().to_owned();
    let put = |product: String, quantity: i64| {
        let t = &t;
        let shopper = &shopper;
        async move {
            let path = format!("/api/v1/cart/items/{product}");
            t.send(Method::PUT, &path, Some(json!({"quantity": quantity})), Some(shopper)).await
        }
    };

    let answer = t.send(Method::GET, "/api/v1/cart", None, None).await;
    assert_eq!(answer.status(), 401, "the cart needs a token");
    assert_eq!(put(mug.clone(), 1).await.status(), 200);
    assert_eq!(put(tea.clone(), 3).await.status(), 200);
    let changed: Value = put(mug.clone(), 2).await.json().await.unwrap();
    assert_eq!(changed["subtotal"], json!({"amount": 2 * 1250 + 3 * 499, "currency": "USD"}));
    assert_eq!(changed["item_count"], 5);
    let cart: Value = t.send(Method::GET, "/api/v1/cart", None, Some(&shopper)).await.json().await.unwrap();
    let lines: Vec<(&str, i64)> = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["product_id"].as_str().unwrap(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(lines, [(mug.as_str(), 2), (tea.as_str(), 3)]);
    assert_eq!(cart["items"][0]["name"], "Enamel Mug");
    assert_eq!(cart["items"][0]["available"], true);

    let address =
        json!({"line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"});
    let checkout = t
        .http
        .post(format!("{}/api/v1/cart/checkout", t.base))
        .bearer_auth(&shopper)
        .header("idempotency-key", "cart-e2e-1")
        .json(&json!({"shipping_address": address}))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 201);
    let order: Value = checkout.json().await.unwrap();
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["subtotal"]["amount"], 2 * 1250 + 3 * 499);
    assert_eq!(order["shipping_address"]["city"], "London");

    let history: Value =
        t.send(Method::GET, "/api/v1/orders", None, Some(&shopper)).await.json().await.unwrap();
    let ids: Vec<&Value> = history["items"].as_array().unwrap().iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, [&order["id"]], "the order is in the shopper's history");
    let emptied: Value =
        t.send(Method::GET, "/api/v1/cart", None, Some(&shopper)).await.json().await.unwrap();
    assert_eq!(emptied["items"], json!([]), "the cart is empty once the order is confirmed");
    assert_eq!(emptied["subtotal"]["amount"], 0);

    // The checkout again with its key (its answer lost, say): orders' original order, although
    // the cart is empty now, and no more stock taken.
    let replay = t
        .http
        .post(format!("{}/api/v1/cart/checkout", t.base))
        .bearer_auth(&shopper)
        .header("idempotency-key", "cart-e2e-1")
        .json(&json!({"shipping_address": address}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], order["id"]);
    let mug_now: Value =
        t.send(Method::GET, &format!("/api/v1/products/{mug}"), None, None).await.json().await.unwrap();
    assert_eq!(mug_now["stock"], 8, "two units taken, once");

    let again = t
        .http
        .post(format!("{}/api/v1/cart/checkout", t.base))
        .bearer_auth(&shopper)
        .json(&json!({"shipping_address": address}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400, "an empty cart is not checked out");
}

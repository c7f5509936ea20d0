//! The products service's main public answers, pinned as snapshots (`tests/snapshots/`): a
//! change to their JSON shape shows as a diff. Ids, times and cursors are redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::{problem, spawn_app};
use kit::testing::Backend;
use reqwest::Method;
use serde_json::{Value, json};

/// Answers as JSON, after checking the status.
async fn answer(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

fn kettle(name: &str, sku: &str, cents: i64, category: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name}. Boils a litre in three minutes. Dishwasher-safe lid."),
        "price": {"amount": cents, "currency": "USD"},
        "category": category,
        "brand": "Acme",
        "sku": sku,
        "stock": 12,
        "weight_grams": 950,
        "attributes": {"colour": "copper", "capacity_ml": 1000},
    })
}

#[tokio::test]
async fn product_list_cursor_page_categories_and_search_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let copper = app.create(kettle("Copper Kettle", "KET-001", 4999, "Kitchen")).await;
    app.create(kettle("Steel Kettle", "KET-002", 2999, "Kitchen")).await;
    app.create(kettle("Camping Stove", "STV-001", 8999, "Outdoor")).await;

    let one =
        answer(app.get(&format!("/api/v1/products/{}", copper["id"].as_str().unwrap())).await, 200).await;
    insta::assert_json_snapshot!("product", one, {
        ".id" => "[id]", ".created_at" => "[time]", ".updated_at" => "[time]",
    });

    let page = answer(app.get("/api/v1/products?limit=2").await, 200).await;
    insta::assert_json_snapshot!("list_page", page, {
        ".items[].id" => "[id]", ".items[].created_at" => "[time]", ".items[].updated_at" => "[time]",
    });

    let first = answer(app.get("/api/v1/products?limit=2&sort=price_asc&cursor=").await, 200).await;
    insta::assert_json_snapshot!("cursor_page", first, {
        ".items[].id" => "[id]", ".items[].created_at" => "[time]", ".items[].updated_at" => "[time]",
        ".next_cursor" => "[cursor]",
    });
    let next = first["next_cursor"].as_str().unwrap();
    let last =
        answer(app.get(&format!("/api/v1/products?limit=2&sort=price_asc&cursor={next}")).await, 200).await;
    insta::assert_json_snapshot!("last_cursor_page", last, {
        ".items[].id" => "[id]", ".items[].created_at" => "[time]", ".items[].updated_at" => "[time]",
    });

    let categories = answer(app.get("/api/v1/categories").await, 200).await;
    insta::assert_json_snapshot!("categories", categories);

    let found = answer(app.get("/api/v1/products?q=kettle&limit=5").await, 200).await;
    insta::assert_json_snapshot!("search", found, {
        ".items[].id" => "[id]", ".items[].created_at" => "[time]", ".items[].updated_at" => "[time]",
    });
}

#[tokio::test]
async fn problem_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let absent = problem(app.get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7())).await, 404).await;
    insta::assert_json_snapshot!("not_found", absent, { ".request_id" => "[request id]" });

    let mut bad = kettle("", "K", -1, "Kitchen");
    bad["price"]["currency"] = json!("EUR");
    let invalid =
        problem(app.send(Method::POST, "/api/v1/products", Some(bad), Some(&app.admin)).await, 400).await;
    insta::assert_json_snapshot!("invalid_product", invalid, { ".request_id" => "[request id]" });

    let sku = kettle("Copper Kettle", "KET-001", 4999, "Kitchen");
    app.create(sku.clone()).await;
    let duplicate =
        problem(app.send(Method::POST, "/api/v1/products", Some(sku), Some(&app.admin)).await, 409).await;
    insta::assert_json_snapshot!("duplicate_sku", duplicate, { ".request_id" => "[request id]" });
}

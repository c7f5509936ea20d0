//! The users service's main public answers, pinned as snapshots (`tests/snapshots/`): a change
//! to their JSON shape shows as a diff. Ids, times and tokens are redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::spawn_app;
use kit::testing::Backend;
use serde_json::{Value, json};

/// Answers as JSON, after checking the status.
async fn answer(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

#[tokio::test]
async fn register_login_and_me_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let registered = answer(
        app.post(
            "/api/v1/auth/register",
            json!({"name": "Ada Lovelace", "email": "Ada@Example.com", "password": "correct horse", "phone": "+44 20 7946 0958"}),
            None,
        )
        .await,
        201,
    )
    .await;
    insta::assert_json_snapshot!("register", registered, {
        ".user.id" => "[id]", ".user.created_at" => "[time]",
        ".access_token" => "[token]", ".refresh_token" => "[token]",
    });

    let login = answer(
        app.post(
            "/api/v1/auth/login",
            json!({"email": "ada@example.com", "password": "correct horse"}),
            None,
        )
        .await,
        200,
    )
    .await;
    insta::assert_json_snapshot!("login", login, {
        ".user.id" => "[id]", ".user.created_at" => "[time]",
        ".access_token" => "[token]", ".refresh_token" => "[token]",
    });

    let token = login["access_token"].as_str().unwrap();
    let address = json!({"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"});
    answer(app.post("/api/v1/users/me/addresses", address, Some(token)).await, 201).await;
    let me = answer(app.get("/api/v1/users/me", Some(token)).await, 200).await;
    insta::assert_json_snapshot!("me", me, {
        ".id" => "[id]", ".created_at" => "[time]",
        ".addresses[].id" => "[id]", ".addresses[].created_at" => "[time]", ".addresses[].updated_at" => "[time]",
    });
}

#[tokio::test]
async fn address_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let home = json!({"line1": "1 Main St", "line2": "Apt 2", "city": "Springfield", "state": "IL",
        "postal_code": "62701", "country": "US"});
    let created = answer(app.post("/api/v1/users/me/addresses", home, Some(token)).await, 201).await;
    let redacted = |name: &str, value: &Value| {
        insta::assert_json_snapshot!(name, value, {
            ".id" => "[id]", ".created_at" => "[time]", ".updated_at" => "[time]",
            "[].id" => "[id]", "[].created_at" => "[time]", "[].updated_at" => "[time]",
        });
    };
    redacted("address_created", &created);
    let work = json!({"line1": "2 Work Rd", "city": "Shelbyville", "postal_code": "62565", "country": "US", "is_default": true});
    answer(app.post("/api/v1/users/me/addresses", work, Some(token)).await, 201).await;
    let list = answer(app.get("/api/v1/users/me/addresses", Some(token)).await, 200).await;
    redacted("address_list", &list);
}

#[tokio::test]
async fn admin_list_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token("root@shop.test").await;
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    let page = answer(app.get("/api/v1/users?limit=2", Some(&admin)).await, 200).await;
    insta::assert_json_snapshot!("admin_list", page, {
        ".items[].id" => "[id]", ".items[].created_at" => "[time]",
    });
}

#[tokio::test]
async fn problem_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let invalid = app
        .post("/api/v1/auth/register", json!({"name": "", "email": "nope", "password": "short"}), None)
        .await;
    insta::assert_json_snapshot!("register_invalid", answer(invalid, 400).await, { ".request_id" => "[id]" });
    let refused = app
        .post("/api/v1/auth/login", json!({"email": "ghost@example.com", "password": "wrong pass"}), None)
        .await;
    insta::assert_json_snapshot!("login_refused", answer(refused, 401).await, { ".request_id" => "[id]" });
}

//! Events through the embedded shop: the users service's outbox, its relay and the in-process
//! bus carry `user.deleted` and `user.role_changed` to orders, products and the gateway, which
//! then refuse the user's older tokens within a second, not when they expire; and the same
//! with the whole shop's events on RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mercato::embedded::Overrides;
use reqwest::Method;
use serde_json::{Value, json};

/// GETs `path` from the service at `service` (not through the gateway) with `token`.
async fn status_at(http: &reqwest::Client, service: SocketAddr, path: &str, token: &str) -> u16 {
    http.get(format!("http://{service}{path}")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Waits (at most a second from `since`) until `service` answers `path` with `expected`.
async fn refused_within_a_second(
    http: &reqwest::Client,
    service: SocketAddr,
    path: &str,
    token: &str,
    expected: u16,
    since: Instant,
) {
    loop {
        let status = status_at(http, service, path, token).await;
        if status == expected {
            return;
        }
        assert!(since.elapsed() < Duration::from_secs(1), "{service}{path} still answers {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The local broker, or `MERCATO_TEST_AMQP_URL`.
fn amqp_url() -> Option<String> {
    Some(
        std::env::var("MERCATO_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
    )
}

/// The whole shop with its events on RabbitMQ, as `MERCATO_EVENTS__URL` would set it.
fn over_rabbitmq() -> Overrides {
    Overrides {
        users: |c| {
            c.passwords = common::CHEAP_HASHING;
            c.events.url = amqp_url();
        },
        products: |c| c.events.url = amqp_url(),
        orders: |c| c.events.url = amqp_url(),
        gateway: |c| c.events.url = amqp_url(),
        carts: |c| c.events.url = amqp_url(),
        // The storefront takes no events: it is a client of the API.
        storefront: |_| {},
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_users_token_is_refused_by_orders_and_the_gateway_within_a_second() {
    a_deleted_users_token_is_refused_within_a_second(common::start(Overrides::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_rabbitmq_a_deleted_users_token_is_refused_by_orders_and_the_gateway_within_a_second() {
    a_deleted_users_token_is_refused_within_a_second(common::start_as_given(over_rabbitmq()).await).await;
}

async fn a_deleted_users_token_is_refused_within_a_second(t: common::TestShop) {
    let token = t.customer("gone@shop.test").await;
    let orders = t.shop.orders;
    assert_eq!(status_at(&t.http, orders, "/api/v1/orders", &token).await, 200);
    assert_eq!(t.send(Method::GET, "/api/v1/orders", None, Some(&token)).await.status(), 200);

    assert_eq!(t.send(Method::DELETE, "/api/v1/users/me", None, Some(&token)).await.status(), 204);
    let deleted = Instant::now();
    refused_within_a_second(&t.http, orders, "/api/v1/orders", &token, 401, deleted).await;
    let through_gateway = t.send(Method::GET, "/api/v1/orders", None, Some(&token)).await;
    assert_eq!(through_gateway.status(), 401, "the gateway refuses it at the edge as well");
    let problem: Value = through_gateway.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("revoked"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demoted_admins_token_loses_admin_rights_everywhere_and_a_new_sign_in_works() {
    a_demoted_admin_loses_admin_rights_everywhere(common::start(Overrides::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_rabbitmq_a_demoted_admins_token_loses_admin_rights_everywhere() {
    a_demoted_admin_loses_admin_rights_everywhere(common::start_as_given(over_rabbitmq()).await).await;
}

async fn a_demoted_admin_loses_admin_rights_everywhere(t: common::TestShop) {
    let body = json!({"name": "Deputy", "email": "deputy@shop.test", "password": "correct horse"});
    let session: Value =
        t.send(Method::POST, "/api/v1/auth/register", Some(body), None).await.json().await.unwrap();
    let deputy = session["user"]["id"].as_str().unwrap().to_owned();
    let user_path = format!("/api/v1/users/{deputy}");
    let promote = t.send(Method::PATCH, &user_path, Some(json!({"role": "admin"})), Some(&t.admin)).await;
    assert_eq!(promote.status(), 200);
    let login = json!({"email": "deputy@shop.test", "password": "correct horse"});
    let signed_in: Value =
        t.send(Method::POST, "/api/v1/auth/login", Some(login.clone()), None).await.json().await.unwrap();
    let admin_token = signed_in["access_token"].as_str().unwrap().to_owned();
    let stats = "/api/v1/orders/stats";
    let low_stock = "/api/v1/products/low-stock";
    assert_eq!(status_at(&t.http, t.shop.orders, stats, &admin_token).await, 200);
    assert_eq!(status_at(&t.http, t.shop.products, low_stock, &admin_token).await, 200);

    let demote = t.send(Method::PATCH, &user_path, Some(json!({"role": "customer"})), Some(&t.admin)).await;
    assert_eq!(demote.status(), 200);
    let demoted = Instant::now();
    refused_within_a_second(&t.http, t.shop.orders, stats, &admin_token, 401, demoted).await;
    refused_within_a_second(&t.http, t.shop.products, low_stock, &admin_token, 401, demoted).await;
    assert_eq!(t.send(Method::GET, stats, None, Some(&admin_token)).await.status(), 401);

    // Signing in again, even within the same second, gives a customer's token that works.
    let signed_in: Value =
        t.send(Method::POST, "/api/v1/auth/login", Some(login), None).await.json().await.unwrap();
    let customer_token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(status_at(&t.http, t.shop.orders, "/api/v1/orders", customer_token).await, 200);
    assert_eq!(status_at(&t.http, t.shop.orders, stats, customer_token).await, 403);
}

/// A replica that starts after a demotion (its queue did not exist when the event was
/// published) reads the revocations of the last hour from users as it starts, and refuses the
/// demoted admin's old token within a second, not for the rest of its lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_started_after_a_demotion_refuses_the_old_admin_token() {
    let t = common::start(Overrides::default()).await;
    let body = json!({"name": "Deputy", "email": "late@shop.test", "password": "correct horse"});
    let session: Value =
        t.send(Method::POST, "/api/v1/auth/register", Some(body), None).await.json().await.unwrap();
    let user_path = format!("/api/v1/users/{}", session["user"]["id"].as_str().unwrap());
    let promote = t.send(Method::PATCH, &user_path, Some(json!({"role": "admin"})), Some(&t.admin)).await;
    assert_eq!(promote.status(), 200);
    let login = json!({"email": "late@shop.test", "password": "correct horse"});
    let signed_in: Value =
        t.send(Method::POST, "/api/v1/auth/login", Some(login), None).await.json().await.unwrap();
    let admin_token = signed_in["access_token"].as_str().unwrap().to_owned();
    let demote = t.send(Method::PATCH, &user_path, Some(json!({"role": "customer"})), Some(&t.admin)).await;
    assert_eq!(demote.status(), 200);

    // A second products replica, started now, on a database of its own.
    let dir = tempfile::tempdir().unwrap();
    let mut config = products::ProductsConfig {
        http: kit::config::HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 0))),
        database: mercato::embedded::sqlite_in(dir.path(), "products"),
        users_url: format!("http://{}", t.shop.users),
        ..products::ProductsConfig::default()
    };
    config.images.local_dir = dir.path().join("images");
    let late = products::Application::build(config).await.unwrap();
    let late_addr = late.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(late.run(stop.clone()));
    let started = Instant::now();
    refused_within_a_second(&t.http, late_addr, "/api/v1/products/low-stock", &admin_token, 401, started)
        .await;
    stop.cancel();
}

//! Two products replicas on one database and one event bus: a change made through one is
//! served by the other within a second, although each caches reads for a minute (the
//! `product.*` events drop the entry); and a user's revocation event makes both refuse that
//! user's older tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use std::time::{Duration, Instant};

use contracts::events::{CloudEvent, UserRoleChanged};
use kit::config::HttpConfig;
use kit::events::{Bus, Publisher};
use kit::testing::{Backend, TestAuth, TestDatabase};
use products::ProductsConfig;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

kit::on_both_backends!(
    a_price_changed_through_one_replica_is_served_by_the_other_within_a_second,
    a_demoted_admin_is_refused_by_every_replica,
);

struct Replicas {
    bases: [String; 2],
    auth: TestAuth,
    bus: Bus,
    http: reqwest::Client,
    stop: CancellationToken,
    _db: TestDatabase,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Two replicas sharing a database and a bus, each with a one-minute read cache.
async fn replicas(backend: Backend) -> Replicas {
    replicas_on(backend, None).await
}

/// The same with their events on the broker at `events_url` when there is one.
async fn replicas_on(backend: Backend, events_url: Option<String>) -> Replicas {
    kit::telemetry::init("products-test");
    let auth = TestAuth::start().await;
    let db = TestDatabase::new(backend, "products_replicas").await;
    let bus = Bus::new();
    let stop = CancellationToken::new();
    let mut bases = Vec::new();
    for n in 0..2 {
        let mut config = ProductsConfig {
            http: HttpConfig::with_listen("127.0.0.1:0".parse().unwrap()),
            database: db.config.clone(),
            users_url: auth.url().to_owned(),
            ..ProductsConfig::default()
        };
        config.database.migrate_on_start = n == 0;
        config.events.url = events_url.clone();
        config.cache.ttl_ms = 60_000;
        config.images.local_dir = db.dir.path().join("images");
        let app = products::Application::build_with_events(config, bus.clone()).await.unwrap();
        bases.push(format!("http://{}", app.local_addr()));
        tokio::spawn(app.run(stop.clone()));
    }
    let bases = [bases[0].clone(), bases[1].clone()];
    Replicas { bases, auth, bus, http: reqwest::Client::new(), stop, _db: db }
}

impl Replicas {
    async fn send(
        &self,
        replica: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.bases[replica]));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

async fn a_price_changed_through_one_replica_is_served_by_the_other_within_a_second(backend: Backend) {
    a_price_change_is_served_by_both_replicas_within_a_second(replicas(backend).await).await;
}

/// The replicas as two processes would run them in production: PostgreSQL, and the events
/// through RabbitMQ (`MERCATO_TEST_AMQP_URL`, default the local broker), each replica on a
/// queue of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_rabbitmq_a_price_change_is_served_by_the_other_replica_within_a_second() {
    let url = std::env::var("MERCATO_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let shop = replicas_on(Backend::Postgres, Some(url)).await;
    a_price_change_is_served_by_both_replicas_within_a_second(shop).await;
}

async fn a_price_change_is_served_by_both_replicas_within_a_second(shop: Replicas) {
    let admin = shop.auth.admin(uuid::Uuid::now_v7());
    let created = shop
        .send(0, Method::POST, "/api/v1/products", Some(common::product("Kettle", 2500, 7)), Some(&admin))
        .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/products/{id}");
    // The second replica reads it once, and would keep that copy for a minute.
    let cached: Value = shop.send(1, Method::GET, &path, None, None).await.json().await.unwrap();
    assert_eq!(cached["price"]["amount"], 2500);

    let changed = Instant::now();
    let patch = json!({"price": {"amount": 1999, "currency": "USD"}});
    assert_eq!(shop.send(0, Method::PATCH, &path, Some(patch), Some(&admin)).await.status(), 200);
    loop {
        let served: Value = shop.send(1, Method::GET, &path, None, None).await.json().await.unwrap();
        if served["price"]["amount"] == 1999 {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(1), "the other replica still serves {served}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let list: Value =
        shop.send(1, Method::GET, "/api/v1/products?q=kettle", None, None).await.json().await.unwrap();
    assert_eq!(list["items"][0]["price"]["amount"], 1999, "its pages dropped the old price too");
}

async fn a_demoted_admin_is_refused_by_every_replica(backend: Backend) {
    let shop = replicas(backend).await;
    let user = uuid::Uuid::now_v7();
    let old_token = shop.auth.admin(user);
    for replica in 0..2 {
        let body = common::product(&format!("Teapot {replica}"), 3000, 3);
        let response =
            shop.send(replica, Method::POST, "/api/v1/products", Some(body), Some(&old_token)).await;
        assert_eq!(response.status(), 201, "an admin before the change");
    }
    // Let a millisecond pass, so the change is after the token was issued.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = chrono::Utc::now();
    let demoted = UserRoleChanged {
        user_id: user,
        previous_role: "admin".into(),
        role: "customer".into(),
        changed_at: now,
    };
    let event = CloudEvent::new("/mercato/users", now, None, demoted).into_json().unwrap();
    shop.bus.publish(&[event]).await.unwrap();
    let published = Instant::now();
    for replica in 0..2 {
        loop {
            let status = shop
                .send(
                    replica,
                    Method::POST,
                    "/api/v1/products",
                    Some(common::product("Cup", 500, 1)),
                    Some(&old_token),
                )
                .await
                .status();
            if status == 401 {
                break;
            }
            assert!(published.elapsed() < Duration::from_secs(1), "replica {replica} still answers {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A token issued after the change, with the new role, is a customer's: 403, not 401.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let new_token = shop.auth.token(user, kit::auth::Role::Customer);
    let response = shop
        .send(0, Method::POST, "/api/v1/products", Some(common::product("Cup", 500, 1)), Some(&new_token))
        .await;
    assert_eq!(response.status(), 403);
    let stale_role = shop.auth.admin(user);
    let response = shop
        .send(1, Method::POST, "/api/v1/products", Some(common::product("Cup", 500, 1)), Some(&stale_role))
        .await;
    assert_eq!(response.status(), 401, "a token issued later but with the old role is refused too");
}

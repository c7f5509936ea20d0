//! The cart stores, each test body run on SQLite (a fresh file) and on the real Redis (a key
//! prefix of its own, `kit::testing::TestRedis`): lines, the line limit, what a checkout takes
//! out (once per order, keeping what was added meanwhile), deletion, and the `user.deleted`
//! handler. Redis also: the idle expiry, refreshed by every write.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::Arc;
use std::time::Duration;

use carts::domain::Quantity;
use carts::store::{CartStore, RedisCarts, SqliteCarts, StoreError};
use chrono::Utc;
use contracts::events::{CloudEvent, UserDeleted};
use kit::events::Delivery;
use kit::testing::{Backend, TestDatabase, TestRedis};
use uuid::Uuid;

/// Which cart store a test runs on.
#[derive(Debug, Clone, Copy)]
enum Store {
    Sqlite,
    Redis,
}

/// Runs each named `async fn name(store: Store)` on both stores: `sqlite::name`, `redis::name`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Store::Sqlite).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Store::Redis).await
                }
            )*
        }
    };
}

on_both_stores!(
    lines_are_set_changed_and_removed_in_the_order_they_were_added,
    the_line_limit_refuses_a_new_product_but_not_a_change,
    a_checkout_takes_out_what_was_ordered_once_and_keeps_what_was_added_meanwhile,
    a_checkout_key_remembers_the_lines_it_ordered_until_the_user_is_forgotten,
    clearing_and_forgetting_delete_the_cart,
    a_deleted_users_cart_goes_on_the_event_applied_twice,
    carts_are_kept_per_user,
);

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A store and what keeps it alive.
struct Opened {
    store: Arc<dyn CartStore>,
    redis: Option<(RedisCarts, TestRedis)>,
    _db: Option<TestDatabase>,
}

async fn open(store: Store) -> Opened {
    match store {
        Store::Sqlite => {
            let db = TestDatabase::new(Backend::Sqlite, "carts").await;
            let carts = SqliteCarts::new(kit::db::connect(&db.config).await.unwrap());
            carts.migrate().await.unwrap();
            Opened { store: Arc::new(carts), redis: None, _db: Some(db) }
        }
        Store::Redis => {
            let redis = TestRedis::new();
            let connection = kit::redis::Redis::connect(&redis.config).unwrap().unwrap();
            let carts = RedisCarts::new(connection, 30 * DAY);
            Opened { store: Arc::new(carts.clone()), redis: Some((carts, redis)), _db: None }
        }
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn q(n: i64) -> Quantity {
    Quantity::parse(n).unwrap()
}

async fn lines(store: &dyn CartStore, user: Uuid) -> Vec<(Uuid, i64)> {
    store.cart(user).await.unwrap().order_lines()
}

async fn lines_are_set_changed_and_removed_in_the_order_they_were_added(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let user = Uuid::now_v7();
    let empty = store.cart(user).await.unwrap();
    assert!(empty.lines.is_empty() && empty.updated_at.is_none(), "no cart yet");

    let before = Utc::now();
    store.set_quantity(user, id(9), q(2), 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await; // distinct added-at times
    store.set_quantity(user, id(1), q(1), 100).await.unwrap();
    store.set_quantity(user, id(9), q(5), 100).await.unwrap();
    let cart = store.cart(user).await.unwrap();
    assert_eq!(cart.order_lines(), [(id(9), 5), (id(1), 1)], "a changed line keeps its place");
    assert!(cart.updated_at.unwrap() >= before);

    store.remove(user, id(9)).await.unwrap();
    store.remove(user, id(42)).await.unwrap();
    assert_eq!(lines(store, user).await, [(id(1), 1)]);
}

async fn the_line_limit_refuses_a_new_product_but_not_a_change(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let user = Uuid::now_v7();
    for n in 1..=3 {
        store.set_quantity(user, id(n), q(1), 3).await.unwrap();
    }
    let full = store.set_quantity(user, id(4), q(1), 3).await;
    assert!(matches!(full, Err(StoreError::Full(3))), "{full:?}");
    store.set_quantity(user, id(2), q(99), 3).await.unwrap();
    assert_eq!(lines(store, user).await, [(id(1), 1), (id(2), 99), (id(3), 1)]);
    store.remove(user, id(1)).await.unwrap();
    store.set_quantity(user, id(4), q(1), 3).await.unwrap();
    assert_eq!(lines(store, user).await.len(), 3);
}

async fn a_checkout_takes_out_what_was_ordered_once_and_keeps_what_was_added_meanwhile(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let user = Uuid::now_v7();
    store.set_quantity(user, id(1), q(2), 100).await.unwrap();
    store.set_quantity(user, id(2), q(1), 100).await.unwrap();
    let ordered = store.cart(user).await.unwrap().order_lines();
    // While the order is placed: one more of product 1, and a new product 3.
    store.set_quantity(user, id(1), q(3), 100).await.unwrap();
    store.set_quantity(user, id(3), q(4), 100).await.unwrap();

    let order = Uuid::now_v7();
    assert!(store.remove_ordered(user, order, &ordered, None).await.unwrap());
    assert_eq!(lines(store, user).await, [(id(1), 1), (id(3), 4)]);
    assert!(!store.remove_ordered(user, order, &ordered, None).await.unwrap(), "a replay takes nothing out");
    assert_eq!(lines(store, user).await, [(id(1), 1), (id(3), 4)]);
}

async fn a_checkout_key_remembers_the_lines_it_ordered_until_the_user_is_forgotten(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let user = Uuid::now_v7();
    assert_eq!(store.checkout_lines(user, "k-1").await.unwrap(), None, "nothing ordered with it yet");
    store.set_quantity(user, id(1), q(2), 100).await.unwrap();
    let ordered = [(id(1), 2)];
    let order = Uuid::now_v7();
    assert!(store.remove_ordered(user, order, &ordered, Some("k-1")).await.unwrap());
    assert_eq!(store.checkout_lines(user, "k-1").await.unwrap(), Some(ordered.to_vec()));
    // A replay with other lines changes nothing that was remembered.
    assert!(!store.remove_ordered(user, order, &[(id(9), 1)], Some("k-1")).await.unwrap());
    assert_eq!(store.checkout_lines(user, "k-1").await.unwrap(), Some(ordered.to_vec()));
    assert_eq!(store.checkout_lines(user, "k-2").await.unwrap(), None);
    assert_eq!(store.checkout_lines(Uuid::now_v7(), "k-1").await.unwrap(), None, "keys are per user");
    store.clear(user).await.unwrap();
    assert_eq!(
        store.checkout_lines(user, "k-1").await.unwrap(),
        Some(ordered.to_vec()),
        "a cleared cart keeps them"
    );
    store.forget_user(user).await.unwrap();
    assert_eq!(store.checkout_lines(user, "k-1").await.unwrap(), None);
}

async fn clearing_and_forgetting_delete_the_cart(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let user = Uuid::now_v7();
    store.set_quantity(user, id(1), q(2), 100).await.unwrap();
    store.clear(user).await.unwrap();
    let cart = store.cart(user).await.unwrap();
    assert!(cart.lines.is_empty() && cart.updated_at.is_none());
    store.set_quantity(user, id(1), q(2), 100).await.unwrap();
    store.forget_user(user).await.unwrap();
    assert!(store.cart(user).await.unwrap().lines.is_empty());
    if let Some((_, redis)) = &opened.redis {
        assert!(redis.keys().is_empty(), "nothing is left of a forgotten user: {:?}", redis.keys());
    }
}

async fn a_deleted_users_cart_goes_on_the_event_applied_twice(store: Store) {
    let opened = open(store).await;
    let user = Uuid::now_v7();
    let kept = Uuid::now_v7();
    opened.store.set_quantity(user, id(1), q(2), 100).await.unwrap();
    opened.store.set_quantity(kept, id(1), q(1), 100).await.unwrap();
    let revocations = Arc::new(kit::auth::Revocations::default());
    let consumer = carts::consumer(opened.store.clone(), revocations.clone());
    let event = CloudEvent::new(
        "/mercato/users",
        Utc::now(),
        None,
        UserDeleted { user_id: user, deleted_at: Utc::now() },
    )
    .into_json()
    .unwrap();
    assert_eq!(consumer.deliver(&event).await, Delivery::Applied);
    assert_eq!(consumer.deliver(&event).await, Delivery::Duplicate);
    assert!(lines(opened.store.as_ref(), user).await.is_empty());
    assert_eq!(lines(opened.store.as_ref(), kept).await, [(id(1), 1)], "another user's cart stays");
}

async fn carts_are_kept_per_user(store: Store) {
    let opened = open(store).await;
    let store = opened.store.as_ref();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    store.set_quantity(ada, id(1), q(1), 100).await.unwrap();
    store.set_quantity(bob, id(2), q(2), 100).await.unwrap();
    assert_eq!(lines(store, ada).await, [(id(1), 1)]);
    assert_eq!(lines(store, bob).await, [(id(2), 2)]);
}

/// Production's promise: a cart left alone for the idle expiry is gone, and every write starts
/// that time again.
#[tokio::test]
async fn a_redis_cart_expires_after_its_idle_time_and_each_write_refreshes_it() {
    let redis = TestRedis::new();
    let connection = kit::redis::Redis::connect(&redis.config).unwrap().unwrap();
    let carts = RedisCarts::new(connection, 30 * DAY);
    let user = Uuid::now_v7();
    let ttl = |key: String| {
        let mut c = ::redis::Client::open(redis.config.url.as_str()).unwrap().get_connection().unwrap();
        ::redis::cmd("PTTL").arg(key).query::<i64>(&mut c).unwrap()
    };
    let thirty_days = i64::try_from((30 * DAY).as_millis()).unwrap();

    carts.set_quantity(user, id(1), q(1), 100).await.unwrap();
    let first = ttl(carts.cart_key(user));
    assert!(first > thirty_days - 60_000 && first <= thirty_days, "{first}");
    // Shorten it, as time passing would, then write: back to thirty days.
    let mut c = ::redis::Client::open(redis.config.url.as_str()).unwrap().get_connection().unwrap();
    ::redis::cmd("PEXPIRE").arg(carts.cart_key(user)).arg(1_000).query::<()>(&mut c).unwrap();
    carts.set_quantity(user, id(2), q(1), 100).await.unwrap();
    assert!(ttl(carts.cart_key(user)) > thirty_days - 60_000, "a write refreshes the expiry");
    carts.remove(user, id(2)).await.unwrap();
    assert!(ttl(carts.cart_key(user)) > thirty_days - 60_000, "so does a removal");

    let short = RedisCarts::new(
        kit::redis::Redis::connect(&redis.config).unwrap().unwrap(),
        Duration::from_millis(50),
    );
    let gone = Uuid::now_v7();
    short.set_quantity(gone, id(1), q(1), 100).await.unwrap();
    // Expiry is Redis's clock, not a signal we could wait on; 50 ms of it, with margin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(short.cart(gone).await.unwrap().lines.is_empty(), "an idle cart expires");
}

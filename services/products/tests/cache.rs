//! The read cache in front of the catalog, on both backends: this process's writes show at
//! once, stock after a reservation or release is exact on the detail page, and writes made
//! behind its back show within the time to live. With the real Redis as the details' second
//! level (a key prefix per test): another replica reads what one stored, a write through
//! either drops it, and a Redis that is not there is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::Arc;
use std::time::Duration;

use kit::money::Money;
use kit::redis::{Redis, RedisConfig};
use kit::testing::{Backend, TestDatabase, TestRedis};
use products::domain::listing::{ListParams, ListQuery};
use products::domain::product::ProductFields;
use products::domain::{NewProduct, Paging, ProductPatch, ReservationRequest};
use products::store::{
    CacheLimits, CachedCatalog, CatalogSearch, CatalogStore, ReservationLedger, SharedDetails, SqlCatalog,
    SqlLedger,
};
use uuid::Uuid;

const TTL: Duration = Duration::from_millis(300);

/// The cache over a fresh catalog, and the catalog itself (to write behind the cache's back).
async fn stores(backend: Backend) -> (Arc<CachedCatalog<SqlCatalog>>, Arc<SqlCatalog>, TestDatabase) {
    let db = TestDatabase::new(backend, "products_cache").await;
    let sql = Arc::new(SqlCatalog::connect(&db.config).await.expect("connect"));
    sql.migrate().await.expect("migrate");
    let limits = CacheLimits { ttl: TTL, product_bytes: 1 << 20, page_bytes: 1 << 20 };
    (Arc::new(CachedCatalog::new(sql.clone(), limits)), sql, db)
}

fn lamp(name: &str, stock: i64) -> NewProduct {
    let fields = ProductFields {
        name: name.into(),
        description: format!("{name}, as described."),
        category: "Lighting".into(),
        price: Some(Money::new(2500, "USD")),
        stock: Some(stock),
        ..ProductFields::default()
    };
    NewProduct::parse(fields, "USD").expect("valid product")
}

fn first_page() -> (ListQuery, Paging) {
    (ListQuery::parse(ListParams::default()).unwrap(), Paging::Offset { offset: 0, limit: 20 })
}

async fn names(store: &dyn CatalogSearch) -> Vec<String> {
    let (query, paging) = first_page();
    store.list(&query, paging).await.unwrap().items.into_iter().map(|p| p.name).collect()
}

kit::on_both_backends!(
    writes_through_the_cache_show_at_once,
    reservations_and_releases_show_on_the_detail_at_once,
    writes_behind_the_cache_show_within_the_time_to_live,
    a_second_replica_reads_the_detail_another_stored_in_redis,
    a_write_through_either_replica_drops_the_detail_from_redis,
    a_redis_that_is_not_there_is_skipped,
);

/// One replica's cache over `sql`, with `redis` as the details' second level. Its memory keeps
/// entries for long enough that no assertion races their expiry.
fn replica(sql: &Arc<SqlCatalog>, redis: &RedisConfig) -> Arc<CachedCatalog<SqlCatalog>> {
    let limits = CacheLimits { ttl: Duration::from_secs(30), product_bytes: 1 << 20, page_bytes: 1 << 20 };
    let redis = Redis::connect(redis).unwrap().unwrap();
    Arc::new(
        CachedCatalog::new(sql.clone(), limits)
            .with_shared(SharedDetails::new(redis, Duration::from_secs(30))),
    )
}

async fn a_second_replica_reads_the_detail_another_stored_in_redis(backend: Backend) {
    kit::metrics::handle();
    let (_single, sql, _db) = stores(backend).await;
    let redis = TestRedis::new();
    let (first, second) = (replica(&sql, &redis.config), replica(&sql, &redis.config));
    let desk = first.create_product(lamp("Desk Lamp", 10)).await.unwrap();
    assert_eq!(first.product(desk.id).await.unwrap().unwrap().name, "Desk Lamp");
    let key = format!("{}:product:v1:{}", redis.config.key_prefix, desk.id);
    assert_eq!(redis.keys(), [key], "the first replica's read stored the detail");

    // Changed behind both caches: the second replica's miss is answered by Redis, not the database.
    let patch = ProductPatch { name: Some("Changed Behind".into()), ..ProductPatch::default() };
    sql.update_product(desk.id, patch).await.unwrap();
    let from_redis = second.product(desk.id).await.unwrap().unwrap();
    assert_eq!(
        from_redis,
        first.product(desk.id).await.unwrap().unwrap(),
        "the same detail, field for field"
    );
    assert_eq!(from_redis.name, "Desk Lamp");
    let metrics = kit::metrics::render();
    for level in ["memory", "redis", "database"] {
        assert!(
            metrics.contains(&format!("catalog_cache_reads_total{{level=\"{level}\"}}")),
            "{level}: {metrics}"
        );
    }
}

async fn a_write_through_either_replica_drops_the_detail_from_redis(backend: Backend) {
    let (_single, sql, _db) = stores(backend).await;
    let redis = TestRedis::new();
    let (first, second) = (replica(&sql, &redis.config), replica(&sql, &redis.config));
    let desk = first.create_product(lamp("Desk Lamp", 10)).await.unwrap();
    assert_eq!(second.product(desk.id).await.unwrap().unwrap().stock, 10);
    assert_eq!(redis.keys().len(), 1);

    let patch = ProductPatch { name: Some("Reading Lamp".into()), ..ProductPatch::default() };
    first.update_product(desk.id, patch).await.unwrap();
    assert!(redis.keys().is_empty(), "the write dropped the shared detail");
    assert_eq!(first.product(desk.id).await.unwrap().unwrap().name, "Reading Lamp", "at once on the writer");
    // A third replica (nothing in its memory) reads the new detail; the second replica keeps its
    // memory's copy until told (an event calls `invalidate`) or until it expires.
    let third = replica(&sql, &redis.config);
    assert_eq!(third.product(desk.id).await.unwrap().unwrap().name, "Reading Lamp");
    assert_eq!(second.product(desk.id).await.unwrap().unwrap().name, "Desk Lamp");
    second.invalidate(desk.id).await;
    assert_eq!(second.product(desk.id).await.unwrap().unwrap().name, "Reading Lamp");

    // A reservation through the second replica's ledger drops the detail everywhere too.
    let ledger = SqlLedger::new(sql.connection().clone(), second.clone());
    ledger.reserve(&ReservationRequest::parse(Uuid::now_v7(), &[(desk.id, 4)]).unwrap()).await.unwrap();
    assert!(redis.keys().is_empty(), "stock moved: the shared detail is gone");
    let fourth = replica(&sql, &redis.config);
    assert_eq!(fourth.product(desk.id).await.unwrap().unwrap().stock, 6);
    assert!(second.delete_product(desk.id).await.unwrap());
    third.invalidate(desk.id).await;
    assert!(third.product(desk.id).await.unwrap().is_none(), "deleted");
}

async fn a_redis_that_is_not_there_is_skipped(backend: Backend) {
    let (_single, sql, _db) = stores(backend).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = RedisConfig::with_url(format!("redis://{}", closed.local_addr().unwrap()));
    drop(closed);
    let cache = replica(&sql, &gone);
    let desk = cache.create_product(lamp("Desk Lamp", 10)).await.unwrap();
    assert_eq!(cache.product(desk.id).await.unwrap().unwrap().name, "Desk Lamp");
    let patch = ProductPatch { name: Some("Reading Lamp".into()), ..ProductPatch::default() };
    cache.update_product(desk.id, patch).await.unwrap();
    assert_eq!(cache.product(desk.id).await.unwrap().unwrap().name, "Reading Lamp");
}

async fn writes_through_the_cache_show_at_once(backend: Backend) {
    let (cache, _sql, _db) = stores(backend).await;
    let desk = cache.create_product(lamp("Desk Lamp", 5)).await.unwrap();
    assert_eq!(names(cache.as_ref()).await, ["Desk Lamp"]);
    assert_eq!(cache.product(desk.id).await.unwrap().unwrap().name, "Desk Lamp");
    assert_eq!(cache.categories().await.unwrap()[0].product_count, 1);

    let floor = cache.create_product(lamp("Floor Lamp", 5)).await.unwrap();
    assert_eq!(names(cache.as_ref()).await, ["Floor Lamp", "Desk Lamp"], "a new product is listed at once");
    assert_eq!(cache.categories().await.unwrap()[0].product_count, 2);

    let patch = ProductPatch { name: Some("Reading Lamp".into()), ..ProductPatch::default() };
    cache.update_product(desk.id, patch).await.unwrap();
    assert_eq!(cache.product(desk.id).await.unwrap().unwrap().name, "Reading Lamp");
    assert_eq!(names(cache.as_ref()).await, ["Floor Lamp", "Reading Lamp"]);

    let key = format!("{}.png", "b".repeat(64));
    cache.add_image(floor.id, &key).await.unwrap();
    assert_eq!(cache.product(floor.id).await.unwrap().unwrap().images, [key]);

    assert!(cache.delete_product(floor.id).await.unwrap());
    assert!(cache.product(floor.id).await.unwrap().is_none(), "a deleted product is gone at once");
    assert_eq!(names(cache.as_ref()).await, ["Reading Lamp"]);
    assert_eq!(cache.categories().await.unwrap()[0].product_count, 1);
}

async fn reservations_and_releases_show_on_the_detail_at_once(backend: Backend) {
    let (cache, sql, _db) = stores(backend).await;
    // The ledger is not behind the cache: it tells the cache which products' stock moved.
    let ledger = SqlLedger::new(sql.connection().clone(), cache.clone());
    let lamp = cache.create_product(lamp("Desk Lamp", 10)).await.unwrap();
    assert_eq!(cache.product(lamp.id).await.unwrap().unwrap().stock, 10);

    let order = Uuid::now_v7();
    ledger.reserve(&ReservationRequest::parse(order, &[(lamp.id, 4)]).unwrap()).await.unwrap();
    assert_eq!(cache.product(lamp.id).await.unwrap().unwrap().stock, 6);

    ledger.release(order).await.unwrap();
    assert_eq!(cache.product(lamp.id).await.unwrap().unwrap().stock, 10);
}

async fn writes_behind_the_cache_show_within_the_time_to_live(backend: Backend) {
    let (cache, sql, _db) = stores(backend).await;
    let lamp = cache.create_product(lamp("Desk Lamp", 10)).await.unwrap();
    assert_eq!(cache.product(lamp.id).await.unwrap().unwrap().stock, 10);
    assert_eq!(names(cache.as_ref()).await, ["Desk Lamp"]);

    // Another replica changes the product: this one serves what it read until the entry expires.
    let patch = ProductPatch { stock: Some(3), name: Some("Desk Lamp II".into()), ..ProductPatch::default() };
    sql.update_product(lamp.id, patch).await.unwrap();
    assert_eq!(cache.product(lamp.id).await.unwrap().unwrap().stock, 10, "served from memory");
    assert_eq!(names(cache.as_ref()).await, ["Desk Lamp"]);

    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let fresh = cache.product(lamp.id).await.unwrap().unwrap();
    assert_eq!((fresh.stock, fresh.name.as_str()), (3, "Desk Lamp II"));
    assert_eq!(names(cache.as_ref()).await, ["Desk Lamp II"]);
    // Pricing for an order never comes from the cache.
    assert_eq!(cache.lookup(&[lamp.id]).await.unwrap()[0].name, "Desk Lamp II");
}

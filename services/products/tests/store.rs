//! The catalog store on both backends: the same observable behaviour on SQLite and PostgreSQL,
//! including search relevance, keyset paging under inserts, and stock that is never oversold.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::collections::HashSet;
use std::sync::Arc;

use kit::money::Money;
use kit::testing::{Backend, TestDatabase};
use products::domain::listing::{ListParams, ListQuery};
use products::domain::product::ProductFields;
use products::domain::{NewProduct, Paging, ProductPatch, ReservationRequest, ReservationState, Sku};
use products::store::{
    CatalogImport, CatalogSearch, CatalogStore, ReleaseOutcome, ReservationLedger, ReserveOutcome,
    SqlCatalog, SqlLedger, StoreError,
};
use uuid::Uuid;

async fn store(backend: Backend) -> (Arc<SqlCatalog>, TestDatabase) {
    let db = TestDatabase::new(backend, "products_store").await;
    let mut config = db.config.clone();
    config.max_connections = 16;
    let store = SqlCatalog::connect(&config).await.expect("connect");
    store.migrate().await.expect("migrate");
    (Arc::new(store), db)
}

/// The reservation ledger on the catalogue's database.
fn ledger(store: &Arc<SqlCatalog>) -> Arc<SqlLedger> {
    Arc::new(SqlLedger::new(store.connection().clone(), store.clone()))
}

fn product(name: &str) -> ProductFields {
    ProductFields {
        name: name.into(),
        description: format!("{name}, as described."),
        category: "Misc".into(),
        price: Some(Money::new(1000, "USD")),
        stock: Some(5),
        ..ProductFields::default()
    }
}

fn parse(fields: ProductFields) -> NewProduct {
    NewProduct::parse(fields, "USD").expect("valid product")
}

fn query(params: ListParams) -> ListQuery {
    ListQuery::parse(params).expect("valid query")
}

fn search(q: &str) -> ListQuery {
    query(ListParams { q: Some(q.into()), ..ListParams::default() })
}

async fn names(store: &SqlCatalog, q: &ListQuery) -> Vec<String> {
    let page = store.list(q, Paging::Offset { offset: 0, limit: 100 }).await.unwrap();
    page.items.into_iter().map(|p| p.name).collect()
}

kit::on_both_backends!(
    create_generates_a_sku_and_refuses_a_duplicate,
    soft_deleted_products_vanish_and_free_their_sku,
    patch_changes_only_given_fields,
    search_ranks_name_over_sku_category_short_and_long_description,
    search_understands_stemming_and_prefixes,
    search_never_errors_on_hostile_input,
    filters_and_sorts_combine,
    cursor_paging_is_stable_while_products_are_added,
    categories_count_live_products,
    fifty_concurrent_reservations_take_exactly_the_stock,
    reservation_is_all_or_nothing_and_names_short_products,
    reservation_is_idempotent_and_release_happens_once,
    release_before_reserve_refuses_the_late_reservation,
    in_stock_totals_follow_reservations_and_releases_at_once,
    concurrent_edits_and_image_additions_all_succeed,
    lookup_names_the_first_image_and_flags_deleted_products,
    upsert_updates_by_sku_without_duplicating,
    offset_pages_tile_the_list_in_every_order_with_their_images,
    a_list_while_no_connection_is_free_is_unavailable_not_a_fault,
);

async fn create_generates_a_sku_and_refuses_a_duplicate(backend: Backend) {
    let (store, _db) = store(backend).await;
    let made = store
        .create_product(parse(ProductFields { brand: Some("Acme".into()), ..product("Anvil") }))
        .await
        .unwrap();
    assert!(made.sku.as_str().starts_with("MIS-ACM-"), "{}", made.sku);
    let given = parse(ProductFields { sku: Some("anv-001".into()), ..product("Anvil 2") });
    assert_eq!(store.create_product(given.clone()).await.unwrap().sku.as_str(), "ANV-001");
    let err = store.create_product(given).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSku(ref s) if s == "ANV-001"), "{err}");
}

async fn soft_deleted_products_vanish_and_free_their_sku(backend: Backend) {
    let (store, _db) = store(backend).await;
    let p = store
        .create_product(parse(ProductFields { sku: Some("GONE-1".into()), ..product("Ghost") }))
        .await
        .unwrap();
    assert!(store.delete_product(p.id).await.unwrap());
    assert!(!store.delete_product(p.id).await.unwrap());
    assert!(store.product(p.id).await.unwrap().is_none());
    assert!(store.product_by_sku(&Sku::parse("GONE-1").unwrap()).await.unwrap().is_none());
    assert!(names(&store, &query(ListParams::default())).await.is_empty());
    assert!(
        store
            .create_product(parse(ProductFields { sku: Some("GONE-1".into()), ..product("Ghost 2") }))
            .await
            .is_ok()
    );
}

async fn patch_changes_only_given_fields(backend: Backend) {
    let (store, _db) = store(backend).await;
    let p = store.create_product(parse(product("Lamp"))).await.unwrap();
    let patch = ProductPatch { stock: Some(42), name: Some("Desk Lamp".into()), ..ProductPatch::default() };
    let updated = store.update_product(p.id, patch).await.unwrap().unwrap();
    assert_eq!((updated.stock, updated.name.as_str(), updated.price.amount), (42, "Desk Lamp", 1000));
    assert_eq!(names(&store, &search("desk")).await, ["Desk Lamp"], "the search index follows renames");
    assert!(store.update_product(Uuid::now_v7(), ProductPatch::default()).await.unwrap().is_none());
}

async fn search_ranks_name_over_sku_category_short_and_long_description(backend: Backend) {
    let (store, _db) = store(backend).await;
    // Each product mentions "zephyr" in exactly one field.
    let fixtures = [
        (
            "In description",
            ProductFields {
                description: "Light and warm. Built for the zephyr season.".into(),
                short_description: Some("Light and warm.".into()),
                ..product("In description")
            },
        ),
        (
            "In short",
            ProductFields { short_description: Some("A zephyr of a jacket".into()), ..product("In short") },
        ),
        ("In category", ProductFields { category: "Zephyr".into(), ..product("In category") }),
        ("In sku", ProductFields { sku: Some("ZEPHYR-1".into()), ..product("In sku") }),
        ("Zephyr in name", product("Zephyr in name")),
    ];
    for (_, fields) in fixtures {
        store.create_product(parse(fields)).await.unwrap();
    }
    store.create_product(parse(product("Unrelated"))).await.unwrap();
    assert_eq!(
        names(&store, &search("zephyr")).await,
        ["Zephyr in name", "In sku", "In category", "In short", "In description"]
    );
}

async fn search_understands_stemming_and_prefixes(backend: Backend) {
    let (store, _db) = store(backend).await;
    for name in ["Trail Running Shoe", "Leather Dress Shoe", "Running Shorts", "Rain Jacket"] {
        store.create_product(parse(product(name))).await.unwrap();
    }
    assert_eq!(names(&store, &search("running shoes")).await, ["Trail Running Shoe"]);
    let mut shoe_prefix = names(&store, &search("sho")).await;
    shoe_prefix.sort();
    assert_eq!(shoe_prefix, ["Leather Dress Shoe", "Running Shorts", "Trail Running Shoe"]);
    assert_eq!(names(&store, &search("\"dress shoe\"")).await, ["Leather Dress Shoe"]);
    assert_eq!(names(&store, &search("running -shorts")).await, ["Trail Running Shoe"]);
    let mut either = names(&store, &search("jacket or leather")).await;
    either.sort();
    assert_eq!(either, ["Leather Dress Shoe", "Rain Jacket"]);
}

async fn search_never_errors_on_hostile_input(backend: Backend) {
    let (store, _db) = store(backend).await;
    store.create_product(parse(product("Plain Mug"))).await.unwrap();
    let long = "a".repeat(500);
    for q in [
        "\"unbalanced",
        "a & b | !c",
        "(mug",
        "mug:*",
        "' OR 1=1 --",
        "'; DROP TABLE products; --",
        "-",
        "\"\"",
        "🎉☕ mug",
        "NEAR(mug, 2)",
        "mug*",
        "col:mug",
        "^mug",
        long.as_str(),
        "AND OR NOT",
        "\\",
        "%_%",
    ] {
        let result = store.list(&search(q), Paging::Offset { offset: 0, limit: 10 }).await;
        assert!(result.is_ok(), "{q:?} failed: {:?}", result.err());
    }
    assert_eq!(names(&store, &search("🎉☕ mug")).await, ["Plain Mug"]);
}

async fn filters_and_sorts_combine(backend: Backend) {
    let (store, _db) = store(backend).await;
    let specs = [
        ("Cheap Kettle", 1500, 0, "Kitchen", "Acme"),
        ("Fine Kettle", 9900, 3, "Kitchen", "Lux"),
        ("Tent", 25000, 2, "Outdoor", "Acme"),
    ];
    for (name, cents, stock, category, brand) in specs {
        let fields = ProductFields {
            price: Some(Money::new(cents, "USD")),
            stock: Some(stock),
            category: category.into(),
            brand: Some(brand.into()),
            ..product(name)
        };
        store.create_product(parse(fields)).await.unwrap();
    }
    let by = |params: ListParams| query(params);
    assert_eq!(
        names(
            &store,
            &by(ListParams {
                category: Some("kitchen".into()),
                sort: Some("price_desc".into()),
                ..Default::default()
            })
        )
        .await,
        ["Fine Kettle", "Cheap Kettle"]
    );
    assert_eq!(
        names(
            &store,
            &by(ListParams {
                brand: Some("Acme".into()),
                sort: Some("price_asc".into()),
                ..Default::default()
            })
        )
        .await,
        ["Cheap Kettle", "Tent"]
    );
    assert_eq!(
        names(
            &store,
            &by(ListParams {
                in_stock: Some("true".into()),
                sort: Some("name".into()),
                ..Default::default()
            })
        )
        .await,
        ["Fine Kettle", "Tent"]
    );
    assert_eq!(
        names(
            &store,
            &by(ListParams {
                min_price: Some("2000".into()),
                max_price: Some("10000".into()),
                ..Default::default()
            })
        )
        .await,
        ["Fine Kettle"]
    );
    assert_eq!(
        names(
            &store,
            &by(ListParams {
                q: Some("kettle".into()),
                in_stock: Some("false".into()),
                ..Default::default()
            })
        )
        .await,
        ["Cheap Kettle"]
    );
    let (low, total) = store.low_stock(2, 0, 10).await.unwrap();
    assert_eq!(
        (low.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), total),
        (vec!["Cheap Kettle", "Tent"], 2)
    );
}

async fn cursor_paging_is_stable_while_products_are_added(backend: Backend) {
    let (store, _db) = store(backend).await;
    let batch: Vec<NewProduct> = (0..10_000)
        .map(|i| {
            parse(ProductFields {
                sku: Some(format!("PRE-{i:05}")),
                price: Some(Money::new(100 + (i % 97), "USD")),
                ..product(&format!("Item {i}"))
            })
        })
        .collect();
    for chunk in batch.chunks(2_000) {
        store.upsert_batch(chunk.to_vec()).await.unwrap();
    }
    for sort in ["newest", "price_asc", "name"] {
        let list = query(ListParams { sort: Some(sort.into()), ..ListParams::default() });
        let mut seen = HashSet::new();
        let mut after = None;
        let mut added = 0;
        loop {
            let page = store.list(&list, Paging::Cursor { after: after.clone(), limit: 100 }).await.unwrap();
            for p in &page.items {
                assert!(seen.insert(p.sku.to_string()), "{sort}: {} seen twice", p.sku);
            }
            // Others keep adding products while we page.
            store
                .create_product(parse(ProductFields {
                    sku: Some(format!("NEW-{sort}-{added}")),
                    ..product("Newcomer")
                }))
                .await
                .unwrap();
            added += 1;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let pre_existing = seen.iter().filter(|s| s.starts_with("PRE-")).count();
        assert_eq!(pre_existing, 10_000, "{sort}: every pre-existing product exactly once");
    }
}

async fn categories_count_live_products(backend: Backend) {
    let (store, _db) = store(backend).await;
    for (name, category) in [("A", "Books"), ("B", "Books"), ("C", "Garden")] {
        store
            .create_product(parse(ProductFields { category: category.into(), ..product(name) }))
            .await
            .unwrap();
    }
    let gone = store
        .create_product(parse(ProductFields { category: "Garden".into(), ..product("D") }))
        .await
        .unwrap();
    store.delete_product(gone.id).await.unwrap();
    let counts: Vec<(String, u64)> =
        store.categories().await.unwrap().into_iter().map(|c| (c.slug, c.product_count)).collect();
    assert_eq!(counts, [("books".to_owned(), 2), ("garden".to_owned(), 1)]);
}

async fn fifty_concurrent_reservations_take_exactly_the_stock(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ledger = ledger(&store);
    let p = store
        .create_product(parse(ProductFields { stock: Some(10), ..product("Last Units") }))
        .await
        .unwrap();
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let ledger = ledger.clone();
            let request = ReservationRequest::parse(Uuid::now_v7(), &[(p.id, 1)]).unwrap();
            tokio::spawn(async move { ledger.reserve(&request).await })
        })
        .collect();
    let (mut reserved, mut short) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap().unwrap() {
            ReserveOutcome::Reserved(_) => reserved += 1,
            ReserveOutcome::Short(_) => short += 1,
            ReserveOutcome::Existing(_) => panic!("every order id is new"),
        }
    }
    assert_eq!((reserved, short), (10, 40));
    assert_eq!(store.product(p.id).await.unwrap().unwrap().stock, 0);
}

async fn reservation_is_all_or_nothing_and_names_short_products(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ledger = ledger(&store);
    let plenty =
        store.create_product(parse(ProductFields { stock: Some(100), ..product("Plenty") })).await.unwrap();
    let scarce =
        store.create_product(parse(ProductFields { stock: Some(2), ..product("Scarce") })).await.unwrap();
    let ghost = Uuid::now_v7();
    let request =
        ReservationRequest::parse(Uuid::now_v7(), &[(plenty.id, 5), (scarce.id, 3), (ghost, 1)]).unwrap();
    let ReserveOutcome::Short(mut short) = ledger.reserve(&request).await.unwrap() else {
        panic!("must be short")
    };
    short.sort_by_key(|s| s.product_id == ghost);
    assert_eq!((short[0].product_id, short[0].requested, short[0].available), (scarce.id, 3, 2));
    assert_eq!((short[1].product_id, short[1].available), (ghost, 0));
    assert_eq!(store.product(plenty.id).await.unwrap().unwrap().stock, 100, "nothing taken");
    assert!(ledger.reservation(request.order_id).await.unwrap().is_none(), "no reservation left behind");
}

async fn reservation_is_idempotent_and_release_happens_once(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ledger = ledger(&store);
    let p =
        store.create_product(parse(ProductFields { stock: Some(10), ..product("Widget") })).await.unwrap();
    let request = ReservationRequest::parse(Uuid::now_v7(), &[(p.id, 4)]).unwrap();
    assert!(matches!(ledger.reserve(&request).await.unwrap(), ReserveOutcome::Reserved(_)));
    assert!(
        matches!(ledger.reserve(&request).await.unwrap(), ReserveOutcome::Existing(r) if r.state == ReservationState::Held)
    );
    assert_eq!(store.product(p.id).await.unwrap().unwrap().stock, 6, "a replay takes no more stock");

    let releases: Vec<_> = (0..8)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.release(request.order_id).await })
        })
        .collect();
    let mut released = 0;
    for r in releases {
        if r.await.unwrap().unwrap() == ReleaseOutcome::Released {
            released += 1;
        }
    }
    assert_eq!(released, 1);
    assert_eq!(store.product(p.id).await.unwrap().unwrap().stock, 10);
}

async fn release_before_reserve_refuses_the_late_reservation(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ledger = ledger(&store);
    let p =
        store.create_product(parse(ProductFields { stock: Some(10), ..product("Widget") })).await.unwrap();
    let order = Uuid::now_v7();
    assert_eq!(ledger.release(order).await.unwrap(), ReleaseOutcome::AlreadyReleased);
    let late = ReservationRequest::parse(order, &[(p.id, 1)]).unwrap();
    assert!(
        matches!(ledger.reserve(&late).await.unwrap(), ReserveOutcome::Existing(r) if r.state == ReservationState::Released)
    );
    assert_eq!(store.product(p.id).await.unwrap().unwrap().stock, 10);
}

async fn in_stock_totals_follow_reservations_and_releases_at_once(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ledger = ledger(&store);
    let last =
        store.create_product(parse(ProductFields { stock: Some(1), ..product("Last One") })).await.unwrap();
    let in_stock = query(ListParams { in_stock: Some("true".into()), ..ListParams::default() });
    let total = |store: Arc<SqlCatalog>, q: ListQuery| async move {
        store.list(&q, Paging::Offset { offset: 0, limit: 10 }).await.unwrap().total
    };
    assert_eq!(total(store.clone(), in_stock.clone()).await, Some(1));

    // Totals are cached for seconds; the ledger drops the ones that depend on stock.
    let order = Uuid::now_v7();
    ledger.reserve(&ReservationRequest::parse(order, &[(last.id, 1)]).unwrap()).await.unwrap();
    assert_eq!(total(store.clone(), in_stock.clone()).await, Some(0), "sold out at once");
    ledger.release(order).await.unwrap();
    assert_eq!(total(store.clone(), in_stock).await, Some(1), "back in stock at once");
}

async fn concurrent_edits_and_image_additions_all_succeed(backend: Backend) {
    // On SQLite a transaction that reads before it writes cannot take the write lock once
    // another writer committed in between (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits
    // out); every write transaction must write first.
    let (store, _db) = store(backend).await;
    let lamp = store.create_product(parse(product("Lamp"))).await.unwrap();
    let edits: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let patch = ProductPatch { stock: Some(i), ..ProductPatch::default() };
                    store.update_product(lamp.id, patch).await.map(|p| p.is_some())
                } else {
                    store
                        .add_image(lamp.id, &format!("https://img.example/{i}.jpg"))
                        .await
                        .map(|p| p.is_some())
                }
            })
        })
        .collect();
    for edit in edits {
        assert!(edit.await.unwrap().unwrap(), "the product is there");
    }
    assert_eq!(store.product(lamp.id).await.unwrap().unwrap().images.len(), 20);
    assert!(store.update_product(Uuid::now_v7(), ProductPatch::default()).await.unwrap().is_none());
    assert!(store.add_image(Uuid::now_v7(), "https://img.example/x.jpg").await.unwrap().is_none());
}

async fn lookup_names_the_first_image_and_flags_deleted_products(backend: Backend) {
    let (store, _db) = store(backend).await;
    let lamp = store.create_product(parse(product("Lamp"))).await.unwrap();
    let bare = store.create_product(parse(product("Bare"))).await.unwrap();
    store.add_image(lamp.id, "first.webp").await.unwrap().unwrap();
    store.add_image(lamp.id, "second.webp").await.unwrap().unwrap();
    assert!(store.delete_product(bare.id).await.unwrap());
    let mut found = store.lookup(&[lamp.id, bare.id, Uuid::now_v7()]).await.unwrap();
    found.sort_by_key(|item| item.name.clone());
    let seen: Vec<(&str, Option<&str>, bool)> =
        found.iter().map(|i| (i.name.as_str(), i.image.as_deref(), i.deleted)).collect();
    assert_eq!(seen, [("Bare", None, true), ("Lamp", Some("first.webp"), false)]);
}

async fn upsert_updates_by_sku_without_duplicating(backend: Backend) {
    let (store, _db) = store(backend).await;
    let first = vec![parse(ProductFields { sku: Some("UP-1".into()), ..product("Old name") })];
    assert_eq!(store.upsert_batch(first).await.unwrap().inserted, 1);
    let again = vec![
        parse(ProductFields { sku: Some("up-1".into()), ..product("New name") }),
        parse(ProductFields { sku: Some("UP-2".into()), ..product("Second") }),
    ];
    let summary = store.upsert_batch(again).await.unwrap();
    assert_eq!((summary.inserted, summary.updated), (1, 1));
    assert_eq!(store.product_by_sku(&Sku::parse("UP-1").unwrap()).await.unwrap().unwrap().name, "New name");
    let all =
        store.list(&query(ListParams::default()), Paging::Offset { offset: 0, limit: 10 }).await.unwrap();
    assert_eq!(all.total, Some(2));
}

async fn offset_pages_tile_the_list_in_every_order_with_their_images(backend: Backend) {
    let (store, _db) = store(backend).await;
    let batch: Vec<NewProduct> = (0..45)
        .map(|i| {
            let images = match i % 3 {
                0 => vec![],
                1 => vec![format!("https://img.example/{i}/front.jpg")],
                _ => {
                    vec![format!("https://img.example/{i}/a,b.jpg"), format!("https://img.example/{i}/2.jpg")]
                }
            };
            parse(ProductFields {
                price: Some(Money::new(1000 + (i * 37 % 11) * 100, "USD")),
                category: if i % 2 == 0 { "Even".into() } else { "Odd".into() },
                images,
                ..product(&format!("Lamp {i:02}"))
            })
        })
        .collect();
    store.upsert_batch(batch).await.unwrap();
    store.refresh_statistics().await.unwrap();

    for params in [
        ListParams::default(),
        ListParams { sort: Some("price_asc".into()), ..Default::default() },
        ListParams { sort: Some("name".into()), category: Some("odd".into()), ..Default::default() },
        ListParams { q: Some("lamp".into()), sort: Some("price_desc".into()), ..Default::default() },
        ListParams { q: Some("lamp".into()), ..Default::default() },
    ] {
        let q = query(params.clone());
        let whole = store.list(&q, Paging::Offset { offset: 0, limit: 100 }).await.unwrap().items;
        assert!(whole.len() >= 22, "{params:?}: {} products", whole.len());
        let mut tiled = Vec::new();
        for offset in (0..whole.len() as u64 + 7).step_by(7) {
            let page = store.list(&q, Paging::Offset { offset, limit: 7 }).await.unwrap();
            assert_eq!(page.total, Some(whole.len() as u64), "{params:?}");
            tiled.extend(page.items);
        }
        let ids = |products: &[products::domain::Product]| products.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(&tiled), ids(&whole), "{params:?}: pages of 7 differ from one page of 100");
        for product in &tiled {
            let n: usize = product.name[5..].parse().unwrap();
            let expected = match n % 3 {
                0 => vec![],
                1 => vec![format!("https://img.example/{n}/front.jpg")],
                _ => {
                    vec![format!("https://img.example/{n}/a,b.jpg"), format!("https://img.example/{n}/2.jpg")]
                }
            };
            assert_eq!(product.images, expected, "{}", product.name);
        }
    }
}

async fn a_list_while_no_connection_is_free_is_unavailable_not_a_fault(backend: Backend) {
    use sea_orm::TransactionTrait;
    let db = TestDatabase::new(backend, "products_pool").await;
    let config =
        kit::config::DatabaseConfig { max_connections: 1, acquire_timeout_ms: 200, ..db.config.clone() };
    let store = SqlCatalog::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let busy = store.connection().begin().await.unwrap();
    let err =
        store.list(&query(ListParams::default()), Paging::Offset { offset: 0, limit: 20 }).await.unwrap_err();
    let StoreError::Db(err) = err else { panic!("a database error, not {err}") };
    assert_eq!(kit::ApiError::from(err).status(), http::StatusCode::SERVICE_UNAVAILABLE);
    busy.rollback().await.unwrap();
}

mod events {
    //! Each catalogue change and each low-stock crossing is recorded in the outbox in the
    //! transaction of the change.
    use std::sync::Arc;

    use contracts::events::{EventData, ProductCreated, ProductDeleted, ProductStockLow, ProductUpdated};
    use kit::testing::{Backend, outbox_events};
    use products::domain::{ProductPatch, ReservationRequest};
    use products::store::{CatalogImport, CatalogStore, ReservationLedger, SqlLedger};
    use uuid::Uuid;

    use super::{parse, product, store};

    kit::on_both_backends!(
        creating_changing_and_deleting_a_product_record_their_events,
        stock_low_is_recorded_once_per_downward_crossing,
        an_import_records_created_and_updated_products,
    );

    fn types(events: &[contracts::events::CloudEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event_type.as_str()).collect()
    }

    async fn creating_changing_and_deleting_a_product_record_their_events(backend: Backend) {
        let (store, _db) = store(backend).await;
        let lamp = store.create_product(parse(product("Lamp"))).await.unwrap();
        let patch = ProductPatch { name: Some("Desk Lamp".into()), ..ProductPatch::default() };
        store.update_product(lamp.id, patch).await.unwrap().unwrap();
        store.add_image(lamp.id, "abc.webp").await.unwrap().unwrap();
        assert!(store.delete_product(lamp.id).await.unwrap());
        assert!(!store.delete_product(lamp.id).await.unwrap(), "deleted already");
        assert!(store.update_product(lamp.id, ProductPatch::default()).await.unwrap().is_none());

        let events = outbox_events(store.connection()).await;
        assert_eq!(
            types(&events),
            [ProductCreated::TYPE, ProductUpdated::TYPE, ProductUpdated::TYPE, ProductDeleted::TYPE],
            "what did not change records nothing"
        );
        let created = events[0].decode::<ProductCreated>().unwrap().unwrap().data;
        assert_eq!((created.product.product_id, created.product.stock), (lamp.id, 5));
        assert_eq!(created.product.sku, lamp.sku.to_string());
        let renamed = events[1].decode::<ProductUpdated>().unwrap().unwrap().data;
        assert_eq!(renamed.product.name, "Desk Lamp");
        let deleted = events[3].decode::<ProductDeleted>().unwrap().unwrap().data;
        assert_eq!((deleted.product_id, deleted.sku), (lamp.id, lamp.sku.to_string()));
    }

    async fn stock_low_is_recorded_once_per_downward_crossing(backend: Backend) {
        let (store, _db) = store(backend).await;
        let store = Arc::new((*store).clone().with_low_stock_threshold(3));
        let ledger =
            Arc::new(SqlLedger::new(store.connection().clone(), store.clone()).with_low_stock_threshold(3));
        let mug = store.create_product(parse(product("Mug"))).await.unwrap(); // 5 in stock
        let reserve = |quantity| {
            let ledger = ledger.clone();
            async move {
                let order = Uuid::now_v7();
                ledger
                    .reserve(&ReservationRequest::parse(order, &[(mug.id, quantity)]).unwrap())
                    .await
                    .unwrap();
                order
            }
        };
        let low = |events: Vec<contracts::events::CloudEvent>| {
            events
                .iter()
                .filter_map(|e| e.decode::<ProductStockLow>())
                .map(|d| d.unwrap().data.stock)
                .collect::<Vec<_>>()
        };
        reserve(1).await; // 4: above 3
        assert!(low(outbox_events(store.connection()).await).is_empty());
        let crossing = reserve(1).await; // 3: at the threshold
        reserve(1).await; // 2: low already
        assert_eq!(low(outbox_events(store.connection()).await), [3], "one event for the crossing");

        ledger.release(crossing).await.unwrap(); // 3: not above the threshold again
        reserve(1).await; // 2
        assert_eq!(low(outbox_events(store.connection()).await), [3]);

        let restock = ProductPatch { stock: Some(20), ..ProductPatch::default() };
        store.update_product(mug.id, restock).await.unwrap().unwrap();
        let drop = ProductPatch { stock: Some(1), ..ProductPatch::default() };
        store.update_product(mug.id, drop).await.unwrap().unwrap();
        assert_eq!(low(outbox_events(store.connection()).await), [3, 1], "an admin's change crosses it too");
        let event = outbox_events(store.connection())
            .await
            .into_iter()
            .rev()
            .find(|e| e.event_type == ProductStockLow::TYPE)
            .unwrap();
        let data = event.decode::<ProductStockLow>().unwrap().unwrap().data;
        assert_eq!((data.product_id, data.threshold), (mug.id, 3));
    }

    async fn an_import_records_created_and_updated_products(backend: Backend) {
        let (store, _db) = store(backend).await;
        let mut first = product("Kettle");
        first.sku = Some("KET-001".into());
        let batch = vec![parse(first.clone()), parse(product("Teapot"))];
        store.upsert_batch(batch).await.unwrap();
        first.name = "Steel Kettle".into();
        store.upsert_batch(vec![parse(first)]).await.unwrap();

        let events = outbox_events(store.connection()).await;
        assert_eq!(types(&events), [ProductCreated::TYPE, ProductCreated::TYPE, ProductUpdated::TYPE]);
        let updated = events[2].decode::<ProductUpdated>().unwrap().unwrap().data;
        assert_eq!(
            (updated.product.sku.as_str(), updated.product.name.as_str()),
            ("KET-001", "Steel Kettle")
        );
    }
}

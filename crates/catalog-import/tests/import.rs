//! Catalogue import into a real products store on both backends: the public DummyJSON and
//! Best Buy catalogues, re-imports that update instead of duplicating, files with bad records,
//! and the generated demo catalogue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::path::Path;

use catalog_import::{Format, SeedSummary};
use kit::testing::{Backend, TestDatabase};
use products::domain::Paging;
use products::domain::Sku;
use products::domain::listing::{ListParams, ListQuery};
use products::store::{CatalogSearch, CatalogStore, SqlCatalog};

const DUMMYJSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/dummyjson-products.json");
const BESTBUY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/algolia-bestbuy-ecommerce.json");

async fn store(backend: Backend) -> (SqlCatalog, TestDatabase) {
    let db = TestDatabase::new(backend, "products_import").await;
    let store = SqlCatalog::connect(&db.config).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
}

async fn import_file(store: &SqlCatalog, path: &str) -> SeedSummary {
    let records = catalog_import::import(Path::new(path), None).unwrap();
    catalog_import::run(store, records, catalog_import::BATCH_SIZE, |_| {}).await.unwrap()
}

async fn live_products(store: &SqlCatalog) -> u64 {
    let all = ListQuery::parse(ListParams::default()).unwrap();
    store.list(&all, Paging::Offset { offset: 0, limit: 1 }).await.unwrap().total.unwrap()
}

async fn by_sku(store: &SqlCatalog, sku: &str) -> products::domain::Product {
    store.product_by_sku(&Sku::parse(sku).unwrap()).await.unwrap().unwrap_or_else(|| panic!("{sku} imported"))
}

async fn dummyjson_imports_with_cents_and_skus(backend: Backend) {
    let (store, _db) = store(backend).await;
    let summary = import_file(&store, DUMMYJSON).await;
    assert_eq!((summary.read, summary.inserted, summary.updated), (194, 194, 0));
    assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
    assert_eq!(live_products(&store).await, 194);

    let mascara = by_sku(&store, "BEA-ESS-ESS-001").await;
    assert_eq!(mascara.name, "Essence Mascara Lash Princess");
    assert_eq!((mascara.price.amount, mascara.price.currency.as_str()), (999, "USD"));
    assert_eq!((mascara.stock, mascara.category.as_str()), (99, "beauty"));
    assert_eq!(mascara.brand.as_deref(), Some("Essence"));
    assert_eq!(mascara.weight_grams, Some(4_000));
    assert_eq!(mascara.attributes["tags"], serde_json::json!(["beauty", "mascara"]));
    assert_eq!(mascara.images.len(), 1);
    // The dearest one, to be sure large decimals become exact cents.
    let dearest = store
        .list(
            &ListQuery::parse(ListParams { sort: Some("price_desc".into()), ..ListParams::default() })
                .unwrap(),
            Paging::Offset { offset: 0, limit: 1 },
        )
        .await
        .unwrap();
    assert_eq!(dearest.items[0].price.amount, 3_699_999);
}

async fn reimporting_updates_and_never_duplicates(backend: Backend) {
    let (store, _db) = store(backend).await;
    import_file(&store, DUMMYJSON).await;
    let before = by_sku(&store, "BEA-ESS-ESS-001").await;

    let again = import_file(&store, DUMMYJSON).await;
    assert_eq!((again.read, again.inserted, again.updated), (194, 0, 194));
    assert_eq!(live_products(&store).await, 194);
    let after = by_sku(&store, "BEA-ESS-ESS-001").await;
    assert_eq!(after.id, before.id, "the same product, updated in place");
    assert_eq!(after.images, before.images, "images are replaced, not appended");
}

async fn bestbuy_imports(backend: Backend) {
    let (store, _db) = store(backend).await;
    let summary = import_file(&store, BESTBUY).await;
    // Every record imports. Two (684 and 2818) hold U+0099, a mis-decoded Windows-1252 "™",
    // which the product rules would reject as a control character; the importer repairs it.
    assert_eq!(summary.rejected, [], "rejected records");
    assert_eq!((summary.read, summary.imported()), (3_291, 3_291));
    assert_eq!(summary.inserted, 3_291, "every record has its own Best Buy SKU");
    assert_eq!(live_products(&store).await, 3_291);

    let phone = by_sku(&store, "BBY-4984700").await;
    assert!(phone.name.starts_with("AT&T GoPhone - Samsung Galaxy Express 3"));
    assert_eq!(phone.price.amount, 4_999);
    assert_eq!(phone.category, "all-prepaid-phones");
    assert_eq!(phone.attributes["category_path"][0], "Cell Phones");
    assert_eq!(phone.attributes["popularity"], 21449);
    assert_eq!(phone.stock, 21449 / 50);
    assert_eq!(phone.rating, 0.0);
    let case = by_sku(&store, "BBY-3627006").await;
    assert_eq!(case.brand.as_deref(), Some("Insignia™"));
}

async fn bad_records_are_reported_and_good_ones_imported(backend: Backend) {
    let (store, db) = store(backend).await;
    let lines = [
        r#"{"name": "Desk Lamp", "description": "A warm lamp.", "category": "Office", "sku": "LMP-1", "price": {"amount": 4999, "currency": "USD"}}"#,
        r#"{"description": "No name.", "category": "Office", "price": {"amount": 100, "currency": "USD"}}"#,
        r#"{"name": "Pen", "description": "Blue.", "category": "Office", "price": {"amount": -5, "currency": "USD"}}"#,
        r#"{"name": "Broken", "description": "#,
        r#"{"name": "Chair", "description": "Sturdy.", "category": "Office", "stock": -1, "price": {"amount": 9900, "currency": "USD"}}"#,
        r#"{"name": "Notebook", "description": "Dot grid.", "category": "Office", "sku": "NB-1", "price": {"amount": 899, "currency": "USD"}}"#,
    ];
    let path = db.dir.path().join("catalog.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let mut progress_rejections = Vec::new();
    let records = catalog_import::import(&path, None).unwrap();
    let summary = catalog_import::run(&store, records, 2, |p| {
        progress_rejections.extend(p.newly_rejected.iter().cloned())
    })
    .await
    .unwrap();

    assert_eq!((summary.read, summary.inserted), (6, 2));
    let rejected: Vec<(usize, &str)> =
        summary.rejected.iter().map(|r| (r.record, r.reason.as_str())).collect();
    assert_eq!(rejected[0], (2, "name: is required"));
    assert_eq!(rejected[1].0, 3);
    assert!(rejected[1].1.starts_with("price: amount must be between 0"), "{}", rejected[1].1);
    assert_eq!(rejected[2].0, 4);
    assert!(rejected[2].1.starts_with("malformed JSON"), "{}", rejected[2].1);
    assert_eq!(rejected[3], (5, "stock: must be between 0 and 1000000"));
    assert_eq!(progress_rejections, summary.rejected, "each rejection is reported once, as it happens");
    assert_eq!(by_sku(&store, "NB-1").await.price.amount, 899);
    assert_eq!(live_products(&store).await, 2);
}

async fn a_csv_catalog_imports(backend: Backend) {
    let (store, db) = store(backend).await;
    let path = db.dir.path().join("catalog.csv");
    std::fs::write(
        &path,
        "sku,name,description,category,price,stock,attributes\n\
         MUG-1,Stoneware Mug,A heavy mug. Keeps coffee warm.,Home & Kitchen,14.99,40,\"{\"\"color\"\": \"\"sage\"\"}\"\n\
         MUG-2,Glass Mug,Double walled.,Home & Kitchen,twelve,10,\n",
    )
    .unwrap();
    let records = catalog_import::import(&path, None).unwrap();
    assert_eq!(records.format(), Some(Format::Mercato));
    let summary = catalog_import::run(&store, records, catalog_import::BATCH_SIZE, |_| {}).await.unwrap();
    assert_eq!((summary.inserted, summary.rejected.len()), (1, 1));
    assert_eq!(summary.rejected[0].record, 2);
    let mug = by_sku(&store, "MUG-1").await;
    assert_eq!((mug.price.amount, mug.category.as_str()), (1_499, "home-kitchen"));
    assert_eq!(mug.attributes["color"], "sage");
}

async fn generated_products_are_deterministic_and_import(backend: Backend) {
    let (store, _db) = store(backend).await;
    let first: Vec<_> = catalog_import::generate(2_500, 7).map(Result::unwrap).collect();
    assert_eq!(first, catalog_import::generate(2_500, 7).map(Result::unwrap).collect::<Vec<_>>());

    let mut reports = Vec::new();
    let summary =
        catalog_import::run(&store, catalog_import::generate(2_500, 7), catalog_import::BATCH_SIZE, |p| {
            reports.push((p.read, p.inserted))
        })
        .await
        .unwrap();
    assert_eq!((summary.read, summary.inserted, summary.updated), (2_500, 2_500, 0));
    assert_eq!(reports, [(1_000, 1_000), (2_000, 2_000), (2_500, 2_500)], "progress after each batch");

    let sample = &first[1_234];
    let stored = by_sku(&store, sample.sku.as_ref().unwrap().as_str()).await;
    assert_eq!((stored.name.as_str(), stored.price.amount), (sample.name.as_str(), sample.price.amount));
    assert_eq!(stored.attributes, sample.attributes);

    let again =
        catalog_import::run(&store, catalog_import::generate(2_500, 7), catalog_import::BATCH_SIZE, |_| {})
            .await
            .unwrap();
    assert_eq!((again.inserted, again.updated), (0, 2_500));
    assert_eq!(live_products(&store).await, 2_500);
}

async fn the_demo_catalog_seeds_a_new_shop(backend: Backend) {
    let (store, _db) = store(backend).await;
    let summary = catalog_import::seed_demo(&store, "USD").await.unwrap();
    assert_eq!(summary.inserted, catalog_import::DEMO_PRODUCTS);
    assert_eq!(store.categories().await.unwrap().len(), 12);
}

kit::on_both_backends!(
    dummyjson_imports_with_cents_and_skus,
    reimporting_updates_and_never_duplicates,
    bestbuy_imports,
    bad_records_are_reported_and_good_ones_imported,
    a_csv_catalog_imports,
    generated_products_are_deterministic_and_import,
    the_demo_catalog_seeds_a_new_shop,
);

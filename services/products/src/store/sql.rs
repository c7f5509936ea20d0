//! [`SqlCatalog`]: the catalogue's database on SQLite and PostgreSQL through SeaORM, and what
//! its catalogue, listing and import adapters share (reading products with their images,
//! writing categories and images, the cached list totals). One code path; the only
//! backend-specific SQL is full-text search, in `listing.rs`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use contracts::events::{ProductSnapshot, ProductStockLow};
use kit::events::Outbox;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Select, Set, SqlErr,
};
use sea_orm_migration::MigratorTrait;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::entities::{category, product, product_image};
use super::migration::Migrator;
use super::{StockObserver, StoreError};
use crate::domain::{Category, DEFAULT_LOW_STOCK_THRESHOLD, NewProduct, Product, Sku, crossed_low_stock};

/// How long a list's total is reused. Counting every match of a broad search or an unfiltered
/// list costs more than the page itself; a total a few seconds old is fine for a pager. This
/// process's own writes clear it at once.
const COUNT_TTL: Duration = Duration::from_secs(10);

/// The catalogue in a relational database: products, categories and images. It implements
/// [`super::CatalogStore`], [`super::CatalogSearch`] and [`super::CatalogImport`]; the
/// reservation ledger on the same database is [`super::SqlLedger`].
#[derive(Clone)]
pub struct SqlCatalog {
    pub(super) db: DatabaseConnection,
    pub(super) totals: ListTotals,
    /// Where its changes record their events (`product.created`, `.updated`, `.deleted`,
    /// `.stock_low`), in the transaction of the change.
    pub(super) outbox: Outbox,
    /// Stock at or below this is low: crossing it downward records `product.stock_low`.
    pub(super) low_stock_threshold: i64,
}

/// List totals by the query's filters and search (see [`COUNT_TTL`]), in two caches so that a
/// stock movement drops only the totals that depend on stock.
#[derive(Clone)]
pub(super) struct ListTotals {
    /// Lists that do not filter on stock.
    pub(super) any_stock: moka::future::Cache<String, u64>,
    /// Lists filtered on stock (`in_stock`), which every reservation can change.
    pub(super) by_stock: moka::future::Cache<String, u64>,
}

impl ListTotals {
    fn new() -> Self {
        let cache = || moka::future::Cache::builder().max_capacity(10_000).time_to_live(COUNT_TTL).build();
        Self { any_stock: cache(), by_stock: cache() }
    }

    /// Any total may have changed (products added, edited or deleted).
    pub(super) fn forget_all(&self) {
        self.any_stock.invalidate_all();
        self.by_stock.invalidate_all();
    }

    /// Only stock moved (a reservation or a release): totals that ignore stock still hold, so
    /// checkouts do not make every list page recount.
    pub(super) fn forget_stock(&self) {
        self.by_stock.invalidate_all();
    }
}

/// A reservation or a release moved stock: drop the totals that depend on it.
#[async_trait]
impl StockObserver for SqlCatalog {
    async fn stock_moved(&self, _products: &[Uuid]) {
        self.totals.forget_stock();
    }
}

impl SqlCatalog {
    /// The catalogue on an open connection pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            totals: ListTotals::new(),
            outbox: Outbox::new("products"),
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
        }
    }

    /// The same catalogue with another low-stock threshold (`low_stock_threshold`).
    pub fn with_low_stock_threshold(mut self, threshold: i64) -> Self {
        self.low_stock_threshold = threshold;
        self
    }

    /// Opens the pool described by `config`.
    pub async fn connect(config: &kit::config::DatabaseConfig) -> Result<Self, DbErr> {
        Ok(Self::new(kit::db::connect(config).await?))
    }

    /// The connection pool, shared with the reservation ledger ([`super::SqlLedger::new`]).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies the products database's pending migrations (catalogue and ledger alike).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Ok(Migrator::up(&self.db, None).await?)
    }

    pub(super) fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Products of `select` with their images, in the same query: each row carries its image
    /// keys in position order, joined by the unit separator (U+001F, which neither a content
    /// hash nor a URL contains).
    pub(super) async fn fetch(&self, select: Select<product::Entity>) -> Result<Vec<Product>, DbErr> {
        let separator = match self.backend() {
            DatabaseBackend::Postgres => "chr(31)",
            _ => "char(31)",
        };
        let keys = format!(
            "(SELECT string_agg(product_images.\"key\", {separator} ORDER BY product_images.position) \
             FROM product_images WHERE product_images.product_id = products.id)"
        );
        let rows =
            select.column_as(Expr::cust(keys), "image_keys").into_model::<ProductRow>().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let keys = row
                    .image_keys
                    .map(|joined| joined.split('\u{1f}').map(str::to_owned).collect())
                    .unwrap_or_default();
                to_product(row.product, keys)
            })
            .collect())
    }

    /// Attaches images to products, with one query for the whole page.
    pub(super) async fn hydrate(&self, models: Vec<product::Model>) -> Result<Vec<Product>, DbErr> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
        let mut images: HashMap<Uuid, Vec<String>> = HashMap::new();
        for image in product_image::Entity::find()
            .filter(product_image::Column::ProductId.is_in(ids))
            .order_by_asc(product_image::Column::ProductId)
            .order_by_asc(product_image::Column::Position)
            .all(&self.db)
            .await?
        {
            images.entry(image.product_id).or_default().push(image.key);
        }
        Ok(models
            .into_iter()
            .map(|m| {
                let keys = images.remove(&m.id).unwrap_or_default();
                to_product(m, keys)
            })
            .collect())
    }
}

/// A product row and its image keys (see [`SqlCatalog::fetch`]).
#[derive(Debug, FromQueryResult)]
struct ProductRow {
    #[sea_orm(nested)]
    product: product::Model,
    image_keys: Option<String>,
}

/// Timestamps are kept to the microsecond on both backends, so a cursor's key compares equal
/// to the stored value.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn to_product(m: product::Model, images: Vec<String>) -> Product {
    let attributes = match m.attributes {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Product {
        id: m.id,
        sku: Sku::from_stored(m.sku),
        name: m.name,
        short_description: m.short_description,
        description: m.description,
        category: m.category,
        brand: m.brand,
        price: kit::money::Money::new(m.price_amount, &m.currency),
        stock: m.stock,
        rating: m.rating,
        weight_grams: m.weight_grams,
        images,
        attributes,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// Every column of a new product (with a fresh id) stamped `at`.
pub(super) fn active_model(new: &NewProduct, sku: &Sku, at: DateTime<Utc>) -> product::ActiveModel {
    product::ActiveModel {
        id: Set(Uuid::now_v7()),
        sku: Set(sku.as_str().to_owned()),
        name: Set(new.name.clone()),
        short_description: Set(new.short_description.clone()),
        description: Set(new.description.clone()),
        category: Set(new.category.slug.clone()),
        brand: Set(new.brand.clone()),
        price_amount: Set(new.price.amount),
        currency: Set(new.price.currency.clone()),
        stock: Set(new.stock),
        rating: Set(new.rating),
        weight_grams: Set(new.weight_grams),
        attributes: Set(Value::Object(new.attributes.clone())),
        created_at: Set(at),
        updated_at: Set(at),
        deleted_at: Set(None),
    }
}

/// A product row as the catalogue events carry it.
pub(super) fn snapshot(model: &product::Model) -> ProductSnapshot {
    ProductSnapshot {
        product_id: model.id,
        sku: model.sku.clone(),
        name: model.name.clone(),
        category: model.category.clone(),
        brand: model.brand.clone(),
        price: kit::money::Money::new(model.price_amount, &model.currency),
        stock: model.stock,
    }
}

/// `product.stock_low` for a product whose stock went from `before` to its `model.stock`, if
/// that crossed `threshold` downward.
pub(super) async fn record_stock_low(
    outbox: &Outbox,
    txn: &impl ConnectionTrait,
    model: &product::Model,
    before: i64,
    threshold: i64,
) -> Result<(), DbErr> {
    if crossed_low_stock(before, model.stock, threshold) {
        let low = ProductStockLow {
            product_id: model.id,
            sku: model.sku.clone(),
            stock: model.stock,
            threshold,
            at: Utc::now(),
        };
        outbox.record(txn, low).await?;
    }
    Ok(())
}

/// A SKU for a product that came without one.
pub(super) fn generated_sku(new: &NewProduct) -> Sku {
    Sku::generate(&new.category.slug, new.brand.as_deref(), Uuid::new_v4().as_u128() as u64)
}

pub(super) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Creates the categories that do not exist yet.
pub(super) async fn ensure_categories(
    db: &impl ConnectionTrait,
    categories: &[Category],
) -> Result<(), DbErr> {
    let mut seen = BTreeSet::new();
    let rows: Vec<category::ActiveModel> = categories
        .iter()
        .filter(|c| seen.insert(c.slug.clone()))
        .map(|c| category::ActiveModel {
            slug: Set(c.slug.clone()),
            name: Set(c.name.clone()),
            created_at: Set(now()),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    category::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([category::Column::Slug])
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Appends image keys to a product, numbered from `first_position`.
pub(super) async fn insert_images(
    db: &impl ConnectionTrait,
    product_id: Uuid,
    keys: &[String],
    first_position: i32,
) -> Result<(), DbErr> {
    if keys.is_empty() {
        return Ok(());
    }
    let at = now();
    let rows = keys.iter().zip(first_position..).map(|(key, position)| product_image::ActiveModel {
        id: Set(Uuid::now_v7()),
        product_id: Set(product_id),
        key: Set(key.clone()),
        position: Set(position),
        created_at: Set(at),
    });
    product_image::Entity::insert_many(rows).exec_without_returning(db).await.map(|_| ())
}

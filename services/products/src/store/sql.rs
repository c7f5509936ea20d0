//! [`CatalogStore`] on SQLite and PostgreSQL through SeaORM. One code path; the only
//! backend-specific SQL is full-text search (`search_condition`), kept in this one place.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Order, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Set, SqlErr,
    Statement, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::entities::{category, product, product_image, reservation, reservation_line};
use super::migration::Migrator;
use super::{
    CatalogStore, CategoryCount, Listing, LookupItem, Paging, ReleaseOutcome, Reservation, ReserveOutcome,
    Shortage, StoreError, UpsertSummary,
};
use crate::domain::listing::CursorKey;
use crate::domain::{Category, ListQuery, NewProduct, Product, ProductPatch, ReservationRequest, Sku, Sort};

/// Rows per multi-row INSERT on import (SQLite allows 32,766 bound values per statement).
const INSERT_CHUNK: usize = 500;

/// How long a list's total is reused. Counting every match of a broad search or an unfiltered
/// list costs more than the page itself; a total a few seconds old is fine for a pager. This
/// process's own writes clear it at once.
const COUNT_TTL: Duration = Duration::from_secs(10);

/// The catalog in a relational database.
#[derive(Clone)]
pub struct SqlCatalog {
    db: DatabaseConnection,
    /// List totals by the query's filters and search, for lists that do not filter on stock.
    counts: moka::future::Cache<String, u64>,
    /// The same for lists filtered on stock (`in_stock`), which every reservation can change.
    stock_counts: moka::future::Cache<String, u64>,
}

impl SqlCatalog {
    pub fn new(db: DatabaseConnection) -> Self {
        let cache = || moka::future::Cache::builder().max_capacity(10_000).time_to_live(COUNT_TTL).build();
        Self { db, counts: cache(), stock_counts: cache() }
    }

    /// Any total may have changed (products added, edited or deleted).
    fn forget_counts(&self) {
        self.counts.invalidate_all();
        self.stock_counts.invalidate_all();
    }

    /// Only stock moved (a reservation or a release): totals that ignore stock still hold, so
    /// checkouts do not make every list page recount.
    fn forget_stock_counts(&self) {
        self.stock_counts.invalidate_all();
    }

    /// An offset page of `select` in two steps: the ids of the page first, which a covering
    /// `(filter, sort key, id)` index answers without reading the skipped rows, then those
    /// rows by id. A deep page (`OFFSET 8000`) otherwise reads every row it skips.
    async fn offset_page(
        &self,
        select: Select<product::Entity>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<Product>, DbErr> {
        use product::Column as C;
        if offset == 0 {
            return self.fetch(select.limit(limit)).await;
        }
        let ids: Vec<Uuid> =
            select.select_only().column(C::Id).offset(offset).limit(limit).into_tuple().all(&self.db).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: HashMap<Uuid, Product> = self
            .fetch(product::Entity::find().filter(C::Id.is_in(ids.clone())))
            .await?
            .into_iter()
            .map(|product| (product.id, product))
            .collect();
        // A row deleted between the two reads simply drops out of this page.
        Ok(ids.into_iter().filter_map(|id| rows.remove(&id)).collect())
    }

    /// Brings PostgreSQL's planner statistics up to date after a bulk import with
    /// `VACUUM (ANALYZE)`: row estimates, and the visibility map that lets index-only scans
    /// skip the table. Without it a freshly imported catalog is planned as if it were empty
    /// until autovacuum gets to it (or forever, where autovacuum is off). SQLite keeps its
    /// index-only plans without statistics (the indexes were chosen and measured that way), so
    /// this does nothing there.
    pub async fn refresh_statistics(&self) -> Result<(), DbErr> {
        if self.backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        self.db.execute_unprepared("VACUUM (ANALYZE) products, product_images, categories").await.map(drop)
    }

    /// Opens the pool described by `config`.
    pub async fn connect(config: &kit::config::DatabaseConfig) -> Result<Self, DbErr> {
        Ok(Self::new(kit::db::connect(config).await?))
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Products of `select` with their images, in the same query: each row carries its image
    /// keys in position order, joined by the unit separator (U+001F, which neither a content
    /// hash nor a URL contains).
    async fn fetch(&self, select: Select<product::Entity>) -> Result<Vec<Product>, DbErr> {
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
    async fn hydrate(&self, models: Vec<product::Model>) -> Result<Vec<Product>, DbErr> {
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

    async fn live(&self, id: Uuid) -> Result<Option<product::Model>, DbErr> {
        product::Entity::find_by_id(id).filter(product::Column::DeletedAt.is_null()).one(&self.db).await
    }

    async fn insert_new(&self, new: &NewProduct, sku: &Sku) -> Result<Uuid, DbErr> {
        let txn = self.db.begin().await?;
        ensure_categories(&txn, std::slice::from_ref(&new.category)).await?;
        let model = active_model(new, sku, now());
        let id = Uuid::now_v7();
        let model = product::ActiveModel { id: Set(id), ..model };
        product::Entity::insert(model).exec_without_returning(&txn).await?;
        insert_images(&txn, id, &new.images, 0).await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Ordering and keyset condition of a sort; relevance is handled by the search rank.
    fn apply_sort(
        mut select: Select<product::Entity>,
        sort: Sort,
        rank: Option<(SimpleExpr, Order)>,
    ) -> Select<product::Entity> {
        use product::Column as C;
        select = match sort {
            Sort::Relevance => match rank {
                Some((rank, order)) => select.order_by(rank, order).order_by_asc(C::Id),
                None => select.order_by_desc(C::CreatedAt).order_by_desc(C::Id),
            },
            Sort::Newest => select.order_by_desc(C::CreatedAt).order_by_desc(C::Id),
            Sort::PriceAsc => select.order_by_asc(C::PriceAmount).order_by_asc(C::Id),
            Sort::PriceDesc => select.order_by_desc(C::PriceAmount).order_by_desc(C::Id),
            Sort::Rating => select.order_by_desc(C::Rating).order_by_desc(C::Id),
            Sort::Name => select.order_by_asc(C::Name).order_by_asc(C::Id),
        };
        select
    }
}

/// Timestamps are kept to the microsecond on both backends, so a cursor's key compares equal
/// to the stored value.
fn now() -> DateTime<Utc> {
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

fn active_model(new: &NewProduct, sku: &Sku, at: DateTime<Utc>) -> product::ActiveModel {
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

fn generated_sku(new: &NewProduct) -> Sku {
    Sku::generate(&new.category.slug, new.brand.as_deref(), Uuid::new_v4().as_u128() as u64)
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

async fn ensure_categories(db: &impl ConnectionTrait, categories: &[Category]) -> Result<(), DbErr> {
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

async fn insert_images(
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

/// The full-text condition and rank of a search, per backend.
fn search_condition(
    backend: DatabaseBackend,
    select: &mut Select<product::Entity>,
    search: &crate::domain::SearchQuery,
) -> (SimpleExpr, (SimpleExpr, Order)) {
    match backend {
        DatabaseBackend::Postgres => {
            let tsquery = search.to_tsquery();
            let matches = Expr::cust_with_values(
                "products.search_vector @@ to_tsquery('english', $1)",
                [tsquery.clone()],
            );
            // Weights D, C, B, A: description < category < SKU/brand < name; a short-description
            // match earns a bonus over a long-description one.
            let rank = Expr::cust_with_values(
                "ts_rank('{0.05, 0.2, 0.4, 1.0}', products.search_vector, to_tsquery('english', $1)) \
                 + 0.5 * ts_rank(products.short_vector, to_tsquery('english', $2))",
                [tsquery.clone(), tsquery],
            );
            (matches, (rank, Order::Desc))
        }
        _ => {
            QueryTrait::query(select).join(
                JoinType::InnerJoin,
                Alias::new("products_fts"),
                Expr::cust("products_fts.rowid = products.rowid"),
            );
            let matches = Expr::cust_with_values("products_fts MATCH ?", [search.to_fts5()]);
            // Column weights: name, sku, brand, category, short_description, description.
            let rank = Expr::cust("bm25(products_fts, 10.0, 6.0, 5.0, 3.0, 2.0, 1.0)");
            (matches, (rank, Order::Asc))
        }
    }
}

/// Rows after `key` in its sort order, as a row-value comparison `(sort key, id) > (…)` so both
/// backends seek the `(sort key, id)` index instead of scanning it.
fn after_cursor(key: &CursorKey) -> Option<SimpleExpr> {
    use product::Column as C;
    let (column, value, id, ascending): (C, sea_orm::Value, Uuid, bool) = match key {
        CursorKey::Newest { at, id } => {
            let at = DateTime::<Utc>::from_timestamp_micros(*at).unwrap_or_default();
            (C::CreatedAt, at.into(), *id, false)
        }
        CursorKey::PriceAsc { price, id } => (C::PriceAmount, (*price).into(), *id, true),
        CursorKey::PriceDesc { price, id } => (C::PriceAmount, (*price).into(), *id, false),
        CursorKey::Rating { rating, id } => (C::Rating, (*rating).into(), *id, false),
        CursorKey::Name { name, id } => (C::Name, name.clone().into(), *id, true),
        CursorKey::Relevance { .. } => return None,
    };
    let row = Expr::tuple([Expr::col((product::Entity, column)), Expr::col((product::Entity, C::Id))]);
    let position = Expr::tuple([Expr::val(value), Expr::val(id)]);
    Some(if ascending { row.gt(position) } else { row.lt(position) })
}

/// The key of a product in a sort order, for the next cursor.
fn key_of(product: &Product, sort: Sort, offset: u64) -> CursorKey {
    match sort {
        Sort::Newest => CursorKey::Newest { at: product.created_at.timestamp_micros(), id: product.id },
        Sort::PriceAsc => CursorKey::PriceAsc { price: product.price.amount, id: product.id },
        Sort::PriceDesc => CursorKey::PriceDesc { price: product.price.amount, id: product.id },
        Sort::Rating => CursorKey::Rating { rating: product.rating, id: product.id },
        Sort::Name => CursorKey::Name { name: product.name.clone(), id: product.id },
        Sort::Relevance => CursorKey::Relevance { offset },
    }
}

/// A product row and its image keys (see [`SqlCatalog::fetch`]).
#[derive(Debug, FromQueryResult)]
struct ProductRow {
    #[sea_orm(nested)]
    product: product::Model,
    image_keys: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct CategoryRow {
    slug: String,
    name: String,
    product_count: i64,
}

#[async_trait]
impl CatalogStore for SqlCatalog {
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(Migrator::up(&self.db, None).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    async fn create_product(&self, new: NewProduct) -> Result<Product, StoreError> {
        // A generated SKU may collide, however unlikely; a given one is the caller's to fix.
        for _ in 0..3 {
            let sku = new.sku.clone().unwrap_or_else(|| generated_sku(&new));
            match self.insert_new(&new, &sku).await {
                Ok(id) => {
                    self.forget_counts();
                    let model = self.live(id).await?.ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
                    return Ok(self.hydrate(vec![model]).await?.remove(0));
                }
                Err(e) if is_unique_violation(&e) && new.sku.is_some() => {
                    return Err(StoreError::DuplicateSku(sku.to_string()));
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Db(DbErr::Custom("could not generate a unique SKU".into())))
    }

    async fn update_product(&self, id: Uuid, patch: ProductPatch) -> Result<Option<Product>, StoreError> {
        let txn = self.db.begin().await?;
        let Some(current) =
            product::Entity::find_by_id(id).filter(product::Column::DeletedAt.is_null()).one(&txn).await?
        else {
            return Ok(None);
        };
        let mut model: product::ActiveModel = current.into();
        let new_sku = patch.sku.as_ref().map(|s| s.to_string());
        if let Some(sku) = &new_sku {
            model.sku = Set(sku.clone());
        }
        if let Some(v) = patch.name {
            model.name = Set(v);
        }
        if let Some(v) = patch.short_description {
            model.short_description = Set(v);
        }
        if let Some(v) = patch.description {
            model.description = Set(v);
        }
        if let Some(category) = patch.category {
            ensure_categories(&txn, std::slice::from_ref(&category)).await?;
            model.category = Set(category.slug);
        }
        if let Some(v) = patch.brand {
            model.brand = Set(v);
        }
        if let Some(v) = patch.price {
            model.price_amount = Set(v.amount);
            model.currency = Set(v.currency);
        }
        if let Some(v) = patch.stock {
            model.stock = Set(v);
        }
        if let Some(v) = patch.weight_grams {
            model.weight_grams = Set(v);
        }
        if let Some(v) = patch.attributes {
            model.attributes = Set(Value::Object(v));
        }
        model.updated_at = Set(now());
        let updated = match model.update(&txn).await {
            Ok(updated) => updated,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::DuplicateSku(new_sku.unwrap_or_default()));
            }
            Err(e) => return Err(e.into()),
        };
        txn.commit().await?;
        self.forget_counts();
        Ok(self.hydrate(vec![updated]).await?.pop())
    }

    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError> {
        let at = now();
        let result = product::Entity::update_many()
            .col_expr(product::Column::DeletedAt, Expr::value(at))
            .col_expr(product::Column::UpdatedAt, Expr::value(at))
            .filter(product::Column::Id.eq(id))
            .filter(product::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        self.forget_counts();
        Ok(result.rows_affected == 1)
    }

    async fn product(&self, id: Uuid) -> Result<Option<Product>, StoreError> {
        let live = product::Entity::find_by_id(id).filter(product::Column::DeletedAt.is_null());
        Ok(self.fetch(live).await?.pop())
    }

    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
        let model = product::Entity::find()
            .filter(product::Column::Sku.eq(sku.as_str()))
            .filter(product::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(match model {
            Some(model) => self.hydrate(vec![model]).await?.pop(),
            None => None,
        })
    }

    async fn list(&self, query: &ListQuery, paging: Paging) -> Result<Listing, StoreError> {
        use product::Column as C;
        let mut select = product::Entity::find().filter(C::DeletedAt.is_null());
        if let Some(category) = &query.category {
            select = select.filter(C::Category.eq(category.as_str()));
        }
        if let Some(brand) = &query.brand {
            select = select.filter(C::Brand.eq(brand.as_str()));
        }
        if let Some(min) = query.min_price {
            select = select.filter(C::PriceAmount.gte(min));
        }
        if let Some(max) = query.max_price {
            select = select.filter(C::PriceAmount.lte(max));
        }
        match query.in_stock {
            Some(true) => select = select.filter(C::Stock.gt(0)),
            Some(false) => select = select.filter(C::Stock.eq(0)),
            None => {}
        }
        let mut rank = None;
        if let Some(search) = &query.search {
            let (matches, ranking) = search_condition(self.backend(), &mut select, search);
            select = select.filter(matches);
            rank = Some(ranking);
        }

        match paging {
            Paging::Offset { offset, limit } => {
                let key = format!(
                    "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                    query.search,
                    query.category,
                    query.brand,
                    query.min_price,
                    query.max_price,
                    query.in_stock
                );
                let counting = select.clone();
                let counts = if query.in_stock.is_some() { &self.stock_counts } else { &self.counts };
                let total = counts
                    .try_get_with(key, async move { counting.count(&self.db).await })
                    .await
                    .map_err(|shared| (*shared).clone())?;
                let ranked = rank.is_some() && query.sort == Sort::Relevance;
                let sorted = Self::apply_sort(select, query.sort, rank);
                let items = if ranked {
                    // Ranking reads every match anyway; two steps would rank twice.
                    self.fetch(sorted.offset(offset).limit(limit)).await?
                } else {
                    self.offset_page(sorted, offset, limit).await?
                };
                Ok(Listing { items, total: Some(total), next: None })
            }
            Paging::Cursor { after, limit } => {
                let mut offset = 0;
                if let Some(key) = &after {
                    match key {
                        CursorKey::Relevance { offset: o } => offset = *o,
                        other => {
                            if let Some(condition) = after_cursor(other) {
                                select = select.filter(condition);
                            }
                        }
                    }
                }
                let mut items = self
                    .fetch(Self::apply_sort(select, query.sort, rank).offset(offset).limit(limit + 1))
                    .await?;
                let more = items.len() as u64 > limit;
                items.truncate(limit as usize);
                let next = match (more, items.last()) {
                    (true, Some(last)) => Some(key_of(last, query.sort, offset + limit)),
                    _ => None,
                };
                Ok(Listing { items, total: None, next })
            }
        }
    }

    async fn low_stock(
        &self,
        threshold: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Product>, u64), StoreError> {
        use product::Column as C;
        let select = product::Entity::find().filter(C::DeletedAt.is_null()).filter(C::Stock.lte(threshold));
        let total = select.clone().count(&self.db).await?;
        let models = select
            .order_by_asc(C::Stock)
            .order_by_asc(C::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok((self.hydrate(models).await?, total))
    }

    async fn categories(&self) -> Result<Vec<CategoryCount>, StoreError> {
        let sql = "SELECT c.slug, c.name, COUNT(p.id) AS product_count \
                   FROM categories c JOIN products p ON p.category = c.slug AND p.deleted_at IS NULL \
                   GROUP BY c.slug, c.name ORDER BY c.name, c.slug";
        let rows =
            CategoryRow::find_by_statement(Statement::from_string(self.backend(), sql)).all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|r| CategoryCount {
                slug: r.slug,
                name: r.name,
                product_count: u64::try_from(r.product_count).unwrap_or(0),
            })
            .collect())
    }

    async fn add_image(&self, product_id: Uuid, key: &str) -> Result<Option<Product>, StoreError> {
        let txn = self.db.begin().await?;
        let Some(model) = product::Entity::find_by_id(product_id)
            .filter(product::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let count = product_image::Entity::find()
            .filter(product_image::Column::ProductId.eq(product_id))
            .count(&txn)
            .await?;
        insert_images(&txn, product_id, &[key.to_owned()], count as i32).await?;
        product::Entity::update_many()
            .col_expr(product::Column::UpdatedAt, Expr::value(now()))
            .filter(product::Column::Id.eq(product_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(self.hydrate(vec![model]).await?.pop())
    }

    async fn upsert_batch(&self, products: Vec<NewProduct>) -> Result<UpsertSummary, StoreError> {
        // The last record of a SKU in the batch wins.
        let mut by_sku: Vec<(Sku, NewProduct)> = Vec::with_capacity(products.len());
        let mut position: HashMap<Sku, usize> = HashMap::new();
        for new in products {
            let sku = new.sku.clone().unwrap_or_else(|| generated_sku(&new));
            match position.get(&sku) {
                Some(&i) => by_sku[i] = (sku, new),
                None => {
                    position.insert(sku.clone(), by_sku.len());
                    by_sku.push((sku, new));
                }
            }
        }
        let txn = self.db.begin().await?;
        if self.backend() == DatabaseBackend::Postgres {
            // An import grows the table under statements prepared while it was small, and a cached
            // generic plan would keep scanning it whole for the SKU lookup (with autovacuum off or
            // behind, nothing invalidates it): plan each statement for the table as it is now.
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan").await?;
        }
        let categories: Vec<Category> = by_sku.iter().map(|(_, p)| p.category.clone()).collect();
        ensure_categories(&txn, &categories).await?;

        let mut existing: HashMap<String, Uuid> = HashMap::new();
        for chunk in by_sku.chunks(INSERT_CHUNK) {
            let skus: Vec<&str> = chunk.iter().map(|(s, _)| s.as_str()).collect();
            let found: Vec<(Uuid, String)> = product::Entity::find()
                .select_only()
                .column(product::Column::Id)
                .column(product::Column::Sku)
                .filter(product::Column::DeletedAt.is_null())
                .filter(product::Column::Sku.is_in(skus))
                .into_tuple()
                .all(&txn)
                .await?;
            existing.extend(found.into_iter().map(|(id, sku)| (sku, id)));
        }

        let at = now();
        let mut summary = UpsertSummary::default();
        let mut fresh = Vec::new();
        let mut fresh_images = Vec::new();
        for (sku, new) in &by_sku {
            match existing.get(sku.as_str()) {
                Some(&id) => {
                    let mut model = active_model(new, sku, at);
                    model.id = Set(id);
                    model.created_at = sea_orm::ActiveValue::NotSet;
                    model.deleted_at = sea_orm::ActiveValue::NotSet;
                    model.update(&txn).await?;
                    if !new.images.is_empty() {
                        product_image::Entity::delete_many()
                            .filter(product_image::Column::ProductId.eq(id))
                            .exec(&txn)
                            .await?;
                        insert_images(&txn, id, &new.images, 0).await?;
                    }
                    summary.updated += 1;
                }
                None => {
                    let model = active_model(new, sku, at);
                    if let Set(id) = &model.id {
                        fresh_images.push((*id, new.images.clone()));
                    }
                    fresh.push(model);
                    summary.inserted += 1;
                }
            }
        }
        for chunk in fresh.chunks(INSERT_CHUNK) {
            product::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        for (id, images) in fresh_images {
            insert_images(&txn, id, &images, 0).await?;
        }
        txn.commit().await?;
        self.forget_counts();
        Ok(summary)
    }

    async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<LookupItem>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let models =
            product::Entity::find().filter(product::Column::Id.is_in(ids.to_vec())).all(&self.db).await?;
        Ok(models
            .into_iter()
            .map(|m| LookupItem {
                id: m.id,
                sku: m.sku,
                name: m.name,
                price: kit::money::Money::new(m.price_amount, &m.currency),
                stock: m.stock,
                deleted: m.deleted_at.is_some(),
            })
            .collect())
    }

    async fn reserve(&self, request: &ReservationRequest) -> Result<ReserveOutcome, StoreError> {
        let txn = self.db.begin().await?;
        // Claim the order id first: a write at once (no read→write lock upgrade on SQLite), and a
        // replay or a concurrent duplicate stops here.
        let claim = reservation::ActiveModel {
            order_id: Set(request.order_id),
            status: Set("held".into()),
            created_at: Set(now()),
            released_at: Set(None),
        };
        if let Err(e) = reservation::Entity::insert(claim).exec_without_returning(&txn).await {
            txn.rollback().await?;
            if is_unique_violation(&e) {
                let existing = self.reservation(request.order_id).await?;
                return existing.map(ReserveOutcome::Existing).ok_or(StoreError::Db(e));
            }
            return Err(e.into());
        }
        let mut short = Vec::new();
        for line in &request.lines {
            let taken = product::Entity::update_many()
                .col_expr(product::Column::Stock, Expr::col(product::Column::Stock).sub(line.quantity))
                .filter(product::Column::Id.eq(line.product_id))
                .filter(product::Column::DeletedAt.is_null())
                .filter(product::Column::Stock.gte(line.quantity))
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            if !taken {
                short.push(line);
            }
        }
        if !short.is_empty() {
            txn.rollback().await?;
            let ids: Vec<Uuid> = short.iter().map(|l| l.product_id).collect();
            let stock: HashMap<Uuid, i64> = self
                .lookup(&ids)
                .await?
                .into_iter()
                .map(|item| (item.id, if item.deleted { 0 } else { item.stock }))
                .collect();
            return Ok(ReserveOutcome::Short(
                short
                    .into_iter()
                    .map(|l| Shortage {
                        product_id: l.product_id,
                        requested: l.quantity,
                        available: stock.get(&l.product_id).copied().unwrap_or(0),
                    })
                    .collect(),
            ));
        }
        let lines = request.lines.iter().map(|l| reservation_line::ActiveModel {
            order_id: Set(request.order_id),
            product_id: Set(l.product_id),
            quantity: Set(l.quantity),
        });
        reservation_line::Entity::insert_many(lines).exec_without_returning(&txn).await?;
        txn.commit().await?;
        self.forget_stock_counts();
        Ok(ReserveOutcome::Reserved(Reservation {
            order_id: request.order_id,
            held: true,
            lines: request.lines.iter().map(|l| (l.product_id, l.quantity)).collect(),
        }))
    }

    async fn release(&self, order_id: Uuid) -> Result<ReleaseOutcome, StoreError> {
        let txn = self.db.begin().await?;
        let at = now();
        let released = reservation::Entity::update_many()
            .col_expr(reservation::Column::Status, Expr::value("released"))
            .col_expr(reservation::Column::ReleasedAt, Expr::value(at))
            .filter(reservation::Column::OrderId.eq(order_id))
            .filter(reservation::Column::Status.eq("held"))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if released {
            let lines = reservation_line::Entity::find()
                .filter(reservation_line::Column::OrderId.eq(order_id))
                .all(&txn)
                .await?;
            for line in lines {
                product::Entity::update_many()
                    .col_expr(product::Column::Stock, Expr::col(product::Column::Stock).add(line.quantity))
                    .filter(product::Column::Id.eq(line.product_id))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await?;
            self.forget_stock_counts();
            return Ok(ReleaseOutcome::Released);
        }
        // Nothing held: record the release so a reservation arriving late is refused.
        let tombstone = reservation::ActiveModel {
            order_id: Set(order_id),
            status: Set("released".into()),
            created_at: Set(at),
            released_at: Set(Some(at)),
        };
        reservation::Entity::insert(tombstone)
            .on_conflict_do_nothing_on([reservation::Column::OrderId])
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(ReleaseOutcome::AlreadyReleased)
    }

    async fn reservation(&self, order_id: Uuid) -> Result<Option<Reservation>, StoreError> {
        let Some(found) = reservation::Entity::find_by_id(order_id).one(&self.db).await? else {
            return Ok(None);
        };
        let lines = reservation_line::Entity::find()
            .filter(reservation_line::Column::OrderId.eq(order_id))
            .all(&self.db)
            .await?;
        Ok(Some(Reservation {
            order_id,
            held: found.status == "held",
            lines: lines.into_iter().map(|l| (l.product_id, l.quantity)).collect(),
        }))
    }
}

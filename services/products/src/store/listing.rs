//! Search and listing: [`CatalogSearch`] (pages of live products, searched, filtered and
//! sorted; the category list; the low-stock report) and its SQL adapter on [`SqlCatalog`].
//! Full-text search is the one backend-specific part of the store, in `search_condition`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Order, SimpleExpr};
use sea_orm::{
    ColumnTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Statement,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::product;
use super::sql::SqlCatalog;
use crate::domain::listing::CursorKey;
use crate::domain::{CategoryCount, ListQuery, Listing, Paging, Product, Sort};

/// Reading the catalogue many products at a time.
#[async_trait]
pub trait CatalogSearch: Send + Sync {
    /// A page of live products matching `query`.
    async fn list(&self, query: &ListQuery, paging: Paging) -> Result<Listing, StoreError>;
    /// Every category with its live product count.
    async fn categories(&self) -> Result<Vec<CategoryCount>, StoreError>;
    /// Live products with stock at or below `threshold`, lowest first, and how many there are.
    async fn low_stock(
        &self,
        threshold: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Product>, u64), StoreError>;
}

impl SqlCatalog {
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

#[derive(Debug, FromQueryResult)]
struct CategoryRow {
    slug: String,
    name: String,
    product_count: i64,
}

#[async_trait]
impl CatalogSearch for SqlCatalog {
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
                let counts =
                    if query.in_stock.is_some() { &self.totals.by_stock } else { &self.totals.any_stock };
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
}

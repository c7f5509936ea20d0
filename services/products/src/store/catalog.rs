//! The catalogue's records: [`CatalogStore`] (create, change, delete, read one product, add an
//! image, look products up for pricing) and its SQL adapter on [`SqlCatalog`].

use async_trait::async_trait;
use contracts::events::{ProductCreated, ProductDeleted, ProductSnapshot, ProductUpdated};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use super::StoreError;
use super::entities::{product, product_image};
use super::sql::{
    SqlCatalog, active_model, ensure_categories, generated_sku, insert_images, is_unique_violation, now,
    record_stock_low, snapshot,
};
use crate::domain::{LookupItem, NewProduct, Product, ProductPatch, Sku};

/// The catalogue's products, one at a time.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Creates a product (and its category if new); a missing SKU is generated.
    async fn create_product(&self, new: NewProduct) -> Result<Product, StoreError>;
    /// Changes a live product; `None` if there is none.
    async fn update_product(&self, id: Uuid, patch: ProductPatch) -> Result<Option<Product>, StoreError>;
    /// Soft-deletes a live product; `false` if there was none.
    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError>;
    /// A live product by id.
    async fn product(&self, id: Uuid) -> Result<Option<Product>, StoreError>;
    /// A live product by SKU.
    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>, StoreError>;
    /// Appends an image key to a live product; `None` if there is none.
    async fn add_image(&self, product_id: Uuid, key: &str) -> Result<Option<Product>, StoreError>;
    /// Price, name, SKU and first image of each id found, deleted ones flagged. Never cached:
    /// orders are priced from it, and carts show it.
    async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<LookupItem>, StoreError>;
    /// Up to `limit` live products with no image: (id, name, category slug), oldest first.
    async fn without_images(&self, limit: u64) -> Result<Vec<(Uuid, String, String)>, StoreError>;
}

impl SqlCatalog {
    async fn live(&self, id: Uuid) -> Result<Option<product::Model>, DbErr> {
        product::Entity::find_by_id(id).filter(product::Column::DeletedAt.is_null()).one(&self.db).await
    }

    /// Inserts the product, its images and its `product.created` event in one transaction.
    async fn insert_new(&self, new: &NewProduct, sku: &Sku) -> Result<Uuid, DbErr> {
        let txn = self.db.begin().await?;
        ensure_categories(&txn, std::slice::from_ref(&new.category)).await?;
        let at = now();
        let model = active_model(new, sku, at);
        let id = Uuid::now_v7();
        let model = product::ActiveModel { id: Set(id), ..model };
        product::Entity::insert(model).exec_without_returning(&txn).await?;
        insert_images(&txn, id, &new.images, 0).await?;
        let product = ProductSnapshot {
            product_id: id,
            sku: sku.to_string(),
            name: new.name.clone(),
            category: new.category.slug.clone(),
            brand: new.brand.clone(),
            price: new.price.clone(),
            stock: new.stock,
        };
        self.outbox.record(&txn, ProductCreated { product, created_at: at }).await?;
        txn.commit().await?;
        Ok(id)
    }
}

/// Marks a live product updated now; `false` when there is none. The first statement of a
/// transaction that changes a product: on SQLite a transaction that reads first cannot take the
/// write lock once another writer has committed meanwhile (`SQLITE_BUSY_SNAPSHOT`, which no busy
/// timeout waits out), while one that writes first waits its turn. On PostgreSQL it also locks
/// the row for the rest of the transaction.
async fn touch_live(txn: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let touched = product::Entity::update_many()
        .col_expr(product::Column::UpdatedAt, Expr::value(now()))
        .filter(product::Column::Id.eq(id))
        .filter(product::Column::DeletedAt.is_null())
        .exec(txn)
        .await?;
    Ok(touched.rows_affected == 1)
}

#[async_trait]
impl CatalogStore for SqlCatalog {
    async fn create_product(&self, new: NewProduct) -> Result<Product, StoreError> {
        // A generated SKU may collide, however unlikely; a given one is the caller's to fix.
        for _ in 0..3 {
            let sku = new.sku.clone().unwrap_or_else(|| generated_sku(&new));
            match self.insert_new(&new, &sku).await {
                Ok(id) => {
                    self.totals.forget_all();
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
        if !touch_live(&txn, id).await? {
            return Ok(None);
        }
        let current = product::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
        let stock_before = current.stock;
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
        let changed = ProductUpdated { product: snapshot(&updated), updated_at: updated.updated_at };
        self.outbox.record(&txn, changed).await?;
        record_stock_low(&self.outbox, &txn, &updated, stock_before, self.low_stock_threshold).await?;
        txn.commit().await?;
        self.totals.forget_all();
        Ok(self.hydrate(vec![updated]).await?.pop())
    }

    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError> {
        let at = now();
        let txn = self.db.begin().await?;
        let result = product::Entity::update_many()
            .col_expr(product::Column::DeletedAt, Expr::value(at))
            .col_expr(product::Column::UpdatedAt, Expr::value(at))
            .filter(product::Column::Id.eq(id))
            .filter(product::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        let deleted = product::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
        self.outbox.record(&txn, ProductDeleted { product_id: id, sku: deleted.sku, deleted_at: at }).await?;
        txn.commit().await?;
        self.totals.forget_all();
        Ok(true)
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

    async fn add_image(&self, product_id: Uuid, key: &str) -> Result<Option<Product>, StoreError> {
        let txn = self.db.begin().await?;
        if !touch_live(&txn, product_id).await? {
            return Ok(None);
        }
        let model = product::Entity::find_by_id(product_id)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(product_id.to_string()))?;
        let count = product_image::Entity::find()
            .filter(product_image::Column::ProductId.eq(product_id))
            .count(&txn)
            .await?;
        insert_images(&txn, product_id, &[key.to_owned()], count as i32).await?;
        let changed = ProductUpdated { product: snapshot(&model), updated_at: model.updated_at };
        self.outbox.record(&txn, changed).await?;
        txn.commit().await?;
        Ok(self.hydrate(vec![model]).await?.pop())
    }

    async fn without_images(&self, limit: u64) -> Result<Vec<(Uuid, String, String)>, StoreError> {
        use sea_orm::sea_query::{ExprTrait, Query};
        let has_image = Query::select()
            .expr(Expr::val(1))
            .from(product_image::Entity)
            .and_where(
                Expr::col((product_image::Entity, product_image::Column::ProductId))
                    .equals((product::Entity, product::Column::Id)),
            )
            .to_owned();
        Ok(product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .column(product::Column::Name)
            .column(product::Column::Category)
            .filter(product::Column::DeletedAt.is_null())
            .filter(Expr::exists(has_image).not())
            .order_by_asc(product::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<LookupItem>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let models =
            product::Entity::find().filter(product::Column::Id.is_in(ids.to_vec())).all(&self.db).await?;
        // The first image of each, by position: one more query for the whole batch.
        let mut first_images: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
        for image in product_image::Entity::find()
            .filter(product_image::Column::ProductId.is_in(ids.to_vec()))
            .order_by_asc(product_image::Column::Position)
            .all(&self.db)
            .await?
        {
            first_images.entry(image.product_id).or_insert(image.key);
        }
        Ok(models
            .into_iter()
            .map(|m| LookupItem {
                image: first_images.remove(&m.id),
                id: m.id,
                sku: m.sku,
                name: m.name,
                price: kit::money::Money::new(m.price_amount, &m.currency),
                deleted: m.deleted_at.is_some(),
            })
            .collect())
    }
}

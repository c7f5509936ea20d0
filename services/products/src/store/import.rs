//! Bulk import: [`CatalogImport`] (products upserted by SKU in batches, what `mercato seed` and
//! the demo catalog use) and its SQL adapter on [`SqlCatalog`].

use std::collections::HashMap;

use async_trait::async_trait;
use contracts::events::{ProductCreated, ProductSnapshot, ProductUpdated};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect,
    Set, TransactionTrait,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{product, product_image};
use super::sql::{SqlCatalog, active_model, ensure_categories, generated_sku, insert_images, now, snapshot};
use crate::domain::{Category, NewProduct, Sku};

/// Rows per multi-row INSERT on import (SQLite allows 32,766 bound values per statement).
const INSERT_CHUNK: usize = 500;

/// Counts of a batch import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub inserted: u64,
    pub updated: u64,
}

/// Loading many products at once.
#[async_trait]
pub trait CatalogImport: Send + Sync {
    /// Inserts new products and updates those whose SKU exists, with their `product.created`
    /// and `product.updated` events, in one transaction. Within a batch the last record of a
    /// SKU wins.
    async fn upsert_batch(&self, products: Vec<NewProduct>) -> Result<UpsertSummary, StoreError>;
    /// `true` while the catalogue holds no live product (a new shop's).
    async fn is_empty(&self) -> Result<bool, StoreError>;
    /// Brings the database's planner statistics up to date after a large import.
    async fn refresh_statistics(&self) -> Result<(), StoreError>;
}

#[async_trait]
impl CatalogImport for SqlCatalog {
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
        let (mut created, mut updated) = (Vec::new(), Vec::new());
        for (sku, new) in &by_sku {
            match existing.get(sku.as_str()) {
                Some(&id) => {
                    let mut model = active_model(new, sku, at);
                    model.id = Set(id);
                    model.created_at = sea_orm::ActiveValue::NotSet;
                    model.deleted_at = sea_orm::ActiveValue::NotSet;
                    let saved = model.update(&txn).await?;
                    updated.push(ProductUpdated { product: snapshot(&saved), updated_at: at });
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
                        let product = ProductSnapshot {
                            product_id: *id,
                            sku: sku.to_string(),
                            name: new.name.clone(),
                            category: new.category.slug.clone(),
                            brand: new.brand.clone(),
                            price: new.price.clone(),
                            stock: new.stock,
                        };
                        created.push(ProductCreated { product, created_at: at });
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
        self.outbox.record_many(&txn, created).await?;
        self.outbox.record_many(&txn, updated).await?;
        txn.commit().await?;
        self.totals.forget_all();
        Ok(summary)
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let live = product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(product::Column::DeletedAt.is_null())
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?;
        Ok(live.is_none())
    }

    /// PostgreSQL: `VACUUM (ANALYZE)`, for row estimates and the visibility map that lets
    /// index-only scans skip the table. Without it a freshly imported catalogue is planned as
    /// if it were empty until autovacuum gets to it (or forever, where autovacuum is off).
    /// SQLite keeps its index-only plans without statistics (the indexes were chosen and
    /// measured that way), so this does nothing there.
    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        self.db.execute_unprepared("VACUUM (ANALYZE) products, product_images, categories").await?;
        Ok(())
    }
}

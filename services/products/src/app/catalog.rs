//! The catalogue: the admin creates, changes and deletes products; anyone reads one, lists,
//! searches and filters them (offset pages or keyset cursors) and sees the categories; the
//! admin's low-stock report; other services look products up to price an order.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{
    CategoryCount, ListQuery, Listing, LookupItem, NewProduct, Paging, Product, ProductPatch, Sku,
};
use crate::store::{CatalogSearch, CatalogStore, StoreError};

/// Why a catalogue use case failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    /// Absent, or deleted.
    #[error("no such product")]
    NotFound,
    #[error("a product with SKU {0} already exists")]
    DuplicateSku(String),
    /// A cursor handed out for one sort order, sent with another.
    #[error("the cursor belongs to another sort order")]
    CursorOfAnotherSort,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CatalogError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DuplicateSku(sku) => Self::DuplicateSku(sku),
            other => Self::Store(other),
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lookup {
    /// Each product found, deleted ones flagged.
    pub found: Vec<LookupItem>,
    /// Ids that never existed, in the order asked.
    pub missing: Vec<Uuid>,
}

/// The catalogue's use cases, over its records and its search (the read cache, when on).
#[derive(Clone)]
pub(crate) struct Catalog {
    records: Arc<dyn CatalogStore>,
    search: Arc<dyn CatalogSearch>,
}

impl Catalog {
    pub fn new(records: Arc<dyn CatalogStore>, search: Arc<dyn CatalogSearch>) -> Self {
        Self { records, search }
    }

    /// Creates a product; its SKU is generated when it has none.
    pub async fn create(&self, new: NewProduct) -> Result<Product, CatalogError> {
        Ok(self.records.create_product(new).await?)
    }

    /// Changes the fields `patch` names of a live product; a patch that names none changes
    /// nothing (not even when it was last updated) and answers the product as it is.
    pub async fn change(&self, id: Uuid, patch: ProductPatch) -> Result<Product, CatalogError> {
        if patch.is_empty() {
            return self.product(id).await;
        }
        self.records.update_product(id, patch).await?.ok_or(CatalogError::NotFound)
    }

    /// Soft-deletes a product: it leaves lists and reads, but orders keep its history.
    pub async fn delete(&self, id: Uuid) -> Result<(), CatalogError> {
        if self.records.delete_product(id).await? { Ok(()) } else { Err(CatalogError::NotFound) }
    }

    /// A live product.
    pub async fn product(&self, id: Uuid) -> Result<Product, CatalogError> {
        self.records.product(id).await?.ok_or(CatalogError::NotFound)
    }

    /// A live product by SKU.
    pub async fn product_by_sku(&self, sku: &Sku) -> Result<Product, CatalogError> {
        self.records.product_by_sku(sku).await?.ok_or(CatalogError::NotFound)
    }

    /// A page of live products matching `query`. A cursor resumes only the sort order it was
    /// handed out for.
    pub async fn list(&self, query: &ListQuery, paging: Paging) -> Result<Listing, CatalogError> {
        if let Paging::Cursor { after: Some(key), .. } = &paging
            && key.sort() != query.sort
        {
            return Err(CatalogError::CursorOfAnotherSort);
        }
        Ok(self.search.list(query, paging).await?)
    }

    /// Every category with live products, by name.
    pub async fn categories(&self) -> Result<Vec<CategoryCount>, CatalogError> {
        Ok(self.search.categories().await?)
    }

    /// Live products with stock at or below `threshold`, lowest first, and how many there are.
    pub async fn low_stock(
        &self,
        threshold: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Product>, u64), CatalogError> {
        Ok(self.search.low_stock(threshold, offset, limit).await?)
    }

    /// Products by id for pricing an order, deleted ones included and flagged; never from the
    /// read cache.
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<Lookup, CatalogError> {
        let found = self.records.lookup(ids).await?;
        let missing = ids.iter().filter(|id| !found.iter().any(|f| f.id == **id)).copied().collect();
        Ok(Lookup { found, missing })
    }
}

//! The catalog's storage behind one trait, [`CatalogStore`], so the business logic never
//! matches on a backend. [`SqlCatalog`] serves SQLite and PostgreSQL through SeaORM; a later
//! MongoDB adapter implements the same trait.

mod cache;
pub mod entities;
pub mod migration;
mod sql;

use async_trait::async_trait;
use uuid::Uuid;

pub use cache::{CacheLimits, CachedCatalog};
pub use sql::SqlCatalog;

use crate::domain::listing::CursorKey;
use crate::domain::{ListQuery, NewProduct, Product, ProductPatch, ReservationRequest, Sku};

/// What can go wrong storing the catalog, beyond the database failing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a live product already has SKU {0}")]
    DuplicateSku(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl From<StoreError> for kit::ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DuplicateSku(sku) => {
                kit::ApiError::conflict(format!("a product with SKU {sku} already exists"))
            }
            StoreError::Db(db) => db.into(),
        }
    }
}

/// How much of a list to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// `limit` rows after skipping `offset`, with the total.
    Offset { offset: u64, limit: u64 },
    /// `limit` rows after the cursor position (from the start when `None`).
    Cursor { after: Option<CursorKey>, limit: u64 },
}

/// One page of products.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub items: Vec<Product>,
    /// Offset pages only.
    pub total: Option<u64>,
    /// Cursor pages only: where the next page starts, `None` on the last page.
    pub next: Option<CursorKey>,
}

/// A category and how many live products it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    pub slug: String,
    pub name: String,
    pub product_count: u64,
}

/// What another service needs to price and check an order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupItem {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: kit::money::Money,
    pub stock: i64,
    pub deleted: bool,
}

/// A product that could not be held, and what is available of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: Uuid,
    pub requested: i64,
    /// 0 for unknown or deleted products.
    pub available: i64,
}

/// The state of an order's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: Uuid,
    pub held: bool,
    pub lines: Vec<(Uuid, i64)>,
}

/// What a reservation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Everything is held now.
    Reserved(Reservation),
    /// This order already had a reservation (a replay): it is returned unchanged.
    Existing(Reservation),
    /// Some lines could not be held; nothing was taken.
    Short(Vec<Shortage>),
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The held stock went back.
    Released,
    /// Nothing was held (released before, or never reserved): nothing changed.
    AlreadyReleased,
}

/// Counts of a batch import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub inserted: u64,
    pub updated: u64,
}

/// The catalog's storage.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

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
    /// A page of live products matching `query`.
    async fn list(&self, query: &ListQuery, paging: Paging) -> Result<Listing, StoreError>;
    /// Live products with stock at or below `threshold`, lowest first.
    async fn low_stock(
        &self,
        threshold: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Product>, u64), StoreError>;
    /// Every category with its live product count.
    async fn categories(&self) -> Result<Vec<CategoryCount>, StoreError>;
    /// Appends an image key to a live product; `None` if there is none.
    async fn add_image(&self, product_id: Uuid, key: &str) -> Result<Option<Product>, StoreError>;
    /// Inserts new products and updates those whose SKU exists (import), in one transaction.
    async fn upsert_batch(&self, products: Vec<NewProduct>) -> Result<UpsertSummary, StoreError>;

    /// Price, stock, name and SKU of each id found, deleted ones flagged.
    async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<LookupItem>, StoreError>;
    /// Holds stock for an order, all lines or none; idempotent on the order id.
    async fn reserve(&self, request: &ReservationRequest) -> Result<ReserveOutcome, StoreError>;
    /// Returns an order's held stock exactly once; idempotent. Releasing an unknown order
    /// records the release, so a late reservation for it is refused.
    async fn release(&self, order_id: Uuid) -> Result<ReleaseOutcome, StoreError>;
    /// An order's reservation, if any.
    async fn reservation(&self, order_id: Uuid) -> Result<Option<Reservation>, StoreError>;
}

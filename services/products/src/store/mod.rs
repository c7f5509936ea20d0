//! The products service's storage, behind small traits so the business logic never matches on
//! a backend: the catalogue's records ([`CatalogStore`]), search and listing
//! ([`CatalogSearch`]), bulk import ([`CatalogImport`]), and apart from them the reservation
//! ledger ([`ReservationLedger`]). [`SqlCatalog`] and [`SqlLedger`] serve SQLite and
//! PostgreSQL through SeaORM; [`CachedCatalog`] keeps hot catalogue reads in memory (and product
//! details in Redis too, shared by every replica, when configured). A later
//! MongoDB adapter implements the same traits.

mod cache;
mod catalog;
mod entities;
mod images;
mod import;
mod ledger;
mod listing;
pub mod migration;
mod sql;

use std::sync::Arc;

pub use cache::{CacheLimits, CachedCatalog, SharedDetails};
pub use catalog::CatalogStore;
pub use images::{ImageStore, StoredImage};
pub use import::{CatalogImport, UpsertSummary};
pub use ledger::{ReleaseOutcome, ReservationLedger, ReserveOutcome, SqlLedger, StockObserver};
pub use listing::CatalogSearch;
pub use sql::SqlCatalog;

/// One catalogue (the SQL one, or the read cache in front of it) as each of its traits.
#[derive(Clone)]
pub(crate) struct CatalogHandles {
    pub(crate) records: Arc<dyn CatalogStore>,
    pub(crate) search: Arc<dyn CatalogSearch>,
    pub(crate) import: Arc<dyn CatalogImport>,
    /// What the reservation ledger tells when stock moved.
    pub(crate) stock: Arc<dyn StockObserver>,
}

impl CatalogHandles {
    pub(crate) fn of<S>(catalog: Arc<S>) -> Self
    where
        S: CatalogStore + CatalogSearch + CatalogImport + StockObserver + 'static,
    {
        Self { records: catalog.clone(), search: catalog.clone(), import: catalog.clone(), stock: catalog }
    }
}

/// What can go wrong storing the catalogue, beyond the database failing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a live product already has SKU {0}")]
    DuplicateSku(String),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

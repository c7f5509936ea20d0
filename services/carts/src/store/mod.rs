//! Where carts live, behind one trait ([`CartStore`]): Redis in production
//! ([`RedisCarts`], a hash per user that expires after `idle_expiry_days` without a write) and
//! SQLite on the embedded default ([`SqliteCarts`]). Every write is atomic on both: the line
//! limit is checked where the line is written, and what a checkout ordered is taken out once
//! per order.

pub mod migration;
mod redis;
mod sqlite;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::redis::RedisCarts;
pub use sqlite::SqliteCarts;

use crate::domain::{Quantity, StoredCart};

/// Why a store did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cart holds the most lines it may, and this product is not one of them.
    #[error("the cart holds {0} lines already, the most it may; remove one first")]
    Full(usize),
    /// The store does not answer (Redis down or slow, the database failing).
    #[error("the cart store is unavailable: {0}")]
    Unavailable(String),
}

/// How a checkout's lines are kept under its key (both stores).
fn encode_lines(lines: &[(Uuid, i64)]) -> String {
    serde_json::to_string(lines).unwrap_or_default()
}

/// `None` for what this version cannot read (then the cart's own lines are ordered).
fn decode_lines(text: &str) -> Option<Vec<(Uuid, i64)>> {
    serde_json::from_str(text).ok()
}

impl From<sea_orm::DbErr> for StoreError {
    fn from(err: sea_orm::DbErr) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

/// The carts, one per user.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// The user's cart (empty when there is none).
    async fn cart(&self, user: Uuid) -> Result<StoredCart, StoreError>;

    /// Sets the line of `product` to `quantity` units, adding it (last) when absent, unless the
    /// cart already holds `max_lines` other lines ([`StoreError::Full`]).
    async fn set_quantity(
        &self,
        user: Uuid,
        product: Uuid,
        quantity: Quantity,
        max_lines: usize,
    ) -> Result<(), StoreError>;

    /// Removes the line of `product`, if there is one.
    async fn remove(&self, user: Uuid, product: Uuid) -> Result<(), StoreError>;

    /// Deletes the user's cart.
    async fn clear(&self, user: Uuid) -> Result<(), StoreError>;

    /// Takes what `order` contains (product, quantity) out of the cart, once per order: a line
    /// keeps what was added to it since (its quantity less the ordered one), a line added
    /// meanwhile stays. `false` when this order was taken out before (nothing is done). With
    /// the checkout's `idempotency_key`, remembers that key's lines (the first time), so a
    /// replay of the checkout sends orders the same lines although the cart no longer holds them.
    async fn remove_ordered(
        &self,
        user: Uuid,
        order: Uuid,
        lines: &[(Uuid, i64)],
        idempotency_key: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// The lines a checkout with this `idempotency_key` ordered, if one did.
    async fn checkout_lines(
        &self,
        user: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<Vec<(Uuid, i64)>>, StoreError>;

    /// Deletes everything kept for a user who no longer exists.
    async fn forget_user(&self, user: Uuid) -> Result<(), StoreError>;
}

//! The application layer: the use cases of the orders service, one file per group. Each is a
//! struct that owns the store and the clients of the services it calls; each method is a use
//! case and returns its own error enum (what went wrong, never an HTTP status).
//!
//! - [`checkout`]: placing an order (the saga).
//! - [`orders`]: reading, listing, cancelling, and the admin's status changes.
//! - [`recovery`]: the worker that settles what a failed checkout or cancel left behind.
//! - [`stats`]: sales figures.

pub mod checkout;
pub mod orders;
pub mod recovery;
pub mod stats;

use uuid::Uuid;

use crate::clients::ProductsClient;
use crate::store::OrderStore;

/// Returns a cancelled order's stock and records that it did; if the products service is
/// unreachable now, the recovery worker retries later (the order stays marked unreleased).
async fn return_stock(store: &OrderStore, products: &ProductsClient, order_id: Uuid) {
    match products.release(order_id).await {
        Ok(()) => {
            if let Err(e) = store.mark_stock_released(order_id).await {
                tracing::warn!(%order_id, error = %e, "stock released but not recorded; will retry");
            }
        }
        Err(e) => {
            tracing::warn!(%order_id, error = %e, "stock not released yet; the recovery worker will retry")
        }
    }
}

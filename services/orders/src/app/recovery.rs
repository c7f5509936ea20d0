//! The recovery worker: settles what a failed checkout or cancel left behind, so that no
//! unconfirmed order holds stock. A pending order older than the configured age is confirmed if
//! its stock is held, otherwise released (which also stops a late reservation) and cancelled;
//! a cancelled order whose stock was not yet returned gets it returned. An order it cannot
//! settle now (a dependency fails) is tried again after a growing backoff, kept in the database
//! so that every replica's worker honours it.

use std::time::Duration;

use chrono::Utc;
use sea_orm::DbErr;
use tokio_util::sync::CancellationToken;

use super::return_stock;
use crate::clients::ProductsClient;
use crate::domain::{Order, OrderStatus};
use crate::store::OrderStore;

/// Orders read per query; a pass reads batches until nothing is due.
const BATCH: u64 = 100;
/// A pass stops after this many orders, so one pass never runs unbounded.
const MAX_PER_PASS: u64 = 2_000;
/// How long a worker holds an order it claimed; longer than settling one order can take (a few
/// calls, each bounded by the client's timeouts). A worker that dies lets its claims lapse.
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// The longest an order waits between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// What the worker settles, and when it tries an order again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A pending order older than this is settled.
    pub pending_timeout: Duration,
    /// The wait after a first failed attempt; it doubles with each further failure up to
    /// 15 minutes, so an order that keeps failing is tried ever less often and never holds
    /// back the orders behind it.
    pub first_backoff: Duration,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Stale pending orders whose stock was held: confirmed.
    pub confirmed: u64,
    /// Stale pending orders whose stock was not held: released and cancelled.
    pub cancelled: u64,
    /// Cancelled orders whose stock went back now.
    pub released: u64,
    /// Orders left for a later pass because a dependency failed.
    pub deferred: u64,
}

impl Settled {
    fn handled(&self) -> u64 {
        self.confirmed + self.cancelled + self.released + self.deferred
    }
}

/// Why a pass stopped (the orders database failing, or a policy whose durations do not fit
/// in a timestamp); a dependency that fails only defers the order it was settling.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The orders database failed.
    #[error(transparent)]
    Store(#[from] DbErr),
    /// A configured duration does not fit in a timestamp.
    #[error("a recovery duration is out of range: {0}")]
    OutOfRange(#[from] chrono::OutOfRangeError),
}

/// How long the worker leaves an order alone after its `attempts`-th failure.
fn backoff(first: Duration, attempts: u32) -> Duration {
    first.saturating_mul(1 << attempts.min(16)).min(MAX_BACKOFF)
}

/// The recovery worker: what it settles with, and its policy. Clones share the store and
/// clients.
#[derive(Clone)]
pub struct Recovery {
    store: OrderStore,
    products: ProductsClient,
    policy: Policy,
}

impl Recovery {
    /// A worker settling `store`'s orders with `products`.
    pub fn new(store: OrderStore, products: ProductsClient, policy: Policy) -> Self {
        Self { store, products, policy }
    }

    /// One pass over stale pending orders and unreleased cancellations that are due, with
    /// `pending_timeout` overriding the policy's (zero in tests, to settle at once).
    pub async fn settle_once(&self, pending_timeout: Option<Duration>) -> Result<Settled, RecoveryError> {
        let pending_timeout = pending_timeout.unwrap_or(self.policy.pending_timeout);
        let mut settled = Settled::default();
        let cutoff = Utc::now() - chrono::Duration::from_std(pending_timeout)?;
        while settled.handled() < MAX_PER_PASS {
            let batch = self.store.stale_pending(cutoff, BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for order in batch {
                if !self.claim(&order).await? {
                    continue;
                }
                if !self.settle_pending(&order, &mut settled).await? {
                    self.defer(&order, &mut settled).await?;
                }
            }
            if !full {
                break;
            }
        }
        while settled.handled() < MAX_PER_PASS {
            let batch = self.store.unreleased_cancellations(BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for order in batch {
                if !self.claim(&order).await? {
                    continue;
                }
                return_stock(&self.store, &self.products, order.id).await;
                match self.store.get(order.id).await? {
                    Some(o) if o.stock_released => settled.released += 1,
                    _ => self.defer(&order, &mut settled).await?,
                }
            }
            if !full {
                break;
            }
        }
        Ok(settled)
    }

    /// Confirms a stale pending order whose stock is held, else releases and cancels it;
    /// `false` when a dependency failed and the order is still to be settled.
    async fn settle_pending(&self, order: &Order, settled: &mut Settled) -> Result<bool, RecoveryError> {
        match self.products.is_held(order.id).await {
            Ok(true) => {
                if self
                    .store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None)
                    .await?
                    .is_some()
                {
                    tracing::info!(order_id = %order.id, "recovered: stock was held, order confirmed");
                    settled.confirmed += 1;
                }
                Ok(true)
            }
            Ok(false) => {
                // Release first: it records the order as given up, so a reservation still in
                // flight for it is refused and cannot leak stock.
                if self.products.release(order.id).await.is_err() {
                    return Ok(false);
                }
                let reason = "checkout did not complete (a dependency failed); nothing was charged";
                if self
                    .store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(reason))
                    .await?
                    .is_some()
                {
                    self.store.mark_stock_released(order.id).await?;
                    tracing::info!(order_id = %order.id, "recovered: no stock held, order cancelled");
                    settled.cancelled += 1;
                }
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(order_id = %order.id, error = %e, "recovery deferred");
                Ok(false)
            }
        }
    }

    /// Takes the order for this worker alone while it settles it: another replica's worker
    /// could otherwise see its stock not held, release it, and cancel, while this one saw it
    /// held (the reservation arriving in between) and confirmed it.
    async fn claim(&self, order: &Order) -> Result<bool, RecoveryError> {
        Ok(self.store.claim_for_recovery(order.id, chrono::Duration::from_std(CLAIM_LEASE)?).await?)
    }

    async fn defer(&self, order: &Order, settled: &mut Settled) -> Result<(), RecoveryError> {
        let wait = backoff(self.policy.first_backoff, order.recovery_attempts);
        self.store.defer_recovery(order.id, Utc::now() + chrono::Duration::from_std(wait)?).await?;
        settled.deferred += 1;
        Ok(())
    }

    /// Runs a pass every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.settle_once(None).await {
                Ok(s) if s != Settled::default() => tracing::info!(?s, "recovery pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "recovery pass failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let first = Duration::from_secs(5);
        assert_eq!(backoff(first, 0), first);
        assert_eq!(backoff(first, 1), first * 2);
        assert_eq!(backoff(first, 3), first * 8);
        assert_eq!(backoff(first, 30), MAX_BACKOFF);
        assert_eq!(backoff(first, u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 7), Duration::ZERO);
    }
}

//! The recovery worker: settles what a failed checkout or cancel left behind, so that no
//! unconfirmed order holds stock. A pending order older than the configured age is confirmed if
//! its stock is held, otherwise released (which also stops a late reservation) and cancelled;
//! a cancelled order whose stock was not yet returned gets it returned.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::checkout::release_for;
use crate::domain::OrderStatus;
use crate::routes::AppState;

/// Orders handled per pass.
const BATCH: u64 = 100;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub confirmed: u64,
    pub cancelled: u64,
    pub released: u64,
    /// Orders left for the next pass because a dependency failed.
    pub deferred: u64,
}

/// One pass over stale pending orders and unreleased cancellations.
pub async fn settle_once(state: &AppState, pending_timeout: Duration) -> anyhow::Result<Settled> {
    let mut settled = Settled::default();
    let cutoff = Utc::now() - chrono::Duration::from_std(pending_timeout)?;
    for order in state.store.stale_pending(cutoff, BATCH).await? {
        match state.dependencies.is_held(order.id).await {
            Ok(true) => {
                if state
                    .store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None)
                    .await?
                    .is_some()
                {
                    tracing::info!(order_id = %order.id, "recovered: stock was held, order confirmed");
                    settled.confirmed += 1;
                }
            }
            Ok(false) => {
                // Release first: it records the order as given up, so a reservation still in
                // flight for it is refused and cannot leak stock.
                if state.dependencies.release(order.id).await.is_err() {
                    settled.deferred += 1;
                    continue;
                }
                let reason = "checkout did not complete (a dependency failed); nothing was charged";
                if state
                    .store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(reason))
                    .await?
                    .is_some()
                {
                    state.store.mark_stock_released(order.id).await?;
                    tracing::info!(order_id = %order.id, "recovered: no stock held, order cancelled");
                    settled.cancelled += 1;
                }
            }
            Err(e) => {
                tracing::debug!(order_id = %order.id, error = %e, "recovery deferred");
                settled.deferred += 1;
            }
        }
    }
    for order in state.store.unreleased_cancellations(BATCH).await? {
        release_for(state, &order).await;
        match state.store.get(order.id).await? {
            Some(o) if o.stock_released => settled.released += 1,
            _ => settled.deferred += 1,
        }
    }
    Ok(settled)
}

/// Runs [`settle_once`] every `interval` until `shutdown`.
pub async fn run(
    state: AppState,
    interval: Duration,
    pending_timeout: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match settle_once(&state, pending_timeout).await {
            Ok(s) if s != Settled::default() => tracing::info!(?s, "recovery pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "recovery pass failed"),
        }
    }
}

//! Checkout as a synchronous saga, and the moves that undo it.
//!
//! 1. Validate (done by the caller: [`CheckoutRequest`]).
//! 2. Resolve the shipping address (users service, on the buyer's behalf).
//! 3. Price the lines (products service).
//! 4. Record the order as `pending` with its idempotency key.
//! 5. Reserve the stock, keyed by the order id; short → `cancelled`, 409.
//! 6. `confirmed`, 201.
//!
//! Nothing stays half-done, and a 503 is always true. When the reservation's outcome is unknown
//! (products failed, or its answer was lost), the order is cancelled *before* the client hears
//! 503, then its stock is released; if products cannot be reached for that, the recovery worker
//! retries the release of the cancelled order, and never confirms it. Only a checkout that ended
//! without any answer (the process died mid-saga) leaves a `pending` order, which
//! [`crate::recovery`] settles (confirmed if its stock is held, else released and cancelled).

use std::time::{Duration, Instant};

use kit::ApiError;
use kit::address::PostalAddress;
use kit::auth::CurrentUser;
use kit::client::ClientError;
use uuid::Uuid;

use crate::dependencies::Reservation;
use crate::domain::{CheckoutRequest, OrderStatus, PricedLine, ShippingChoice, Totals};
use crate::routes::AppState;
use crate::store::{NewOrder, Order, StoreError};

/// How a checkout ended.
#[derive(Debug)]
pub enum Placed {
    /// A new order, confirmed.
    Created(Order),
    /// The same request was placed before with this idempotency key: the original order.
    Replayed(Order),
}

/// How long a replay waits for the original, concurrent checkout to settle.
const REPLAY_WAIT: Duration = Duration::from_secs(5);

/// Places an order for `user`.
pub async fn place_order(
    state: &AppState,
    user: &CurrentUser,
    request: CheckoutRequest,
    idempotency_key: Option<String>,
) -> Result<Placed, ApiError> {
    let fingerprint = request.fingerprint();
    if let Some(key) = &idempotency_key
        && let Some(existing) = state.store.by_idempotency_key(user.id, key).await?
    {
        return replay(state, existing, &fingerprint).await;
    }

    let shipping_address = shipping_address(state, user, &request.shipping).await?;
    let lines = price_lines(state, &request).await?;
    let totals = Totals::of(&lines, state.tax_rate_bp)
        .ok_or_else(|| ApiError::unprocessable("the order total is too large"))?;
    let new = NewOrder {
        user_id: user.id,
        currency: state.currency.to_string(),
        lines,
        totals,
        shipping_address,
        idempotency_key: idempotency_key.clone(),
        fingerprint: fingerprint.clone(),
    };
    let order = match state.store.create_pending(new).await {
        Ok(order) => order,
        // A concurrent request with the same key recorded its order first.
        Err(StoreError::DuplicateKey) => {
            let key = idempotency_key.unwrap_or_default();
            let existing = state
                .store
                .by_idempotency_key(user.id, &key)
                .await?
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotent order vanished")))?;
            return replay(state, existing, &fingerprint).await;
        }
        Err(e) => return Err(e.into()),
    };

    let reservation = match state.dependencies.reserve(order.id, &request.lines).await {
        Ok(reservation) => reservation,
        Err(failure) => return abandon(state, order, &failure).await,
    };
    match reservation {
        Reservation::Held => confirm(state, order).await,
        Reservation::Short(short) => {
            let names: Vec<String> = short
                .iter()
                .map(|s| {
                    let name = order
                        .lines
                        .iter()
                        .find(|l| l.product_id == s.product_id)
                        .map_or("?", |l| l.name.as_str());
                    format!("{name} (asked {}, available {})", s.requested, s.available)
                })
                .collect();
            let reason = format!("insufficient stock: {}", names.join(", "));
            if state
                .store
                .transition(order.id, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(&reason))
                .await?
                .is_some()
            {
                // Nothing was reserved, so nothing is to be released.
                state.store.mark_stock_released(order.id).await?;
            }
            Err(ApiError::conflict(reason)
                .with_extra(serde_json::json!({ "order_id": order.id, "short": short })))
        }
        Reservation::Released => {
            state.store.mark_stock_released(order.id).await?;
            Err(ApiError::conflict("the order was cancelled while it was being placed"))
        }
    }
}

/// The reservation's outcome is unknown, so the client is about to hear 503: make that answer
/// true first. The order is cancelled (it can then never be confirmed, not by the recovery
/// worker either) and whatever products may hold for it is released, now if products answers,
/// else by the recovery worker. Only when even the cancel cannot be recorded does the 503 say
/// the outcome is unknown.
async fn abandon(state: &AppState, order: Order, failure: &ClientError) -> Result<Placed, ApiError> {
    let id = order.id;
    tracing::warn!(order_id = %id, error = %failure, "reservation failed; cancelling the order before answering");
    let extra = serde_json::json!({ "order_id": id });
    match state
        .store
        .transition_held(order, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(ABANDONED))
        .await
    {
        Ok(Some(cancelled)) => release_for(state, &cancelled).await,
        Ok(None) => {
            // Settled by someone else meanwhile (the recovery worker, an admin): their outcome stands.
            let current = state.store.get(id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
            if current.status != OrderStatus::Cancelled {
                return Ok(Placed::Created(current));
            }
        }
        Err(db) => {
            tracing::error!(order_id = %id, error = %db, "could not cancel an order whose reservation failed");
            return Err(ApiError::unavailable(format!(
                "the order could not be completed ({failure}) and its outcome is not known yet; \
                 retry with the same Idempotency-Key to learn it"
            ))
            .with_extra(extra));
        }
    }
    Err(ApiError::unavailable(format!(
        "the order could not be completed ({failure}); it was cancelled and nothing was charged. \
         Try again with a new Idempotency-Key"
    ))
    .with_extra(extra))
}

/// Why an order was cancelled when its reservation's outcome was unknown.
const ABANDONED: &str =
    "checkout could not be completed (the products service did not answer); nothing was charged";

/// Pending → confirmed after the stock is held. If someone else settled the order meanwhile,
/// their outcome stands (and a cancelled order gets its stock back).
async fn confirm(state: &AppState, order: Order) -> Result<Placed, ApiError> {
    let id = order.id;
    if let Some(confirmed) =
        state.store.transition_held(order, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await?
    {
        tracing::info!(order_id = %confirmed.id, total = confirmed.totals.total, "order confirmed");
        return Ok(Placed::Created(confirmed));
    }
    let current = state.store.get(id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
    if current.status == OrderStatus::Cancelled {
        release_for(state, &current).await;
        return Err(ApiError::conflict("the order was cancelled while it was being placed"));
    }
    Ok(Placed::Created(current))
}

/// The original order of an idempotency key, if the request is the same one.
async fn replay(state: &AppState, existing: Order, fingerprint: &str) -> Result<Placed, ApiError> {
    if existing.fingerprint != fingerprint {
        return Err(ApiError::unprocessable(
            "this Idempotency-Key was used for a different order; use a new key for a new order",
        ));
    }
    // The original checkout may still be in flight; give it a moment to settle.
    let started = Instant::now();
    let mut order = existing;
    while order.status == OrderStatus::Pending && started.elapsed() < REPLAY_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        order = state.store.get(order.id).await?.unwrap_or(order);
    }
    if order.status == OrderStatus::Pending {
        // Not settled yet: answering with it would read as placed.
        return Err(ApiError::unavailable(
            "this order is still being placed; retry with the same Idempotency-Key shortly to learn its outcome",
        )
        .with_extra(serde_json::json!({ "order_id": order.id })));
    }
    Ok(Placed::Replayed(order))
}

async fn shipping_address(
    state: &AppState,
    user: &CurrentUser,
    choice: &ShippingChoice,
) -> Result<PostalAddress, ApiError> {
    match choice {
        ShippingChoice::Inline(address) => Ok(address.clone()),
        ShippingChoice::Saved(id) => state
            .dependencies
            .saved_address(&user.token, *id)
            .await
            .map_err(|e| ApiError::unavailable(format!("could not read the shipping address: {e}")))?
            .ok_or_else(|| ApiError::unprocessable("shipping_address_id is not one of your addresses")),
    }
}

/// The order's lines with SKU, name and price snapshotted now; unknown or deleted products 422.
async fn price_lines(state: &AppState, request: &CheckoutRequest) -> Result<Vec<PricedLine>, ApiError> {
    let ids: Vec<Uuid> = request.lines.iter().map(|l| l.product_id).collect();
    let found = state
        .dependencies
        .lookup(&ids)
        .await
        .map_err(|e| ApiError::unavailable(format!("could not price the order: {e}")))?;
    let mut unavailable = Vec::new();
    let mut lines = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        match found.iter().find(|p| p.id == line.product_id) {
            Some(p) if !p.deleted && p.price.currency == *state.currency => {
                let priced =
                    PricedLine::new(p.id, p.sku.clone(), p.name.clone(), p.price.amount, line.quantity)
                        .ok_or_else(|| ApiError::unprocessable("an order line total is too large"))?;
                lines.push(priced);
            }
            _ => unavailable.push(line.product_id),
        }
    }
    if !unavailable.is_empty() {
        let list: Vec<String> = unavailable.iter().map(Uuid::to_string).collect();
        return Err(ApiError::unprocessable(format!("these products are not for sale: {}", list.join(", ")))
            .with_extra(serde_json::json!({ "products": unavailable })));
    }
    Ok(lines)
}

/// An admin's pending → confirmed: allowed only while products holds the order's stock (what
/// the recovery worker checks too), else the order would be confirmed with nothing reserved.
pub async fn confirm_pending(state: &AppState, order_id: Uuid) -> Result<Order, ApiError> {
    let order = state.store.get(order_id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
    if order.status != OrderStatus::Pending {
        return Err(ApiError::conflict(format!(
            "an order that is {} cannot become confirmed",
            order.status.as_str()
        )));
    }
    let held = state
        .dependencies
        .is_held(order_id)
        .await
        .map_err(|e| ApiError::unavailable(format!("could not check the order's stock: {e}")))?;
    if !held {
        return Err(ApiError::conflict(
            "this pending order's stock is not held, so it cannot be confirmed; cancel it, or let the recovery worker settle it",
        ));
    }
    match state.store.transition_held(order, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await? {
        Some(confirmed) => Ok(confirmed),
        None => {
            let current =
                state.store.get(order_id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
            Err(ApiError::conflict(format!(
                "an order that is {} cannot become confirmed",
                current.status.as_str()
            )))
        }
    }
}

/// Cancels an order from pending, confirmed or paid and returns its stock (exactly once, even
/// when cancel is called several times at once: only one status change wins, and the products
/// service releases a reservation once).
pub async fn cancel_order(state: &AppState, order_id: Uuid, reason: &str) -> Result<Order, ApiError> {
    let cancelled = state
        .store
        .transition(order_id, &OrderStatus::cancellable(), OrderStatus::Cancelled, Some(reason))
        .await?;
    let Some(order) = cancelled else {
        let current = state.store.get(order_id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
        return Err(ApiError::conflict(format!(
            "an order that is {} cannot be cancelled",
            current.status.as_str()
        )));
    };
    tracing::info!(%order_id, reason, "order cancelled");
    release_for(state, &order).await;
    Ok(state.store.get(order_id).await?.unwrap_or(order))
}

/// Returns a cancelled order's stock; if the products service is unreachable now, the recovery
/// worker retries later.
pub async fn release_for(state: &AppState, order: &Order) {
    match state.dependencies.release(order.id).await {
        Ok(()) => {
            if let Err(e) = state.store.mark_stock_released(order.id).await {
                tracing::warn!(order_id = %order.id, error = %e, "stock released but not recorded; will retry");
            }
        }
        Err(e) => {
            tracing::warn!(order_id = %order.id, error = %e, "stock not released yet; the recovery worker will retry")
        }
    }
}

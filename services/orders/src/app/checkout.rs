//! Checkout as a synchronous saga.
//!
//! 1. Validate (done by the caller: [`CheckoutRequest`]).
//! 2. Resolve the shipping address (users service, on the buyer's behalf).
//! 3. Price the lines (products service).
//! 4. Record the order as `pending` with its idempotency key.
//! 5. Reserve the stock, keyed by the order id; short → `cancelled`, [`CheckoutError::InsufficientStock`].
//! 6. `confirmed`.
//!
//! Nothing stays half-done, and an "unavailable" answer is always true. When the reservation's
//! outcome is unknown (products failed, or its answer was lost), the order is cancelled *before*
//! the client hears of it ([`CheckoutError::Abandoned`]), then its stock is released; if
//! products cannot be reached for that, the recovery worker retries the release of the
//! cancelled order, and never confirms it. Only a checkout that ended without any answer (the
//! process died mid-saga) leaves a `pending` order, which [`super::recovery`] settles
//! (confirmed if its stock is held, else released and cancelled).

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::products::Shortage;
use kit::address::PostalAddress;
use kit::client::ClientError;
use sea_orm::DbErr;
use uuid::Uuid;

use super::return_stock;
use crate::clients::{ProductsClient, ReserveOutcome, UsersClient};
use crate::domain::{
    CheckoutRequest, IdempotencyKey, Order, OrderLineRequest, OrderStatus, PricedLine, ShippingChoice, Totals,
};
use crate::store::{NewOrder, OrderStore, StoreError};

/// How long a replay waits for the original, concurrent checkout to settle.
const REPLAY_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting replay looks again.
const REPLAY_POLL: Duration = Duration::from_millis(50);

/// Why an order was cancelled when its reservation's outcome was unknown.
const ABANDONED: &str =
    "checkout could not be completed (the products service did not answer); nothing was charged";

/// What an order would cost now ([`Checkout::quote`]).
#[derive(Debug, Clone)]
pub struct Quote {
    pub currency: String,
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
}

/// Placing orders: the saga, with what it needs.
#[derive(Clone)]
pub struct Checkout {
    store: OrderStore,
    users: UsersClient,
    products: ProductsClient,
    currency: Arc<str>,
    tax_rate_bp: u32,
}

/// How a checkout ended.
#[derive(Debug)]
pub enum Placed {
    /// A new order, confirmed.
    Created(Order),
    /// The same request was placed before with this idempotency key: the original order, as
    /// it was settled (confirmed, or cancelled with its reason).
    Replayed(Order),
}

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("shipping_address_id is not one of your addresses")]
    AddressNotYours,
    #[error("could not read the shipping address: {0}")]
    AddressUnavailable(#[source] ClientError),
    #[error("could not price the order: {0}")]
    PricingUnavailable(#[source] ClientError),
    /// Unknown, deleted, or priced in another currency.
    #[error("these products are not for sale: {}", join(.0))]
    NotForSale(Vec<Uuid>),
    #[error("an order line total is too large")]
    LineTooLarge,
    #[error("the order total is too large")]
    TotalTooLarge,
    #[error("this Idempotency-Key was used for a different order; use a new key for a new order")]
    KeyReused,
    /// A replay found the original checkout still in flight after waiting for it.
    #[error(
        "this order is still being placed; retry with the same Idempotency-Key shortly to learn its outcome"
    )]
    StillPending { order_id: Uuid },
    /// Nothing was taken; the order is recorded as cancelled with `reason`.
    #[error("{reason}")]
    InsufficientStock { order_id: Uuid, reason: String, short: Vec<Shortage> },
    /// The order was given up (by a cancel or the recovery worker) while it was being placed.
    #[error("the order was cancelled while it was being placed")]
    CancelledMeanwhile,
    /// The reservation's outcome was unknown, so the order was cancelled (and its stock
    /// released, now or by the recovery worker).
    #[error(
        "the order could not be completed ({cause}); it was cancelled and nothing was charged. \
         Try again with a new Idempotency-Key"
    )]
    Abandoned { order_id: Uuid, cause: ClientError },
    /// The reservation's outcome was unknown and even the cancel could not be recorded.
    #[error(
        "the order could not be completed ({cause}) and its outcome is not known yet; \
         retry with the same Idempotency-Key to learn it"
    )]
    OutcomeUnknown { order_id: Uuid, cause: ClientError },
    /// An order this checkout recorded is gone: a fault, never an answer.
    #[error("order {0} vanished while it was being placed")]
    Vanished(Uuid),
    #[error(transparent)]
    Store(#[from] DbErr),
}

fn join(ids: &[Uuid]) -> String {
    ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
}

impl Checkout {
    /// Orders in `currency`, taxed at `tax_rate_bp` basis points.
    pub fn new(
        store: OrderStore,
        users: UsersClient,
        products: ProductsClient,
        currency: &str,
        tax_rate_bp: u32,
    ) -> Self {
        Self { store, users, products, currency: currency.into(), tax_rate_bp }
    }

    /// What an order of `lines` would cost now: priced from the catalog and taxed exactly as
    /// [`Self::place_order`] would, nothing reserved or recorded (a checkout page's review).
    pub async fn quote(&self, lines: &[OrderLineRequest]) -> Result<Quote, CheckoutError> {
        let lines = self.price_lines(lines).await?;
        let totals = Totals::of(&lines, self.tax_rate_bp).ok_or(CheckoutError::TotalTooLarge)?;
        Ok(Quote { currency: self.currency.to_string(), lines, totals })
    }

    /// Places an order for the user `buyer` (whose access token is `buyer_token`, used to read
    /// their saved address).
    pub async fn place_order(
        &self,
        buyer: Uuid,
        buyer_token: &str,
        request: CheckoutRequest,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Placed, CheckoutError> {
        let fingerprint = request.fingerprint();
        if let Some(key) = &idempotency_key
            && let Some(existing) = self.store.by_idempotency_key(buyer, key.as_str()).await?
        {
            return self.replay(existing, &fingerprint).await;
        }

        let shipping_address = self.shipping_address(buyer_token, &request.shipping).await?;
        let lines = self.price_lines(&request.lines).await?;
        let totals = Totals::of(&lines, self.tax_rate_bp).ok_or(CheckoutError::TotalTooLarge)?;
        let new = NewOrder {
            user_id: buyer,
            currency: self.currency.to_string(),
            lines,
            totals,
            shipping_address,
            idempotency_key: idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
            fingerprint: fingerprint.clone(),
        };
        let order = match self.store.create_pending(new).await {
            Ok(order) => order,
            // A concurrent request with the same key recorded its order first.
            Err(StoreError::DuplicateKey) => {
                let key = idempotency_key.as_ref().map_or("", IdempotencyKey::as_str);
                let existing = self.store.by_idempotency_key(buyer, key).await?.ok_or_else(|| {
                    DbErr::RecordNotFound("the order of an idempotency key vanished".into())
                })?;
                return self.replay(existing, &fingerprint).await;
            }
            Err(StoreError::Db(e)) => return Err(e.into()),
        };

        let reservation = match self.products.reserve(order.id, &request.lines).await {
            Ok(reservation) => reservation,
            Err(failure) => return self.abandon(order, failure).await,
        };
        match reservation {
            ReserveOutcome::Held => self.confirm(order).await,
            ReserveOutcome::Short(short) => {
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
                if self
                    .store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(&reason))
                    .await?
                    .is_some()
                {
                    // Nothing was reserved, so nothing is to be released.
                    self.store.mark_stock_released(order.id).await?;
                }
                Err(CheckoutError::InsufficientStock { order_id: order.id, reason, short })
            }
            ReserveOutcome::AlreadyReleased => {
                self.store.mark_stock_released(order.id).await?;
                Err(CheckoutError::CancelledMeanwhile)
            }
        }
    }

    /// The reservation's outcome is unknown, so the client is about to hear "unavailable": make
    /// that answer true first. The order is cancelled (it can then never be confirmed, not by
    /// the recovery worker either) and whatever products may hold for it is released, now if
    /// products answers, else by the recovery worker. Only when even the cancel cannot be
    /// recorded is the outcome unknown.
    async fn abandon(&self, order: Order, cause: ClientError) -> Result<Placed, CheckoutError> {
        let order_id = order.id;
        tracing::warn!(%order_id, error = %cause, "reservation failed; cancelling the order before answering");
        match self
            .store
            .transition_order(order, &[OrderStatus::Pending], OrderStatus::Cancelled, Some(ABANDONED))
            .await
        {
            Ok(Some(_cancelled)) => return_stock(&self.store, &self.products, order_id).await,
            Ok(None) => {
                // Settled by someone else meanwhile (the recovery worker, an admin): their outcome stands.
                let current = self.store.get(order_id).await?.ok_or(CheckoutError::Vanished(order_id))?;
                if current.status != OrderStatus::Cancelled {
                    return Ok(Placed::Created(current));
                }
            }
            Err(db) => {
                tracing::error!(%order_id, error = %db, "could not cancel an order whose reservation failed");
                return Err(CheckoutError::OutcomeUnknown { order_id, cause });
            }
        }
        Err(CheckoutError::Abandoned { order_id, cause })
    }

    /// Pending → confirmed after the stock is held. If someone else settled the order meanwhile,
    /// their outcome stands (and a cancelled order gets its stock back).
    async fn confirm(&self, order: Order) -> Result<Placed, CheckoutError> {
        let order_id = order.id;
        if let Some(confirmed) =
            self.store.transition_order(order, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await?
        {
            tracing::info!(order_id = %confirmed.id, total = confirmed.totals.total, "order confirmed");
            return Ok(Placed::Created(confirmed));
        }
        let current = self.store.get(order_id).await?.ok_or(CheckoutError::Vanished(order_id))?;
        if current.status == OrderStatus::Cancelled {
            return_stock(&self.store, &self.products, order_id).await;
            return Err(CheckoutError::CancelledMeanwhile);
        }
        Ok(Placed::Created(current))
    }

    /// The original order of an idempotency key, if the request is the same one.
    async fn replay(&self, existing: Order, fingerprint: &str) -> Result<Placed, CheckoutError> {
        if existing.fingerprint != fingerprint {
            return Err(CheckoutError::KeyReused);
        }
        // The original checkout may still be in flight; give it a moment to settle.
        let started = Instant::now();
        let mut order = existing;
        while order.status == OrderStatus::Pending && started.elapsed() < REPLAY_WAIT {
            tokio::time::sleep(REPLAY_POLL).await;
            order = self.store.get(order.id).await?.unwrap_or(order);
        }
        if order.status == OrderStatus::Pending {
            // Not settled yet: answering with it would read as placed.
            return Err(CheckoutError::StillPending { order_id: order.id });
        }
        Ok(Placed::Replayed(order))
    }

    async fn shipping_address(
        &self,
        buyer_token: &str,
        choice: &ShippingChoice,
    ) -> Result<PostalAddress, CheckoutError> {
        match choice {
            ShippingChoice::Inline(address) => Ok(address.clone()),
            ShippingChoice::Saved(id) => self
                .users
                .saved_address(buyer_token, *id)
                .await
                .map_err(CheckoutError::AddressUnavailable)?
                .ok_or(CheckoutError::AddressNotYours),
        }
    }

    /// The order's lines with SKU, name and price snapshotted now; unknown or deleted products
    /// are not for sale.
    async fn price_lines(&self, requested: &[OrderLineRequest]) -> Result<Vec<PricedLine>, CheckoutError> {
        let ids: Vec<Uuid> = requested.iter().map(|l| l.product_id).collect();
        let found = self.products.lookup(&ids).await.map_err(CheckoutError::PricingUnavailable)?;
        let mut unavailable = Vec::new();
        let mut lines = Vec::with_capacity(requested.len());
        for line in requested {
            match found.iter().find(|p| p.id == line.product_id) {
                Some(p) if !p.deleted && p.price.currency == *self.currency => {
                    let priced =
                        PricedLine::new(p.id, p.sku.clone(), p.name.clone(), p.price.amount, line.quantity)
                            .ok_or(CheckoutError::LineTooLarge)?;
                    lines.push(priced);
                }
                _ => unavailable.push(line.product_id),
            }
        }
        if !unavailable.is_empty() {
            return Err(CheckoutError::NotForSale(unavailable));
        }
        Ok(lines)
    }
}

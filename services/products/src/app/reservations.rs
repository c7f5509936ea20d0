//! Stock reservations for orders: reserve every line or none (idempotent on the order id),
//! release exactly once, and the state of an order's reservation.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Reservation, ReservationRequest, ReservationState, Shortage};
use crate::store::{ReleaseOutcome, ReservationLedger, ReserveOutcome, StoreError};

/// Why stock could not be held, or a reservation read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReservationError {
    /// Some lines could not be held; nothing was taken.
    #[error("insufficient stock")]
    Short(Vec<Shortage>),
    /// The order's reservation was released (or the order released before it reserved): a
    /// reservation for it is refused.
    #[error("this order's reservation was released")]
    Released,
    /// The order never reserved anything.
    #[error("no reservation for this order")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reservation that holds its stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// Taken by this call.
    Now(Reservation),
    /// Taken by an earlier call with the same order id (a replay): nothing more was taken.
    Before(Reservation),
}

/// The reservation ledger's use cases.
#[derive(Clone)]
pub(crate) struct Reservations {
    ledger: Arc<dyn ReservationLedger>,
}

impl Reservations {
    pub fn new(ledger: Arc<dyn ReservationLedger>) -> Self {
        Self { ledger }
    }

    /// Holds the stock of every line of `request`, or none.
    pub async fn reserve(&self, request: &ReservationRequest) -> Result<Held, ReservationError> {
        match self.ledger.reserve(request).await? {
            ReserveOutcome::Reserved(reservation) => Ok(Held::Now(reservation)),
            ReserveOutcome::Existing(reservation) => match reservation.state {
                ReservationState::Held => Ok(Held::Before(reservation)),
                ReservationState::Released => Err(ReservationError::Released),
            },
            ReserveOutcome::Short(short) => Err(ReservationError::Short(short)),
        }
    }

    /// Gives an order's stock back, exactly once however often it is called; `true` only for
    /// the call that did. Releasing an order that never reserved records it, so a late
    /// reservation is refused.
    pub async fn release(&self, order_id: Uuid) -> Result<bool, ReservationError> {
        Ok(self.ledger.release(order_id).await? == ReleaseOutcome::Released)
    }

    /// An order's reservation.
    pub async fn reservation(&self, order_id: Uuid) -> Result<Reservation, ReservationError> {
        self.ledger.reservation(order_id).await?.ok_or(ReservationError::NotFound)
    }
}

//! The products service's internal API (`/internal/v1/…`, service tokens only; the gateway never
//! routes it): the lookup that prices an order, and stock reservations keyed by order id.
//!
//! Requests refuse unknown fields (a typo is a 400, not a silently ignored field); answers do
//! not, so products may add a field without breaking a caller.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// The most products one lookup names.
pub const MAX_LOOKUP_IDS: usize = 100;

/// `POST /internal/v1/products/lookup`: the products to price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// 1 to [`MAX_LOOKUP_IDS`] product ids.
    pub ids: Vec<Uuid>,
}

/// The lookup's answer: every product found, deleted ones flagged, and the ids that never
/// existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LookupResponse {
    pub items: Vec<ProductInfo>,
    /// Ids that never existed.
    pub missing: Vec<Uuid>,
}

/// A product as an order line snapshots it and a cart shows it: what it is called, costs and
/// looks like now. Stock is not here: a reservation, not a lookup, tells whether there is enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductInfo {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    /// Deleted products stay for orders' history but are not for sale.
    pub deleted: bool,
    /// The URL of its first image, if it has one (added for carts; absent from older answers).
    #[serde(default)]
    pub image: Option<String>,
}

/// `POST /internal/v1/reservations`: hold stock for an order, every line or none. The order id
/// is the idempotency key: sending it again answers the same reservation and takes nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub items: Vec<ReserveItem>,
}

/// Units of one product to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveItem {
    pub product_id: Uuid,
    /// At least 1.
    pub quantity: i64,
}

/// An order's reservation: the answer to a reservation (201 held now, 200 held before) and to
/// `GET /internal/v1/reservations/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    pub order_id: Uuid,
    pub status: ReservationStatus,
    pub items: Vec<ReservedItem>,
}

/// Units of one product a reservation holds (or held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservedItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// Whether a reservation's stock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    /// The stock is taken for the order.
    Held,
    /// The stock went back (or was never taken: the order was given up before it was reserved).
    Released,
}

/// Why a reservation answered 409. It travels as members of the problem body beside `type`,
/// `title`, `status` and `detail`, so a caller reads it from the problem:
/// `{"reason": "short", "short": [...]}` or `{"reason": "released"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReservationConflict {
    /// Some lines could not be held; nothing was taken.
    Short { short: Vec<Shortage> },
    /// The order's reservation was released before (the order was given up); a new order id is
    /// needed.
    Released,
}

/// A product that could not be held, and how much of it there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shortage {
    pub product_id: Uuid,
    pub requested: i64,
    /// 0 for unknown or deleted products.
    pub available: i64,
}

/// The answer to `POST /internal/v1/reservations/{order_id}/release`, which returns an order's
/// stock exactly once however often it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseResponse {
    pub order_id: Uuid,
    /// Always `released` after the call.
    pub status: ReservationStatus,
    /// `true` only for the call that returned the stock.
    pub released_now: bool,
}

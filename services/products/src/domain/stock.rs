//! Stock reservations: what an order asks to hold (validated and merged per product), what is
//! held, and what could not be.

use kit::FieldErrors;
use kit::lines::LineBounds;
use uuid::Uuid;

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 100;
/// Most units of one product one reservation may hold.
pub const MAX_QUANTITY: i64 = 10_000;

/// The low-stock threshold when none is configured: the admin's low-stock report's default.
pub const DEFAULT_LOW_STOCK_THRESHOLD: i64 = 10;

/// Whether stock moving from `before` to `after` units crosses `threshold` downward (from
/// above it to at or below it): when `product.stock_low` is sent, once per crossing.
pub fn crossed_low_stock(before: i64, after: i64, threshold: i64) -> bool {
    before > threshold && after <= threshold
}

/// Units of one product to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationLine {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// A valid reservation: at least one line, one line per product (duplicates summed), in
/// product-id order (so concurrent reservations lock rows in the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub order_id: Uuid,
    pub lines: Vec<ReservationLine>,
}

/// Whether an order's reservation holds its stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// The stock is taken for the order.
    Held,
    /// The stock went back, or the order was released before anything was reserved (a
    /// tombstone, with no lines): a reservation for it is refused.
    Released,
}

/// An order's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: Uuid,
    pub state: ReservationState,
    pub lines: Vec<ReservationLine>,
}

/// A product that could not be held, and what is available of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: Uuid,
    pub requested: i64,
    /// 0 for unknown or deleted products.
    pub available: i64,
}

impl ReservationRequest {
    /// Merges `lines` (product, quantity) per product, listing each bad one.
    pub fn parse(order_id: Uuid, lines: &[(Uuid, i64)]) -> Result<Self, kit::ApiError> {
        let mut errors = FieldErrors::default();
        let merged =
            LineBounds { max_lines: MAX_LINES, max_quantity: MAX_QUANTITY }.merge(lines, &mut errors);
        errors.finish(|| {
            Some(ReservationRequest {
                order_id,
                lines: merged
                    .into_iter()
                    .map(|(product_id, quantity)| ReservationLine { product_id, quantity })
                    .collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn low_stock_is_crossed_only_downward_from_above_the_threshold() {
        use super::crossed_low_stock;
        assert!(crossed_low_stock(11, 10, 10));
        assert!(crossed_low_stock(50, 0, 10));
        assert!(!crossed_low_stock(10, 9, 10), "already low: no second event");
        assert!(!crossed_low_stock(11, 11, 10));
        assert!(!crossed_low_stock(5, 20, 10), "rising stock");
    }

    use super::*;

    #[test]
    fn duplicate_products_are_merged_in_id_order() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let r = ReservationRequest::parse(Uuid::nil(), &[(a, 1), (b, 2), (a, 3)]).unwrap();
        assert_eq!(
            r.lines,
            vec![
                ReservationLine { product_id: b, quantity: 2 },
                ReservationLine { product_id: a, quantity: 4 }
            ]
        );
    }

    #[test]
    fn zero_negative_and_empty_are_refused() {
        assert!(ReservationRequest::parse(Uuid::nil(), &[]).is_err());
        assert!(ReservationRequest::parse(Uuid::nil(), &[(Uuid::nil(), 0)]).is_err());
        assert!(ReservationRequest::parse(Uuid::nil(), &[(Uuid::nil(), -3)]).is_err());
    }

    #[test]
    fn quantities_that_overflow_when_merged_are_refused_not_a_panic() {
        let a = Uuid::from_u128(1);
        assert!(ReservationRequest::parse(Uuid::nil(), &[(a, i64::MAX), (a, i64::MAX)]).is_err());
        assert!(ReservationRequest::parse(Uuid::nil(), &[(a, i64::MIN), (a, -1)]).is_err());
    }
}

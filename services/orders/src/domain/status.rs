//! The order status machine: pending → confirmed → paid → shipped → delivered, and cancelled
//! from pending, confirmed or paid.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Recorded, stock not yet held (a checkout in flight, or one the recovery worker settles).
    Pending,
    /// Stock held; awaiting payment.
    Confirmed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    /// Every status, in the order of an order's life (cancelled last).
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// Whether an order in this status may move to `next`.
    pub fn can_transition_to(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Confirmed)
                | (Confirmed, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Pending | Confirmed | Paid, Cancelled)
        )
    }

    /// The statuses from which an order may be cancelled.
    pub fn cancellable() -> [OrderStatus; 3] {
        [OrderStatus::Pending, OrderStatus::Confirmed, OrderStatus::Paid]
    }

    /// Whether revenue counts this order.
    pub fn is_sale(self) -> bool {
        !matches!(self, OrderStatus::Pending | OrderStatus::Cancelled)
    }

    /// The status as the API and the database write it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// A status from its name; the error lists the names.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            "must be one of pending, confirmed, paid, shipped, delivered, cancelled".to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn every_legal_transition_is_allowed() {
        for (from, to) in [
            (Pending, Confirmed),
            (Confirmed, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
            (Paid, Cancelled),
        ] {
            assert!(from.can_transition_to(to), "{from:?} → {to:?}");
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let legal = [
            (Pending, Confirmed),
            (Confirmed, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
            (Paid, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                if !legal.contains(&(from, to)) {
                    assert!(!from.can_transition_to(to), "{from:?} → {to:?} must be refused");
                }
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Ok(status));
        }
        assert!(OrderStatus::parse("lost").is_err());
    }
}

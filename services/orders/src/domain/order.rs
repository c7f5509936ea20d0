//! An order as the service keeps it, and who may see it.

use chrono::{DateTime, Utc};
use kit::address::PostalAddress;
use uuid::Uuid;

use super::{OrderStatus, PricedLine, Totals};

/// An order with its lines, totals and shipping address as they were at purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub currency: String,
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    pub shipping_address: PostalAddress,
    pub idempotency_key: Option<String>,
    /// What was asked for ([`super::CheckoutRequest::fingerprint`]), to tell a replay of the
    /// idempotency key from a reuse.
    pub fingerprint: String,
    /// Why the order is in its status, when there is something to say.
    pub status_reason: Option<String>,
    /// For a cancelled order: its stock is back at the products service (or none was held).
    pub stock_released: bool,
    /// How often the recovery worker has failed to settle it.
    pub recovery_attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who is asking about orders: a customer sees their own, an admin every order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub is_admin: bool,
}

impl Viewer {
    /// Whether this viewer may see (and cancel) `order`.
    pub fn may_see(&self, order: &Order) -> bool {
        self.is_admin || order.user_id == self.user_id
    }

    /// Whose orders a list shows when `requested` (an admin's `user_id` filter) is asked for:
    /// an admin's choice (everyone's when `None`), a customer's own; `None` when a customer
    /// asks for someone else's.
    pub fn orders_of(&self, requested: Option<Uuid>) -> Option<Option<Uuid>> {
        match (self.is_admin, requested) {
            (true, requested) => Some(requested),
            (false, Some(other)) if other != self.user_id => None,
            (false, _) => Some(Some(self.user_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_list_only_their_own_orders_and_admins_anyones() {
        let (me, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let customer = Viewer { user_id: me, is_admin: false };
        assert_eq!(customer.orders_of(None), Some(Some(me)));
        assert_eq!(customer.orders_of(Some(me)), Some(Some(me)));
        assert_eq!(customer.orders_of(Some(other)), None);
        let admin = Viewer { user_id: me, is_admin: true };
        assert_eq!(admin.orders_of(None), Some(None));
        assert_eq!(admin.orders_of(Some(other)), Some(Some(other)));
    }
}

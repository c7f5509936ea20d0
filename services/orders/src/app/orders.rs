//! Orders after checkout: reading and listing them (each viewer their own, admins anyone's),
//! cancelling them with their stock returned, and the admin's status changes.

use chrono::{DateTime, Utc};
use kit::client::ClientError;
use sea_orm::DbErr;
use uuid::Uuid;

use super::return_stock;
use crate::clients::ProductsClient;
use crate::domain::{Order, OrderStatus, Viewer};
use crate::store::{OrderFilter, OrderStore};

/// Why cancelling an order returns its stock, for the record.
const CANCELLED_BY_CUSTOMER: &str = "cancelled by the customer";
const CANCELLED_BY_ADMIN: &str = "cancelled by an admin";

/// The order book: reads, lists and status changes.
#[derive(Clone)]
pub struct Orders {
    store: OrderStore,
    products: ProductsClient,
}

/// Why an order could not be read, listed or moved.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Absent, or another user's (the two are not told apart).
    #[error("no such order among yours")]
    NotVisible,
    #[error("no such order")]
    NotFound,
    #[error("only admins list other users' orders")]
    OthersOrders,
    #[error("an order that is {} cannot become {}", .from.as_str(), .to.as_str())]
    IllegalTransition { from: OrderStatus, to: OrderStatus },
    #[error("an order that is {} cannot be cancelled", .0.as_str())]
    NotCancellable(OrderStatus),
    /// A pending order may become confirmed only while products holds its stock.
    #[error(
        "this pending order's stock is not held, so it cannot be confirmed; cancel it, or let the recovery worker settle it"
    )]
    StockNotHeld,
    #[error("could not check the order's stock: {0}")]
    StockUnknown(#[source] ClientError),
    #[error(transparent)]
    Store(#[from] DbErr),
}

/// Which orders a list shows: whose (an admin's `user_id` filter) and in which status.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery {
    pub user_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

/// A keyset position in a list (newest first): the last order seen.
pub type After = (DateTime<Utc>, Uuid);

impl Orders {
    pub fn new(store: OrderStore, products: ProductsClient) -> Self {
        Self { store, products }
    }

    /// One order, if `viewer` may see it.
    pub async fn get(&self, viewer: Viewer, id: Uuid) -> Result<Order, OrderError> {
        match self.store.get(id).await? {
            Some(order) if viewer.may_see(&order) => Ok(order),
            _ => Err(OrderError::NotVisible),
        }
    }

    /// An offset page of the orders `viewer` may list, newest first, with the total.
    pub async fn page(
        &self,
        viewer: Viewer,
        query: ListQuery,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Order>, u64), OrderError> {
        let filter = filter_for(viewer, query)?;
        Ok(self.store.list(&filter, offset, limit).await?)
    }

    /// The orders `viewer` may list after the keyset position `after`, newest first, and
    /// whether more follow.
    pub async fn page_after(
        &self,
        viewer: Viewer,
        query: ListQuery,
        after: Option<After>,
        limit: u64,
    ) -> Result<(Vec<Order>, bool), OrderError> {
        let filter = filter_for(viewer, query)?;
        Ok(self.store.list_after(&filter, after, limit).await?)
    }

    /// The owner's or an admin's cancel, from pending, confirmed or paid; the stock goes back.
    pub async fn cancel(&self, viewer: Viewer, id: Uuid) -> Result<Order, OrderError> {
        let order = self.get(viewer, id).await?;
        let reason = if viewer.is_admin && order.user_id != viewer.user_id {
            CANCELLED_BY_ADMIN
        } else {
            CANCELLED_BY_CUSTOMER
        };
        self.cancel_order(id, reason).await
    }

    /// An admin's move along pending → confirmed → paid → shipped → delivered, or to cancelled
    /// (returning the stock). A pending order becomes confirmed only while its stock is held.
    pub async fn change_status(&self, admin: Uuid, id: Uuid, to: OrderStatus) -> Result<Order, OrderError> {
        match to {
            OrderStatus::Cancelled => return self.cancel_order(id, CANCELLED_BY_ADMIN).await,
            OrderStatus::Confirmed => return self.confirm_pending(id).await,
            _ => {}
        }
        let from: Vec<OrderStatus> =
            OrderStatus::ALL.into_iter().filter(|s| s.can_transition_to(to)).collect();
        match self.store.transition(id, &from, to, None).await? {
            Some(order) => {
                tracing::info!(admin_id = %admin, order_id = %id, status = to.as_str(), "order status changed");
                Ok(order)
            }
            None => {
                let current = self.store.get(id).await?.ok_or(OrderError::NotFound)?;
                Err(OrderError::IllegalTransition { from: current.status, to })
            }
        }
    }

    /// Pending → confirmed, allowed only while products holds the order's stock (what the
    /// recovery worker checks too), else the order would be confirmed with nothing reserved.
    async fn confirm_pending(&self, id: Uuid) -> Result<Order, OrderError> {
        let illegal = |from| OrderError::IllegalTransition { from, to: OrderStatus::Confirmed };
        let order = self.store.get(id).await?.ok_or(OrderError::NotFound)?;
        if order.status != OrderStatus::Pending {
            return Err(illegal(order.status));
        }
        let held = self.products.is_held(id).await.map_err(OrderError::StockUnknown)?;
        if !held {
            return Err(OrderError::StockNotHeld);
        }
        match self
            .store
            .transition_order(order, &[OrderStatus::Pending], OrderStatus::Confirmed, None)
            .await?
        {
            Some(confirmed) => Ok(confirmed),
            None => {
                let current = self.store.get(id).await?.ok_or(OrderError::NotFound)?;
                Err(illegal(current.status))
            }
        }
    }

    /// Cancels an order from pending, confirmed or paid and returns its stock (exactly once,
    /// even when cancel is called several times at once: only one status change wins, and the
    /// products service releases a reservation once).
    async fn cancel_order(&self, id: Uuid, reason: &str) -> Result<Order, OrderError> {
        let cancelled = self
            .store
            .transition(id, &OrderStatus::cancellable(), OrderStatus::Cancelled, Some(reason))
            .await?;
        let Some(order) = cancelled else {
            let current = self.store.get(id).await?.ok_or(OrderError::NotFound)?;
            return Err(OrderError::NotCancellable(current.status));
        };
        tracing::info!(order_id = %id, reason, "order cancelled");
        return_stock(&self.store, &self.products, id).await;
        Ok(self.store.get(id).await?.unwrap_or(order))
    }
}

/// The store's filter for what `viewer` asked to list.
fn filter_for(viewer: Viewer, query: ListQuery) -> Result<OrderFilter, OrderError> {
    let user_id = viewer.orders_of(query.user_id).ok_or(OrderError::OthersOrders)?;
    Ok(OrderFilter { user_id, status: query.status })
}

//! Sales figures for admins: orders, revenue and average order value over a period.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kit::money::Money;
use sea_orm::DbErr;

use crate::domain::OrderStatus;
use crate::store::OrderStore;

/// Sales figures.
#[derive(Clone)]
pub struct SalesStats {
    store: OrderStore,
    currency: Arc<str>,
}

/// A period's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesReport {
    /// Orders that are sales (confirmed, paid, shipped, delivered).
    pub orders: u64,
    /// Their total.
    pub revenue: Money,
    /// Revenue per order, rounded half up.
    pub average_order_value: Money,
    /// Every order in the period by status, cancelled and pending included.
    pub by_status: BTreeMap<OrderStatus, u64>,
}

/// Why figures could not be given.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Revenue is summed in 128 bits, but an amount is 64.
    #[error("the revenue of this period is too large to express in minor units; ask for a shorter period")]
    TooLarge,
    #[error(transparent)]
    Store(#[from] DbErr),
}

impl SalesStats {
    /// Figures of orders in `currency`.
    pub fn new(store: OrderStore, currency: &str) -> Self {
        Self { store, currency: currency.into() }
    }

    /// The figures of orders created in `[from, to)` (either end open when `None`).
    pub async fn report(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<SalesReport, StatsError> {
        let stats = self.store.stats(from, to).await?;
        let revenue = i64::try_from(stats.revenue).map_err(|_| StatsError::TooLarge)?;
        let average = average_order_value(stats.revenue, stats.orders).ok_or(StatsError::TooLarge)?;
        Ok(SalesReport {
            orders: stats.orders,
            revenue: Money::new(revenue, &self.currency),
            average_order_value: Money::new(average, &self.currency),
            by_status: stats.by_status,
        })
    }
}

/// Revenue per order, rounded half up; 0 without orders, `None` if it does not fit.
fn average_order_value(revenue: i128, orders: u64) -> Option<i64> {
    if orders == 0 {
        return Some(0);
    }
    let orders = i128::from(orders);
    i64::try_from((revenue * 2 + orders) / (orders * 2)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_rounds_half_up_and_never_overflows() {
        assert_eq!(average_order_value(0, 0), Some(0));
        assert_eq!(average_order_value(3, 2), Some(2));
        assert_eq!(average_order_value(5, 4), Some(1));
        assert_eq!(average_order_value(i128::from(i64::MAX) * 3, 3), Some(i64::MAX));
        assert_eq!(average_order_value(i128::from(i64::MAX) * 3, 1), None);
    }
}

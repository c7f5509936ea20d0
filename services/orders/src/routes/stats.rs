//! Sales figures for admins.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Days, NaiveDate, Utc};
use kit::auth::AdminUser;
use kit::extract::Query;
use kit::money::Money;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::{Deserialize, Serialize};

use super::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatsParams {
    /// Start, inclusive: an RFC 3339 date (`2026-11-01`) or time.
    from: Option<String>,
    /// End: a date counts as the whole day; a time is exclusive.
    to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    /// Orders that are sales (confirmed, paid, shipped, delivered).
    orders: u64,
    /// Their total.
    revenue: Money,
    /// Revenue per order, rounded half up.
    average_order_value: Money,
    /// Every order in the period by status, cancelled and pending included.
    by_status: BTreeMap<String, u64>,
}

/// Orders, revenue, average order value and counts by status over a period.
#[utoipa::path(get, path = "/api/v1/orders/stats", tag = "admin", security(("bearer" = [])), params(StatsParams),
    responses((status = 200, body = StatsView), (status = 400, description = "bad date")))]
pub async fn order_stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<StatsParams>,
) -> ApiResult<axum::Json<StatsView>> {
    let mut errors = FieldErrors::default();
    let from = errors.take("from", params.from.as_deref().map(|v| instant(v, false)).transpose());
    let to = errors.take("to", params.to.as_deref().map(|v| instant(v, true)).transpose());
    let (from, to) = errors.finish(|| Some((from?, to?)))?;
    let stats = state.store.stats(from, to).await?;
    let too_large = || {
        ApiError::unprocessable(
            "the revenue of this period is too large to express in minor units; ask for a shorter period",
        )
    };
    let revenue = i64::try_from(stats.revenue).map_err(|_| too_large())?;
    let average = average_order_value(stats.revenue, stats.orders).ok_or_else(too_large)?;
    Ok(axum::Json(StatsView {
        orders: stats.orders,
        revenue: Money::new(revenue, &state.currency),
        average_order_value: Money::new(average, &state.currency),
        by_status: stats.by_status.into_iter().map(|(status, n)| (status.as_str().to_owned(), n)).collect(),
    }))
}

/// Revenue per order, rounded half up; 0 without orders, `None` if it does not fit.
fn average_order_value(revenue: i128, orders: u64) -> Option<i64> {
    if orders == 0 {
        return Some(0);
    }
    let orders = i128::from(orders);
    i64::try_from((revenue * 2 + orders) / (orders * 2)).ok()
}

/// An RFC 3339 time, or a date: its start (or, for an end, the start of the next day).
fn instant(raw: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(time.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "must be an RFC 3339 date (2026-11-01) or time (2026-11-01T00:00:00Z)".to_owned())?;
    let date = if end { date.checked_add_days(Days::new(1)).ok_or("is out of range")? } else { date };
    Ok(date.and_hms_opt(0, 0, 0).ok_or("is out of range")?.and_utc())
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

    #[test]
    fn dates_cover_whole_days() {
        assert_eq!(instant("2026-11-01", false).unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(instant("2026-11-01", true).unwrap().to_rfc3339(), "2026-11-02T00:00:00+00:00");
        assert_eq!(
            instant("2026-11-01T10:00:00+02:00", true).unwrap().to_rfc3339(),
            "2026-11-01T08:00:00+00:00"
        );
        assert!(instant("yesterday", false).is_err());
    }
}

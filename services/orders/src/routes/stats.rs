//! Sales figures for admins.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Days, NaiveDate, Utc};
use kit::auth::AdminUser;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::Query;
use kit::money::Money;
use kit::{ApiError, ApiResult, FieldErrors};
use serde::{Deserialize, Serialize};

use crate::app::stats::{SalesReport, StatsError};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Start, inclusive: an RFC 3339 date (`2026-11-01`) or time.
    #[param(schema_with = date_or_time)]
    from: Option<String>,
    /// End: a date counts as the whole day; a time is exclusive.
    #[param(schema_with = date_or_time)]
    to: Option<String>,
}

/// The schema of what [`instant`] reads: an RFC 3339 date, or an RFC 3339 date and time.
fn date_or_time() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new().item(string(KnownFormat::Date)).item(string(KnownFormat::DateTime)).build().into()
}

/// Sales figures of a period.
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

impl From<SalesReport> for StatsView {
    fn from(report: SalesReport) -> Self {
        Self {
            orders: report.orders,
            revenue: report.revenue,
            average_order_value: report.average_order_value,
            by_status: report
                .by_status
                .into_iter()
                .map(|(status, n)| (status.as_str().to_owned(), n))
                .collect(),
        }
    }
}

impl From<StatsError> for ApiError {
    fn from(err: StatsError) -> Self {
        match err {
            StatsError::TooLarge => ApiError::unprocessable(err.to_string()),
            StatsError::Store(db) => db.into(),
        }
    }
}

/// Orders, revenue, average order value and counts by status over a period.
#[utoipa::path(get, path = "/api/v1/orders/stats", tag = "admin", security(("bearer" = [])), params(StatsParams),
    responses(
        (status = 200, body = StatsView),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "a bad date"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 403, body = ProblemBody, content_type = PROBLEM_JSON, description = "not an admin"),
        (status = 422, body = ProblemBody, content_type = PROBLEM_JSON, description = "the period's revenue does not fit in one amount")))]
pub async fn order_stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<StatsParams>,
) -> ApiResult<axum::Json<StatsView>> {
    let mut errors = FieldErrors::default();
    let from = errors.take("from", params.from.as_deref().map(|v| instant(v, false)).transpose());
    let to = errors.take("to", params.to.as_deref().map(|v| instant(v, true)).transpose());
    let (from, to) = errors.finish(|| Some((from?, to?)))?;
    Ok(axum::Json(state.stats.report(from, to).await?.into()))
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

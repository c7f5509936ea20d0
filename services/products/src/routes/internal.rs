//! For other mercato services only (service token; never routed by the gateway): product
//! lookup for pricing orders, and stock reservations keyed by order id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kit::auth::ServiceCaller;
use kit::extract::{Json, Path};
use kit::money::Money;
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use crate::domain::ReservationRequest;
use crate::store::{ReleaseOutcome, Reservation, ReserveOutcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// 1 to 100 product ids.
    ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LookupItemView {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub stock: i64,
    pub deleted: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LookupResponse {
    pub items: Vec<LookupItemView>,
    /// Ids that never existed.
    pub missing: Vec<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    order_id: Uuid,
    items: Vec<ReserveItem>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveItem {
    product_id: Uuid,
    quantity: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationView {
    pub order_id: Uuid,
    /// `held` or `released`.
    pub status: String,
    pub items: Vec<ReservedItem>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservedItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            order_id: r.order_id,
            status: if r.held { "held" } else { "released" }.into(),
            items: r
                .lines
                .into_iter()
                .map(|(product_id, quantity)| ReservedItem { product_id, quantity })
                .collect(),
        }
    }
}

/// Prices, stock, names and SKUs of products, deleted ones flagged.
#[utoipa::path(post, path = "/internal/v1/products/lookup", tag = "internal", security(("bearer" = [])),
    request_body = LookupRequest, responses((status = 200, body = LookupResponse)))]
pub async fn lookup(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Json(body): Json<LookupRequest>,
) -> ApiResult<axum::Json<LookupResponse>> {
    if body.ids.is_empty() || body.ids.len() > 100 {
        return Err(ApiError::invalid_field("ids", "must hold 1 to 100 ids"));
    }
    let found = state.catalog.lookup(&body.ids).await?;
    let missing = body.ids.iter().filter(|id| !found.iter().any(|f| f.id == **id)).copied().collect();
    let items = found
        .into_iter()
        .map(|f| LookupItemView {
            id: f.id,
            sku: f.sku,
            name: f.name,
            price: f.price,
            stock: f.stock,
            deleted: f.deleted,
        })
        .collect();
    Ok(axum::Json(LookupResponse { items, missing }))
}

/// Holds stock for an order: every line or none. Replaying the same order id answers the same
/// reservation (200) and takes nothing more.
#[utoipa::path(post, path = "/internal/v1/reservations", tag = "internal", security(("bearer" = [])),
    request_body = ReserveRequest,
    responses((status = 201, body = ReservationView, description = "held now"), (status = 200, body = ReservationView, description = "held before (replay)"),
        (status = 409, description = "insufficient stock (`short` lists each product and what is available), or the order's reservation was released")))]
pub async fn reserve(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(body): Json<ReserveRequest>,
) -> ApiResult<Response> {
    let lines: Vec<(Uuid, i64)> = body.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    let request = ReservationRequest::parse(body.order_id, &lines)?;
    match state.ledger.reserve(&request).await? {
        ReserveOutcome::Reserved(r) => {
            tracing::info!(caller = %caller.client_id, order_id = %r.order_id, "stock reserved");
            Ok((StatusCode::CREATED, axum::Json(ReservationView::from(r))).into_response())
        }
        ReserveOutcome::Existing(r) if r.held => Ok(axum::Json(ReservationView::from(r)).into_response()),
        ReserveOutcome::Existing(_) => {
            Err(ApiError::conflict("this order's reservation was released; use a new order id"))
        }
        ReserveOutcome::Short(short) => {
            let names: Vec<String> =
                short.iter().map(|s| format!("{} (available {})", s.product_id, s.available)).collect();
            let short: Vec<serde_json::Value> = short
                .iter()
                .map(|s| serde_json::json!({"product_id": s.product_id, "requested": s.requested, "available": s.available}))
                .collect();
            Err(ApiError::conflict(format!("insufficient stock for {}", names.join(", ")))
                .with_extra(serde_json::json!({ "short": short })))
        }
    }
}

/// An order's reservation.
#[utoipa::path(get, path = "/internal/v1/reservations/{order_id}", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = ReservationView), (status = 404, description = "never reserved")))]
pub async fn get_reservation(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<ReservationView>> {
    let found = state
        .ledger
        .reservation(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no reservation for this order"))?;
    Ok(axum::Json(found.into()))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseView {
    pub order_id: Uuid,
    pub status: String,
    /// `true` only for the call that returned the stock.
    pub released_now: bool,
}

/// Returns an order's held stock, exactly once however often it is called. Releasing an order
/// that was never reserved records it, so a late reservation is refused.
#[utoipa::path(post, path = "/internal/v1/reservations/{order_id}/release", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = ReleaseView)))]
pub async fn release(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<ReleaseView>> {
    let outcome = state.ledger.release(order_id).await?;
    let released_now = outcome == ReleaseOutcome::Released;
    if released_now {
        tracing::info!(caller = %caller.client_id, %order_id, "stock released");
    }
    Ok(axum::Json(ReleaseView { order_id, status: "released".into(), released_now }))
}

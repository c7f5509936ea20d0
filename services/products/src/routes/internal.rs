//! For other mercato services only (service token; never routed by the gateway): product
//! lookup for pricing orders, and stock reservations keyed by order id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::products::{
    LookupRequest, LookupResponse, MAX_LOOKUP_IDS, ProductInfo, ReleaseResponse, Reservation,
    ReservationConflict, ReservationStatus, ReserveRequest, ReservedItem, Shortage,
};
use kit::auth::ServiceCaller;
use kit::extract::{Json, Path};
use kit::{ApiError, ApiResult};
use uuid::Uuid;

use super::AppState;
use crate::domain::ReservationRequest;
use crate::store::{self, ReleaseOutcome, ReserveOutcome};

/// The wire form of a reservation.
fn reservation_view(r: store::Reservation) -> Reservation {
    Reservation {
        order_id: r.order_id,
        status: if r.held { ReservationStatus::Held } else { ReservationStatus::Released },
        items: r
            .lines
            .into_iter()
            .map(|(product_id, quantity)| ReservedItem { product_id, quantity })
            .collect(),
    }
}

/// A reservation's 409, its reason among the problem's members.
fn conflict(detail: String, reason: &ReservationConflict) -> ApiError {
    // Serialising these plain structs cannot fail; an empty object would still be a 409.
    ApiError::conflict(detail).with_extra(serde_json::to_value(reason).unwrap_or_default())
}

/// Prices, names and SKUs of products, deleted ones flagged.
#[utoipa::path(post, path = "/internal/v1/products/lookup", tag = "internal", security(("bearer" = [])),
    request_body = LookupRequest, responses((status = 200, body = LookupResponse)))]
pub async fn lookup(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Json(body): Json<LookupRequest>,
) -> ApiResult<axum::Json<LookupResponse>> {
    if body.ids.is_empty() || body.ids.len() > MAX_LOOKUP_IDS {
        return Err(ApiError::invalid_field("ids", format!("must hold 1 to {MAX_LOOKUP_IDS} ids")));
    }
    let found = state.catalog.lookup(&body.ids).await?;
    let missing = body.ids.iter().filter(|id| !found.iter().any(|f| f.id == **id)).copied().collect();
    let items = found
        .into_iter()
        .map(|f| ProductInfo { id: f.id, sku: f.sku, name: f.name, price: f.price, deleted: f.deleted })
        .collect();
    Ok(axum::Json(LookupResponse { items, missing }))
}

/// Holds stock for an order: every line or none. Replaying the same order id answers the same
/// reservation (200) and takes nothing more.
#[utoipa::path(post, path = "/internal/v1/reservations", tag = "internal", security(("bearer" = [])),
    request_body = ReserveRequest,
    responses((status = 201, body = Reservation, description = "held now"), (status = 200, body = Reservation, description = "held before (replay)"),
        (status = 409, description = "`reason` `short`: insufficient stock, `short` lists each product and what is available; `reason` `released`: the order's reservation was released")))]
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
            Ok((StatusCode::CREATED, axum::Json(reservation_view(r))).into_response())
        }
        ReserveOutcome::Existing(r) if r.held => Ok(axum::Json(reservation_view(r)).into_response()),
        ReserveOutcome::Existing(_) => Err(conflict(
            "this order's reservation was released; use a new order id".to_owned(),
            &ReservationConflict::Released,
        )),
        ReserveOutcome::Short(short) => {
            let names: Vec<String> =
                short.iter().map(|s| format!("{} (available {})", s.product_id, s.available)).collect();
            let short = short
                .iter()
                .map(|s| Shortage {
                    product_id: s.product_id,
                    requested: s.requested,
                    available: s.available,
                })
                .collect();
            Err(conflict(
                format!("insufficient stock for {}", names.join(", ")),
                &ReservationConflict::Short { short },
            ))
        }
    }
}

/// An order's reservation.
#[utoipa::path(get, path = "/internal/v1/reservations/{order_id}", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = Reservation), (status = 404, description = "never reserved")))]
pub async fn get_reservation(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<Reservation>> {
    let found = state
        .ledger
        .reservation(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no reservation for this order"))?;
    Ok(axum::Json(reservation_view(found)))
}

/// Returns an order's held stock, exactly once however often it is called. Releasing an order
/// that was never reserved records it, so a late reservation is refused.
#[utoipa::path(post, path = "/internal/v1/reservations/{order_id}/release", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = ReleaseResponse)))]
pub async fn release(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<ReleaseResponse>> {
    let outcome = state.ledger.release(order_id).await?;
    let released_now = outcome == ReleaseOutcome::Released;
    if released_now {
        tracing::info!(caller = %caller.client_id, %order_id, "stock released");
    }
    Ok(axum::Json(ReleaseResponse { order_id, status: ReservationStatus::Released, released_now }))
}

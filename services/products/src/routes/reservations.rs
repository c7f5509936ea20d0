//! For other mercato services only (service token; never routed by the gateway): stock
//! reservations keyed by order id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contracts::products::{
    ReleaseResponse, Reservation, ReservationConflict, ReservationStatus, ReserveRequest, ReservedItem,
    Shortage,
};
use kit::auth::ServiceCaller;
use kit::extract::{Json, Path};
use kit::{ApiError, ApiResult};
use uuid::Uuid;

use crate::app::reservations::{Held, ReservationError};
use crate::domain::{self, ReservationRequest, ReservationState};
use crate::state::AppState;

/// The wire form of a reservation.
fn reservation_view(r: domain::Reservation) -> Reservation {
    Reservation {
        order_id: r.order_id,
        status: match r.state {
            ReservationState::Held => ReservationStatus::Held,
            ReservationState::Released => ReservationStatus::Released,
        },
        items: r
            .lines
            .into_iter()
            .map(|line| ReservedItem { product_id: line.product_id, quantity: line.quantity })
            .collect(),
    }
}

/// A reservation's 409, its reason among the problem's members.
fn conflict(detail: String, reason: &ReservationConflict) -> ApiError {
    // Serialising these plain structs cannot fail; an empty object would still be a 409.
    ApiError::conflict(detail).with_extra(serde_json::to_value(reason).unwrap_or_default())
}

impl From<ReservationError> for ApiError {
    fn from(err: ReservationError) -> Self {
        match err {
            ReservationError::Short(short) => {
                let names: Vec<String> =
                    short.iter().map(|s| format!("{} (available {})", s.product_id, s.available)).collect();
                let short = short
                    .into_iter()
                    .map(|s| Shortage {
                        product_id: s.product_id,
                        requested: s.requested,
                        available: s.available,
                    })
                    .collect();
                conflict(
                    format!("insufficient stock for {}", names.join(", ")),
                    &ReservationConflict::Short { short },
                )
            }
            ReservationError::Released => conflict(
                "this order's reservation was released; use a new order id".to_owned(),
                &ReservationConflict::Released,
            ),
            ReservationError::NotFound => ApiError::not_found("no reservation for this order"),
            ReservationError::Store(store) => store.into(),
        }
    }
}

/// Holds stock for an order: every line or none. Replaying the same order id answers the same
/// reservation (200) and takes nothing more.
#[utoipa::path(post, path = "/internal/v1/reservations", tag = "internal", security(("bearer" = [])),
    request_body = ReserveRequest,
    responses((status = 201, body = Reservation, description = "held now"), (status = 200, body = Reservation, description = "held before (replay)"),
        (status = 409, description = "`reason` `short`: insufficient stock, `short` lists each product and what is available; `reason` `released`: the order's reservation was released")))]
pub(crate) async fn reserve(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(body): Json<ReserveRequest>,
) -> ApiResult<Response> {
    let lines: Vec<(Uuid, i64)> = body.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    let request = ReservationRequest::parse(body.order_id, &lines)?;
    match state.reservations.reserve(&request).await? {
        Held::Now(r) => {
            tracing::info!(caller = %caller.client_id, order_id = %r.order_id, "stock reserved");
            Ok((StatusCode::CREATED, axum::Json(reservation_view(r))).into_response())
        }
        Held::Before(r) => Ok(axum::Json(reservation_view(r)).into_response()),
    }
}

/// An order's reservation.
#[utoipa::path(get, path = "/internal/v1/reservations/{order_id}", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = Reservation), (status = 404, description = "never reserved")))]
pub(crate) async fn get_reservation(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<Reservation>> {
    let found = state.reservations.reservation(order_id).await?;
    Ok(axum::Json(reservation_view(found)))
}

/// Returns an order's held stock, exactly once however often it is called. Releasing an order
/// that was never reserved records it, so a late reservation is refused.
#[utoipa::path(post, path = "/internal/v1/reservations/{order_id}/release", tag = "internal", security(("bearer" = [])),
    params(("order_id" = Uuid, Path)), responses((status = 200, body = ReleaseResponse)))]
pub(crate) async fn release(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(order_id): Path<Uuid>,
) -> ApiResult<axum::Json<ReleaseResponse>> {
    let released_now = state.reservations.release(order_id).await?;
    if released_now {
        tracing::info!(caller = %caller.client_id, %order_id, "stock released");
    }
    Ok(axum::Json(ReleaseResponse { order_id, status: ReservationStatus::Released, released_now }))
}

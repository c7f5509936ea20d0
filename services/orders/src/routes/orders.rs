//! Placing orders, reading them, cancelling them, and the admin's status changes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use contracts::users::AddressBody;
use kit::address::PostalAddress;
use kit::auth::{AdminUser, CurrentUser};
use kit::extract::{Json, Path, Query};
use kit::pagination::{CursorPage, Page, PageRequest, decode_cursor, encode_cursor};
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppState, OrderView};
use crate::checkout::{self, Placed};
use crate::domain::{CheckoutRequest, OrderStatus};
use crate::store::{Order, OrderFilter};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    items: Vec<PlaceOrderItem>,
    /// One of your saved addresses…
    shipping_address_id: Option<Uuid>,
    /// …or an address for this order only.
    shipping_address: Option<AddressBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderItem {
    product_id: Uuid,
    /// 1 to 999.
    quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OrderFilters {
    /// Only orders in this status.
    status: Option<String>,
    /// Admins: only this user's orders.
    user_id: Option<String>,
    /// Keyset paging: empty to start, then the previous answer's `next_cursor`.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    status: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderCursor {
    at: i64,
    id: Uuid,
}

/// The longest idempotency key accepted.
const MAX_KEY: usize = 200;

/// Places an order: the stock is held and the order confirmed, or nothing is taken.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "replaying a request with the same key returns the original order")),
    responses((status = 201, body = OrderView), (status = 200, body = OrderView, description = "replay of an idempotency key"),
        (status = 409, description = "insufficient stock (nothing taken)"), (status = 422, description = "unknown or deleted products, not your address, or a reused key"),
        (status = 503, description = "a dependency is down; nothing is left half-done")))]
pub async fn place_order(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<PlaceOrderRequest>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let lines: Vec<(Uuid, i64)> = body.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    let inline = body.shipping_address.as_ref().map(PostalAddress::parse_body);
    let request = CheckoutRequest::parse(&lines, body.shipping_address_id, inline)?;
    match checkout::place_order(&state, &user, request, key).await? {
        Placed::Created(order) => {
            let location = format!("/api/v1/orders/{}", order.id);
            Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(OrderView::from(order)))
                .into_response())
        }
        Placed::Replayed(order) => Ok(axum::Json(OrderView::from(order)).into_response()),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key =
        value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// The caller's orders, newest first (admins: everyone's, or one user's with `user_id`).
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(OrderFilters, ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Page<OrderView>, description = "or `{items, next_cursor}` with `cursor`")))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: CurrentUser,
    page: PageRequest,
    Query(filters): Query<OrderFilters>,
) -> ApiResult<Response> {
    let status = filters
        .status
        .as_deref()
        .map(OrderStatus::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let requested_user = filters
        .user_id
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| ApiError::invalid_field("user_id", "must be a UUID"))?;
    let user_id = match (user.is_admin(), requested_user) {
        (true, requested) => requested,
        (false, Some(other)) if other != user.id => {
            return Err(ApiError::forbidden("only admins list other users' orders"));
        }
        (false, _) => Some(user.id),
    };
    let filter = OrderFilter { user_id, status };
    match filters.cursor {
        Some(cursor) => {
            let after = match cursor.trim() {
                "" => None,
                text => {
                    let key: OrderCursor = decode_cursor(text)?;
                    let at = DateTime::<Utc>::from_timestamp_micros(key.at).ok_or_else(|| {
                        ApiError::invalid_field("cursor", "is not a cursor this list gave out")
                    })?;
                    Some((at, key.id))
                }
            };
            let (orders, more) = state.store.list_after(&filter, after, page.limit()).await?;
            let next_cursor = match (more, orders.last()) {
                (true, Some(last)) => {
                    Some(encode_cursor(&OrderCursor { at: last.created_at.timestamp_micros(), id: last.id }))
                }
                _ => None,
            };
            let items = orders.into_iter().map(OrderView::from).collect();
            Ok(axum::Json(CursorPage { items, next_cursor }).into_response())
        }
        None => {
            let (orders, total) = state.store.list(&filter, page.offset(), page.limit()).await?;
            let items = orders.into_iter().map(OrderView::from).collect();
            Ok(axum::Json(Page::new(items, page, total)).into_response())
        }
    }
}

/// One order with its items; another user's order answers 404.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 404, description = "absent or not yours")))]
pub async fn get_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(visible_order(&state, &user, id).await?.into()))
}

async fn visible_order(state: &AppState, user: &CurrentUser, id: Uuid) -> ApiResult<Order> {
    match state.store.get(id).await? {
        Some(order) if order.user_id == user.id || user.is_admin() => Ok(order),
        _ => Err(ApiError::not_found("no such order among yours")),
    }
}

/// Cancels an order (owner or admin) from pending, confirmed or paid; its stock goes back.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 404, description = "absent or not yours"),
        (status = 409, description = "shipped, delivered or already cancelled")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    let order = visible_order(&state, &user, id).await?;
    let reason = if user.is_admin() && order.user_id != user.id {
        "cancelled by an admin"
    } else {
        "cancelled by the customer"
    };
    Ok(axum::Json(checkout::cancel_order(&state, id, reason).await?.into()))
}

/// Moves an order along pending → confirmed → paid → shipped → delivered (or to cancelled,
/// returning its stock); anything else is 409. A pending order becomes confirmed only while its
/// stock is held.
#[utoipa::path(patch, path = "/api/v1/orders/{id}/status", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = StatusChange, responses((status = 200, body = OrderView), (status = 404, description = "absent"),
        (status = 409, description = "illegal transition")))]
pub async fn change_status(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<StatusChange>,
) -> ApiResult<axum::Json<OrderView>> {
    let to = OrderStatus::parse(&body.status).map_err(|e| ApiError::invalid_field("status", e))?;
    match to {
        OrderStatus::Cancelled => {
            return Ok(axum::Json(checkout::cancel_order(&state, id, "cancelled by an admin").await?.into()));
        }
        OrderStatus::Confirmed => return Ok(axum::Json(checkout::confirm_pending(&state, id).await?.into())),
        _ => {}
    }
    let from: Vec<OrderStatus> = OrderStatus::ALL.into_iter().filter(|s| s.can_transition_to(to)).collect();
    match state.store.transition(id, &from, to, None).await? {
        Some(order) => {
            tracing::info!(admin_id = %admin.id, order_id = %id, status = to.as_str(), "order status changed");
            Ok(axum::Json(order.into()))
        }
        None => {
            let current = state.store.get(id).await?.ok_or_else(|| ApiError::not_found("no such order"))?;
            Err(ApiError::conflict(format!(
                "an order that is {} cannot become {}",
                current.status.as_str(),
                to.as_str()
            )))
        }
    }
}

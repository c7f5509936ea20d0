//! Placing orders, reading them, cancelling them, and the admin's status changes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use contracts::users::AddressBody;
use kit::address::PostalAddress;
use kit::auth::{AdminUser, CurrentUser};
use kit::error::ProblemBody;
use kit::extract::{Json, Path, Query};
use kit::pagination::{CursorPage, Page, PageRequest, decode_cursor, encode_cursor};
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::OrderView;
use crate::app::checkout::{CheckoutError, Placed};
use crate::app::orders::{ListQuery, OrderError};
use crate::domain::{CheckoutRequest, IdempotencyKey, OrderStatus, Viewer};
use crate::state::AppState;

/// `POST /api/v1/orders`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1 to 100 lines; lines of one product are merged (at most 999 units of it).
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<PlaceOrderItem>,
    /// One of your saved addresses…
    shipping_address_id: Option<Uuid>,
    /// …or an address for this order only.
    shipping_address: Option<AddressBody>,
}

/// Units of one product.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderItem {
    product_id: Uuid,
    #[schema(minimum = 1, maximum = 999)]
    quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilters {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Admins: only this user's orders.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// Keyset paging: empty to start, then the previous answer's `next_cursor`; the answer is
    /// then `{items, next_cursor}`.
    cursor: Option<String>,
}

/// `PATCH /api/v1/orders/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    #[schema(value_type = OrderStatus)]
    status: String,
}

/// An order list: an offset page, or with `cursor` a keyset page.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OrderList {
    Page(Page<OrderView>),
    Cursor(CursorPage<OrderView>),
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderCursor {
    at: i64,
    id: Uuid,
}

impl From<CheckoutError> for ApiError {
    fn from(err: CheckoutError) -> Self {
        let detail = err.to_string();
        match err {
            CheckoutError::AddressNotYours
            | CheckoutError::LineTooLarge
            | CheckoutError::TotalTooLarge
            | CheckoutError::KeyReused => ApiError::unprocessable(detail),
            CheckoutError::NotForSale(products) => {
                ApiError::unprocessable(detail).with_extra(json!({ "products": products }))
            }
            CheckoutError::AddressUnavailable(_) | CheckoutError::PricingUnavailable(_) => {
                ApiError::unavailable(detail)
            }
            CheckoutError::StillPending { order_id }
            | CheckoutError::Abandoned { order_id, .. }
            | CheckoutError::OutcomeUnknown { order_id, .. } => {
                ApiError::unavailable(detail).with_extra(json!({ "order_id": order_id }))
            }
            CheckoutError::InsufficientStock { order_id, short, .. } => {
                ApiError::conflict(detail).with_extra(json!({ "order_id": order_id, "short": short }))
            }
            CheckoutError::CancelledMeanwhile => ApiError::conflict(detail),
            CheckoutError::Vanished(_) => ApiError::internal(err),
            CheckoutError::Store(db) => db.into(),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        let detail = err.to_string();
        match err {
            OrderError::NotVisible | OrderError::NotFound => ApiError::not_found(detail),
            OrderError::OthersOrders => ApiError::forbidden(detail),
            OrderError::IllegalTransition { .. }
            | OrderError::NotCancellable(_)
            | OrderError::StockNotHeld => ApiError::conflict(detail),
            OrderError::StockUnknown(_) => ApiError::unavailable(detail),
            OrderError::Store(db) => db.into(),
        }
    }
}

fn viewer(user: &CurrentUser) -> Viewer {
    Viewer { user_id: user.id, is_admin: user.is_admin() }
}

/// Places an order: the stock is held and the order confirmed, or nothing is taken.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = r"^\s*[!-~]+\s*$",
        description = "replaying a request with the same key returns the original order")),
    responses(
        (status = 201, body = OrderView, description = "placed and confirmed",
            headers(("location" = String, description = "the order's URL"))),
        (status = 200, body = OrderView, description = "replay of an idempotency key: the order as it was settled"),
        (status = 400, body = ProblemBody, content_type = "application/problem+json", description = "invalid items, address or Idempotency-Key; unknown fields"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json", description = "not signed in"),
        (status = 409, body = ProblemBody, content_type = "application/problem+json", description = "insufficient stock (`short` names each product; the order is cancelled, nothing taken), or the order was cancelled while it was being placed"),
        (status = 413, body = ProblemBody, content_type = "application/problem+json", description = "body too large"),
        (status = 415, body = ProblemBody, content_type = "application/problem+json", description = "not JSON"),
        (status = 422, body = ProblemBody, content_type = "application/problem+json", description = "unknown or deleted products (`products`), not your address, a total too large, or a reused key"),
        (status = 503, body = ProblemBody, content_type = "application/problem+json", description = "a dependency is down; nothing is left half-done (`order_id` when an order was recorded and cancelled)")))]
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
    match state.checkout.place_order(user.id, &user.token, request, key).await? {
        Placed::Created(order) => {
            let location = format!("/api/v1/orders/{}", order.id);
            Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(OrderView::from(order)))
                .into_response())
        }
        Placed::Replayed(order) => Ok(axum::Json(OrderView::from(order)).into_response()),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let raw = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
    IdempotencyKey::parse(raw).map(Some).map_err(ApiError::bad_request)
}

/// The caller's orders, newest first (admins: everyone's, or one user's with `user_id`).
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(OrderFilters,
        ("page" = Option<u64>, Query, minimum = 1, description = "1-based; offset pages reach at most 1,000,000 rows deep"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100)),
    responses(
        (status = 200, body = OrderList, description = "an offset page, or `{items, next_cursor}` with `cursor`"),
        (status = 400, body = ProblemBody, content_type = "application/problem+json", description = "a bad page, limit, status, user id or cursor"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json", description = "not signed in"),
        (status = 403, body = ProblemBody, content_type = "application/problem+json", description = "another user's orders, asked for by a customer")))]
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
    let user_id = filters
        .user_id
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| ApiError::invalid_field("user_id", "must be a UUID"))?;
    let query = ListQuery { user_id, status };
    let list = match filters.cursor {
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
            let (orders, more) = state.orders.page_after(viewer(&user), query, after, page.limit()).await?;
            let next_cursor = match (more, orders.last()) {
                (true, Some(last)) => {
                    Some(encode_cursor(&OrderCursor { at: last.created_at.timestamp_micros(), id: last.id }))
                }
                _ => None,
            };
            let items = orders.into_iter().map(OrderView::from).collect();
            OrderList::Cursor(CursorPage { items, next_cursor })
        }
        None => {
            let (orders, total) =
                state.orders.page(viewer(&user), query, page.offset(), page.limit()).await?;
            let items = orders.into_iter().map(OrderView::from).collect();
            OrderList::Page(Page::new(items, page, total))
        }
    };
    Ok(axum::Json(list).into_response())
}

/// One order with its items; another user's order answers 404.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ProblemBody, content_type = "application/problem+json", description = "the id is not a UUID"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json", description = "not signed in"),
        (status = 404, body = ProblemBody, content_type = "application/problem+json", description = "absent or not yours")))]
pub async fn get_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(state.orders.get(viewer(&user), id).await?.into()))
}

/// Cancels an order (owner or admin) from pending, confirmed or paid; its stock goes back.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ProblemBody, content_type = "application/problem+json", description = "the id is not a UUID"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json", description = "not signed in"),
        (status = 404, body = ProblemBody, content_type = "application/problem+json", description = "absent or not yours"),
        (status = 409, body = ProblemBody, content_type = "application/problem+json", description = "shipped, delivered or already cancelled")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(state.orders.cancel(viewer(&user), id).await?.into()))
}

/// Moves an order along pending → confirmed → paid → shipped → delivered (or to cancelled,
/// returning its stock); anything else is 409. A pending order becomes confirmed only while its
/// stock is held.
#[utoipa::path(patch, path = "/api/v1/orders/{id}/status", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = StatusChange,
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ProblemBody, content_type = "application/problem+json", description = "the id is not a UUID, or an unknown status"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json", description = "not signed in"),
        (status = 403, body = ProblemBody, content_type = "application/problem+json", description = "not an admin"),
        (status = 404, body = ProblemBody, content_type = "application/problem+json", description = "absent"),
        (status = 409, body = ProblemBody, content_type = "application/problem+json", description = "illegal transition, or a pending order whose stock is not held"),
        (status = 413, body = ProblemBody, content_type = "application/problem+json", description = "body too large"),
        (status = 415, body = ProblemBody, content_type = "application/problem+json", description = "not JSON"),
        (status = 503, body = ProblemBody, content_type = "application/problem+json", description = "the products service could not say whether the stock is held")))]
pub async fn change_status(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<StatusChange>,
) -> ApiResult<axum::Json<OrderView>> {
    let to = OrderStatus::parse(&body.status).map_err(|e| ApiError::invalid_field("status", e))?;
    Ok(axum::Json(state.orders.change_status(admin.id, id, to).await?.into()))
}

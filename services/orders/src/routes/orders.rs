//! Placing orders, reading them, cancelling them, and the admin's status changes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use contracts::users::AddressBody;
use kit::address::PostalAddress;
use kit::auth::{AdminUser, CurrentUser};
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path, Query};
use kit::pagination::{CursorPage, Page, PageParams, PageRequest, forged_cursor};
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Ref, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};
use uuid::Uuid;

use kit::money::Money;

use super::{OrderItemView, OrderView};
use crate::app::checkout::{CheckoutError, Placed};
use crate::app::orders::{ListQuery, OrderError};
use crate::domain::{CheckoutRequest, IdempotencyKey, OrderStatus, Viewer, parse_quote_lines};
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

/// `POST /api/v1/orders` as its document shows it: a [`PlaceOrderRequest`] that names the
/// shipping address exactly one way, by `shipping_address_id` or `shipping_address` (the server
/// refuses both, and neither).
pub struct PlaceOrderBody;

impl utoipa::PartialSchema for PlaceOrderBody {
    fn schema() -> RefOr<Schema> {
        let naming =
            |field: &str, schema: RefOr<Schema>| ObjectBuilder::new().property(field, schema).required(field);
        let id = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        AllOfBuilder::new()
            .item(Ref::from_schema_name("PlaceOrderRequest"))
            .item(
                OneOfBuilder::new()
                    .item(naming("shipping_address_id", id.into()))
                    .item(naming("shipping_address", Ref::from_schema_name("AddressBody").into())),
            )
            .into()
    }
}

impl utoipa::ToSchema for PlaceOrderBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "PlaceOrderBody".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            <PlaceOrderRequest as utoipa::ToSchema>::name().into(),
            <PlaceOrderRequest as utoipa::PartialSchema>::schema(),
        ));
        <PlaceOrderRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// Units of one product.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderItem {
    product_id: Uuid,
    #[serde(deserialize_with = "kit::extract::whole_number")]
    #[schema(minimum = 1, maximum = 999)]
    quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilters {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>, nullable = false)]
    status: Option<String>,
    /// Admins: only this user's orders.
    #[param(value_type = Option<Uuid>, nullable = false)]
    user_id: Option<String>,
    /// Keyset paging: empty to start, then the previous answer's `next_cursor`; the answer is
    /// then `{items, next_cursor}`.
    #[param(nullable = false, pattern = "^([0-9a-f]{48})?$")]
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

/// Where a keyset page of orders (newest first) ends: the last order's creation time in
/// microseconds and its id, as 48 lowercase hex digits. Every such string is a position the
/// list can read (times outside the years orders can have are brought inside), so the
/// document describes a cursor exactly: `^([0-9a-f]{48})?$`, empty for the first page.
struct OrderCursor;

impl OrderCursor {
    /// 9999-12-31T23:59:59.999999Z, the last instant both databases store and order alike.
    const LATEST_MICROS: i64 = 253_402_300_799_999_999;

    fn encode(at: DateTime<Utc>, id: Uuid) -> String {
        format!("{:016x}{}", at.timestamp_micros().cast_unsigned(), id.simple())
    }

    fn parse(text: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
        if text.len() != 48 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(forged_cursor());
        }
        let micros = u64::from_str_radix(&text[..16], 16).map_err(|_| forged_cursor())?.cast_signed();
        let id = Uuid::parse_str(&text[16..]).map_err(|_| forged_cursor())?;
        let at =
            DateTime::<Utc>::from_timestamp_micros(micros.clamp(0, Self::LATEST_MICROS)).unwrap_or_default();
        Ok((at, id))
    }
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
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = PlaceOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]+$",
        description = "replaying a request with the same key returns the original order")),
    responses(
        (status = 201, body = OrderView, description = "placed and confirmed",
            headers(("location" = String, description = "the order's URL"))),
        (status = 200, body = OrderView, description = "replay of an idempotency key: the order as it was settled"),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "invalid items, address or Idempotency-Key; unknown fields"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 409, body = ProblemBody, content_type = PROBLEM_JSON, description = "insufficient stock (`short` names each product; the order is cancelled, nothing taken), or the order was cancelled while it was being placed"),
        (status = 413, body = ProblemBody, content_type = PROBLEM_JSON, description = "body too large"),
        (status = 415, body = ProblemBody, content_type = PROBLEM_JSON, description = "not JSON"),
        (status = 422, body = ProblemBody, content_type = PROBLEM_JSON, description = "unknown or deleted products (`products`), not your address, a total too large, or a reused key"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "a dependency is down; nothing is left half-done (`order_id` when an order was recorded and cancelled)")))]
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

/// `POST /api/v1/orders/quote`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// 1 to 100 lines; lines of one product are merged (at most 999 units of it).
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<PlaceOrderItem>,
}

/// What an order of these items would cost now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuoteView {
    pub items: Vec<OrderItemView>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
}

/// What an order of `items` would cost now — priced from the catalog and taxed exactly as
/// placing it would — for a checkout page's review; nothing is reserved or recorded, and the
/// order placed later is priced again.
#[utoipa::path(post, path = "/api/v1/orders/quote", tag = "orders", security(("bearer" = [])),
    request_body = QuoteRequest,
    responses(
        (status = 200, body = QuoteView),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "invalid items; unknown fields"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 413, body = ProblemBody, content_type = PROBLEM_JSON, description = "body too large"),
        (status = 415, body = ProblemBody, content_type = PROBLEM_JSON, description = "not JSON"),
        (status = 422, body = ProblemBody, content_type = PROBLEM_JSON, description = "unknown or deleted products (`products`), or a total too large"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the catalog cannot be reached")))]
pub async fn quote_order(
    State(state): State<AppState>,
    _user: CurrentUser,
    Json(body): Json<QuoteRequest>,
) -> ApiResult<axum::Json<QuoteView>> {
    let lines: Vec<(Uuid, i64)> = body.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    let quote = state.checkout.quote(&parse_quote_lines(&lines)?).await?;
    let money = |amount| Money::new(amount, &quote.currency);
    Ok(axum::Json(QuoteView {
        items: quote.lines.iter().map(|l| OrderItemView::of(l, &quote.currency)).collect(),
        subtotal: money(quote.totals.subtotal),
        tax: money(quote.totals.tax),
        total: money(quote.totals.total),
    }))
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
    params(OrderFilters, PageParams),
    responses(
        (status = 200, body = OrderList, description = "an offset page, or `{items, next_cursor}` with `cursor`"),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "a bad page, limit, status, user id or cursor"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 403, body = ProblemBody, content_type = PROBLEM_JSON, description = "another user's orders, asked for by a customer")))]
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
            let after = match cursor.as_str() {
                "" => None,
                text => Some(OrderCursor::parse(text)?),
            };
            let (orders, more) = state.orders.page_after(viewer(&user), query, after, page.limit()).await?;
            let next_cursor = match (more, orders.last()) {
                (true, Some(last)) => Some(OrderCursor::encode(last.created_at, last.id)),
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
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "the id is not a UUID"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 404, body = ProblemBody, content_type = PROBLEM_JSON, description = "absent or not yours")))]
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
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "the id is not a UUID"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 404, body = ProblemBody, content_type = PROBLEM_JSON, description = "absent or not yours"),
        (status = 409, body = ProblemBody, content_type = PROBLEM_JSON, description = "shipped, delivered or already cancelled")))]
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
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "the id is not a UUID, or an unknown status"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 403, body = ProblemBody, content_type = PROBLEM_JSON, description = "not an admin"),
        (status = 404, body = ProblemBody, content_type = PROBLEM_JSON, description = "absent"),
        (status = 409, body = ProblemBody, content_type = PROBLEM_JSON, description = "illegal transition, or a pending order whose stock is not held"),
        (status = 413, body = ProblemBody, content_type = PROBLEM_JSON, description = "body too large"),
        (status = 415, body = ProblemBody, content_type = PROBLEM_JSON, description = "not JSON"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the products service could not say whether the stock is held")))]
pub async fn change_status(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<StatusChange>,
) -> ApiResult<axum::Json<OrderView>> {
    let to = OrderStatus::parse(&body.status).map_err(|e| ApiError::invalid_field("status", e))?;
    Ok(axum::Json(state.orders.change_status(admin.id, id, to).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_cursor_names_the_order_it_was_made_from(micros in 0..=OrderCursor::LATEST_MICROS, id: u128) {
            let at = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            let id = Uuid::from_u128(id);
            prop_assert_eq!(OrderCursor::parse(&OrderCursor::encode(at, id)).unwrap(), (at, id));
        }

        #[test]
        fn every_cursor_of_48_hex_digits_is_a_position(text in "[0-9a-f]{48}") {
            prop_assert!(OrderCursor::parse(&text).is_ok());
        }
    }

    #[test]
    fn positions_outside_the_years_orders_have_are_brought_inside() {
        let (before, _) = OrderCursor::parse(&format!("{}{}", "f".repeat(16), "0".repeat(32))).unwrap();
        assert_eq!(before, DateTime::UNIX_EPOCH);
        let (after, _) = OrderCursor::parse(&format!("7{}{}", "f".repeat(15), "0".repeat(32))).unwrap();
        assert_eq!(after.timestamp_micros(), OrderCursor::LATEST_MICROS);
    }
}

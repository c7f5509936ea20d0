//! The shopper's cart: read it, set or remove a line, empty it, check it out.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use contracts::users::AddressBody;
use kit::auth::CurrentUser;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path};
use kit::money::Money;
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{CartError, ShippingChoice};
use crate::domain::{PricedCart, QuantityChange};
use crate::state::AppState;

/// A cart line as the API shows it: the catalog's name, image and price now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartItemView {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    /// The product's first image, if it has one.
    pub image: Option<String>,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
    /// False for a product deleted from the catalog (or not sold in the shop's currency): the
    /// line stays, and is left out of the subtotal.
    pub available: bool,
}

/// A cart as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub items: Vec<CartItemView>,
    /// The sum of the available lines.
    pub subtotal: Money,
    /// Units in the cart, over every line.
    pub item_count: i64,
    /// When the cart last changed; null for a cart never written (or deleted).
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<PricedCart> for CartView {
    fn from(cart: PricedCart) -> Self {
        Self {
            items: cart
                .lines
                .into_iter()
                .map(|l| CartItemView {
                    product_id: l.product_id,
                    sku: l.sku,
                    name: l.name,
                    image: l.image,
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    line_total: l.line_total,
                    available: l.available,
                })
                .collect(),
            subtotal: cart.subtotal,
            item_count: cart.item_count,
            updated_at: cart.updated_at,
        }
    }
}

/// `PUT /api/v1/cart/items/{product_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemQuantity {
    /// 1 to 99; 0 removes the line.
    #[serde(deserialize_with = "kit::extract::whole_number")]
    #[schema(minimum = 0, maximum = 99)]
    quantity: i64,
}

/// `POST /api/v1/cart/checkout`: where the order goes, `shipping_address_id` or
/// `shipping_address` (exactly one, as orders requires).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartCheckoutRequest {
    /// One of your saved addresses…
    shipping_address_id: Option<Uuid>,
    /// …or an address for this order only.
    shipping_address: Option<AddressBody>,
}

impl From<CartError> for ApiError {
    fn from(err: CartError) -> Self {
        let detail = err.to_string();
        match err {
            CartError::Empty => ApiError::bad_request(detail),
            CartError::Full(_) => ApiError::bad_request(detail),
            CartError::NotForSale(product) => {
                ApiError::unprocessable(detail).with_extra(serde_json::json!({ "products": [product] }))
            }
            CartError::Store(_) | CartError::CatalogUnavailable(_) | CartError::OrdersUnavailable(_) => {
                ApiError::unavailable(detail)
            }
        }
    }
}

/// The caller's cart, priced and checked against the catalog now.
#[utoipa::path(get, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses(
        (status = 200, body = CartView),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart store or the catalog is unavailable")))]
pub async fn get_cart(State(state): State<AppState>, user: CurrentUser) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(state.carts.view(user.id).await?.into()))
}

/// Deletes the caller's cart.
#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses(
        (status = 204, description = "the cart is empty"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart store is unavailable")))]
pub async fn delete_cart(State(state): State<AppState>, user: CurrentUser) -> ApiResult<StatusCode> {
    state.carts.clear(user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets how many units of a product the cart holds (0 removes the line).
#[utoipa::path(put, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = Uuid, Path)), request_body = CartItemQuantity,
    responses(
        (status = 200, body = CartView),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "a quantity outside 0 to 99, a 101st line, a bad product id, or unknown fields"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 413, body = ProblemBody, content_type = PROBLEM_JSON, description = "body too large"),
        (status = 415, body = ProblemBody, content_type = PROBLEM_JSON, description = "not JSON"),
        (status = 422, body = ProblemBody, content_type = PROBLEM_JSON, description = "unknown or deleted product (`products`)"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart store or the catalog is unavailable")))]
pub async fn put_item(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product_id): Path<Uuid>,
    Json(body): Json<CartItemQuantity>,
) -> ApiResult<axum::Json<CartView>> {
    let change = QuantityChange::parse(body.quantity).map_err(|e| ApiError::invalid_field("quantity", e))?;
    Ok(axum::Json(state.carts.set_quantity(user.id, product_id, change).await?.into()))
}

/// Removes a product's line from the cart (nothing happens when there is none).
#[utoipa::path(delete, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = Uuid, Path)),
    responses(
        (status = 200, body = CartView),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "the product id is not a UUID"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart store or the catalog is unavailable")))]
pub async fn delete_item(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product_id): Path<Uuid>,
) -> ApiResult<axum::Json<CartView>> {
    Ok(axum::Json(state.carts.remove(user.id, product_id).await?.into()))
}

/// Orders the cart's lines through the orders service and answers what it answered: 201 (or
/// 200 for a replayed Idempotency-Key) with the order, whose lines then leave the cart; any
/// failure leaves the cart as it was.
#[utoipa::path(post, path = "/api/v1/cart/checkout", tag = "cart", security(("bearer" = [])),
    request_body = CartCheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]+$",
        description = "passed on to orders: replaying a checkout with the same key returns the original order")),
    responses(
        (status = 201, body = serde_json::Value, description = "the order, as `POST /api/v1/orders` answers it; its lines have left the cart",
            headers(("location" = String, description = "the order's URL"))),
        (status = 200, body = serde_json::Value, description = "replay of an Idempotency-Key: the original order"),
        (status = 400, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart is empty, or the address or Idempotency-Key is invalid; unknown fields"),
        (status = 401, body = ProblemBody, content_type = PROBLEM_JSON, description = "not signed in"),
        (status = 409, body = ProblemBody, content_type = PROBLEM_JSON, description = "insufficient stock (as orders answers it); the cart is unchanged"),
        (status = 413, body = ProblemBody, content_type = PROBLEM_JSON, description = "body too large"),
        (status = 415, body = ProblemBody, content_type = PROBLEM_JSON, description = "not JSON"),
        (status = 422, body = ProblemBody, content_type = PROBLEM_JSON, description = "unknown or deleted products, not your address, or a reused key (as orders answers it); the cart is unchanged"),
        (status = 503, body = ProblemBody, content_type = PROBLEM_JSON, description = "the cart store, orders or one of its dependencies is unavailable; the cart is unchanged")))]
pub async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<CartCheckoutRequest>,
) -> ApiResult<Response> {
    let shipping = ShippingChoice { saved: body.shipping_address_id, inline: body.shipping_address };
    let key = headers.get("idempotency-key");
    let answer = state.carts.checkout(user.id, &user.token, key, shipping).await?;
    let mut response = Response::builder().status(answer.status);
    if let Some(content_type) = answer.content_type {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(location) = answer.location {
        response = response.header(header::LOCATION, location);
    }
    response.body(Body::from(answer.body)).map_err(ApiError::internal)
}

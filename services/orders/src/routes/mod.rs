//! HTTP surface of the orders service: every route is listed in [`router`]. Handlers extract and
//! parse the request, call one use case of [`crate::app`], map its error to a problem, and
//! build the view.

mod orders;
mod stats;

use chrono::{DateTime, Utc};
use kit::address::PostalAddress;
use kit::http::BearerAuth;
use kit::money::Money;
use serde::Serialize;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{Order, OrderStatus, PricedLine};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato orders", description = "Checkout, order history, the order status machine, stats."),
    modifiers(&BearerAuth),
    tags((name = "orders"), (name = "admin"))
)]
struct ApiDoc;

/// Every route of the service, with its OpenAPI document.
pub(crate) fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orders::place_order, orders::list_orders))
        .routes(routes!(orders::quote_order))
        .routes(routes!(stats::order_stats))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::change_status))
        .with_state(state)
        .split_for_parts();
    // After the routes: their schemas (the address body among them) exist only now.
    AddressRules.modify(&mut openapi);
    (router, openapi)
}

/// What `kit::address` requires of an inline shipping address, written into the schema of the
/// contract's `AddressBody`.
struct AddressRules;

impl Modify for AddressRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let schema = openapi.components.as_mut().and_then(|c| c.schemas.get_mut("AddressBody"));
        if let Some(RefOr::T(Schema::Object(object))) = schema {
            kit::address::document_address_rules(object);
        }
    }
}

/// An order line as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderItemView {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

impl OrderItemView {
    /// `line` in `currency`, as an order or a quote shows it.
    pub fn of(line: &PricedLine, currency: &str) -> Self {
        Self {
            product_id: line.product_id,
            sku: line.sku.clone(),
            name: line.name.clone(),
            unit_price: Money::new(line.unit_price, currency),
            quantity: line.quantity,
            line_total: Money::new(line.line_total, currency),
        }
    }
}

/// An order as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    /// Why the order is in its status, when there is something to say (e.g. why it was cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub items: Vec<OrderItemView>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub shipping_address: PostalAddress,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        let money = |amount| Money::new(amount, &order.currency);
        Self {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            status_reason: order.status_reason.clone(),
            items: order.lines.iter().map(|l| OrderItemView::of(l, &order.currency)).collect(),
            subtotal: money(order.totals.subtotal),
            tax: money(order.totals.tax),
            total: money(order.totals.total),
            shipping_address: order.shipping_address.clone(),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

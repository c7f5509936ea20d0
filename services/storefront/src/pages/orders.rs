//! The shopper's orders: history, one order's detail, and cancelling it.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;

use crate::api::Order;
use crate::views::{self, html_page, layout, money};
use crate::web::{AppState, PageError, PageResult, Visit, authed};

#[derive(Debug, Default, Deserialize)]
pub struct OrdersParams {
    page: Option<u32>,
}

/// `GET /orders`.
pub async fn list(
    State(app): State<AppState>,
    visit: Visit,
    Query(params): Query<OrdersParams>,
) -> PageResult {
    let page = params.page.unwrap_or(1).clamp(1, 10_000);
    let orders = authed!(app, visit, "/orders", |token| app.gateway.orders(token, page).await)?;
    let chrome = visit.chrome(&app);
    let body = html! {
        h1 { "Your orders" }
        @if orders.items.is_empty() {
            p { "No orders yet. " a href="/" { "Start shopping" } "." }
        } @else {
            table class="lines" {
                caption class="visually-hidden" { "Your orders, newest first" }
                thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Status" } th scope="col" { "Total" } } }
                tbody {
                    @for order in &orders.items {
                        tr {
                            td data-label="Order" { a href=(format!("/orders/{}", order.id)) { "Order " (short_id(order)) } }
                            td data-label="Placed" { (order.created_at.get(..10).unwrap_or(&order.created_at)) }
                            td data-label="Status" { span class={ "status " (order.status) } { (status_label(&order.status)) } }
                            td data-label="Total" { (money(&order.total)) }
                        }
                    }
                }
            }
            @if orders.total_pages > 1 {
                nav class="pager" aria-label="Pages" {
                    @if page > 1 { a rel="prev" href=(format!("/orders?page={}", page - 1)) { "← Newer" } }
                    span { "Page " (page) " of " (orders.total_pages) }
                    @if i64::from(page) < orders.total_pages { a rel="next" href=(format!("/orders?page={}", page + 1)) { "Older →" } }
                }
            }
        }
    };
    Ok(html_page(layout(&chrome, "Orders", body)))
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailParams {
    placed: Option<String>,
    cancelled: Option<String>,
}

/// `GET /orders/{id}`: lines, totals with tax, the address, and cancel while it may.
pub async fn detail(
    State(app): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    Query(params): Query<DetailParams>,
) -> PageResult {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let next = format!("/orders/{id}");
    let order = authed!(app, visit, &next, |token| app.gateway.order(token, id).await)?;
    let chrome = visit.chrome(&app);
    let cancellable = matches!(order.status.as_str(), "pending" | "confirmed" | "paid");
    let title = format!("Order {}", short_id(&order));
    let body = html! {
        h1 { (title) }
        @if params.placed.is_some() { p class="message success" role="status" { "Thank you! Your order is placed." } }
        @if params.cancelled.is_some() { p class="message success" role="status" { "Your order is cancelled." } }
        p { "Status: " span class={ "status " (order.status) } { (status_label(&order.status)) } }
        table class="lines" {
            caption class="visually-hidden" { "Products in this order" }
            thead { tr { th scope="col" { "Product" } th scope="col" { "Price" } th scope="col" { "Quantity" } th scope="col" { "Total" } } }
            tbody {
                @for line in &order.items {
                    tr {
                        td data-label="Product" { a href=(format!("/p/{}", line.product_id)) { (line.name) } }
                        td data-label="Price" { (money(&line.unit_price)) }
                        td data-label="Quantity" { (line.quantity) }
                        td data-label="Total" { (money(&line.line_total)) }
                    }
                }
            }
        }
        dl class="totals" {
            dt { "Subtotal" } dd { (money(&order.subtotal)) }
            dt { "Tax" } dd { (money(&order.tax)) }
            dt { "Total" } dd { strong { (money(&order.total)) } }
        }
        @if let Some(address) = order.shipping_address.as_object() {
            h2 { "Shipping to" }
            address {
                @for key in ["line1", "line2", "city", "state", "postal_code", "country"] {
                    @if let Some(value) = address.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
                        (value) br;
                    }
                }
            }
        }
        @if cancellable {
            form method="post" action=(format!("/orders/{}/cancel", order.id)) {
                (views::csrf(&chrome))
                button type="submit" data-once { "Cancel this order" }
            }
        }
        p { a href="/orders" { "All your orders" } }
    };
    Ok(html_page(layout(&chrome, &title, body)))
}

/// `POST /orders/{id}/cancel`: stock goes back; a 409 (already shipped…) is shown as a message.
pub async fn cancel(State(app): State<AppState>, visit: Visit, Path(id): Path<uuid::Uuid>) -> PageResult {
    let next = format!("/orders/{id}");
    authed!(app, visit, &next, |token| app.gateway.cancel_order(token, id).await)?;
    Ok(Redirect::to(&format!("/orders/{id}?cancelled=1")).into_response())
}

fn short_id(order: &Order) -> String {
    order.id.simple().to_string()[..8].to_uppercase()
}

fn status_label(status: &str) -> &str {
    match status {
        "pending" => "Pending",
        "confirmed" => "Confirmed",
        "paid" => "Paid",
        "shipped" => "Shipped",
        "delivered" => "Delivered",
        "cancelled" => "Cancelled",
        other => other,
    }
}

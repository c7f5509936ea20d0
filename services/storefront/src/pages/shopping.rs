//! Buying: the cart (add, change a quantity, remove) and checkout (choose or add an address,
//! review, place the order once). Signed-in shoppers only: carts are kept by the API per user.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::{Address, ApiFailure, Cart, Me, Quote};
use crate::pages::account::{AddressForm, address_fields};
use crate::views::{self, Chrome, html_page, layout, money, product_image};
use crate::web::{AppState, PageError, PageResult, Visit, authed};

#[derive(Debug, Deserialize)]
pub struct AddToCart {
    product_id: uuid::Uuid,
    quantity: Option<String>,
}

/// `POST /cart/items`: adds the quantity to what the cart already has of the product (at most
/// 99 a line, as the API allows), then shows the cart.
pub async fn add(State(app): State<AppState>, visit: Visit, Form(form): Form<AddToCart>) -> PageResult {
    let wanted = parse_quantity(form.quantity.as_deref()).unwrap_or(1).max(1);
    let back = format!("/p/{}", form.product_id);
    let cart = authed!(app, visit, &back, |token| app.gateway.cart(token).await)?;
    let held = cart.items.iter().find(|l| l.product_id == form.product_id).map_or(0, |l| l.quantity);
    let quantity = (held + wanted).min(99);
    authed!(app, visit, &back, |token| app.gateway.set_quantity(token, form.product_id, quantity).await)?;
    Ok(Redirect::to("/cart").into_response())
}

#[derive(Debug, Deserialize)]
pub struct ChangeQuantity {
    quantity: Option<String>,
}

/// `POST /cart/items/{id}`: sets the line's quantity (0 removes it).
pub async fn change(
    State(app): State<AppState>,
    visit: Visit,
    Path(product): Path<uuid::Uuid>,
    Form(form): Form<ChangeQuantity>,
) -> PageResult {
    let chrome = visit.chrome(&app);
    let Some(quantity) = parse_quantity(form.quantity.as_deref()) else {
        let cart = authed!(app, visit, "/cart", |token| app.gateway.cart(token).await)?;
        let message = "A quantity must be a whole number from 0 to 99.";
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html_page(cart_page(&chrome, &cart, Some(message))))
            .into_response());
    };
    let changed =
        authed!(app, visit, "/cart", |token| app.gateway.set_quantity(token, product, quantity).await);
    match changed {
        Ok(_) => Ok(Redirect::to("/cart").into_response()),
        Err(PageError::Api(failure)) if failure.status().is_client_error() => {
            let cart = authed!(app, visit, "/cart", |token| app.gateway.cart(token).await)?;
            let message = failure.message();
            Ok((failure.status(), html_page(cart_page(&chrome, &cart, Some(&message)))).into_response())
        }
        Err(other) => Err(other),
    }
}

/// `POST /cart/items/{id}/remove`.
pub async fn remove(
    State(app): State<AppState>,
    visit: Visit,
    Path(product): Path<uuid::Uuid>,
) -> PageResult {
    authed!(app, visit, "/cart", |token| app.gateway.set_quantity(token, product, 0).await)?;
    Ok(Redirect::to("/cart").into_response())
}

/// `GET /cart`.
pub async fn cart(State(app): State<AppState>, visit: Visit) -> PageResult {
    if !visit.signed_in() {
        let chrome = visit.chrome(&app);
        let body = html! {
            h1 { "Your cart" }
            p { "Sign in to keep a cart between visits and devices." }
            p { a class="button" href="/signin?next=/cart" { "Sign in" } " or " a href="/signup?next=/cart" { "create an account" } }
        };
        return Ok(html_page(layout(&chrome, "Cart", body)));
    }
    let cart = authed!(app, visit, "/cart", |token| app.gateway.cart(token).await)?;
    let chrome = visit.chrome(&app);
    Ok(html_page(cart_page(&chrome, &cart, None)))
}

fn cart_page(chrome: &Chrome, cart: &Cart, message: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Your cart" }
        (views::form_message(message))
        @if cart.items.is_empty() {
            p { "Your cart is empty. " a href="/" { "Find something you like" } "." }
        } @else {
            table class="lines" {
                caption class="visually-hidden" { "Products in your cart" }
                thead { tr { th scope="col" { "Product" } th scope="col" { "Price" } th scope="col" { "Quantity" } th scope="col" { "Total" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for line in &cart.items {
                        tr {
                            td data-label="Product" {
                                (product_image(line.image.as_deref(), &line.name, "line-image"))
                                a href=(format!("/p/{}", line.product_id)) { (line.name) }
                                @if !line.available { " " span class="stock out" { "No longer available" } }
                            }
                            td data-label="Price" { (money(&line.unit_price)) }
                            td data-label="Quantity" {
                                form method="post" action=(format!("/cart/items/{}", line.product_id)) class="quantity" {
                                    (views::csrf(chrome))
                                    label for=(format!("q-{}", line.product_id)) class="visually-hidden" { "Quantity of " (line.name) }
                                    input id=(format!("q-{}", line.product_id)) name="quantity" type="number" min="0" max="99" value=(line.quantity);
                                    button type="submit" { "Update" }
                                }
                            }
                            td data-label="Total" { (money(&line.line_total)) }
                            td {
                                form method="post" action=(format!("/cart/items/{}/remove", line.product_id)) {
                                    (views::csrf(chrome))
                                    button type="submit" class="link" { "Remove" span class="visually-hidden" { " " (line.name) } }
                                }
                            }
                        }
                    }
                }
            }
            p class="subtotal" { "Subtotal (" (cart.item_count) " items): " strong { (money(&cart.subtotal)) } }
            p { a class="button primary" href="/checkout" { "Check out" } }
        }
    };
    layout(chrome, "Cart", body)
}

#[derive(Debug, Default, Deserialize)]
pub struct CheckoutParams {
    address: Option<uuid::Uuid>,
}

/// `GET /checkout`: the cart's review, the saved addresses to choose from, a form to add one,
/// and the place-order form carrying this render's idempotency key.
pub async fn checkout(
    State(app): State<AppState>,
    visit: Visit,
    Query(params): Query<CheckoutParams>,
) -> PageResult {
    let (cart, me, quote) = authed!(app, visit, "/checkout", |token| review(&app, token).await)?;
    let chrome = visit.chrome(&app);
    let page = checkout_page(
        &chrome,
        &cart,
        quote.as_ref(),
        &me.addresses,
        params.address,
        None,
        &AddressForm::default(),
        None,
    );
    Ok(html_page(page))
}

/// What the checkout page shows: the cart, the shopper (their addresses), and what the order
/// would cost with tax (`None` when the shop cannot say now: the page still works).
async fn review(app: &AppState, token: &str) -> Result<(Cart, Me, Option<Quote>), ApiFailure> {
    let (cart, me) = tokio::join!(app.gateway.cart(token), app.gateway.me(token));
    let (cart, me) = (cart?, me?);
    let lines: Vec<(uuid::Uuid, i64)> =
        cart.items.iter().filter(|l| l.available).map(|l| (l.product_id, l.quantity)).collect();
    let quote = if lines.is_empty() { None } else { app.gateway.quote(token, &lines).await.ok() };
    Ok((cart, me, quote))
}

#[allow(clippy::too_many_arguments)]
fn checkout_page(
    chrome: &Chrome,
    cart: &Cart,
    quote: Option<&Quote>,
    addresses: &[Address],
    chosen: Option<uuid::Uuid>,
    message: Option<&str>,
    new_address: &AddressForm,
    address_error: Option<&ApiFailure>,
) -> Markup {
    let key = crate::session::random_token();
    let chosen = chosen
        .filter(|id| addresses.iter().any(|a| a.id == *id))
        .or_else(|| addresses.iter().find(|a| a.is_default).map(|a| a.id))
        .or_else(|| addresses.first().map(|a| a.id));
    let body = html! {
        h1 { "Checkout" }
        (views::form_message(message))
        @if cart.items.is_empty() {
            p { "Your cart is empty. " a href="/" { "Keep shopping" } "." }
        } @else {
            section aria-labelledby="review-heading" {
                h2 id="review-heading" { "Review" }
                ul class="review" {
                    @for line in &cart.items {
                        li { (line.quantity) " × " (line.name) " — " (money(&line.line_total)) }
                    }
                }
                dl class="totals" {
                    @if let Some(quote) = quote {
                        dt { "Subtotal" } dd { (money(&quote.subtotal)) }
                        dt { "Tax" } dd { (money(&quote.tax)) }
                        dt { "Total" } dd { strong { (money(&quote.total)) } }
                    } @else {
                        dt { "Subtotal" } dd { (money(&cart.subtotal)) }
                        dt { "Tax" } dd { "Calculated when the order is placed; shown on your order." }
                    }
                }
            }
            section aria-labelledby="place-heading" {
                h2 id="place-heading" { "Ship to" }
                @if addresses.is_empty() {
                    p { "Add an address below to place your order." }
                } @else {
                    form method="post" action="/checkout" class="place-order" {
                        (views::csrf(chrome))
                        input type="hidden" name="idempotency_key" value=(key);
                        fieldset {
                            legend { "Choose a saved address" }
                            @for address in addresses {
                                div class="field checkbox" {
                                    input type="radio" name="address_id" id=(format!("a-{}", address.id)) value=(address.id) checked[Some(address.id) == chosen] required;
                                    label for=(format!("a-{}", address.id)) { (address_line(address)) }
                                }
                            }
                        }
                        button type="submit" class="primary" data-once { "Place order" }
                    }
                }
            }
            section aria-labelledby="new-address-heading" {
                h2 id="new-address-heading" { "Add a new address" }
                form method="post" action="/checkout/address" {
                    (views::csrf(chrome))
                    (address_fields(new_address, address_error))
                    button type="submit" { "Add address" }
                }
            }
        }
    };
    layout(chrome, "Checkout", body)
}

/// An address on one line.
pub fn address_line(address: &Address) -> String {
    let mut parts = vec![address.line1.clone()];
    parts.extend(address.line2.clone().filter(|l| !l.is_empty()));
    parts.push(address.city.clone());
    parts.extend(address.state.clone().filter(|s| !s.is_empty()));
    parts.push(address.postal_code.clone());
    parts.push(address.country.clone());
    parts.join(", ")
}

/// `POST /checkout/address`: saves a new address and returns to checkout with it chosen.
pub async fn add_checkout_address(
    State(app): State<AppState>,
    visit: Visit,
    Form(form): Form<AddressForm>,
) -> PageResult {
    let address = form.to_new();
    let added = authed!(app, visit, "/checkout", |token| app.gateway.add_address(token, &address).await);
    match added {
        Ok(address) => Ok(Redirect::to(&format!("/checkout?address={}", address.id)).into_response()),
        Err(PageError::Api(failure)) if failure.status().is_client_error() => {
            let (cart, me, quote) = authed!(app, visit, "/checkout", |token| review(&app, token).await)?;
            let chrome = visit.chrome(&app);
            let message = (!failure.has_field_errors()).then(|| failure.message());
            let page = checkout_page(
                &chrome,
                &cart,
                quote.as_ref(),
                &me.addresses,
                None,
                message.as_deref(),
                &form,
                Some(&failure),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html_page(page)).into_response())
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct PlaceOrder {
    address_id: Option<uuid::Uuid>,
    idempotency_key: String,
}

/// `POST /checkout`: places the cart's order with the key the page carried, so the same form
/// sent twice answers the same order; then the order's page.
pub async fn place(State(app): State<AppState>, visit: Visit, Form(form): Form<PlaceOrder>) -> PageResult {
    let key = form.idempotency_key.trim().to_owned();
    let (Some(address), false) = (form.address_id, key.is_empty() || key.len() > 200) else {
        return Err(PageError::Api(ApiFailure::Answer {
            status: StatusCode::BAD_REQUEST,
            title: "Bad Request".into(),
            detail: "Choose an address to ship to, then place the order again.".into(),
            fields: Vec::new(),
        }));
    };
    let placed = authed!(app, visit, "/checkout", |token| app.gateway.checkout(token, address, &key).await);
    match placed {
        Ok(order) => Ok(Redirect::to(&format!("/orders/{}?placed=1", order.id)).into_response()),
        Err(PageError::Api(failure)) if failure.status().is_client_error() => {
            let (cart, me, quote) = authed!(app, visit, "/checkout", |token| review(&app, token).await)?;
            let chrome = visit.chrome(&app);
            let message = format!("Your order was not placed: {}", failure.message());
            let page = checkout_page(
                &chrome,
                &cart,
                quote.as_ref(),
                &me.addresses,
                Some(address),
                Some(&message),
                &AddressForm::default(),
                None,
            );
            Ok((failure.status(), html_page(page)).into_response())
        }
        Err(other) => Err(other),
    }
}

/// A quantity as typed: a whole number 0–99.
fn parse_quantity(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| t.trim().parse::<i64>().ok()).filter(|q| (0..=99).contains(q))
}

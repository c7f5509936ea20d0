//! Who the shopper is: sign up, sign in, sign out (revoking the refresh token), and the
//! account page with the saved addresses.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::{ApiFailure, Me, NewAddress};
use crate::pages::shopping::address_line;
use crate::views::{self, Chrome, field, html_page, layout};
use crate::web::{AppState, PageError, PageResult, Visit, authed, local_path, tokens_from};

#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `GET /signup`.
pub async fn signup_form(
    State(app): State<AppState>,
    visit: Visit,
    Query(q): Query<NextParam>,
) -> PageResult {
    let form = Credentials { next: q.next, ..Credentials::default() };
    Ok(html_page(credentials_page(&visit.chrome(&app), true, &form, None)))
}

/// `GET /signin`.
pub async fn signin_form(
    State(app): State<AppState>,
    visit: Visit,
    Query(q): Query<NextParam>,
) -> PageResult {
    let form = Credentials { next: q.next, ..Credentials::default() };
    Ok(html_page(credentials_page(&visit.chrome(&app), false, &form, None)))
}

/// `POST /signup`: registers, signs in, then back where the shopper was going.
pub async fn signup(State(app): State<AppState>, visit: Visit, Form(form): Form<Credentials>) -> PageResult {
    match app.gateway.register(form.name.trim(), form.email.trim(), &form.password).await {
        Ok(issued) => {
            visit.sign(Some(tokens_from(issued, form.name.trim().to_owned())));
            Ok(Redirect::to(&local_path(form.next.as_deref())).into_response())
        }
        Err(failure) => refused(&app, &visit, true, &form, failure),
    }
}

/// `POST /signin`.
pub async fn signin(State(app): State<AppState>, visit: Visit, Form(form): Form<Credentials>) -> PageResult {
    match app.gateway.login(form.email.trim(), &form.password).await {
        Ok(issued) => {
            let fallback = form.email.trim().to_owned();
            visit.sign(Some(tokens_from(issued, fallback)));
            Ok(Redirect::to(&local_path(form.next.as_deref())).into_response())
        }
        Err(failure) => refused(&app, &visit, false, &form, failure),
    }
}

/// The form again with the API's refusal: beside the fields it names, else on top.
fn refused(
    app: &AppState,
    visit: &Visit,
    signup: bool,
    form: &Credentials,
    failure: ApiFailure,
) -> PageResult {
    if !failure.status().is_client_error() {
        return Err(PageError::Api(failure));
    }
    let status = failure.status();
    let page = credentials_page(&visit.chrome(app), signup, form, Some(&failure));
    Ok((status, html_page(page)).into_response())
}

fn credentials_page(
    chrome: &Chrome,
    signup: bool,
    form: &Credentials,
    failure: Option<&ApiFailure>,
) -> Markup {
    let title = if signup { "Create an account" } else { "Sign in" };
    let action = if signup { "/signup" } else { "/signin" };
    let top = failure.filter(|f| !f.has_field_errors()).map(ApiFailure::message);
    let error = |name: &str| failure.and_then(|f| f.field(name));
    let body = html! {
        h1 { (title) }
        form method="post" action=(action) class="narrow" novalidate {
            (views::csrf(chrome))
            @if let Some(next) = &form.next { input type="hidden" name="next" value=(next); }
            (views::form_message(top.as_deref()))
            @if signup { (field("Name", "name", "text", &form.name, error("name"), true)) }
            (field("Email", "email", "email", &form.email, error("email"), true))
            (field("Password", "password", "password", "", error("password"), true))
            @if signup { p class="hint" { "At least 8 characters." } }
            button type="submit" class="primary" data-once { (title) }
        }
        @if signup {
            p { "Already have an account? " a href="/signin" { "Sign in" } }
        } @else {
            p { "New here? " a href="/signup" { "Create an account" } }
        }
    };
    layout(chrome, title, body)
}

/// `POST /signout`: revokes the refresh token at the API and forgets the session.
pub async fn signout(State(app): State<AppState>, visit: Visit) -> PageResult {
    if let Some(tokens) = visit.tokens()
        && let Err(failure) = app.gateway.logout(&tokens.refresh).await
    {
        tracing::warn!(error = %failure.message(), "the refresh token could not be revoked at sign-out");
    }
    visit.sign(None);
    Ok(Redirect::to("/").into_response())
}

/// A new address as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddressForm {
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub country: String,
}

impl AddressForm {
    pub fn to_new(&self) -> NewAddress {
        let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        NewAddress {
            line1: self.line1.trim().to_owned(),
            line2: optional(&self.line2),
            city: self.city.trim().to_owned(),
            state: optional(&self.state),
            postal_code: self.postal_code.trim().to_owned(),
            country: self.country.trim().to_ascii_uppercase(),
        }
    }
}

/// The address inputs, each with the API's message for it.
pub fn address_fields(form: &AddressForm, failure: Option<&ApiFailure>) -> Markup {
    let error = |name: &str| failure.and_then(|f| f.field(name));
    html! {
        (field("Address", "line1", "text", &form.line1, error("line1"), true))
        (field("Address line 2", "line2", "text", &form.line2, error("line2"), false))
        (field("City", "city", "text", &form.city, error("city"), true))
        (field("State or region", "state", "text", &form.state, error("state"), false))
        (field("Postal code", "postal_code", "text", &form.postal_code, error("postal_code"), true))
        (field("Country (two letters, e.g. US)", "country", "text", &form.country, error("country"), true))
    }
}

/// `GET /account`.
pub async fn account(State(app): State<AppState>, visit: Visit) -> PageResult {
    let me = authed!(app, visit, "/account", |token| app.gateway.me(token).await)?;
    Ok(html_page(account_page(&visit.chrome(&app), &me, &AddressForm::default(), None)))
}

fn account_page(chrome: &Chrome, me: &Me, form: &AddressForm, failure: Option<&ApiFailure>) -> Markup {
    let top = failure.filter(|f| !f.has_field_errors()).map(ApiFailure::message);
    let body = html! {
        h1 { "Your account" }
        p { (me.name) " — " (me.email) }
        section aria-labelledby="addresses-heading" {
            h2 id="addresses-heading" { "Addresses" }
            @if me.addresses.is_empty() {
                p { "No saved addresses yet." }
            } @else {
                ul class="addresses" {
                    @for address in &me.addresses {
                        li {
                            span { (address_line(address)) @if address.is_default { " (default)" } }
                            form method="post" action=(format!("/account/addresses/{}/delete", address.id)) class="inline" {
                                (views::csrf(chrome))
                                button type="submit" class="link" { "Delete" span class="visually-hidden" { " " (address.line1) } }
                            }
                        }
                    }
                }
            }
            h3 { "Add an address" }
            form method="post" action="/account/addresses" class="narrow" {
                (views::csrf(chrome))
                (views::form_message(top.as_deref()))
                (address_fields(form, failure))
                button type="submit" { "Add address" }
            }
        }
    };
    layout(chrome, "Account", body)
}

/// `POST /account/addresses`.
pub async fn add_address(
    State(app): State<AppState>,
    visit: Visit,
    Form(form): Form<AddressForm>,
) -> PageResult {
    let address = form.to_new();
    let added = authed!(app, visit, "/account", |token| app.gateway.add_address(token, &address).await);
    match added {
        Ok(_) => Ok(Redirect::to("/account").into_response()),
        Err(PageError::Api(failure)) if failure.status().is_client_error() => {
            let me = authed!(app, visit, "/account", |token| app.gateway.me(token).await)?;
            let page = account_page(&visit.chrome(&app), &me, &form, Some(&failure));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html_page(page)).into_response())
        }
        Err(other) => Err(other),
    }
}

/// `POST /account/addresses/{id}/delete`.
pub async fn delete_address(
    State(app): State<AppState>,
    visit: Visit,
    Path(id): Path<uuid::Uuid>,
) -> PageResult {
    authed!(app, visit, "/account", |token| app.gateway.delete_address(token, id).await)?;
    Ok(Redirect::to("/account").into_response())
}

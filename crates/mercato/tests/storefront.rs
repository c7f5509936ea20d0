//! The storefront end to end through the gateway of the embedded shop, as a browser without
//! JavaScript uses it: plain GETs and form POSTs, the session cookie carried by hand, redirects
//! not followed so each answer can be checked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::TestShop;
use mercato::embedded::Overrides;
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode, header};

async fn start() -> TestShop {
    common::start(Overrides { gateway: |c| c.rate_limit.enabled = false, ..Overrides::default() }).await
}

/// A shopper's browser: one cookie (the session), no JavaScript, redirects shown.
struct Browser<'a> {
    shop: &'a TestShop,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(shop: &'a TestShop) -> Self {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Self { shop, http, cookie: None }
    }

    fn keep_cookie(&mut self, response: &Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            if let Some(pair) = value.split(';').next().filter(|p| p.starts_with("mercato_session=")) {
                self.cookie = Some(pair.to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let mut request = self.http.get(format!("{}{path}", self.shop.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            storefront::CONTENT_SECURITY_POLICY,
            "every page sends the policy: {path}"
        );
        assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    /// POSTs `fields` as a form; answers the status, the redirect target and the body.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        let mut request = self.http.post(format!("{}{path}", self.shop.base)).form(fields);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        let location = response.headers().get(header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (response.status(), location, response.text().await.unwrap())
    }

    /// POSTs `fields` with the CSRF token of the form on `page`.
    async fn submit(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let (status, html) = self.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        let csrf = hidden(&html, "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    async fn sign_up(&mut self, email: &str) {
        let fields = [("name", "Ada Shopper"), ("email", email), ("password", "a good password")];
        let (status, location, body) = self.submit("/signup", "/signup", &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(location.as_deref(), Some("/"));
    }
}

/// The value of the first hidden input named `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn browsing_pages_render_the_product_with_the_policy_on_every_page() {
    let t = start().await;
    let mug = t.create_product("Enamel Mug", "Kitchen", 1250, 10).await;
    let (id, category) = (mug["id"].as_str().unwrap(), mug["category"].as_str().unwrap());
    let mut browser = Browser::new(&t);
    for page in [
        "/".to_owned(),
        "/search?q=mug".to_owned(),
        format!("/c/{category}"),
        format!("/c/{category}?brand=Acme&min_price=10&max_price=20&in_stock=1&sort=price_asc"),
        format!("/p/{id}"),
    ] {
        let (status, html) = browser.get(&page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.contains("Enamel Mug"), "{page} shows the product");
    }
    let (_, product) = browser.get(&format!("/p/{id}")).await;
    assert!(product.contains("$12.50"), "money from minor units");
    assert!(product.contains("action=\"/cart/items\""), "an add-to-cart form");
    let (_, none) = browser.get(&format!("/c/{category}?min_price=20")).await;
    assert!(!none.contains("Enamel Mug"), "the price filter applies");
    let (status, html) = browser.get("/p/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<main") && !html.contains("urn:mercato"), "a page, not a problem document");
}

#[tokio::test]
async fn signing_up_seals_the_tokens_in_an_httponly_cookie_never_in_a_page() {
    let t = start().await;
    let mut browser = Browser::new(&t);
    let (_, signup) = browser.get("/signup").await;
    let csrf = hidden(&signup, "csrf");
    let response = browser
        .http
        .post(format!("{}/signup", t.base))
        .header(header::COOKIE, browser.cookie.clone().unwrap())
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Ada"),
            ("email", "ada@shop.test"),
            ("password", "a good password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("mercato_session="), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax") && cookie.contains("; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("eyJ"), "the access token (a JWT) is sealed, not readable: {cookie}");
    browser.keep_cookie(&response);
    let (status, account) = browser.get("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(account.contains("ada@shop.test"), "signed in: {account}");
    assert!(!account.contains("eyJ"), "no token in the page");
    let (status, location, _) = browser.submit("/account", "/signout", &[]).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/")));
    let (status, _) = browser.get("/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out: to the sign-in page");
}

#[tokio::test]
async fn a_post_without_this_sessions_csrf_token_is_a_403_page() {
    let t = start().await;
    let mut browser = Browser::new(&t);
    browser.get("/signin").await;
    let fields = [("email", "x@shop.test"), ("password", "whatever password")];
    let (status, _, html) = browser.post("/signin", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("<main"), "a page: {html}");
    let mut other = Browser::new(&t);
    let (_, page) = other.get("/signin").await;
    let foreign = hidden(&page, "csrf");
    let (status, _, _) = browser.post("/signin", &[("csrf", foreign.as_str()), fields[0], fields[1]]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another session's token does not count");
}

#[tokio::test]
async fn api_errors_show_as_messages_on_the_form() {
    let t = start().await;
    let mut browser = Browser::new(&t);
    let short = [("name", "Bo"), ("email", "bo@shop.test"), ("password", "short")];
    let (status, _, html) = browser.submit("/signup", "/signup", &short).await;
    assert!(status.is_client_error(), "{status}");
    assert!(html.contains("class=\"field-error\" id=\"f-password-error\""), "beside the password: {html}");
    assert!(!html.contains("urn:mercato") && !html.contains("\"detail\""), "no raw JSON");
    let (status, _, html) = browser
        .submit("/signin", "/signin", &[("email", "no@shop.test"), ("password", "wrong password")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("class=\"message error\""), "on top of the form: {html}");
}

#[tokio::test]
async fn a_shopper_fills_a_cart_checks_out_once_on_a_double_submit_and_cancels() {
    let t = start().await;
    let mug = t.create_product("Enamel Mug", "Kitchen", 1250, 10).await["id"].as_str().unwrap().to_owned();
    let tea = t.create_product("Green Tea", "Kitchen", 499, 10).await["id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&t);
    browser.sign_up("cart@shop.test").await;

    for (product, quantity) in [(&mug, "1"), (&tea, "2")] {
        let page = format!("/p/{product}");
        let (status, location, _) =
            browser.submit(&page, "/cart/items", &[("product_id", product), ("quantity", quantity)]).await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/cart")));
    }
    let (status, _, _) = browser.submit("/cart", &format!("/cart/items/{mug}"), &[("quantity", "3")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, cart) = browser.get("/cart").await;
    assert!(cart.contains("Enamel Mug") && cart.contains("Green Tea"), "{cart}");
    assert!(cart.contains(&format!("${:.2}", f64::from(3 * 1250 + 2 * 499) / 100.0)), "subtotal: {cart}");

    let address =
        [("line1", "1 Main St"), ("city", "Springfield"), ("postal_code", "12345"), ("country", "US")];
    let (status, location, _) = browser.submit("/checkout", "/checkout/address", &address).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, checkout) = browser.get(location.as_deref().unwrap()).await;
    assert!(checkout.contains("<dt>Tax</dt><dd>$"), "the review shows the tax before ordering: {checkout}");
    assert!(checkout.contains("<dt>Total</dt>"), "and the total: {checkout}");
    let key = hidden(&checkout, "idempotency_key");
    let csrf = hidden(&checkout, "csrf");
    let marker = "name=\"address_id\" id=\"a-";
    let start = checkout.find(marker).unwrap() + marker.len();
    let address_id = checkout[start..start + 36].to_owned();
    let place =
        [("csrf", csrf.as_str()), ("idempotency_key", key.as_str()), ("address_id", address_id.as_str())];
    let (first, first_order, _) = browser.post("/checkout", &place).await;
    let (second, second_order, _) = browser.post("/checkout", &place).await;
    assert_eq!((first, second), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    assert_eq!(first_order, second_order, "the same key answers the same order");
    let order_page = first_order.unwrap();
    let (_, orders) = browser.get("/orders").await;
    assert_eq!(orders.matches("href=\"/orders/").count(), 1, "exactly one order: {orders}");
    assert_eq!(stock(&t, &mug).await, 7);

    let order_path = order_page.split('?').next().unwrap().to_owned();
    let (status, location, _) = browser.submit(&order_page, &format!("{order_path}/cancel"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, cancelled) = browser.get(location.as_deref().unwrap()).await;
    assert!(cancelled.contains("Your order is cancelled"), "{cancelled}");
    assert_eq!(stock(&t, &mug).await, 10, "stock is back");
    assert_eq!(stock(&t, &tea).await, 10);
}

async fn stock(t: &TestShop, id: &str) -> serde_json::Value {
    t.get(&format!("/api/v1/products/{id}")).await["stock"].clone()
}

#[tokio::test]
async fn the_account_page_adds_and_deletes_addresses_and_shows_refusals_beside_the_field() {
    let t = start().await;
    let mut browser = Browser::new(&t);
    browser.sign_up("account@shop.test").await;
    let address =
        [("line1", "9 Elm St"), ("city", "Shelbyville"), ("postal_code", "54321"), ("country", "US")];
    let (status, location, _) = browser.submit("/account", "/account/addresses", &address).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")));
    let (_, account) = browser.get("/account").await;
    assert!(account.contains("9 Elm St, Shelbyville, 54321, US"), "{account}");

    let bad = [("line1", "1 Nowhere"), ("city", "X"), ("postal_code", "1"), ("country", "ZZZ")];
    let (status, _, html) = browser.submit("/account", "/account/addresses", &bad).await;
    assert!(status.is_client_error(), "{status}");
    assert!(html.contains("id=\"f-country-error\""), "the country's message beside it: {html}");

    let marker = "action=\"/account/addresses/";
    let start = account.find(marker).unwrap() + marker.len();
    let id = &account[start..start + 36];
    let (status, location, _) =
        browser.submit("/account", &format!("/account/addresses/{id}/delete"), &[]).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")));
    let (_, account) = browser.get("/account").await;
    assert!(!account.contains("9 Elm St") && account.contains("No saved addresses yet"), "{account}");
}

/// Pages stay light (issue 14: each under 50 KB of HTML) with a full listing page of products.
#[tokio::test]
async fn a_full_category_page_and_a_product_page_are_under_50_kb() {
    let t = start().await;
    let mut last = String::new();
    for n in 0..24 {
        let created = t.create_product(&format!("Stoneware Bowl {n}"), "Tableware", 900 + n, 5).await;
        last = created["id"].as_str().unwrap().to_owned();
    }
    let mut browser = Browser::new(&t);
    for page in ["/".to_owned(), "/c/tableware".to_owned(), format!("/p/{last}"), "/search?q=bowl".to_owned()]
    {
        let (status, html) = browser.get(&page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.len() < 50 * 1024, "{page} is {} bytes", html.len());
    }
    let (_, listing) = browser.get("/c/tableware").await;
    assert!(listing.matches("Stoneware Bowl").count() >= 20, "a full page of products");
}

//! The base layout every page renders in, and the pieces pages share (money, forms, messages).
//! Templates are maud: compiled, escaping by default; no business rules here.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kit::money::Money;
use maud::{DOCTYPE, Markup, html};

/// What the layout needs from the session.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The signed-in shopper's name.
    pub shopper: Option<String>,
    /// This session's CSRF token, for every form.
    pub csrf: String,
}

/// A whole page: `title`, then `main` inside the shop's header, navigation and footer.
pub fn layout(chrome: &Chrome, title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mercato" }
                // No icon to fetch: browsers would ask for /favicon.ico (a 404) on every visit.
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/site.css";
                script src="/assets/site.js" defer {}
            }
            body {
                a class="skip-link" href="#main" { "Skip to content" }
                header class="site-header" {
                    a class="brand" href="/" { "mercato" }
                    form class="search" role="search" method="get" action="/search" {
                        label for="site-search" class="visually-hidden" { "Search products" }
                        input id="site-search" type="search" name="q" placeholder="Search products";
                        button type="submit" { "Search" }
                    }
                    nav aria-label="Account" {
                        ul {
                            li { a href="/cart" { "Cart" } }
                            @if let Some(name) = &chrome.shopper {
                                li { a href="/orders" { "Orders" } }
                                li { a href="/account" { "Account" } span class="visually-hidden" { " of " (name) } }
                                li {
                                    form method="post" action="/signout" class="inline" {
                                        (csrf(chrome))
                                        button type="submit" class="link" { "Sign out" }
                                    }
                                }
                            } @else {
                                li { a href="/signin" { "Sign in" } }
                                li { a href="/signup" { "Sign up" } }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
                footer class="site-footer" {
                    p { "mercato — a demo shop. Prices include no shipping." }
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(chrome: &Chrome) -> Markup {
    html! { input type="hidden" name="csrf" value=(chrome.csrf); }
}

/// A page answering `status` with `message` (errors, refusals).
pub fn problem_page(chrome: &Chrome, status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (title) }
        p class="message error" role="alert" { (message) }
        p { a href="/" { "Back to the shop" } }
    };
    (status, html_page(layout(chrome, title, body))).into_response()
}

/// Markup as an HTML response.
pub fn html_page(markup: Markup) -> Response {
    ([(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

/// `$1,234.56` for USD; other currencies as `1,234.56 EUR`. From minor units, never floats.
pub fn money(money: &Money) -> String {
    let negative = money.amount < 0;
    let amount = money.amount.unsigned_abs();
    let (major, minor) = (amount / 100, amount % 100);
    let digits = major.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if negative { "-" } else { "" };
    match money.currency.as_str() {
        "USD" => format!("{sign}${grouped}.{minor:02}"),
        code => format!("{sign}{grouped}.{minor:02} {code}"),
    }
}

/// A message at the top of a form (an API error without field details).
pub fn form_message(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p class="message error" role="alert" { (message) }
        }
    }
}

/// A labelled input with the API's message for it, tied by `aria-describedby`.
pub fn field(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
    required: bool,
) -> Markup {
    let id = format!("f-{name}");
    let error_id = format!("{id}-error");
    html! {
        div class="field" {
            label for=(id) { (label) @if !required { " (optional)" } }
            input id=(id) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())]
                autocomplete=(autocomplete(name));
            @if let Some(error) = error {
                p class="field-error" id=(error_id) { (error) }
            }
        }
    }
}

fn autocomplete(name: &str) -> &'static str {
    match name {
        "name" => "name",
        "email" => "email",
        "password" => "current-password",
        "line1" => "address-line1",
        "line2" => "address-line2",
        "city" => "address-level2",
        "state" => "address-level1",
        "postal_code" => "postal-code",
        "country" => "country",
        _ => "off",
    }
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).map(|s| s[2..].to_owned()).unwrap_or_default()
}

/// The widths the products service keeps a copy of every image at (`?width=`).
const IMAGE_WIDTHS: [u32; 3] = [160, 320, 640];

/// `srcset` of an image the shop serves (`/api/v1/images/…`): its copies 160, 320 and 640
/// pixels wide, so a phone downloads a small one; none for an image from elsewhere.
pub fn srcset(url: &str) -> Option<String> {
    url.starts_with("/api/v1/images/")
        .then(|| IMAGE_WIDTHS.iter().map(|w| format!("{url}?width={w} {w}w")).collect::<Vec<_>>().join(", "))
}

/// A product's image (with its `srcset`; the product page's is shown larger than a listing's),
/// or a labelled placeholder when it has none.
pub fn product_image(url: Option<&str>, name: &str, class: &str) -> Markup {
    let sizes = if class == "product-image" {
        "(max-width: 700px) 100vw, 480px"
    } else {
        "(max-width: 600px) 50vw, 220px"
    };
    html! {
        @match url {
            Some(url) => img class=(class) src=(url) srcset=[srcset(url)] sizes=(sizes) alt=(name) loading="lazy";
            None => div class={ (class) " placeholder" } role="img" aria-label=(format!("No picture of {name}")) {
                span aria-hidden="true" { (name.chars().next().unwrap_or('?')) }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_from_minor_units() {
        assert_eq!(money(&Money::new(123_456, "USD")), "$1,234.56");
        assert_eq!(money(&Money::new(5, "USD")), "$0.05");
        assert_eq!(money(&Money::new(100_000_000, "EUR")), "1,000,000.00 EUR");
        assert_eq!(money(&Money::new(-250, "USD")), "-$2.50");
    }

    #[test]
    fn the_shops_images_offer_their_narrower_copies_and_others_none() {
        let set = srcset("/api/v1/images/ab.png").unwrap();
        assert_eq!(
            set,
            "/api/v1/images/ab.png?width=160 160w, /api/v1/images/ab.png?width=320 320w, /api/v1/images/ab.png?width=640 640w"
        );
        assert_eq!(srcset("https://elsewhere.test/a.png"), None);
        let markup = product_image(Some("/api/v1/images/ab.png"), "Kettle", "card-image").into_string();
        assert!(markup.contains("srcset=") && markup.contains("sizes="), "{markup}");
    }

    #[test]
    fn text_is_escaped_in_pages() {
        let chrome = Chrome { shopper: Some("<script>x</script>".into()), csrf: "t".into() };
        let page = layout(&chrome, "T", html! {}).into_string();
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;x"));
    }
}

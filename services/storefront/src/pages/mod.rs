//! Every page and form target, listed in [`router`]; one module per part of the shop, one
//! handler per page.

mod account;
mod catalog;
mod orders;
mod shopping;

use axum::Router;
use axum::extract::Path;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header;

use crate::web::{self, AppState, PageError};

/// The pages, the form targets and the assets, all behind the session middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(catalog::home))
        .route("/c/{category}", get(catalog::category))
        .route("/search", get(catalog::search))
        .route("/p/{id}", get(catalog::product))
        .route("/cart", get(shopping::cart))
        .route("/cart/items", post(shopping::add))
        .route("/cart/items/{id}", post(shopping::change))
        .route("/cart/items/{id}/remove", post(shopping::remove))
        .route("/checkout", get(shopping::checkout).post(shopping::place))
        .route("/checkout/address", post(shopping::add_checkout_address))
        .route("/orders", get(orders::list))
        .route("/orders/{id}", get(orders::detail))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/signup", get(account::signup_form).post(account::signup))
        .route("/signin", get(account::signin_form).post(account::signin))
        .route("/signout", post(account::signout))
        .route("/account", get(account::account))
        .route("/account/addresses", post(account::add_address))
        .route("/account/addresses/{id}/delete", post(account::delete_address))
        .route("/assets/{name}", get(asset))
        // Any other path is a page that does not exist (an HTML 404, not kit's problem+json).
        .route("/{*rest}", get(not_found))
        .layer(middleware::from_fn_with_state(state.clone(), web::sessions))
        .with_state(state)
}

async fn not_found() -> PageError {
    PageError::NotFound
}

/// The one stylesheet and the one script, compiled in: no CDN, nothing fetched at run time.
async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "site.css" => (include_str!("../../assets/site.css"), "text/css; charset=utf-8"),
        "site.js" => (include_str!("../../assets/site.js"), "text/javascript; charset=utf-8"),
        _ => return PageError::NotFound.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[tokio::test]
    async fn assets_are_served_with_their_type_and_unknown_ones_are_not_found() {
        let css = asset(Path("site.css".into())).await;
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let missing = asset(Path("nope.js".into())).await;
        assert!(missing.extensions().get::<PageError>().is_some());
    }
}

//! HTTP surface of the carts service: every route is listed in [`router`]. Handlers extract and
//! parse the request, call one use case of [`crate::app`], map its error to a problem, and
//! build the view.

mod cart;

use kit::http::BearerAuth;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato carts", description = "The signed-in shopper's cart, priced from the catalog on every read, and its checkout."),
    modifiers(&BearerAuth),
    tags((name = "cart"))
)]
struct ApiDoc;

/// Every route of the service, with its OpenAPI document.
pub(crate) fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cart::get_cart, cart::delete_cart))
        .routes(routes!(cart::put_item, cart::delete_item))
        .routes(routes!(cart::checkout))
        .with_state(state)
        .split_for_parts();
    AddressRules.modify(&mut openapi);
    (router, openapi)
}

/// What `kit::address` requires of an inline shipping address, written into the schema of the
/// contract's `AddressBody` (the same rules orders documents, since orders applies them).
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

//! HTTP surface of the products service: one module per resource; handlers extract, parse
//! input into domain types, call one use case, map its error and build the view. Every route
//! is listed in [`router`].

mod categories;
mod images;
mod lookup;
mod products;
mod reservations;
mod views;

use kit::ApiError;
use kit::http::BearerAuth;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::store::StoreError;

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato products", description = "Catalog, categories, search, images, stock and reservations."),
    components(schemas(kit::error::ProblemBody, products::AttributeValue)),
    modifiers(&BearerAuth),
    tags((name = "products"), (name = "categories"), (name = "images"), (name = "admin"))
)]
struct ApiDoc;

/// Every route of the service, with its public OpenAPI document. The `/internal/` routes
/// (lookup and reservations, called by orders) are served but left out of the document: the
/// gateway never routes them.
pub(crate) fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let currency = state.currency.clone();
    let (internal, _internal_doc) = OpenApiRouter::new()
        .routes(routes!(lookup::lookup))
        .routes(routes!(reservations::reserve))
        .routes(routes!(reservations::get_reservation))
        .routes(routes!(reservations::release))
        .with_state(state.clone())
        .split_for_parts();
    let (public, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(products::list_products, products::create_product))
        .routes(routes!(products::low_stock))
        .routes(routes!(products::product_by_sku))
        .routes(routes!(products::get_product, products::update_product, products::delete_product))
        .routes(routes!(categories::list_categories))
        .merge(images::routes())
        .with_state(state)
        .split_for_parts();
    products::document_currency(&mut openapi, &currency);
    (public.merge(internal), openapi)
}

/// A duplicate SKU is the client's 409; the database failing is 503 when it is unreachable,
/// 500 otherwise, as kit maps it.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DuplicateSku(sku) => {
                ApiError::conflict(format!("a product with SKU {sku} already exists"))
            }
            StoreError::Db(db) => db.into(),
        }
    }
}

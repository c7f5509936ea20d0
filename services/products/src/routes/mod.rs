//! HTTP surface of the products service: one module per resource; handlers extract, call the
//! store, and map errors. Every route is listed in [`router`].

mod categories;
mod images;
mod internal;
mod products;

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use kit::auth::TokenVerifier;
use kit::http::BearerAuth;
use kit::money::Money;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::Product;
use crate::images::ImageStore;
use crate::store::{CatalogSearch, CatalogStore, ReservationLedger};

/// What every handler of the products service shares.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn CatalogStore>,
    pub search: Arc<dyn CatalogSearch>,
    pub ledger: Arc<dyn ReservationLedger>,
    pub images: ImageStore,
    pub verifier: Arc<TokenVerifier>,
    pub currency: Arc<str>,
    /// URL path images are served under.
    pub image_path: Arc<str>,
    /// Bounds image decoding in flight: each decode may hold a few hundred MiB of pixels.
    pub image_work: Arc<tokio::sync::Semaphore>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mercato products", description = "Catalog, categories, search, images, stock and reservations."),
    modifiers(&BearerAuth),
    tags((name = "products"), (name = "categories"), (name = "images"), (name = "admin"))
)]
struct ApiDoc;

/// Every route of the service, with its public OpenAPI document. The `/internal/` routes
/// (lookup and reservations, called by orders) are served but left out of the document: the
/// gateway never routes them.
pub fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (internal, _internal_doc) = OpenApiRouter::new()
        .routes(routes!(internal::lookup))
        .routes(routes!(internal::reserve))
        .routes(routes!(internal::get_reservation))
        .routes(routes!(internal::release))
        .with_state(state.clone())
        .split_for_parts();
    let (public, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(products::list_products, products::create_product))
        .routes(routes!(products::low_stock))
        .routes(routes!(products::product_by_sku))
        .routes(routes!(products::get_product, products::update_product, products::delete_product))
        .routes(routes!(categories::list_categories))
        .merge(images::routes())
        .with_state(state)
        .split_for_parts();
    (public.merge(internal), openapi)
}

/// A product as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub short_description: String,
    pub description: String,
    /// Category slug.
    pub category: String,
    pub brand: Option<String>,
    pub price: Money,
    pub stock: i64,
    pub rating: f64,
    pub weight_grams: Option<i64>,
    /// Image URLs, in upload order.
    pub images: Vec<String>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductView {
    pub fn new(product: Product, image_path: &str) -> Self {
        Self {
            id: product.id,
            sku: product.sku.to_string(),
            name: product.name,
            short_description: product.short_description,
            description: product.description,
            category: product.category,
            brand: product.brand,
            price: product.price,
            stock: product.stock,
            rating: product.rating,
            weight_grams: product.weight_grams,
            images: product.images.into_iter().map(|key| image_url(image_path, key)).collect(),
            attributes: product.attributes,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// Stored keys become URLs under `image_path`; imported catalogs may carry absolute URLs.
fn image_url(image_path: &str, key: String) -> String {
    if key.starts_with("https://") || key.starts_with("http://") {
        key
    } else {
        format!("{image_path}/{key}")
    }
}

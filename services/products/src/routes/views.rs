//! The JSON answers of the public API, built from domain types.

use chrono::{DateTime, Utc};
use kit::money::Money;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{CategoryCount, Product};

/// A product as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProductView {
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
    /// The view of `product`, its images served under `image_path`.
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
pub(crate) fn image_url(image_path: &str, key: String) -> String {
    if key.starts_with("https://") || key.starts_with("http://") {
        key
    } else {
        format!("{image_path}/{key}")
    }
}

/// A category with live products.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CategoryView {
    slug: String,
    name: String,
    product_count: u64,
}

impl From<CategoryCount> for CategoryView {
    fn from(c: CategoryCount) -> Self {
        Self { slug: c.slug, name: c.name, product_count: c.product_count }
    }
}

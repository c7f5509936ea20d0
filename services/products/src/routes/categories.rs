//! Categories and how many live products each holds.

use axum::extract::State;
use kit::ApiResult;
use serde::Serialize;

use super::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryView {
    slug: String,
    name: String,
    product_count: u64,
}

/// Every category with live products, by name.
#[utoipa::path(get, path = "/api/v1/categories", tag = "categories",
    responses((status = 200, body = Vec<CategoryView>)))]
pub async fn list_categories(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<CategoryView>>> {
    let categories = state.search.categories().await?;
    Ok(axum::Json(
        categories
            .into_iter()
            .map(|c| CategoryView { slug: c.slug, name: c.name, product_count: c.product_count })
            .collect(),
    ))
}

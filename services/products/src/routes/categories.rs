//! Categories and how many live products each holds.

use axum::extract::State;
use kit::ApiResult;

use super::views::CategoryView;
use crate::state::AppState;

/// Every category with live products, by name.
#[utoipa::path(get, path = "/api/v1/categories", tag = "categories",
    responses((status = 200, body = Vec<CategoryView>)))]
pub(crate) async fn list_categories(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<Vec<CategoryView>>> {
    let categories = state.catalog.categories().await?;
    Ok(axum::Json(categories.into_iter().map(CategoryView::from).collect()))
}

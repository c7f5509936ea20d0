//! For other mercato services only (service token; never routed by the gateway): products by
//! id, to price an order or show a cart.

use axum::extract::State;
use contracts::products::{LookupRequest, LookupResponse, MAX_LOOKUP_IDS, ProductInfo};
use kit::auth::ServiceCaller;
use kit::extract::Json;
use kit::{ApiError, ApiResult};

use super::views::image_url;
use crate::state::AppState;

/// Prices, names, SKUs and first images of products, deleted ones flagged.
#[utoipa::path(post, path = "/internal/v1/products/lookup", tag = "internal", security(("bearer" = [])),
    request_body = LookupRequest, responses((status = 200, body = LookupResponse)))]
pub(crate) async fn lookup(
    State(state): State<AppState>,
    _caller: ServiceCaller,
    Json(body): Json<LookupRequest>,
) -> ApiResult<axum::Json<LookupResponse>> {
    if body.ids.is_empty() || body.ids.len() > MAX_LOOKUP_IDS {
        return Err(ApiError::invalid_field("ids", format!("must hold 1 to {MAX_LOOKUP_IDS} ids")));
    }
    let lookup = state.catalog.lookup(&body.ids).await?;
    let items = lookup
        .found
        .into_iter()
        .map(|f| ProductInfo {
            id: f.id,
            sku: f.sku,
            name: f.name,
            price: f.price,
            deleted: f.deleted,
            image: f.image.map(|key| image_url(&state.image_path, key)),
        })
        .collect();
    Ok(axum::Json(LookupResponse { items, missing: lookup.missing }))
}

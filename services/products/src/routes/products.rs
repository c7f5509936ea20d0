//! The catalog: list, search and filter (offset pages or keyset cursors), read one, and the
//! admin's create, change, delete and low-stock report.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kit::auth::AdminUser;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path, Query};
use kit::money::Money;
use kit::pagination::{CursorPage, Page, PageRequest, decode_cursor, encode_cursor};
use kit::{ApiError, ApiResult};
use serde::Deserialize;
use serde::de::IgnoredAny;
use uuid::Uuid;

use super::views::ProductView;
use crate::app::catalog::CatalogError;
use crate::domain::listing::{CursorKey, ListParams};
use crate::domain::product::{MAX_STOCK, PatchFields, ProductFields};
use crate::domain::{ListQuery, NewProduct, Paging, ProductPatch, Sku};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilters {
    /// Full-text search: words, "phrases", -excluded, `or`; the last word matches as a prefix.
    q: Option<String>,
    /// Category slug.
    category: Option<String>,
    brand: Option<String>,
    /// Minor units (cents), inclusive.
    min_price: Option<String>,
    max_price: Option<String>,
    /// `true`: only in stock; `false`: only sold out.
    in_stock: Option<String>,
    /// relevance (default with `q`), newest (default), price_asc, price_desc, rating, name.
    sort: Option<String>,
    /// Keyset paging: empty to start, then the previous answer's `next_cursor`.
    cursor: Option<String>,
    /// 1-based page number (offset pages).
    #[param(value_type = Option<u64>, nullable = false, minimum = 1)]
    #[allow(dead_code)] // `PageRequest` reads it; declared here for the document
    page: Option<IgnoredAny>,
    /// Page size.
    #[param(value_type = Option<u64>, nullable = false, minimum = 1, maximum = 100)]
    #[allow(dead_code)] // `PageRequest` reads it; declared here for the document
    limit: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProductRequest {
    name: String,
    description: String,
    short_description: Option<String>,
    price: Money,
    /// Category name or slug; created if new.
    category: String,
    brand: Option<String>,
    /// Generated when absent.
    sku: Option<String>,
    stock: Option<i64>,
    weight_grams: Option<i64>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateProductRequest {
    name: Option<String>,
    description: Option<String>,
    short_description: Option<String>,
    price: Option<Money>,
    category: Option<String>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>)]
    brand: Option<Option<String>>,
    sku: Option<String>,
    stock: Option<i64>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<i64>)]
    weight_grams: Option<Option<i64>>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LowStockParams {
    /// Products with stock at or below this (default 10).
    threshold: Option<i64>,
    /// 1-based page number.
    #[param(value_type = Option<u64>, nullable = false, minimum = 1)]
    #[allow(dead_code)] // `PageRequest` reads it; declared here for the document
    page: Option<IgnoredAny>,
    /// Page size.
    #[param(value_type = Option<u64>, nullable = false, minimum = 1, maximum = 100)]
    #[allow(dead_code)] // `PageRequest` reads it; declared here for the document
    limit: Option<IgnoredAny>,
}

const NOT_FOUND: &str = "no such product";

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::NotFound => ApiError::not_found(NOT_FOUND),
            CatalogError::DuplicateSku(sku) => {
                ApiError::conflict(format!("a product with SKU {sku} already exists"))
            }
            CatalogError::NothingToChange => {
                ApiError::bad_request("the body changes nothing; send at least one field")
            }
            CatalogError::CursorOfAnotherSort => {
                ApiError::invalid_field("cursor", "belongs to another sort order; start again with cursor=")
            }
            CatalogError::Store(store) => store.into(),
        }
    }
}

/// Live products: searched, filtered and sorted; offset pages, or keyset pages with `cursor`.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListFilters),
    responses((status = 200, description = "`{items, page, limit, total, total_pages}`, or `{items, next_cursor}` with `cursor`", body = Page<ProductView>),
        (status = 400, description = "invalid filter, page or cursor", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn list_products(
    State(state): State<AppState>,
    page: PageRequest,
    Query(filters): Query<ListFilters>,
) -> ApiResult<Response> {
    let query = ListQuery::parse(ListParams {
        q: filters.q,
        category: filters.category,
        brand: filters.brand,
        min_price: filters.min_price,
        max_price: filters.max_price,
        in_stock: filters.in_stock,
        sort: filters.sort,
    })?;
    let path = &state.image_path;
    match filters.cursor {
        Some(cursor) => {
            let after = match cursor.trim() {
                "" => None,
                text => {
                    let key = decode_cursor::<CursorKey>(text)?;
                    key.check().map_err(|e| ApiError::invalid_field("cursor", e))?;
                    Some(key)
                }
            };
            let listing = state.catalog.list(&query, Paging::Cursor { after, limit: page.limit() }).await?;
            let body = CursorPage {
                items: listing.items.into_iter().map(|p| ProductView::new(p, path)).collect(),
                next_cursor: listing.next.as_ref().map(encode_cursor),
            };
            Ok(axum::Json(body).into_response())
        }
        None => {
            let paging = Paging::Offset { offset: page.offset(), limit: page.limit() };
            let listing = state.catalog.list(&query, paging).await?;
            let items = listing.items.into_iter().map(|p| ProductView::new(p, path)).collect();
            Ok(axum::Json(Page::new(items, page, listing.total.unwrap_or(0))).into_response())
        }
    }
}

/// One live product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", params(("id" = Uuid, Path)),
    responses((status = 200, body = ProductView),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or deleted", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<ProductView>> {
    let product = state.catalog.product(id).await?;
    Ok(axum::Json(ProductView::new(product, &state.image_path)))
}

/// One live product by SKU (case-insensitive).
#[utoipa::path(get, path = "/api/v1/products/sku/{sku}", tag = "products", params(("sku" = String, Path)),
    responses((status = 200, body = ProductView),
        (status = 404, description = "absent or deleted", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn product_by_sku(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> ApiResult<axum::Json<ProductView>> {
    // No product has a SKU that is not one.
    let sku = Sku::parse(&sku).map_err(|_| ApiError::not_found(NOT_FOUND))?;
    let product = state.catalog.product_by_sku(&sku).await?;
    Ok(axum::Json(ProductView::new(product, &state.image_path)))
}

/// Creates a product; its SKU is generated when absent.
#[utoipa::path(post, path = "/api/v1/products", tag = "admin", security(("bearer" = [])), request_body = CreateProductRequest,
    responses((status = 201, body = ProductView),
        (status = 400, description = "malformed body or invalid fields", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "duplicate SKU", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn create_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<CreateProductRequest>,
) -> ApiResult<Response> {
    let fields = ProductFields {
        sku: body.sku,
        name: body.name,
        short_description: body.short_description,
        description: body.description,
        category: body.category,
        brand: body.brand,
        price: Some(body.price),
        stock: body.stock,
        rating: None,
        weight_grams: body.weight_grams,
        attributes: body.attributes,
        images: Vec::new(),
    };
    let new = NewProduct::parse(fields, &state.currency)?;
    let product = state.catalog.create(new).await?;
    tracing::info!(admin_id = %admin.id, product_id = %product.id, sku = %product.sku, "product created");
    let location = format!("/api/v1/products/{}", product.id);
    let view = ProductView::new(product, &state.image_path);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(view)).into_response())
}

/// Changes any of a product's fields.
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = UpdateProductRequest,
    responses((status = 200, body = ProductView),
        (status = 400, description = "malformed body, invalid fields, a body that changes nothing, or the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or deleted", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 409, description = "duplicate SKU", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn update_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateProductRequest>,
) -> ApiResult<axum::Json<ProductView>> {
    let patch = ProductPatch::parse(
        PatchFields {
            sku: body.sku,
            name: body.name,
            short_description: body.short_description,
            description: body.description,
            category: body.category,
            brand: body.brand,
            price: body.price,
            stock: body.stock,
            weight_grams: body.weight_grams,
            attributes: body.attributes,
        },
        &state.currency,
    )?;
    let product = state.catalog.change(id, patch).await?;
    tracing::info!(admin_id = %admin.id, product_id = %id, "product changed");
    Ok(axum::Json(ProductView::new(product, &state.image_path)))
}

/// Soft-deletes a product: it leaves lists and answers 404, but orders keep its history.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "absent or already deleted", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn delete_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.catalog.delete(id).await?;
    tracing::info!(admin_id = %admin.id, product_id = %id, "product deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Products running low, lowest stock first.
#[utoipa::path(get, path = "/api/v1/products/low-stock", tag = "admin", security(("bearer" = [])),
    params(LowStockParams),
    responses((status = 200, body = Page<ProductView>),
        (status = 400, description = "invalid threshold or page", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn low_stock(
    State(state): State<AppState>,
    _admin: AdminUser,
    page: PageRequest,
    Query(params): Query<LowStockParams>,
) -> ApiResult<axum::Json<Page<ProductView>>> {
    let threshold = params.threshold.unwrap_or(10);
    if !(0..=MAX_STOCK).contains(&threshold) {
        return Err(ApiError::invalid_field("threshold", format!("must be between 0 and {MAX_STOCK}")));
    }
    let (items, total) = state.catalog.low_stock(threshold, page.offset(), page.limit()).await?;
    let items = items.into_iter().map(|p| ProductView::new(p, &state.image_path)).collect();
    Ok(axum::Json(Page::new(items, page, total)))
}

//! The catalog: list, search and filter (offset pages or keyset cursors), read one, and the
//! admin's create, change, delete and low-stock report.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kit::auth::AdminUser;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path, Query};
use kit::money::Money;
use kit::pagination::{CursorPage, Page, PageParams, PageRequest, decode_cursor, encode_cursor};
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Object, OpenApi, Ref, RefOr, Schema};
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
    /// At most 1000 characters; anything but letters and digits only separates words.
    #[param(nullable = false, max_length = 1000)]
    q: Option<String>,
    /// Category name or slug.
    #[param(nullable = false, max_length = 200, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    category: Option<String>,
    #[param(nullable = false, max_length = 100, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    brand: Option<String>,
    /// Minor units (cents), inclusive.
    #[param(value_type = Option<i64>, nullable = false, minimum = 0, maximum = 1_000_000_000_000_i64)]
    min_price: Option<String>,
    /// Minor units (cents), inclusive; below `min_price`, nothing matches.
    #[param(value_type = Option<i64>, nullable = false, minimum = 0, maximum = 1_000_000_000_000_i64)]
    max_price: Option<String>,
    /// `true` (or `1`): only in stock; `false` (or `0`): only sold out.
    #[param(schema_with = in_stock_schema)]
    in_stock: Option<String>,
    /// relevance (default with `q`), newest (default), price_asc, price_desc, rating, name.
    #[param(schema_with = sort_schema)]
    sort: Option<String>,
    /// Keyset paging: empty to start, then the previous answer's `next_cursor`; the answer is
    /// then `{items, next_cursor}`.
    #[param(nullable = false, max_length = 1024)]
    cursor: Option<String>,
}

/// `in_stock`: the four spellings the list accepts.
fn in_stock_schema() -> Object {
    string_enum(&["true", "false", "1", "0"])
}

/// `sort`: the orders a list can be in.
fn sort_schema() -> Object {
    string_enum(&["relevance", "newest", "price_asc", "price_desc", "rating", "name"])
}

/// `attributes`: a JSON object (or `null`, for none) of at most 50 keys of 1 to 64 characters,
/// its values any JSON without NUL (PostgreSQL stores no NUL in text or JSON).
fn attributes_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(50))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(NO_NUL)),
        ))
        .additional_properties(Some(Ref::from_schema_name("AttributeValue")))
        .description(Some("At most 50 keys of 1 to 64 characters, at most 16 KiB as JSON, no NUL anywhere."))
        .build()
}

/// Any JSON text without a NUL character.
const NO_NUL: &str = "^[^\\x00]*$";

/// An attribute's value: any JSON, with no NUL in any string or key, however deep.
pub(crate) struct AttributeValue;

impl utoipa::PartialSchema for AttributeValue {
    fn schema() -> RefOr<Schema> {
        let itself = || Ref::from_schema_name("AttributeValue");
        let text = || ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL));
        let any = AnyOfBuilder::new()
            .item(text())
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ArrayBuilder::new().items(itself()))
            .item(ObjectBuilder::new().property_names(Some(text())).additional_properties(Some(itself())))
            .build();
        RefOr::T(Schema::AnyOf(any))
    }
}

impl utoipa::ToSchema for AttributeValue {}

fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).build()
}

/// A whole number in a body, as JSON Schema's `integer` reads it: `2` and `2.0` alike.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub(crate) struct WholeNumber(#[serde(deserialize_with = "kit::extract::whole_number")] i64);

/// A price as the admin sends it. Its currency must be the shop's (the document names it).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceInput {
    /// Minor units (cents for USD).
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000_000_i64)]
    amount: WholeNumber,
    /// The shop's ISO 4217 code.
    currency: String,
}

impl From<PriceInput> for Money {
    fn from(price: PriceInput) -> Self {
        Money::new(price.amount.0, &price.currency)
    }
}

/// Sets the one currency `PriceInput` accepts in the document: it is the shop's setting.
pub(crate) fn document_currency(openapi: &mut OpenApi, currency: &str) {
    let price = openapi.components.as_mut().and_then(|c| c.schemas.get_mut("PriceInput"));
    if let Some(RefOr::T(Schema::Object(price))) = price
        && let Some(RefOr::T(Schema::Object(code))) = price.properties.get_mut("currency")
    {
        code.enum_values = Some(vec![currency.into()]);
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProductRequest {
    /// 1 to 200 characters, not blank; no control characters but tab and newline.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// 1 to 20,000 characters, not blank; no control characters but tab and newline.
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
    description: String,
    /// At most 300 characters; absent or blank: the description's first sentence.
    #[schema(nullable, max_length = 300, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    short_description: Option<String>,
    price: PriceInput,
    /// Category name or slug (created if new): at most 64 characters, with a letter or digit
    /// of A–Z, 0–9, and no control characters.
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[A-Za-z0-9][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    category: String,
    /// At most 100 characters; blank means none.
    #[schema(nullable, max_length = 100, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    brand: Option<String>,
    /// 3 to 64 of A–Z, 0–9, `-`, `_`, `.` (stored uppercase); generated when absent.
    #[schema(nullable, pattern = "^\\s*[A-Za-z0-9._-]{3,64}\\s*$")]
    sku: Option<String>,
    /// Units in stock (0 when absent).
    #[schema(value_type = Option<i64>, nullable, minimum = 0, maximum = 1_000_000)]
    stock: Option<WholeNumber>,
    #[schema(value_type = Option<i64>, nullable, minimum = 0, maximum = 1_000_000)]
    weight_grams: Option<WholeNumber>,
    /// At most 50 keys of 1 to 64 characters, at most 16 KiB as JSON, no NUL anywhere.
    #[schema(schema_with = attributes_schema)]
    attributes: Option<serde_json::Value>,
}

/// Any of a product's fields; a field left out, or `null`, is kept, except that `null` clears
/// `brand` and `weight_grams`. At least one field must be named.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(crate) struct UpdateProductRequest {
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(
        value_type = Option<String>,
        nullable,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(
        value_type = Option<String>,
        nullable,
        min_length = 1,
        max_length = 20000,
        pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 300, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    short_description: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<PriceInput>, nullable)]
    price: Option<Option<PriceInput>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(
        value_type = Option<String>,
        nullable,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[A-Za-z0-9][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    category: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 100, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    brand: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, pattern = "^\\s*[A-Za-z0-9._-]{3,64}\\s*$")]
    sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 0, maximum = 1_000_000)]
    stock: Option<Option<WholeNumber>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<i64>, nullable, minimum = 0, maximum = 1_000_000)]
    weight_grams: Option<Option<WholeNumber>>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(schema_with = attributes_schema)]
    attributes: Option<Option<serde_json::Value>>,
}

impl UpdateProductRequest {
    /// Whether the body named any field at all (`null` names one).
    fn names_a_field(&self) -> bool {
        self.name.is_some()
            || self.description.is_some()
            || self.short_description.is_some()
            || self.price.is_some()
            || self.category.is_some()
            || self.brand.is_some()
            || self.sku.is_some()
            || self.stock.is_some()
            || self.weight_grams.is_some()
            || self.attributes.is_some()
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LowStockParams {
    /// Products with stock at or below this (default 10).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    threshold: Option<i64>,
}

/// A product list: an offset page, or with `cursor` a keyset page.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum ProductList {
    Page(Page<ProductView>),
    Cursor(CursorPage<ProductView>),
}

const NOT_FOUND: &str = "no such product";

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::NotFound => ApiError::not_found(NOT_FOUND),
            CatalogError::DuplicateSku(sku) => {
                ApiError::conflict(format!("a product with SKU {sku} already exists"))
            }
            CatalogError::CursorOfAnotherSort => {
                ApiError::invalid_field("cursor", "belongs to another sort order; start again with cursor=")
            }
            CatalogError::Store(store) => store.into(),
        }
    }
}

/// Live products: searched, filtered and sorted; offset pages, or keyset pages with `cursor`.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListFilters, PageParams),
    responses((status = 200, description = "an offset page, or `{items, next_cursor}` with `cursor`", body = ProductList),
        (status = 400, description = "invalid filter, page or cursor", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn list_products(
    State(state): State<AppState>,
    page: PageRequest,
    Query(filters): Query<ListFilters>,
) -> ApiResult<axum::Json<ProductList>> {
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
            Ok(axum::Json(ProductList::Cursor(body)))
        }
        None => {
            let paging = Paging::Offset { offset: page.offset(), limit: page.limit() };
            let listing = state.catalog.list(&query, paging).await?;
            let items = listing.items.into_iter().map(|p| ProductView::new(p, path)).collect();
            Ok(axum::Json(ProductList::Page(Page::new(items, page, listing.total.unwrap_or(0)))))
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
        price: Some(body.price.into()),
        stock: body.stock.map(|s| s.0),
        rating: None,
        weight_grams: body.weight_grams.map(|w| w.0),
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
        (status = 400, description = "malformed body, invalid fields, a body naming no field, or the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
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
    if !body.names_a_field() {
        return Err(ApiError::bad_request("the body changes nothing; send at least one field"));
    }
    let patch = ProductPatch::parse(
        PatchFields {
            sku: body.sku.flatten(),
            name: body.name.flatten(),
            short_description: body.short_description.flatten(),
            description: body.description.flatten(),
            category: body.category.flatten(),
            brand: body.brand,
            price: body.price.flatten().map(Money::from),
            stock: body.stock.flatten().map(|s| s.0),
            weight_grams: body.weight_grams.map(|w| w.map(|w| w.0)),
            attributes: body.attributes.flatten(),
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
    params(LowStockParams, PageParams),
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

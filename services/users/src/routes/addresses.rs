//! The signed-in user's addresses. Another user's address answers 404, never 403, so ids
//! reveal nothing.

use axum::extract::State;
use axum::http::StatusCode;
use contracts::users::CreateAddressRequest;
use kit::address::country_code_schema;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Json, Path};
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;
use uuid::Uuid;

use super::caller::LiveUser;
use super::views::{AddressView, address_view};
use crate::app::addresses::AddressError;
use crate::domain::address::{PostalAddress, changed_optional_line, required_line};
use crate::domain::{AddressChanges, CountryCode, NewAddress};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateAddressRequest {
    /// `null` keeps it.
    #[serde(default)]
    #[schema(
        nullable,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    line1: Option<String>,
    /// `null` or blank clears it.
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    line2: Option<Option<String>>,
    /// `null` keeps it.
    #[serde(default)]
    #[schema(
        nullable,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    city: Option<String>,
    /// `null` or blank clears it.
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    state: Option<Option<String>>,
    /// `null` keeps it.
    #[serde(default)]
    #[schema(
        nullable,
        min_length = 1,
        max_length = 20,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2; `null` keeps it.
    #[serde(default)]
    #[schema(schema_with = changed_country_code_schema)]
    country: Option<String>,
    /// Only `true` does anything: this becomes the default address.
    #[serde(default)]
    is_default: Option<bool>,
}

/// What `kit::address` requires of an address, written into the schema of the contract's
/// `CreateAddressRequest` (the `contracts` crate carries the shape; the rules are enforced here).
pub(crate) struct AddressRules;

impl utoipa::Modify for AddressRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let schema = openapi.components.as_mut().and_then(|c| c.schemas.get_mut("CreateAddressRequest"));
        if let Some(RefOr::T(Schema::Object(object))) = schema {
            kit::address::document_address_rules(object);
        }
    }
}

/// A country code, or `null` to keep the one the address has.
fn changed_country_code_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = country_code_schema();
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema.enum_values.get_or_insert_with(Vec::new).push(serde_json::Value::Null);
    schema
}

/// The caller's addresses, default first.
#[utoipa::path(get, path = "/api/v1/users/me/addresses", tag = "addresses", security(("bearer" = [])),
    responses((status = 200, body = Vec<AddressView>),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn list_addresses(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
) -> ApiResult<axum::Json<Vec<AddressView>>> {
    let addresses = state.addresses.list(user.id).await?;
    Ok(axum::Json(addresses.into_iter().map(address_view).collect()))
}

/// Adds an address; the first one becomes the default.
#[utoipa::path(post, path = "/api/v1/users/me/addresses", tag = "addresses", security(("bearer" = [])),
    request_body = CreateAddressRequest,
    responses((status = 201, body = AddressView),
        (status = 400, description = "malformed body or invalid fields", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn create_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Json(body): Json<CreateAddressRequest>,
) -> ApiResult<(StatusCode, axum::Json<AddressView>)> {
    let (body, is_default) = body.into_parts();
    let address = NewAddress { address: PostalAddress::parse_body(&body)?, is_default };
    let created = state.addresses.add(user.id, address).await?;
    Ok((StatusCode::CREATED, axum::Json(address_view(created))))
}

/// One of the caller's addresses (other services read shipping addresses through this, on the
/// caller's behalf).
#[utoipa::path(get, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AddressView),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "not yours or absent", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn get_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<AddressView>> {
    let address = state.addresses.get(user.id, id).await?;
    Ok(axum::Json(address_view(address)))
}

/// Changes an address.
#[utoipa::path(patch, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateAddressRequest,
    responses((status = 200, body = AddressView),
        (status = 400, description = "malformed body, invalid fields, or the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "not yours or absent", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "body too large", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not JSON", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn update_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateAddressRequest>,
) -> ApiResult<axum::Json<AddressView>> {
    let mut errors = FieldErrors::default();
    let line1 = errors.take("line1", body.line1.as_deref().map(|v| required_line(v, 200)).transpose());
    let line2 = errors.take("line2", changed_optional_line(body.line2.as_ref().map(Option::as_deref), 200));
    let city = errors.take("city", body.city.as_deref().map(|v| required_line(v, 100)).transpose());
    let region = errors.take("state", changed_optional_line(body.state.as_ref().map(Option::as_deref), 100));
    let postal_code =
        errors.take("postal_code", body.postal_code.as_deref().map(|v| required_line(v, 20)).transpose());
    let country = errors.take("country", body.country.as_deref().map(CountryCode::parse).transpose());
    let changes = errors.finish(|| {
        Some(AddressChanges {
            line1: line1?,
            line2: line2?,
            city: city?,
            state: region?,
            postal_code: postal_code?,
            country: country?,
            is_default: body.is_default,
        })
    })?;
    let updated = state.addresses.change(user.id, id, changes).await?;
    Ok(axum::Json(address_view(updated)))
}

/// Removes an address; if it was the default, the oldest remaining one becomes the default.
#[utoipa::path(delete, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in, or the account is gone", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "a service token, not a person's", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "not yours or absent", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn delete_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.addresses.remove(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<AddressError> for ApiError {
    fn from(err: AddressError) -> Self {
        match err {
            AddressError::NotFound => ApiError::not_found(err.to_string()),
            AddressError::Store(store) => store.into(),
        }
    }
}

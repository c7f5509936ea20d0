//! The signed-in user's addresses. Another user's address answers 404, never 403, so ids
//! reveal nothing.

use axum::extract::State;
use axum::http::StatusCode;
use contracts::users::CreateAddressRequest;
use kit::extract::{Json, Path};
use kit::{ApiError, ApiResult, FieldErrors};
use serde::Deserialize;
use uuid::Uuid;

use super::{AddressView, AppState, LiveUser};
use crate::domain::address::{PostalAddress, optional_line, required_line};
use crate::domain::{CountryCode, NewAddress};
use crate::store::AddressPatch;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAddressRequest {
    line1: Option<String>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>)]
    line2: Option<Option<String>>,
    city: Option<String>,
    #[serde(default, deserialize_with = "kit::extract::nullable")]
    #[schema(value_type = Option<String>)]
    state: Option<Option<String>>,
    postal_code: Option<String>,
    country: Option<String>,
    /// Only `true` is meaningful: make this the default address.
    is_default: Option<bool>,
}

const NOT_FOUND: &str = "no such address among yours";

/// The caller's addresses, default first.
#[utoipa::path(get, path = "/api/v1/users/me/addresses", tag = "addresses", security(("bearer" = [])),
    responses((status = 200, body = Vec<AddressView>)))]
pub async fn list_addresses(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
) -> ApiResult<axum::Json<Vec<AddressView>>> {
    let addresses = state.store.addresses(user.id).await?;
    Ok(axum::Json(addresses.into_iter().map(AddressView::from).collect()))
}

/// Adds an address; the first one becomes the default.
#[utoipa::path(post, path = "/api/v1/users/me/addresses", tag = "addresses", security(("bearer" = [])),
    request_body = CreateAddressRequest, responses((status = 201, body = AddressView), (status = 400, description = "invalid field")))]
pub async fn create_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Json(body): Json<CreateAddressRequest>,
) -> ApiResult<(StatusCode, axum::Json<AddressView>)> {
    let (body, is_default) = body.into_parts();
    let address = NewAddress { address: PostalAddress::parse_body(&body)?, is_default };
    let created = state.store.create_address(user.id, address).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// One of the caller's addresses (other services read shipping addresses through this, on the
/// caller's behalf).
#[utoipa::path(get, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = AddressView), (status = 404, description = "not yours or absent")))]
pub async fn get_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<AddressView>> {
    let address = state.store.address(user.id, id).await?.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(axum::Json(address.into()))
}

/// Changes an address.
#[utoipa::path(patch, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateAddressRequest,
    responses((status = 200, body = AddressView), (status = 404, description = "not yours or absent")))]
pub async fn update_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateAddressRequest>,
) -> ApiResult<axum::Json<AddressView>> {
    let mut errors = FieldErrors::default();
    let line1 = errors.take("line1", body.line1.as_deref().map(|v| required_line(v, 200)).transpose());
    let line2 = errors.take("line2", nullable_line(body.line2, 200));
    let city = errors.take("city", body.city.as_deref().map(|v| required_line(v, 100)).transpose());
    let region = errors.take("state", nullable_line(body.state, 100));
    let postal_code =
        errors.take("postal_code", body.postal_code.as_deref().map(|v| required_line(v, 20)).transpose());
    let country = errors.take("country", body.country.as_deref().map(CountryCode::parse).transpose());
    let patch = errors.finish(|| {
        Some(AddressPatch {
            line1: line1?,
            line2: line2?,
            city: city?,
            state: region?,
            postal_code: postal_code?,
            country: country?.map(CountryCode::into_inner),
            is_default: body.is_default,
        })
    })?;
    let updated = state
        .store
        .update_address(user.id, id, patch)
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(axum::Json(updated.into()))
}

/// Removes an address; if it was the default, the oldest remaining one becomes the default.
#[utoipa::path(delete, path = "/api/v1/users/me/addresses/{id}", tag = "addresses", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204, description = "deleted"), (status = 404, description = "not yours or absent")))]
pub async fn delete_address(
    State(state): State<AppState>,
    LiveUser(user): LiveUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if state.store.delete_address(user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(NOT_FOUND))
    }
}

/// An optional line in a PATCH: absent keeps it, `null` or empty clears it.
fn nullable_line(value: Option<Option<String>>, max: usize) -> Result<Option<Option<String>>, String> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(v)) => optional_line(&v, max).map(|v| Some(Some(v).filter(|v| !v.is_empty()))),
    }
}

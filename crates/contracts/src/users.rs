//! What the users service exchanges with the other services: a postal address as clients send
//! it (users' address book, orders' inline shipping address), a saved address as users answers
//! it (orders reads the buyer's on their behalf), and the service-token exchange
//! (`POST /internal/v1/auth/token`) every service uses to call another as itself.
//!
//! Bodies refuse unknown fields (a typo is a 400); answers do not, so users may add a field
//! without breaking a caller. The rules a valid address follows are `kit::address`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A postal address as a client sends it, before it is parsed (an order's `shipping_address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `US`.
    pub country: String,
}

/// `POST /api/v1/users/me/addresses`: an [`AddressBody`] for the address book, and whether it
/// becomes the default. (Its fields are listed again rather than flattened: serde's `flatten`
/// would turn the OpenAPI schema into an `allOf` that refuses `is_default`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAddressRequest {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `US`.
    pub country: String,
    #[serde(default)]
    pub is_default: bool,
}

impl CreateAddressRequest {
    /// The address, and whether it becomes the default.
    pub fn into_parts(self) -> (AddressBody, bool) {
        let Self { line1, line2, city, state, postal_code, country, is_default } = self;
        (AddressBody { line1, line2, city, state, postal_code, country }, is_default)
    }
}

/// A saved address as the users service answers it (`GET /api/v1/users/me/addresses/{id}`, the
/// lists, a user's `addresses`): valid, with the country uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressView {
    pub id: Uuid,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /internal/v1/auth/token`: a configured client's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenRequest {
    pub client_id: String,
    pub client_secret: String,
}

/// A short-lived access token with role `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceTokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl ServiceTokenResponse {
    /// A bearer token that expires in `expires_in` seconds.
    pub fn bearer(access_token: String, expires_in: u64) -> Self {
        Self { access_token, token_type: "Bearer".to_owned(), expires_in }
    }
}

/// Where a replica of another service reads the token revocations it missed
/// (`GET /internal/v1/revocations?since=&after=`): the users service's `user.deleted` and
/// `user.role_changed` events recorded since `since`, oldest first.
pub const REVOCATIONS_PATH: &str = "/internal/v1/revocations";

/// One page of [`REVOCATIONS_PATH`]: the events as they travel, and the `after` of the next
/// page (`None` on the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationEvents {
    /// CloudEvents of type `mercato.user.deleted.v1` and `mercato.user.role_changed.v1`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<crate::events::CloudEvent>,
    pub next_after: Option<i64>,
}

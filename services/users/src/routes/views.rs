//! The JSON answers of the users service, built from the domain's `User` and `Address`.

use chrono::{DateTime, Utc};
use kit::auth::Role;
use serde::Serialize;
use uuid::Uuid;

use crate::app::Profile;

use crate::domain::{Address, User};
/// A saved address as users answers it; the type is the contract orders reads it with.
pub(crate) use contracts::users::AddressView;

/// A user as the API shows it; never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Present on single-user answers; omitted in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressView>>,
}

impl UserView {
    /// The user without addresses (lists, sign-in answers).
    pub fn summary(user: User) -> Self {
        Self {
            id: user.id,
            name: user.name,
            email: user.email,
            phone: user.phone,
            role: user.role,
            created_at: user.created_at,
            addresses: None,
        }
    }
}

impl From<Profile> for UserView {
    fn from(profile: Profile) -> Self {
        Self {
            addresses: Some(profile.addresses.into_iter().map(address_view).collect()),
            ..Self::summary(profile.user)
        }
    }
}

/// The answer for an entry of the address book.
pub(crate) fn address_view(address: Address) -> AddressView {
    let postal = address.postal;
    AddressView {
        id: address.id,
        line1: postal.line1,
        line2: postal.line2,
        city: postal.city,
        state: postal.state,
        postal_code: postal.postal_code,
        country: postal.country,
        is_default: address.is_default,
        created_at: address.created_at,
        updated_at: address.updated_at,
    }
}

//! Entries of a user's address book: a postal address (rules in `kit::address`), whether it is
//! the default, and the changes a PATCH may make to one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use kit::address::{AddressFields, CountryCode, PostalAddress, optional_line, required_line};

/// A valid address to add to a user's book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub address: PostalAddress,
    pub is_default: bool,
}

/// An entry of a user's address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub id: Uuid,
    pub postal: PostalAddress,
    /// The user's default shipping address (exactly one of a non-empty book is).
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an address, each already valid; `None` leaves a field alone, `Some(None)` clears
/// an optional line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressChanges {
    pub line1: Option<String>,
    pub line2: Option<Option<String>>,
    pub city: Option<String>,
    pub state: Option<Option<String>>,
    pub postal_code: Option<String>,
    pub country: Option<CountryCode>,
    /// Only `true` does anything: this becomes the default address.
    pub is_default: Option<bool>,
}

/// An optional line in a PATCH: absent keeps it, `null` or empty clears it.
pub fn changed_optional_line(
    value: Option<Option<&str>>,
    max: usize,
) -> Result<Option<Option<String>>, String> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(v)) => optional_line(v, max).map(|v| Some(Some(v).filter(|v| !v.is_empty()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_line_is_kept_cleared_or_replaced() {
        assert_eq!(changed_optional_line(None, 10), Ok(None));
        assert_eq!(changed_optional_line(Some(None), 10), Ok(Some(None)));
        assert_eq!(changed_optional_line(Some(Some("  ")), 10), Ok(Some(None)), "blank clears");
        assert_eq!(changed_optional_line(Some(Some(" Apt 2 ")), 10), Ok(Some(Some("Apt 2".into()))));
        assert!(changed_optional_line(Some(Some("x".repeat(11).as_str())), 10).is_err());
    }
}

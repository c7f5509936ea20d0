//! Entries of a user's address book: a postal address (rules in `kit::address`) and whether it
//! is the default.

pub use kit::address::{AddressFields, CountryCode, PostalAddress, optional_line, required_line};

/// A valid address to add to a user's book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub address: PostalAddress,
    pub is_default: bool,
}

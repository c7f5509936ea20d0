//! An account as the service works with it, its name and phone number, the changes a user or an
//! admin may make to it, and the admin's search text for users.

use chrono::{DateTime, Utc};
use kit::auth::Role;
use uuid::Uuid;

use super::{Email, Password};

/// A live or deleted account as the rest of the service sees it: never its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    /// As the user typed it.
    pub email: String,
    pub phone: Option<String>,
    /// `customer` or `admin` (service tokens belong to no account).
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Whether `email` is this account's own address, in any case.
    pub fn owns_email(&self, email: &Email) -> bool {
        self.email.to_lowercase() == email.normalized()
    }
}

/// A valid registration: who the new customer is and the password they chose.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: UserName,
    pub email: Email,
    pub password: Password,
    pub phone: Option<Phone>,
}

/// What a user may change about their own account; `None` leaves a field alone, `Some(None)`
/// removes the phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub name: Option<UserName>,
    pub email: Option<Email>,
    pub phone: Option<Option<Phone>>,
}

/// What an admin may change about an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminChanges {
    pub role: Option<PersonRole>,
    pub name: Option<UserName>,
}

/// A role a person's account can have: `customer` or `admin` (never `service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonRole(Role);

impl PersonRole {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.parse::<Role>() {
            Ok(role @ (Role::Customer | Role::Admin)) => Ok(Self(role)),
            _ => Err("must be `customer` or `admin`".into()),
        }
    }

    pub fn role(self) -> Role {
        self.0
    }
}

/// The role stored for an account. Roles are written by this service only; anything unexpected
/// is read as the least privilege.
pub fn stored_role(stored: &str) -> Role {
    match stored {
        "admin" => Role::Admin,
        _ => Role::Customer,
    }
}

/// A display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// What an admin searches users by (a substring of name or email): at most 200 characters, no
/// control characters (PostgreSQL refuses NUL in text). Blank means no filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch(String);

impl UserSearch {
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 200 {
            return Err("must be at most 200 characters".into());
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: digits with optional leading `+` and separators (space, `-`, `.`, parentheses);
/// 6 to 15 digits (E.164's maximum), at most 32 characters in all (its column). Stored as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 32 {
            return Err("must be at most 32 characters".into());
        }
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if !body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')) {
            return Err("may contain only digits, a leading +, spaces, dashes, dots and parentheses".into());
        }
        let digits = body.chars().filter(char::is_ascii_digit).count();
        if !(6..=15).contains(&digits) {
            return Err("must have 6 to 15 digits".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada Lovelace ").unwrap().into_inner(), "Ada Lovelace");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse("bad\u{0}name").is_err());
    }

    #[test]
    fn searches_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(UserSearch::parse("  ada ").unwrap().unwrap().as_str(), "ada");
        assert_eq!(UserSearch::parse("   ").unwrap(), None);
        assert!(UserSearch::parse("a\0b").is_err());
        assert!(UserSearch::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn a_person_is_a_customer_or_an_admin_never_a_service() {
        assert_eq!(PersonRole::parse("admin").unwrap().role(), Role::Admin);
        assert_eq!(PersonRole::parse("customer").unwrap().role(), Role::Customer);
        assert!(PersonRole::parse("service").is_err());
        assert!(PersonRole::parse("root").is_err());
    }

    #[test]
    fn an_unexpected_stored_role_is_the_least_privilege() {
        assert_eq!(stored_role("admin"), Role::Admin);
        assert_eq!(stored_role("service"), Role::Customer);
        assert_eq!(stored_role(""), Role::Customer);
    }

    #[test]
    fn a_phone_fits_its_column_whatever_its_separators() {
        let spread = "+1 - - - - (555) - - - 010 - - - 9999";
        assert!(spread.len() > 32);
        assert!(Phone::parse(spread).is_err());
        assert!(Phone::parse(&"1".repeat(15)).is_ok());
    }

    #[test]
    fn phones_accept_common_notations() {
        for ok in ["+1 (555) 010-9999", "0049 30 1234567", "+33.1.23.45.67.89"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["12345", "call me", "+1 555 0100 0100 0100 00", "++123456"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}

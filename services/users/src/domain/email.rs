//! Email addresses: syntactically valid, at most 254 characters, compared case-insensitively.

use std::fmt;

/// A valid email address as the user typed it (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let parsed =
            email_address::EmailAddress::parse_with_options(trimmed, email_address::Options::default())
                .map_err(|_| "is not a valid email address".to_owned())?;
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err("is not a valid email address (the domain needs a dot)".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on: lowercased.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted_and_trimmed() {
        assert_eq!(Email::parse("  ada@example.com ").unwrap().as_str(), "ada@example.com");
        assert!(Email::parse("first.last+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn normalized_form_ignores_case() {
        assert_eq!(Email::parse("Ada@Example.COM").unwrap().normalized(), "ada@example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in ["", "ada", "ada@", "@example.com", "ada@localhost", "a b@example.com", "ada@@example.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn overlong_address_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}

//! A user's name and phone number, and the admin's search text for users.

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
/// 6 to 15 digits (E.164's maximum). Stored as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
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
    fn phones_accept_common_notations() {
        for ok in ["+1 (555) 010-9999", "0049 30 1234567", "+33.1.23.45.67.89"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["12345", "call me", "+1 555 0100 0100 0100 00", "++123456"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}

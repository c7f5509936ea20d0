//! Stock keeping units: unique among live products, readable, uppercase.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A SKU: 3 to 64 characters of `A–Z`, `0–9`, `-`, `_`, `.`; stored uppercase. Read back
/// from text (the shared read cache) through [`Sku::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl TryFrom<String> for Sku {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> Self {
        sku.0
    }
}

impl Sku {
    /// Trimmed and uppercased, or why it is not a SKU.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let sku = raw.trim().to_ascii_uppercase();
        if !(3..=64).contains(&sku.len()) {
            return Err("must be 3 to 64 characters".into());
        }
        if !sku.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err("may contain only letters, digits, '-', '_' and '.'".into());
        }
        Ok(Self(sku))
    }

    /// A readable SKU for a product without one: three letters of its category and brand, then
    /// a short random suffix, e.g. `ELE-SAM-7F3KQ2`. Uniqueness is the store's to enforce; a
    /// collision is retried with a new suffix.
    pub fn generate(category: &str, brand: Option<&str>, entropy: u64) -> Self {
        let part = |s: &str| -> String {
            let letters: String = s.chars().filter(char::is_ascii_alphanumeric).take(3).collect();
            if letters.is_empty() { "GEN".to_owned() } else { letters.to_ascii_uppercase() }
        };
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
        let mut n = entropy;
        let suffix: String = (0..8)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect();
        Self(format!("{}-{}-{suffix}", part(category), part(brand.unwrap_or("GEN"))))
    }

    /// A SKU read back from the store, which only ever holds parsed ones.
    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// The SKU, uppercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_uppercased_and_checked() {
        assert_eq!(Sku::parse(" bea-ess-001 ").unwrap().as_str(), "BEA-ESS-001");
        assert!(Sku::parse("ab").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse("DROP TABLE;").is_err());
    }

    #[test]
    fn generated_skus_are_readable_and_valid() {
        let sku = Sku::generate("electronics", Some("Samsung"), 123_456_789);
        assert!(sku.as_str().starts_with("ELE-SAM-"), "{sku}");
        assert!(Sku::parse(sku.as_str()).is_ok());
        assert_ne!(sku, Sku::generate("electronics", Some("Samsung"), 987_654_321));
        assert!(Sku::generate("!!", None, 1).as_str().starts_with("GEN-GEN-"));
    }
}

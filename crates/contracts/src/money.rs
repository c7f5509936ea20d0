//! Money: integer minor units (cents) and an ISO 4217 currency code. Never floats. The same
//! shape in every public answer and every internal body.

use serde::{Deserialize, Serialize};

/// An amount of money in minor units of its currency, e.g. `{"amount": 1999, "currency": "USD"}`
/// is $19.99.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Minor units (cents for USD).
    pub amount: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

/// The largest amount accepted anywhere: ten billion major units.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: &str) -> Self {
        Self { amount, currency: currency.to_owned() }
    }

    /// A price or total: 0 to [`MAX_AMOUNT`] minor units in `expected_currency`.
    pub fn parse_price(&self, expected_currency: &str) -> Result<Money, String> {
        if self.currency != expected_currency {
            return Err(format!("currency must be {expected_currency} (this shop sells in one currency)"));
        }
        if !(0..=MAX_AMOUNT).contains(&self.amount) {
            return Err(format!("amount must be between 0 and {MAX_AMOUNT} minor units"));
        }
        Ok(self.clone())
    }

    /// `self × quantity`, or `None` on overflow.
    pub fn times(&self, quantity: i64) -> Option<Money> {
        self.amount.checked_mul(quantity).map(|amount| Money::new(amount, &self.currency))
    }

    /// Parses a decimal major-unit amount as found in imported catalogs (`"19.99"`, `19.9`,
    /// `20`) into minor units with two decimals, rounding half away from zero; `None` for
    /// negative, malformed or absurd values. Goes through text so 0.1 + 0.2 problems never occur.
    pub fn minor_units_from_decimal(text: &str) -> Option<i64> {
        let text = text.trim();
        if text.starts_with('-') || text.is_empty() {
            return None;
        }
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let mut digits = frac.chars().map(|c| i64::from(c as u8 - b'0'));
        let tenths = digits.next().unwrap_or(0);
        let hundredths = digits.next().unwrap_or(0);
        let round_up = digits.next().is_some_and(|d| d >= 5);
        let cents = whole.checked_mul(100)?.checked_add(tenths * 10 + hundredths + i64::from(round_up))?;
        (cents <= MAX_AMOUNT).then_some(cents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_become_cents() {
        assert_eq!(Money::minor_units_from_decimal("19.99"), Some(1999));
        assert_eq!(Money::minor_units_from_decimal("19.9"), Some(1990));
        assert_eq!(Money::minor_units_from_decimal("20"), Some(2000));
        assert_eq!(Money::minor_units_from_decimal("0.005"), Some(1));
        assert_eq!(Money::minor_units_from_decimal("0.004"), Some(0));
        assert_eq!(Money::minor_units_from_decimal(".5"), Some(50));
    }

    #[test]
    fn junk_is_refused() {
        for bad in ["", "-1", "1e3", "abc", "1.2.3", ".", "99999999999999999999"] {
            assert_eq!(Money::minor_units_from_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn price_rules() {
        assert!(Money::new(100, "USD").parse_price("USD").is_ok());
        assert!(Money::new(-1, "USD").parse_price("USD").is_err());
        assert!(Money::new(100, "EUR").parse_price("USD").is_err());
    }

    proptest! {
        #[test]
        fn cents_round_trip_through_text(cents in 0i64..1_000_000_000) {
            let text = format!("{}.{:02}", cents / 100, cents % 100);
            prop_assert_eq!(Money::minor_units_from_decimal(&text), Some(cents));
        }
    }
}

//! Order money: line totals, subtotal, tax and total, all in integer minor units.
//!
//! Tax rounding: `tax = subtotal × rate_bp / 10,000` rounded half up (half a cent goes up), on
//! the subtotal, never per line, so the tax on an order does not depend on how it is split.

/// An order line with its price, as snapshotted at purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub product_id: uuid::Uuid,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

/// The money of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
}

impl PricedLine {
    /// `None` when the line total would overflow.
    pub fn new(
        product_id: uuid::Uuid,
        sku: String,
        name: String,
        unit_price: i64,
        quantity: i64,
    ) -> Option<Self> {
        let line_total = unit_price.checked_mul(quantity)?;
        Some(Self { product_id, sku, name, unit_price, quantity, line_total })
    }
}

/// Tax on `subtotal` at `rate_bp` basis points (1 bp = 0.01 %), rounded half up.
pub fn tax(subtotal: i64, rate_bp: u32) -> Option<i64> {
    let scaled = i128::from(subtotal) * i128::from(rate_bp);
    let rounded = (scaled + 5_000) / 10_000;
    i64::try_from(rounded).ok()
}

impl Totals {
    /// Sums the lines and adds tax; `None` on overflow.
    pub fn of(lines: &[PricedLine], rate_bp: u32) -> Option<Self> {
        let subtotal = lines.iter().try_fold(0i64, |sum, line| sum.checked_add(line.line_total))?;
        let tax = tax(subtotal, rate_bp)?;
        Some(Self { subtotal, tax, total: subtotal.checked_add(tax)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(unit_price: i64, quantity: i64) -> PricedLine {
        PricedLine::new(uuid::Uuid::nil(), "SKU".into(), "Thing".into(), unit_price, quantity).unwrap()
    }

    #[test]
    fn tax_rounds_half_up() {
        assert_eq!(tax(1000, 825), Some(83)); // 82.5 → 83
        assert_eq!(tax(1000, 824), Some(82)); // 82.4 → 82
        assert_eq!(tax(999, 1000), Some(100)); // 99.9 → 100
        assert_eq!(tax(1, 4999), Some(0)); // 0.4999 → 0
        assert_eq!(tax(1, 5000), Some(1)); // 0.5 → 1
        assert_eq!(tax(0, 2000), Some(0));
    }

    #[test]
    fn totals_add_up() {
        let totals = Totals::of(&[line(1999, 2), line(500, 1)], 1000).unwrap();
        assert_eq!(totals, Totals { subtotal: 4498, tax: 450, total: 4948 });
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        assert!(PricedLine::new(uuid::Uuid::nil(), "S".into(), "N".into(), i64::MAX, 2).is_none());
        let big = line(i64::MAX / 2 + 1, 1);
        assert!(Totals::of(&[big.clone(), big], 0).is_none());
    }

    proptest! {
        #[test]
        fn line_totals_sum_to_the_subtotal(
            lines in prop::collection::vec((0i64..10_000_000, 1i64..=999), 1..100),
            rate in 0u32..=10_000,
        ) {
            let lines: Vec<PricedLine> = lines.into_iter().map(|(p, q)| line(p, q)).collect();
            let totals = Totals::of(&lines, rate).unwrap();
            prop_assert_eq!(totals.subtotal, lines.iter().map(|l| l.unit_price * l.quantity).sum::<i64>());
            prop_assert_eq!(totals.total, totals.subtotal + totals.tax);
            // Rounded half up: within half a cent of the exact tax.
            let exact = totals.subtotal as f64 * f64::from(rate) / 10_000.0;
            prop_assert!((totals.tax as f64 - exact).abs() <= 0.5 + 1e-6);
        }
    }
}

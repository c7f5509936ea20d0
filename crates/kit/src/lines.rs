//! Lines of (product, quantity) as a client sends them in an order, a reservation or a cart:
//! checked against a service's bounds and merged per product, every fault named by field.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::FieldErrors;

/// How many lines, and how many units of one product, a request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineBounds {
    /// The most lines (after nothing is merged: as sent).
    pub max_lines: usize,
    /// The most units of one product, per line and once merged.
    pub max_quantity: i64,
}

impl LineBounds {
    /// Whether one line may hold `quantity` units (1 to `max_quantity`): a cart's `PUT` of one
    /// line, where there is no list to [`Self::merge`].
    pub fn admits_quantity(&self, quantity: i64) -> bool {
        (1..=self.max_quantity).contains(&quantity)
    }

    /// Whether a new line may join `lines` lines already held.
    pub fn admits_another_line(&self, lines: usize) -> bool {
        lines < self.max_lines
    }

    /// Merges `lines` per product, in product id order. Records in `errors` an empty or too long
    /// list (`items`), each line whose quantity is not 1 to `max_quantity` (`items[i].quantity`),
    /// and each product whose merged quantity passes `max_quantity` (`items`, naming it). Sums
    /// saturate, so no input overflows; the map is only meaningful when nothing was recorded.
    pub fn merge(&self, lines: &[(Uuid, i64)], errors: &mut FieldErrors) -> BTreeMap<Uuid, i64> {
        let Self { max_lines, max_quantity } = *self;
        if lines.is_empty() || lines.len() > max_lines {
            errors.push("items", format!("must hold 1 to {max_lines} lines"));
        }
        let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
        for (i, (product_id, quantity)) in lines.iter().enumerate() {
            if !(1..=max_quantity).contains(quantity) {
                errors.push(&format!("items[{i}].quantity"), format!("must be between 1 and {max_quantity}"));
            }
            let total = merged.entry(*product_id).or_default();
            *total = total.saturating_add(*quantity);
        }
        for (id, _) in merged.iter().filter(|(_, q)| **q > max_quantity) {
            errors.push("items", format!("at most {max_quantity} units of product {id} at once"));
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: LineBounds = LineBounds { max_lines: 3, max_quantity: 10 };

    fn merge(lines: &[(Uuid, i64)]) -> (BTreeMap<Uuid, i64>, Vec<String>) {
        let mut errors = FieldErrors::default();
        let merged = BOUNDS.merge(lines, &mut errors);
        let fields = match errors.finish(|| Some(())) {
            Ok(()) => Vec::new(),
            Err(e) => e.field_errors().iter().map(|e| e.field.clone()).collect(),
        };
        (merged, fields)
    }

    #[test]
    fn duplicates_are_merged_in_product_order() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let (merged, errors) = merge(&[(a, 1), (b, 2), (a, 3)]);
        assert!(errors.is_empty());
        assert_eq!(merged.into_iter().collect::<Vec<_>>(), vec![(b, 2), (a, 4)]);
    }

    #[test]
    fn each_fault_is_named_by_its_field() {
        assert_eq!(merge(&[]).1, ["items"]);
        let a = Uuid::from_u128(1);
        assert_eq!(merge(&[(a, 1); 4]).1, ["items"]);
        assert_eq!(merge(&[(a, 0), (a, -1)]).1, ["items[0].quantity", "items[1].quantity"]);
        assert_eq!(merge(&[(a, 6), (a, 5)]).1, ["items"]);
    }

    #[test]
    fn one_line_is_checked_against_the_same_bounds() {
        assert!(!BOUNDS.admits_quantity(0) && BOUNDS.admits_quantity(1) && BOUNDS.admits_quantity(10));
        assert!(!BOUNDS.admits_quantity(11));
        assert!(BOUNDS.admits_another_line(2) && !BOUNDS.admits_another_line(3));
    }

    #[test]
    fn sums_that_would_overflow_are_refused() {
        let a = Uuid::from_u128(1);
        assert!(!merge(&[(a, i64::MAX), (a, i64::MAX)]).1.is_empty());
        assert!(!merge(&[(a, i64::MIN), (a, -1)]).1.is_empty());
    }
}

//! A cart as stored (product ids and quantities) and as shown (priced from the catalog).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kit::lines::LineBounds;
use kit::money::{MAX_AMOUNT, Money};
use uuid::Uuid;

/// At most 100 lines, and 1 to 99 units on each.
pub const BOUNDS: LineBounds = LineBounds { max_lines: 100, max_quantity: 99 };

/// Units of one product in a cart: 1 to [`BOUNDS`]' `max_quantity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    /// The quantity, if it is within the bounds.
    pub fn parse(raw: i64) -> Result<Self, String> {
        if BOUNDS.admits_quantity(raw) {
            Ok(Self(raw))
        } else {
            Err(format!("must be between 0 and {} (0 removes the line)", BOUNDS.max_quantity))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// What a `PUT` of a line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityChange {
    /// Quantity 0: the line goes.
    Remove,
    /// The line holds exactly this many units.
    Set(Quantity),
}

impl QuantityChange {
    /// 0 removes; 1 to 99 sets; anything else is refused, saying why.
    pub fn parse(raw: i64) -> Result<Self, String> {
        if raw == 0 { Ok(Self::Remove) } else { Quantity::parse(raw).map(Self::Set) }
    }
}

/// A line as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    pub product_id: Uuid,
    pub quantity: i64,
    /// When the product was first put in the cart: lines are shown in this order.
    pub added_at: DateTime<Utc>,
}

/// A cart as the store keeps it: its lines, oldest first, and when it last changed (`None`
/// for a cart never written, or deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCart {
    pub lines: Vec<CartLine>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl StoredCart {
    /// The lines as (product, quantity): what a checkout orders.
    pub fn order_lines(&self) -> Vec<(Uuid, i64)> {
        self.lines.iter().map(|l| (l.product_id, l.quantity)).collect()
    }
}

/// What the catalog says about a product now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub sku: String,
    pub name: String,
    pub image: Option<String>,
    pub price: Money,
    pub deleted: bool,
}

/// A line as the shopper sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub image: Option<String>,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
    /// Whether it can be bought now: known to the catalog, not deleted, priced in the cart's
    /// currency.
    pub available: bool,
}

/// A cart priced from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    /// The sum of the available lines only.
    pub subtotal: Money,
    /// Units in the cart, over every line (available or not).
    pub item_count: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Prices `cart` from `catalog` (what products answered for its lines). A line the catalog
/// does not know, has deleted, or prices in another currency than `currency` stays in the
/// cart, shown `available: false` with what is known of it, and is left out of the subtotal.
pub fn price(cart: &StoredCart, catalog: &HashMap<Uuid, CatalogEntry>, currency: &str) -> PricedCart {
    let mut subtotal: i64 = 0;
    let mut item_count: i64 = 0;
    let lines = cart
        .lines
        .iter()
        .map(|line| {
            item_count = item_count.saturating_add(line.quantity);
            let Some(entry) = catalog.get(&line.product_id) else {
                let nothing = Money::new(0, currency);
                return PricedLine {
                    product_id: line.product_id,
                    sku: String::new(),
                    name: String::new(),
                    image: None,
                    unit_price: nothing.clone(),
                    quantity: line.quantity,
                    line_total: nothing,
                    available: false,
                };
            };
            let line_total = entry.price.times(line.quantity);
            let available = !entry.deleted && entry.price.currency == currency && line_total.is_some();
            let line_total = line_total.unwrap_or_else(|| Money::new(MAX_AMOUNT, &entry.price.currency));
            if available {
                subtotal = subtotal.saturating_add(line_total.amount).min(MAX_AMOUNT);
            }
            PricedLine {
                product_id: line.product_id,
                sku: entry.sku.clone(),
                name: entry.name.clone(),
                image: entry.image.clone(),
                unit_price: entry.price.clone(),
                quantity: line.quantity,
                line_total,
                available,
            }
        })
        .collect();
    PricedCart { lines, subtotal: Money::new(subtotal, currency), item_count, updated_at: cart.updated_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_subtotal_is_the_sum_of_the_available_lines_and_every_line_is_shown(
            lines in proptest::collection::vec((1i64..=99, 0i64..=1_000_000, any::<bool>()), 0..100)
        ) {
            let cart = StoredCart {
                lines: lines.iter().enumerate().map(|(n, (q, _, _))| line(n as u128, *q)).collect(),
                updated_at: None,
            };
            let catalog: HashMap<Uuid, CatalogEntry> = lines
                .iter()
                .enumerate()
                .map(|(n, (_, cents, deleted))| (Uuid::from_u128(n as u128), entry(*cents, *deleted)))
                .collect();
            let priced = price(&cart, &catalog, "USD");
            let expected: i64 = lines.iter().filter(|(_, _, deleted)| !deleted).map(|(q, cents, _)| q * cents).sum();
            prop_assert_eq!(priced.subtotal.amount, expected);
            prop_assert_eq!(priced.lines.len(), lines.len());
            prop_assert_eq!(priced.item_count, lines.iter().map(|(q, _, _)| q).sum::<i64>());
        }

        #[test]
        fn exactly_0_to_99_is_a_quantity_change(raw in any::<i64>()) {
            prop_assert_eq!(QuantityChange::parse(raw).is_ok(), (0..=99).contains(&raw));
        }
    }

    fn line(n: u128, quantity: i64) -> CartLine {
        CartLine { product_id: Uuid::from_u128(n), quantity, added_at: DateTime::UNIX_EPOCH }
    }

    fn entry(cents: i64, deleted: bool) -> CatalogEntry {
        CatalogEntry {
            sku: "SKU".into(),
            name: "Thing".into(),
            image: Some("/api/v1/images/thing.png".into()),
            price: Money::new(cents, "USD"),
            deleted,
        }
    }

    #[test]
    fn zero_removes_and_one_to_ninety_nine_set_anything_else_is_refused() {
        assert_eq!(QuantityChange::parse(0), Ok(QuantityChange::Remove));
        assert_eq!(QuantityChange::parse(1).map(|_| ()), Ok(()));
        assert_eq!(QuantityChange::parse(99).map(|_| ()), Ok(()));
        assert!(QuantityChange::parse(100).is_err());
        assert!(QuantityChange::parse(-1).is_err());
        assert!(Quantity::parse(0).is_err());
    }

    #[test]
    fn the_subtotal_counts_only_available_lines_and_deleted_ones_stay_shown() {
        let cart = StoredCart { lines: vec![line(1, 2), line(2, 3), line(3, 1)], updated_at: None };
        let catalog =
            HashMap::from([(Uuid::from_u128(1), entry(250, false)), (Uuid::from_u128(2), entry(1000, true))]);
        let priced = price(&cart, &catalog, "USD");
        assert_eq!(priced.subtotal, Money::new(500, "USD"));
        assert_eq!(priced.item_count, 6);
        let shown: Vec<(i64, bool)> =
            priced.lines.iter().map(|l| (l.line_total.amount, l.available)).collect();
        assert_eq!(
            shown,
            [(500, true), (3000, false), (0, false)],
            "deleted and unknown lines stay, unavailable"
        );
    }

    #[test]
    fn a_price_in_another_currency_is_not_available() {
        let cart = StoredCart { lines: vec![line(1, 1)], updated_at: None };
        let mut euro = entry(100, false);
        euro.price = Money::new(100, "EUR");
        let priced = price(&cart, &HashMap::from([(Uuid::from_u128(1), euro)]), "USD");
        assert!(!priced.lines[0].available);
        assert_eq!(priced.subtotal.amount, 0);
    }

    #[test]
    fn totals_never_pass_the_largest_amount() {
        let cart = StoredCart { lines: vec![line(1, 99), line(2, 99)], updated_at: None };
        let catalog = HashMap::from([
            (Uuid::from_u128(1), entry(MAX_AMOUNT / 10, false)),
            (Uuid::from_u128(2), entry(MAX_AMOUNT / 10, false)),
        ]);
        let priced = price(&cart, &catalog, "USD");
        assert!(priced.subtotal.amount <= MAX_AMOUNT);
    }
}

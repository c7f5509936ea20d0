//! What a valid checkout request is: 1 to 100 lines of 1 to 999 units, one line per product
//! (duplicates merged), and exactly one way of naming the shipping address; and what an
//! idempotency key is.

use kit::FieldErrors;
use kit::address::PostalAddress;
use kit::lines::LineBounds;
use uuid::Uuid;

/// The most lines one order holds.
pub const MAX_LINES: usize = 100;
/// The most units of one product one order holds.
pub const MAX_QUANTITY: i64 = 999;
/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A client's `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY`] printable ASCII characters,
/// surrounding spaces trimmed. Unique per user: the same key names the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header's value; the error says what a key must be.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim();
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ));
        }
        Ok(Self(key.to_owned()))
    }

    /// The key, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLineRequest {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// Where to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShippingChoice {
    /// One of the buyer's saved addresses, read from the users service on their behalf.
    Saved(Uuid),
    /// An address given with the order.
    Inline(PostalAddress),
}

/// A validated checkout, lines merged and in product-id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// One line per product, in product-id order.
    pub lines: Vec<OrderLineRequest>,
    pub shipping: ShippingChoice,
}

/// Parses the lines of a quote (`POST /api/v1/orders/quote`): the bounds of an order's lines,
/// lines of one product merged.
pub fn parse_quote_lines(lines: &[(Uuid, i64)]) -> Result<Vec<OrderLineRequest>, kit::ApiError> {
    let mut errors = FieldErrors::default();
    let merged = LineBounds { max_lines: MAX_LINES, max_quantity: MAX_QUANTITY }.merge(lines, &mut errors);
    errors.finish(|| {
        Some(
            merged
                .into_iter()
                .map(|(product_id, quantity)| OrderLineRequest { product_id, quantity })
                .collect(),
        )
    })
}

impl CheckoutRequest {
    /// Parses the lines and the address choice; `inline` is the parsed inline address, if sent.
    pub fn parse(
        lines: &[(Uuid, i64)],
        saved_address: Option<Uuid>,
        inline: Option<Result<PostalAddress, kit::ApiError>>,
    ) -> Result<Self, kit::ApiError> {
        let mut errors = FieldErrors::default();
        let merged =
            LineBounds { max_lines: MAX_LINES, max_quantity: MAX_QUANTITY }.merge(lines, &mut errors);
        let shipping = match (saved_address, inline) {
            (Some(id), None) => Some(ShippingChoice::Saved(id)),
            (None, Some(Ok(address))) => Some(ShippingChoice::Inline(address)),
            (None, Some(Err(invalid))) => {
                for e in invalid.field_errors() {
                    errors.push(&format!("shipping_address.{}", e.field), e.message.clone());
                }
                None
            }
            (Some(_), Some(_)) => {
                errors.push("shipping_address", "send shipping_address_id or shipping_address, not both");
                None
            }
            (None, None) => {
                errors.push("shipping_address_id", "is required (or send shipping_address)");
                None
            }
        };
        errors.finish(|| {
            Some(CheckoutRequest {
                lines: merged
                    .into_iter()
                    .map(|(product_id, quantity)| OrderLineRequest { product_id, quantity })
                    .collect(),
                shipping: shipping?,
            })
        })
    }

    /// A digest of what was asked, to tell a replay (same key, same request) from a reuse of
    /// an idempotency key for something else.
    pub fn fingerprint(&self) -> String {
        let mut canonical = String::new();
        for line in &self.lines {
            canonical.push_str(&format!("{}x{};", line.product_id, line.quantity));
        }
        match &self.shipping {
            ShippingChoice::Saved(id) => canonical.push_str(&format!("saved:{id}")),
            ShippingChoice::Inline(a) => canonical.push_str(&format!(
                "inline:{}|{}|{}|{}|{}|{}",
                a.line1,
                a.line2.as_deref().unwrap_or(""),
                a.city,
                a.state.as_deref().unwrap_or(""),
                a.postal_code,
                a.country
            )),
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn duplicate_products_merge_and_order_does_not_matter() {
        let a = CheckoutRequest::parse(&[(id(2), 1), (id(1), 2), (id(2), 3)], Some(id(9)), None).unwrap();
        assert_eq!(
            a.lines,
            vec![
                OrderLineRequest { product_id: id(1), quantity: 2 },
                OrderLineRequest { product_id: id(2), quantity: 4 }
            ]
        );
        let b = CheckoutRequest::parse(&[(id(1), 2), (id(2), 4)], Some(id(9)), None).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn different_requests_have_different_fingerprints() {
        let a = CheckoutRequest::parse(&[(id(1), 2)], Some(id(9)), None).unwrap();
        let b = CheckoutRequest::parse(&[(id(1), 3)], Some(id(9)), None).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn bad_lines_and_missing_address_are_listed() {
        let err = CheckoutRequest::parse(&[(id(1), 0), (id(2), 1000)], None, None).unwrap_err();
        let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].quantity", "items[1].quantity", "items", "shipping_address_id"]);
        assert!(CheckoutRequest::parse(&[], Some(id(9)), None).is_err());
    }

    #[test]
    fn huge_quantities_of_one_product_are_refused_without_overflowing() {
        let err =
            CheckoutRequest::parse(&[(id(1), i64::MAX), (id(1), i64::MAX)], Some(id(9)), None).unwrap_err();
        assert_eq!(err.status(), 400);
        let err = CheckoutRequest::parse(&[(id(1), i64::MIN), (id(1), -1)], Some(id(9)), None).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn idempotency_keys_are_trimmed_printable_ascii_of_bounded_length() {
        assert_eq!(IdempotencyKey::parse("  order-1 ").unwrap().as_str(), "order-1");
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_IDEMPOTENCY_KEY)).is_ok());
        for bad in ["", "   ", "two words", "tab\there", "é"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_IDEMPOTENCY_KEY + 1)).is_err());
    }

    #[test]
    fn merged_quantity_above_the_limit_is_refused() {
        assert!(CheckoutRequest::parse(&[(id(1), 500), (id(1), 500)], Some(id(9)), None).is_err());
    }
}

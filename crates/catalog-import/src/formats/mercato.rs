//! mercato's own catalog records: the body of `POST /api/v1/products` plus `rating` and
//! `images`. A product as the API answers it imports too (its `id`, `created_at` and
//! `updated_at` are ignored); any other unknown field rejects the record, so a misspelt one is
//! never silently dropped.

use kit::money::Money;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use products::domain::product::ProductFields;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MercatoRecord {
    sku: Option<String>,
    #[serde(default)]
    name: String,
    short_description: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
    brand: Option<String>,
    /// `{"amount": 1999, "currency": "USD"}`, amount in minor units.
    price: Option<Value>,
    stock: Option<i64>,
    rating: Option<f64>,
    weight_grams: Option<i64>,
    attributes: Option<Value>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
}

pub(super) fn fields(record: Value) -> Result<ProductFields, String> {
    let record: MercatoRecord = serde_path_to_error::deserialize(record).map_err(super::field_error)?;
    Ok(ProductFields {
        sku: record.sku,
        name: record.name,
        short_description: record.short_description,
        description: record.description,
        category: record.category,
        brand: record.brand,
        price: record.price.map(money).transpose().map_err(|problem| format!("price: {problem}"))?,
        stock: record.stock,
        rating: record.rating,
        weight_grams: record.weight_grams,
        attributes: record.attributes,
        images: record.images,
    })
}

fn money(price: Value) -> Result<Money, String> {
    const SHAPE: &str = r#"must be an object like {"amount": 1999, "currency": "USD"} (amount in cents)"#;
    match price {
        Value::Object(_) => serde_json::from_value(price).map_err(|e| format!("{SHAPE}: {e}")),
        _ => Err(SHAPE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::super::{Format, Layout};
    use super::*;

    const LAMP: &str = r#"{"name": "Desk Lamp", "description": "A warm lamp.", "category": "Office",
        "price": {"amount": 4999, "currency": "USD"}, "sku": "lmp-1", "stock": 3, "rating": 4.5,
        "weight_grams": 900, "attributes": {"color": "oak"}, "images": ["https://x.test/a.jpg"],
        "brand": "Lumen", "short_description": "Warm light."}"#;

    #[test]
    fn every_field_maps() {
        let fields = fields(serde_json::from_str(LAMP).unwrap()).unwrap();
        assert_eq!(fields.price, Some(Money::new(4999, "USD")));
        assert_eq!(fields.sku.as_deref(), Some("lmp-1"));
        assert_eq!((fields.stock, fields.rating, fields.weight_grams), (Some(3), Some(4.5), Some(900)));
        assert_eq!(fields.images, ["https://x.test/a.jpg"]);
        assert_eq!(fields.short_description.as_deref(), Some("Warm light."));
    }

    #[test]
    fn an_api_answer_imports_as_it_is() {
        let answer = r#"{"id": "0194f5d2-0000-7000-8000-000000000000", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "name": "Pen", "description": "Blue.", "category": "office",
            "price": {"amount": 250, "currency": "USD"}}"#;
        assert!(fields(serde_json::from_str(answer).unwrap()).is_ok());
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_the_field() {
        let typo = fields(serde_json::json!({"name": "Pen", "stok": 3})).unwrap_err();
        assert!(typo.starts_with("stok: unknown field `stok`, expected one of `sku`"), "{typo}");
        let wrong = fields(serde_json::json!({"name": "Pen", "stock": "three"})).unwrap_err();
        assert!(wrong.starts_with("stock: invalid type"), "{wrong}");
    }

    #[test]
    fn a_bare_number_price_is_ambiguous_and_refused() {
        let err = fields(serde_json::json!({"price": 19.99})).unwrap_err();
        assert!(err.starts_with("price: must be an object like"), "{err}");
        let err = fields(serde_json::json!({"price": {"amount": "19.99", "currency": "USD"}})).unwrap_err();
        assert!(err.starts_with("price: must be an object like"), "{err}");
    }

    #[test]
    fn json_lines_with_bad_records_import_the_good_ones() {
        let text = format!(
            "{}\n{}\n{}\nnot json\n{}\n",
            LAMP.replace('\n', " "),
            r#"{"name": "", "description": "x", "category": "Office", "price": {"amount": 100, "currency": "USD"}}"#,
            r#"{"name": "Euro pen", "description": "x", "category": "Office", "price": {"amount": 100, "currency": "EUR"}}"#,
            r#"{"name": "Pen", "description": "Blue.", "category": "Office", "price": {"amount": 250, "currency": "USD"}}"#,
        );
        let records = read(&text, Layout::JsonLines, None);
        let outcome: Vec<Result<&str, (usize, &str)>> = records
            .iter()
            .map(|r| r.as_ref().map(|p| p.name.as_str()).map_err(|e| (e.record, e.reason.as_str())))
            .collect();
        assert_eq!(outcome[0], Ok("Desk Lamp"));
        assert_eq!(outcome[1], Err((2, "name: is required")));
        assert!(matches!(outcome[2], Err((3, reason)) if reason.starts_with("price: currency must be USD")));
        assert!(matches!(outcome[3], Err((4, reason)) if reason.starts_with("malformed JSON at column ")));
        assert_eq!(outcome[4], Ok("Pen"));
    }

    #[test]
    fn a_json_array_in_mercato_format() {
        let text =
            format!("[{LAMP}, {{\"name\": \"No price\", \"description\": \"x\", \"category\": \"Office\"}}]");
        let records = read(&text, Layout::JsonArray, Some(Format::Mercato));
        assert!(records[0].is_ok());
        assert_eq!(records[1].as_ref().unwrap_err().reason, "price: is required");
    }
}

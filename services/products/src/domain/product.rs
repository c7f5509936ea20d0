//! Products, their categories, and the rules a new product or a change must keep.

use chrono::{DateTime, Utc};
use kit::FieldErrors;
use kit::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::sku::Sku;

/// Largest stock a product may hold.
pub const MAX_STOCK: i64 = 1_000_000;
/// Longest product name, in characters.
pub const MAX_NAME: usize = 200;

/// A product as stored and shown. (Serde: how the shared read cache keeps it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub sku: Sku,
    pub name: String,
    pub short_description: String,
    pub description: String,
    /// The category's slug.
    pub category: String,
    pub brand: Option<String>,
    pub price: Money,
    pub stock: i64,
    /// 0 to 5, from reviews; 0 until rated.
    pub rating: f64,
    pub weight_grams: Option<i64>,
    /// Image keys, in upload order.
    pub images: Vec<String>,
    pub attributes: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What another service needs to price and check an order line: a product by id, deleted or
/// not (an order keeps its history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupItem {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub deleted: bool,
    /// The key (or absolute URL) of its first image.
    pub image: Option<String>,
}

/// A category: a URL-safe slug and the name people see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub slug: String,
    pub name: String,
}

impl Category {
    /// From a name (`"Smart Phones"`) or a slug (`"smart-phones"`): the slug is lowercase ASCII
    /// letters and digits joined by single dashes.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("is required".into());
        }
        if name.chars().count() > 64 {
            return Err("must be at most 64 characters".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let slug = slugify(name);
        if slug.is_empty() {
            return Err("needs at least one letter or digit".into());
        }
        Ok(Self { slug, name: name.to_owned() })
    }
}

/// Lowercase ASCII letters and digits, other runs become one dash.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// A valid product to create (or to upsert by SKU on import).
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    /// Generated when absent.
    pub sku: Option<Sku>,
    pub name: String,
    pub short_description: String,
    pub description: String,
    pub category: Category,
    pub brand: Option<String>,
    pub price: Money,
    pub stock: i64,
    pub rating: f64,
    pub weight_grams: Option<i64>,
    pub attributes: Map<String, Value>,
    /// Image URLs or keys known at import time.
    pub images: Vec<String>,
}

/// The fields of a product as they arrive, before parsing. Shared by the admin API and importers.
#[derive(Debug, Clone, Default)]
pub struct ProductFields {
    pub sku: Option<String>,
    pub name: String,
    pub short_description: Option<String>,
    pub description: String,
    pub category: String,
    pub brand: Option<String>,
    pub price: Option<Money>,
    pub stock: Option<i64>,
    pub rating: Option<f64>,
    pub weight_grams: Option<i64>,
    pub attributes: Option<Value>,
    pub images: Vec<String>,
}

impl NewProduct {
    /// Parses every field in `currency`, listing each bad one.
    pub fn parse(fields: ProductFields, currency: &str) -> Result<Self, kit::ApiError> {
        let mut errors = FieldErrors::default();
        let sku = errors.take("sku", fields.sku.as_deref().map(Sku::parse).transpose());
        let name = errors.take("name", text(&fields.name, 1, MAX_NAME));
        let description = errors.take("description", text(&fields.description, 1, 20_000));
        let short = errors.take(
            "short_description",
            fields.short_description.as_deref().map(|s| text(s, 0, 300)).transpose(),
        );
        let category = errors.take("category", Category::parse(&fields.category));
        let brand = errors.take("brand", fields.brand.as_deref().map(|b| text(b, 0, 100)).transpose());
        let price = errors.take(
            "price",
            fields.price.ok_or_else(|| "is required".to_owned()).and_then(|p| p.parse_price(currency)),
        );
        let stock = errors.take("stock", stock(fields.stock.unwrap_or(0)));
        let rating = errors.take("rating", rating(fields.rating.unwrap_or(0.0)));
        let weight = errors.take("weight_grams", fields.weight_grams.map(weight_grams).transpose());
        let attributes =
            errors.take("attributes", attributes(fields.attributes.unwrap_or(Value::Object(Map::new()))));
        let images = errors.take("images", images(fields.images));
        errors.finish(|| {
            let description = description?;
            let short_description =
                short?.filter(|s| !s.is_empty()).unwrap_or_else(|| summary_of(&description));
            Some(NewProduct {
                sku: sku?,
                name: name?,
                short_description,
                description,
                category: category?,
                brand: brand?.filter(|b| !b.is_empty()),
                price: price?,
                stock: stock?,
                rating: rating?,
                weight_grams: weight?,
                attributes: attributes?,
                images: images?,
            })
        })
    }
}

/// A change to a product; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductPatch {
    pub sku: Option<Sku>,
    pub name: Option<String>,
    pub short_description: Option<String>,
    pub description: Option<String>,
    pub category: Option<Category>,
    pub brand: Option<Option<String>>,
    pub price: Option<Money>,
    pub stock: Option<i64>,
    pub weight_grams: Option<Option<i64>>,
    pub attributes: Option<Map<String, Value>>,
}

/// The fields of a PATCH as they arrive.
#[derive(Debug, Clone, Default)]
pub(crate) struct PatchFields {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub short_description: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub brand: Option<Option<String>>,
    pub price: Option<Money>,
    pub stock: Option<i64>,
    pub weight_grams: Option<Option<i64>>,
    pub attributes: Option<Value>,
}

impl ProductPatch {
    /// Parses every field given in `currency`, listing each bad one.
    pub(crate) fn parse(fields: PatchFields, currency: &str) -> Result<Self, kit::ApiError> {
        let mut errors = FieldErrors::default();
        let sku = errors.take("sku", fields.sku.as_deref().map(Sku::parse).transpose());
        let name = errors.take("name", fields.name.as_deref().map(|v| text(v, 1, MAX_NAME)).transpose());
        let short = errors.take(
            "short_description",
            fields.short_description.as_deref().map(|v| text(v, 0, 300)).transpose(),
        );
        let description =
            errors.take("description", fields.description.as_deref().map(|v| text(v, 1, 20_000)).transpose());
        let category = errors.take("category", fields.category.as_deref().map(Category::parse).transpose());
        let brand = errors.take(
            "brand",
            fields
                .brand
                .map(|b| b.map(|b| text(&b, 0, 100)).transpose().map(|b| b.filter(|b| !b.is_empty())))
                .transpose(),
        );
        let price = errors.take("price", fields.price.map(|p| p.parse_price(currency)).transpose());
        let stock = errors.take("stock", fields.stock.map(stock).transpose());
        let weight = errors
            .take("weight_grams", fields.weight_grams.map(|w| w.map(weight_grams).transpose()).transpose());
        let attributes = errors.take("attributes", fields.attributes.map(attributes).transpose());
        errors.finish(|| {
            Some(ProductPatch {
                sku: sku?,
                name: name?,
                short_description: short?,
                description: description?,
                category: category?,
                brand: brand?,
                price: price?,
                stock: stock?,
                weight_grams: weight?,
                attributes: attributes?,
            })
        })
    }

    /// A change that names no field.
    pub fn is_empty(&self) -> bool {
        self == &ProductPatch::default()
    }
}

/// Trimmed text of `min` to `max` characters with no control characters but newline and tab
/// (PostgreSQL refuses NUL in text, and nothing a person types needs the others).
pub(crate) fn text(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min {
        return Err(if min == 1 {
            "is required".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if chars > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

fn stock(value: i64) -> Result<i64, String> {
    if (0..=MAX_STOCK).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between 0 and {MAX_STOCK}"))
    }
}

fn rating(value: f64) -> Result<f64, String> {
    if (0.0..=5.0).contains(&value) { Ok(value) } else { Err("must be between 0 and 5".into()) }
}

fn weight_grams(value: i64) -> Result<i64, String> {
    if (0..=1_000_000).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 1000000 grams".into())
    }
}

fn attributes(value: Value) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err("must be a JSON object".into());
    };
    if map.len() > 50 {
        return Err("may have at most 50 keys".into());
    }
    if let Some(key) = map.keys().find(|k| k.is_empty() || k.chars().count() > 64) {
        return Err(format!("key {key:?} must be 1 to 64 characters"));
    }
    if map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
        return Err("must not contain NUL characters".into());
    }
    if serde_json::to_vec(&map).map(|v| v.len()).unwrap_or(usize::MAX) > 16 * 1024 {
        return Err("must be at most 16 KiB as JSON".into());
    }
    Ok(map)
}

/// Image keys or URLs: at most 20, each at most 512 characters without control characters.
fn images(images: Vec<String>) -> Result<Vec<String>, String> {
    if images.len() > 20 {
        return Err("at most 20 images".into());
    }
    if images.iter().any(|i| i.is_empty() || i.chars().count() > 512 || i.chars().any(char::is_control)) {
        return Err("each must be 1 to 512 characters without control characters".into());
    }
    Ok(images)
}

/// True when a JSON value holds a NUL anywhere (PostgreSQL refuses it in text and JSON).
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// The first sentence of a description, at most 160 characters, cut at a word boundary.
fn summary_of(description: &str) -> String {
    let first = description.split_inclusive(['.', '!', '?']).next().unwrap_or(description).trim();
    if first.chars().count() <= 160 {
        return first.to_owned();
    }
    let cut: String = first.chars().take(157).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> ProductFields {
        ProductFields {
            name: "Trail Running Shoe".into(),
            description: "A light shoe for rough trails. Grippy sole.".into(),
            category: "Shoes & Boots".into(),
            brand: Some("Stride".into()),
            price: Some(Money::new(8999, "USD")),
            stock: Some(12),
            ..ProductFields::default()
        }
    }

    #[test]
    fn a_valid_product_parses_with_defaults() {
        let p = NewProduct::parse(fields(), "USD").unwrap();
        assert_eq!(p.category, Category { slug: "shoes-boots".into(), name: "Shoes & Boots".into() });
        assert_eq!(p.short_description, "A light shoe for rough trails.");
        assert_eq!(p.sku, None);
        assert!(p.attributes.is_empty());
    }

    #[test]
    fn every_bad_field_is_listed() {
        let bad = ProductFields {
            name: " ".into(),
            price: Some(Money::new(-5, "USD")),
            stock: Some(-1),
            attributes: Some(Value::from(3)),
            ..fields()
        };
        let err = NewProduct::parse(bad, "USD").unwrap_err();
        let names: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["name", "price", "stock", "attributes"]);
    }

    #[test]
    fn price_in_another_currency_is_refused() {
        let err = NewProduct::parse(ProductFields { price: Some(Money::new(100, "EUR")), ..fields() }, "USD")
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "price");
    }

    #[test]
    fn values_the_database_would_refuse_are_refused_here() {
        let nul = ProductFields { attributes: Some(serde_json::json!({"note": "a\u{0}b"})), ..fields() };
        assert_eq!(NewProduct::parse(nul, "USD").unwrap_err().field_errors()[0].field, "attributes");
        let long_url = ProductFields { images: vec![format!("https://x/{}", "a".repeat(600))], ..fields() };
        assert_eq!(NewProduct::parse(long_url, "USD").unwrap_err().field_errors()[0].field, "images");
        assert!(Category::parse("Bad\u{7}Bell").is_err());
    }

    #[test]
    fn control_characters_at_the_edges_are_refused_too() {
        // Trimming would drop them, but the rule is about what was sent.
        for name in ["\rLamp", "Lamp\u{b}", "\u{85}Lamp"] {
            let err = NewProduct::parse(ProductFields { name: name.into(), ..fields() }, "USD").unwrap_err();
            assert_eq!(err.field_errors()[0].field, "name", "{name:?}");
        }
        assert!(Category::parse("\rKitchen").is_err());
        let tabs = ProductFields { name: "\tLamp\n".into(), ..fields() };
        assert_eq!(NewProduct::parse(tabs, "USD").unwrap().name, "Lamp", "tab and newline are allowed");
    }

    #[test]
    fn slugs_are_lowercase_dashed() {
        assert_eq!(slugify("  Home & Kitchen "), "home-kitchen");
        assert_eq!(slugify("smart-phones"), "smart-phones");
        assert_eq!(slugify("Électronique"), "lectronique");
        assert!(Category::parse("!!!").is_err());
    }

    #[test]
    fn long_descriptions_summarise_at_a_word_boundary() {
        let long = "word ".repeat(100);
        let summary = summary_of(&long);
        assert!(summary.chars().count() <= 160 && summary.ends_with("..."), "{summary}");
    }

    #[test]
    fn empty_patch_is_detected() {
        assert!(ProductPatch::parse(PatchFields::default(), "USD").unwrap().is_empty());
        let patch =
            ProductPatch::parse(PatchFields { stock: Some(3), ..PatchFields::default() }, "USD").unwrap();
        assert_eq!(patch.stock, Some(3));
    }
}

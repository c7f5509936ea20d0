//! DummyJSON's product records (`dummyjson.com/products`): title, decimal dollar price,
//! rating, stock, SKU, brand, and the rest kept as attributes.
//!
//! DummyJSON gives `weight` without a unit (integers 1 to 10 for every kind of product) and
//! `dimensions` without one either (5 to 30, plausible as centimetres). We read the weight as
//! kilograms of the shipped parcel, matching metric dimensions, so `weight_grams` is
//! `weight × 1000`; the dimensions are kept as `dimensions_cm`. Reviews are not imported (the
//! catalog has no reviews); their average is the `rating`.

use serde::Deserialize;
use serde_json::{Map, Number, Value, json};

use super::cents;
use crate::SHOP_CURRENCY;
use products::domain::product::ProductFields;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DummyProduct {
    id: Option<Value>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
    price: Option<Number>,
    discount_percentage: Option<Number>,
    rating: Option<f64>,
    stock: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    brand: Option<String>,
    sku: Option<String>,
    weight: Option<Number>,
    dimensions: Option<Value>,
    warranty_information: Option<String>,
    shipping_information: Option<String>,
    return_policy: Option<String>,
    minimum_order_quantity: Option<i64>,
    meta: Option<Meta>,
    #[serde(default)]
    images: Vec<String>,
    thumbnail: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    barcode: Option<String>,
}

pub(super) fn fields(record: Value) -> Result<ProductFields, String> {
    let p: DummyProduct = serde_path_to_error::deserialize(record).map_err(super::field_error)?;
    let price = p
        .price
        .as_ref()
        .map(|price| cents(price).ok_or_else(|| format!("price: {price} is not an amount in dollars")))
        .transpose()?;
    let weight_grams = p
        .weight
        .as_ref()
        .map(|kg| grams_of_kilograms(kg).ok_or_else(|| format!("weight: {kg} is not a number of kilograms")))
        .transpose()?;
    let mut images = p.images.clone();
    if images.is_empty() {
        images.extend(p.thumbnail.clone());
    }
    let attributes = attributes(&p);
    Ok(ProductFields {
        sku: p.sku,
        name: p.title,
        short_description: None,
        description: p.description,
        category: category_name(&p.category),
        brand: p.brand,
        price: price.map(|cents| kit::money::Money::new(cents, SHOP_CURRENCY)),
        stock: p.stock,
        rating: p.rating,
        weight_grams,
        attributes: Some(Value::Object(attributes)),
        images,
    })
}

/// `kitchen-accessories` → `Kitchen Accessories` (the slug stays the same).
fn category_name(slug: &str) -> String {
    slug.split(['-', '_', ' '])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kilograms (`4`, `0.25`) in whole grams, to the nearest 10 g, through the number's text.
fn grams_of_kilograms(kg: &Number) -> Option<i64> {
    kit::money::Money::minor_units_from_decimal(&kg.to_string())?.checked_mul(10)
}

fn attributes(p: &DummyProduct) -> Map<String, Value> {
    let mut attributes = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            attributes.insert(key.to_owned(), value);
        }
    };
    put("tags", (!p.tags.is_empty()).then(|| json!(p.tags)));
    put("dimensions_cm", p.dimensions.clone());
    put("warranty", p.warranty_information.clone().map(Value::from));
    put("shipping", p.shipping_information.clone().map(Value::from));
    put("return_policy", p.return_policy.clone().map(Value::from));
    put("minimum_order_quantity", p.minimum_order_quantity.map(Value::from));
    put("discount_percentage", p.discount_percentage.clone().map(Value::Number));
    put("barcode", p.meta.as_ref().and_then(|m| m.barcode.clone()).map(Value::from));
    put("source", Some(Value::from("dummyjson")));
    put("source_id", p.id.clone());
    attributes
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::super::{Format, Layout};
    use super::*;

    fn mascara() -> Value {
        json!({
            "id": 1, "title": "Essence Mascara Lash Princess",
            "description": "The Essence Mascara Lash Princess is a popular mascara. Cruelty-free.",
            "category": "beauty", "price": 9.99, "discountPercentage": 10.48, "rating": 2.56, "stock": 99,
            "tags": ["beauty", "mascara"], "brand": "Essence", "sku": "BEA-ESS-ESS-001", "weight": 4,
            "dimensions": {"width": 15.14, "height": 13.08, "depth": 22.99},
            "warrantyInformation": "1 week warranty", "shippingInformation": "Ships in 3-5 business days",
            "availabilityStatus": "In Stock", "reviews": [{"rating": 3, "comment": "Would not recommend!"}],
            "returnPolicy": "No return policy", "minimumOrderQuantity": 48,
            "meta": {"barcode": "5784719087687", "qrCode": "https://cdn.dummyjson.com/public/qr-code.png"},
            "images": ["https://cdn.dummyjson.com/product-images/beauty/essence-mascara-lash-princess/1.webp"],
            "thumbnail": "https://cdn.dummyjson.com/product-images/beauty/essence-mascara-lash-princess/thumbnail.webp"
        })
    }

    #[test]
    fn a_dummyjson_product_maps_field_by_field() {
        let records = read(&format!("[{}]", mascara()), Layout::JsonArray, None);
        let p = records[0].as_ref().unwrap();
        assert_eq!(p.name, "Essence Mascara Lash Princess");
        assert_eq!(p.sku.as_ref().unwrap().as_str(), "BEA-ESS-ESS-001");
        assert_eq!((p.price.amount, p.price.currency.as_str()), (999, "USD"));
        assert_eq!((p.stock, p.rating, p.weight_grams), (99, 2.56, Some(4_000)));
        assert_eq!((p.category.slug.as_str(), p.category.name.as_str()), ("beauty", "Beauty"));
        assert_eq!(p.brand.as_deref(), Some("Essence"));
        assert_eq!(p.short_description, "The Essence Mascara Lash Princess is a popular mascara.");
        assert_eq!(p.images.len(), 1);
        assert_eq!(p.attributes["tags"], json!(["beauty", "mascara"]));
        assert_eq!(p.attributes["dimensions_cm"]["depth"], json!(22.99));
        assert_eq!(p.attributes["warranty"], "1 week warranty");
        assert_eq!(p.attributes["barcode"], "5784719087687");
        assert_eq!(p.attributes["minimum_order_quantity"], 48);
        assert_eq!(p.attributes["discount_percentage"], json!(10.48));
        assert_eq!(p.attributes["source_id"], 1);
        assert!(p.attributes.get("reviews").is_none());
    }

    #[test]
    fn brand_is_optional_and_the_thumbnail_stands_in_for_missing_images() {
        let mut lemon = mascara();
        lemon.as_object_mut().unwrap().remove("brand");
        lemon["images"] = json!([]);
        let p = fields(lemon).unwrap();
        assert_eq!(p.brand, None);
        assert!(p.images[0].ends_with("thumbnail.webp"));
    }

    #[test]
    fn prices_are_exact_cents() {
        for (price, cents) in
            [(json!(9.99), 999), (json!(0.29), 29), (json!(36999.99), 3_699_999), (json!(20), 2_000)]
        {
            let mut p = mascara();
            p["price"] = price;
            assert_eq!(fields(p).unwrap().price.unwrap().amount, cents);
        }
    }

    #[test]
    fn a_bad_price_or_weight_is_named() {
        let mut p = mascara();
        p["price"] = json!(-3);
        assert_eq!(fields(p).unwrap_err(), "price: -3 is not an amount in dollars");
        let mut p = mascara();
        p["weight"] = json!("heavy");
        assert!(fields(p).unwrap_err().starts_with("weight: invalid type"));
    }

    #[test]
    fn category_slugs_get_readable_names() {
        assert_eq!(category_name("kitchen-accessories"), "Kitchen Accessories");
        assert_eq!(category_name("mens-shirts"), "Mens Shirts");
        assert_eq!(products::domain::product::slugify(&category_name("home-decoration")), "home-decoration");
    }

    #[test]
    fn an_explicit_format_overrides_detection() {
        let records = read(&format!("[{}]", mascara()), Layout::JsonArray, Some(Format::Mercato));
        let reason = &records[0].as_ref().unwrap_err().reason;
        assert!(reason.contains(": unknown field `"), "{reason}");
    }
}

//! Algolia's Best Buy sample (`ecommerce.json`): name, description, brand, a category path,
//! decimal dollar price, one image and a popularity score.
//!
//! The records carry no SKU, stock or rating:
//! - the SKU is Best Buy's own, the number that names the image file
//!   (`…/4984700_sb.jpg` → `BBY-4984700`), so a re-import finds the same products;
//! - stock is derived from popularity, `popularity / 50` capped at 500: the best sellers are
//!   the best stocked and the least popular few (popularity under 50) are sold out;
//! - rating stays 0 (unrated).
//!
//! The last, most specific category is the product's; the whole path is kept in
//! `category_path`, and popularity in `popularity`.
//!
//! A few names hold C1 control characters where the source mis-decoded Windows-1252
//! (`Insignia\u{99}` for `Insignia™`); texts are repaired by reading those as Windows-1252,
//! rather than rejecting the records for their control characters.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::cents;
use crate::SHOP_CURRENCY;
use products::domain::product::ProductFields;

/// Stock is popularity divided by this.
const POPULARITY_PER_UNIT: i64 = 50;
/// Most stock derived from popularity.
const MAX_DERIVED_STOCK: i64 = 500;

#[derive(Deserialize)]
struct BestBuyProduct {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    brand: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    price: Option<Number>,
    image: Option<String>,
    popularity: Option<i64>,
}

pub(super) fn fields(record: Value) -> Result<ProductFields, String> {
    let mut p: BestBuyProduct = serde_path_to_error::deserialize(record).map_err(super::field_error)?;
    for text in
        [&mut p.name, &mut p.description].into_iter().chain(p.brand.as_mut()).chain(p.categories.iter_mut())
    {
        *text = repaired_windows_1252(text);
    }
    let sku = p
        .image
        .as_deref()
        .and_then(sku_of_image)
        .ok_or("sku: none can be derived (Best Buy's SKU is the number naming the image file)")?;
    let price = p
        .price
        .as_ref()
        .map(|price| cents(price).ok_or_else(|| format!("price: {price} is not an amount in dollars")))
        .transpose()?;
    let mut attributes = Map::new();
    attributes.insert("category_path".into(), p.categories.clone().into());
    if let Some(popularity) = p.popularity {
        attributes.insert("popularity".into(), popularity.into());
    }
    attributes.insert("source".into(), "bestbuy".into());
    Ok(ProductFields {
        sku: Some(sku),
        name: p.name,
        short_description: None,
        description: p.description,
        category: p.categories.last().cloned().unwrap_or_default(),
        brand: p.brand,
        price: price.map(|cents| kit::money::Money::new(cents, SHOP_CURRENCY)),
        stock: p.popularity.map(stock_of_popularity),
        rating: None,
        weight_grams: None,
        attributes: Some(Value::Object(attributes)),
        images: p.image.into_iter().collect(),
    })
}

/// `https://cdn-demo.algolia.com/bestbuy-0118/4984700_sb.jpg` → `BBY-4984700`.
fn sku_of_image(url: &str) -> Option<String> {
    let file = url.rsplit('/').next()?;
    let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("BBY-{digits}"))
}

/// Windows-1252's characters for the C1 controls U+0080 to U+009F (the five it leaves
/// undefined stay as they are).
const WINDOWS_1252_C1: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// `text` with each C1 control character read as the Windows-1252 byte it was mis-decoded from.
fn repaired_windows_1252(text: &str) -> String {
    text.chars()
        .map(|c| match u32::from(c) {
            code @ 0x80..=0x9F => WINDOWS_1252_C1[(code - 0x80) as usize],
            _ => c,
        })
        .collect()
}

fn stock_of_popularity(popularity: i64) -> i64 {
    (popularity / POPULARITY_PER_UNIT).clamp(0, MAX_DERIVED_STOCK)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Layout;
    use super::super::tests::read;
    use super::*;

    fn phone() -> Value {
        json!({
            "name": "AT&T GoPhone - Samsung Galaxy Express 3 4G LTE with 8GB Memory Prepaid Cell Phone",
            "description": "Grab your data and your minutes as you go with this Samsung Galaxy 3 Express smartphone. It has a 4.5-inch screen.",
            "brand": "AT&T GoPhone",
            "categories": ["Cell Phones", "Prepaid Phones", "All Prepaid Phones"],
            "price": 49.99,
            "image": "https://cdn-demo.algolia.com/bestbuy-0118/4984700_sb.jpg",
            "popularity": 21449
        })
    }

    #[test]
    fn a_best_buy_product_maps_field_by_field() {
        let records = read(&format!("[{}]", phone()), Layout::JsonArray, None);
        let p = records[0].as_ref().unwrap();
        assert_eq!(p.sku.as_ref().unwrap().as_str(), "BBY-4984700");
        assert_eq!(p.price.amount, 4_999);
        assert_eq!(p.category.name, "All Prepaid Phones");
        assert_eq!(p.category.slug, "all-prepaid-phones");
        assert_eq!(
            p.attributes["category_path"],
            json!(["Cell Phones", "Prepaid Phones", "All Prepaid Phones"])
        );
        assert_eq!(p.attributes["popularity"], 21449);
        assert_eq!(p.stock, 428);
        assert_eq!(p.rating, 0.0);
        assert_eq!(p.images, ["https://cdn-demo.algolia.com/bestbuy-0118/4984700_sb.jpg"]);
        assert_eq!(p.brand.as_deref(), Some("AT&T GoPhone"));
    }

    #[test]
    fn whole_dollar_prices_are_cents_too() {
        let mut p = phone();
        p["price"] = json!(1);
        assert_eq!(fields(p).unwrap().price.unwrap().amount, 100);
    }

    #[test]
    fn mis_decoded_windows_1252_is_repaired() {
        let mut p = phone();
        p["name"] = json!("Insignia\u{99} - Leather Hip Case - Black");
        p["brand"] = json!("Insignia\u{99}");
        let fields = fields(p).unwrap();
        assert_eq!(fields.name, "Insignia™ - Leather Hip Case - Black");
        assert_eq!(fields.brand.as_deref(), Some("Insignia™"));
        assert_eq!(repaired_windows_1252("\u{80}5 \u{93}new\u{94} \u{81}"), "€5 “new” \u{81}");
    }

    #[test]
    fn stock_follows_popularity() {
        assert_eq!(stock_of_popularity(3), 0);
        assert_eq!(stock_of_popularity(50), 1);
        assert_eq!(stock_of_popularity(1_000_000), 500);
        assert_eq!(stock_of_popularity(-5), 0);
    }

    #[test]
    fn the_sku_comes_from_the_image_file_name() {
        assert_eq!(sku_of_image("https://x/bestbuy/5191101_sb.jpg").as_deref(), Some("BBY-5191101"));
        assert_eq!(sku_of_image("5191101.png").as_deref(), Some("BBY-5191101"));
        assert_eq!(sku_of_image("https://x/bestbuy/photo.jpg"), None);
        let mut p = phone();
        p["image"] = json!("https://x/none.jpg");
        assert!(fields(p).unwrap_err().starts_with("sku: "));
    }

    #[test]
    fn a_product_without_categories_is_refused_by_the_product_rules() {
        let mut p = phone();
        p["categories"] = json!([]);
        let records = read(&format!("[{p}]"), Layout::JsonArray, None);
        assert_eq!(records[0].as_ref().unwrap_err().reason, "category: is required");
    }
}

//! The demo catalog: any number of products that read like a real shop's, made one at a time
//! from a seed, so the same count and seed always give the same products.

use kit::money::Money;
use serde_json::{Map, Value};

use super::rng::SplitMix64;
use super::vocabulary::{DEPARTMENTS, Department, Kind};
use super::{RecordError, SHOP_CURRENCY, parse_record};
use products::domain::NewProduct;
use products::domain::product::ProductFields;

/// The generated products, in order; see [`generate`].
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    next: u64,
    count: u64,
    currency: String,
}

/// `count` products from `seed`. Product *i* depends only on the seed and *i* (so a shorter run
/// is a prefix of a longer one), and its SKU is derived from *i*, e.g. `ELE-VOL-000123`: a
/// re-run updates the same products instead of adding new ones. Prices are in
/// [`SHOP_CURRENCY`] unless [`Generator::in_currency`] says otherwise.
pub fn generate(count: u64, seed: u64) -> Generator {
    Generator { seed, next: 0, count, currency: SHOP_CURRENCY.to_owned() }
}

impl Generator {
    /// The same products priced in `currency` (the amounts read well in any currency with
    /// cents).
    pub fn in_currency(self, currency: &str) -> Self {
        Self { currency: currency.to_owned(), ..self }
    }
}

impl Iterator for Generator {
    type Item = Result<NewProduct, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let fields = product_fields(self.seed, index, &self.currency);
        Some(parse_record(index as usize + 1, Ok(fields), &self.currency))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Generator {}

/// The fields of product `index` (0-based) of the catalog of `seed`.
pub(crate) fn product_fields(seed: u64, index: u64, currency: &str) -> ProductFields {
    // Product i is seeded by the i-th output of the seed's own SplitMix64 stream.
    let product_seed =
        SplitMix64::new(seed.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))).next_u64();
    let mut rng = SplitMix64::new(product_seed);
    let choice = Choice::draw(&mut rng);
    let Choice { department, kind, brand, .. } = choice;
    ProductFields {
        sku: Some(format!("{}-{}-{:06}", code(department.name), code(brand), index + 1)),
        name: choice.name(),
        short_description: Some(choice.short_description()),
        description: choice.description(&mut rng),
        category: department.name.to_owned(),
        // For books the brand is the publisher.
        brand: Some(brand.to_owned()),
        price: Some(Money::new(shelf_price(&mut rng, kind.dollars), currency)),
        stock: Some(stock(&mut rng)),
        rating: Some(rating(&mut rng)),
        weight_grams: Some(weight_grams(&mut rng, kind.grams)),
        attributes: Some(Value::Object(choice.attributes())),
        images: Vec::new(),
    }
}

/// The words drawn for one product.
struct Choice {
    department: &'static Department,
    kind: &'static Kind,
    brand: &'static str,
    adjective: &'static str,
    material: &'static str,
    model: Option<&'static str>,
    color: Option<&'static str>,
    size: Option<&'static str>,
    extra: &'static str,
}

impl Choice {
    fn draw(rng: &mut SplitMix64) -> Self {
        let department = rng.pick(DEPARTMENTS);
        let kind = rng.pick(department.kinds);
        let brand = *rng.pick(department.brands);
        let adjective = *rng.pick(department.adjectives);
        let materials = if kind.materials.is_empty() { department.materials } else { kind.materials };
        let material = *rng.pick(materials);
        let model = optional(rng, department.models, 60);
        let color = optional(rng, department.colors, 100);
        let size = optional(rng, department.sizes, 100);
        let extra = *rng.pick(department.extra.1);
        Self { department, kind, brand, adjective, material, model, color, size, extra }
    }

    fn name(&self) -> String {
        let d = self.department;
        if d.titled {
            return format!("{} {}: A {}", self.adjective, self.material, self.kind.noun);
        }
        let mut name = format!("{} {}", self.brand, self.adjective);
        if d.material_in_name {
            name = format!("{name} {}", self.material);
        }
        name = format!("{name} {}", self.kind.noun);
        if let Some(model) = self.model {
            name = format!("{name} {model}");
        }
        name
    }

    /// Materials named in the title are title-case; others are written as in a sentence
    /// already (and may hold acronyms: `BPA-free plastic`).
    fn material_in_sentence(&self) -> String {
        if self.department.material_in_name { self.material.to_lowercase() } else { self.material.to_owned() }
    }

    fn is_plural(&self) -> bool {
        let noun = self.kind.noun;
        noun.ends_with('s') && !noun.ends_with("ss")
    }

    fn short_description(&self) -> String {
        let noun = self.kind.noun.to_lowercase();
        let purpose = self.kind.purpose;
        if self.department.titled {
            return format!("A {noun} for {purpose}.");
        }
        let adjective = self.adjective.to_lowercase();
        let phrase = if self.is_plural() {
            format!("{adjective} {noun}")
        } else {
            format!("{} {adjective} {noun}", indefinite_article(&adjective))
        };
        format!("{} for {purpose}.", capitalized(&phrase))
    }

    fn description(&self, rng: &mut SplitMix64) -> String {
        let values = [
            ("brand", self.brand.to_owned()),
            ("adjective", self.adjective.to_lowercase()),
            ("material", self.material_in_sentence()),
            ("noun", self.kind.noun.to_lowercase()),
            ("purpose", self.kind.purpose.to_owned()),
            ("title", format!("{} {}", self.adjective, self.material)),
            ("is", if self.is_plural() { "are" } else { "is" }.to_owned()),
            ("this", if self.is_plural() { "These" } else { "This" }.to_owned()),
            ("color", self.color.unwrap_or_default().to_owned()),
            ("size", self.size.unwrap_or_default().to_owned()),
            ("extra", self.extra.to_owned()),
        ];
        let mut sentences =
            vec![fill(self.department.opening, &values), (*rng.pick(self.department.benefits)).to_owned()];
        if rng.chance(60) {
            let detail = *rng.pick(self.department.details);
            sentences.push(capitalized(&fill(detail, &values)));
        }
        capitalized(&sentences.join(" "))
    }

    fn attributes(&self) -> Map<String, Value> {
        let mut attributes = Map::new();
        if let Some(color) = self.color {
            attributes.insert("color".into(), color.into());
        }
        if let Some(size) = self.size {
            attributes.insert("size".into(), size.into());
        }
        if !self.department.titled {
            attributes.insert("material".into(), self.material_in_sentence().into());
        }
        attributes.insert(self.department.extra.0.into(), self.extra.into());
        attributes
    }
}

/// One of `items` `percent` times in a hundred; never when there are none.
fn optional(rng: &mut SplitMix64, items: &[&'static str], percent: u64) -> Option<&'static str> {
    if items.is_empty() || !rng.chance(percent) { None } else { Some(*rng.pick(items)) }
}

/// The first three letters or digits, upper-cased: `Home & Kitchen` → `HOM`.
fn code(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).take(3).collect::<String>().to_ascii_uppercase()
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn indefinite_article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// A shelf price in cents: cheap items are more common than dear ones (the product of two
/// uniform draws leans low), and prices end in .99, .49 or .00 as shops' do.
fn shelf_price(rng: &mut SplitMix64, (low, high): (i64, i64)) -> i64 {
    const MAX_SKEW: i64 = 999 * 999;
    let skew = (rng.below(1000) * rng.below(1000)) as i64;
    let dollars = low + (high - low) * skew / MAX_SKEW;
    match rng.below(100) {
        0..60 => dollars * 100 - 1,
        60..85 => dollars * 100 - 51,
        _ => dollars * 100,
    }
}

/// Some sold out, a few nearly gone, most between 5 and 500 (leaning low).
fn stock(rng: &mut SplitMix64) -> i64 {
    match rng.below(100) {
        0..7 => 0,
        7..15 => rng.between(1, 4),
        _ => 5 + 495 * (rng.below(1000) * rng.below(1000)) as i64 / (999 * 999),
    }
}

/// 1.0 to 5.0 with one decimal: mostly 3.4 to 5.0 around 4.2, as shop ratings lean, with a
/// few poorly rated products.
fn rating(rng: &mut SplitMix64) -> f64 {
    let tenths = if rng.chance(5) { rng.between(10, 29) } else { 50 - rng.between(0, 8) - rng.between(0, 8) };
    tenths as f64 / 10.0
}

/// Grams, rounded to 5 g above 100 g.
fn weight_grams(rng: &mut SplitMix64, (light, heavy): (i64, i64)) -> i64 {
    let grams = rng.between(light, heavy);
    if grams > 100 { (grams + 2) / 5 * 5 } else { grams }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn products(count: u64, seed: u64) -> Vec<NewProduct> {
        generate(count, seed).map(|p| p.unwrap()).collect()
    }

    #[test]
    fn the_same_count_and_seed_give_the_same_products() {
        assert_eq!(products(300, 7), products(300, 7));
        assert_ne!(products(20, 7), products(20, 8));
    }

    #[test]
    fn a_shorter_run_is_a_prefix_of_a_longer_one() {
        assert_eq!(products(50, 3)[..], products(120, 3)[..50]);
    }

    #[test]
    fn every_generated_product_is_valid() {
        for (i, product) in generate(5_000, 11).enumerate() {
            assert!(product.is_ok(), "product {i}: {:?}", product.err());
        }
    }

    #[test]
    fn skus_are_unique_and_derived_from_the_position() {
        let all = products(5_000, 5);
        let skus: HashSet<_> = all.iter().map(|p| p.sku.clone().unwrap()).collect();
        assert_eq!(skus.len(), all.len());
        let first = all[0].sku.as_ref().unwrap().as_str();
        assert!(first.ends_with("-000001"), "{first}");
        assert_eq!(first.len(), "ELE-VOL-000001".len());
    }

    #[test]
    fn prices_are_positive_cents_ending_like_shop_prices() {
        for p in products(5_000, 1) {
            assert!(p.price.amount > 0, "{}", p.name);
            assert_eq!(p.price.currency, "USD");
            assert!(matches!(p.price.amount % 100, 99 | 49 | 0), "{} costs {}", p.name, p.price.amount);
        }
    }

    #[test]
    fn prices_follow_their_department() {
        let all = products(5_000, 2);
        let median = |category: &str| {
            let mut prices: Vec<i64> =
                all.iter().filter(|p| p.category.slug == category).map(|p| p.price.amount).collect();
            prices.sort_unstable();
            prices[prices.len() / 2]
        };
        assert!(median("electronics") > 3 * median("grocery"));
        assert!(median("office") > median("books"));
    }

    #[test]
    fn stock_ratings_and_weights_look_like_a_shop() {
        let all = products(5_000, 4);
        let sold_out = all.iter().filter(|p| p.stock == 0).count();
        assert!((100..=700).contains(&sold_out), "{sold_out} of 5000 sold out");
        assert!(all.iter().all(|p| p.stock <= 500));
        let usual = all.iter().filter(|p| (5..=500).contains(&p.stock)).count();
        assert!(usual > all.len() * 3 / 4);
        for p in &all {
            assert!((1.0..=5.0).contains(&p.rating), "{}", p.rating);
            assert_eq!((p.rating * 10.0).round() / 10.0, p.rating, "one decimal");
            assert!(p.weight_grams.is_some_and(|g| g > 0));
        }
        let mean = all.iter().map(|p| p.rating).sum::<f64>() / all.len() as f64;
        assert!((3.8..4.3).contains(&mean), "mean rating {mean}");
    }

    #[test]
    fn the_catalog_spans_twelve_departments() {
        let categories: HashSet<_> = products(2_000, 9).into_iter().map(|p| p.category.slug).collect();
        assert_eq!(categories.len(), 12, "{categories:?}");
        assert!(categories.contains("home-kitchen"));
    }

    #[test]
    fn texts_are_complete_sentences_without_placeholders() {
        for p in products(3_000, 6) {
            for text in [&p.name, &p.description, &p.short_description] {
                assert!(!text.contains('{') && !text.contains("  "), "{text}");
            }
            let sentences = p.description.matches(". ").count() + 1;
            assert!((2..=3).contains(&sentences), "{}", p.description);
            assert!(p.description.ends_with('.') && p.short_description.ends_with('.'));
            assert!(p.description.starts_with(char::is_uppercase), "{}", p.description);
            assert!(!p.attributes.is_empty());
        }
    }

    #[test]
    fn prices_can_be_in_the_shop_currency() {
        let euros: Vec<_> = generate(3, 1).in_currency("EUR").map(|p| p.unwrap().price).collect();
        let dollars: Vec<_> = generate(3, 1).map(|p| p.unwrap().price).collect();
        for (euro, dollar) in euros.iter().zip(&dollars) {
            assert_eq!((euro.amount, euro.currency.as_str()), (dollar.amount, "EUR"));
        }
    }

    #[test]
    fn a_product_reads_like_a_shop_listing() {
        let p = &products(1, 42)[0];
        // Print one so a reader of the test output can judge.
        println!("{p:#?}");
        assert!(p.name.split(' ').count() >= 2);
        assert!(p.brand.is_some());
    }

    #[test]
    fn grammar_helpers() {
        assert_eq!(code("Home & Kitchen"), "HOM");
        assert_eq!(code("Lumière Botanics"), "LUM");
        assert_eq!(capitalized("éclair"), "Éclair");
        assert_eq!(indefinite_article("ultralight"), "an");
        assert_eq!(fill("{a} and {b}", &[("a", "x".into()), ("b", "y".into())]), "x and y");
    }
}

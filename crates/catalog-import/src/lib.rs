//! Catalogue import for the `mercato` CLI (`mercato seed`, and the demo catalogue of
//! `mercato up`): the demo catalogue generator, readers of catalogue files, and their load into
//! the products service's store in batches, through its [`CatalogImport`] API.
//!
//! Records stream from a source (the [`generate`]d catalogue or an [`import`]ed file) one at a
//! time; [`run`] gathers them into batches of [`BATCH_SIZE`] for
//! [`CatalogImport::upsert_batch`], which updates a product whose SKU already exists, so
//! importing the same catalogue twice never duplicates it. A bad record is set aside with its
//! number and the reason, and the rest are imported. Every record is parsed by the products
//! service's own rules (`NewProduct::parse`), so an import accepts what the admin API accepts.

mod formats;
mod generator;
mod rng;
mod vocabulary;

use std::time::{Duration, Instant};

pub use formats::{Format, ImportError, Records, import};
pub use generator::{Generator, generate};

use products::domain::NewProduct;
use products::domain::product::ProductFields;
use products::store::{CatalogImport, StoreError};

/// The currency records are checked against unless told otherwise (`in_currency`): the
/// shop's default, and the currency of both public catalogs mercato reads (DummyJSON, Best
/// Buy) and of the demo catalog.
pub const SHOP_CURRENCY: &str = "USD";

/// Products per [`CatalogImport::upsert_batch`] call (one transaction each).
pub const BATCH_SIZE: usize = 1_000;

/// How many products the demo catalog of a new embedded shop holds.
pub const DEMO_PRODUCTS: u64 = 1_000;

/// The seed of the demo catalog, so every new shop starts with the same products.
pub const DEMO_SEED: u64 = 20_261_125;

/// A record that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record}: {reason}")]
pub struct RecordError {
    /// 1-based position of the record in its source (for JSON Lines: its line number).
    pub record: usize,
    /// Each bad field as `field: problem`, separated by `; `, or what made the record unreadable.
    pub reason: String,
}

/// Where an import stands, reported after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// Records read so far, good and bad.
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Records rejected so far.
    pub rejected: u64,
    /// The records rejected since the previous report.
    pub newly_rejected: &'a [RecordError],
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Records read, good and bad.
    pub read: u64,
    /// Products created.
    pub inserted: u64,
    /// Products whose SKU existed and that were updated (a record repeating a SKU within one
    /// batch counts once: the last one wins).
    pub updated: u64,
    /// Records that were not imported, in the order they were read.
    pub rejected: Vec<RecordError>,
    pub elapsed: Duration,
}

impl SeedSummary {
    /// Products written: created or updated.
    pub fn imported(&self) -> u64 {
        self.inserted + self.updated
    }
}

/// The database failed during an import. Batches before the failing one stay imported.
#[derive(Debug, thiserror::Error)]
#[error(
    "the import stopped after {imported} products were written (running it again is safe: it updates by SKU)",
    imported = partial.imported()
)]
pub struct SeedError {
    /// What was done before the failure.
    pub partial: SeedSummary,
    #[source]
    pub source: StoreError,
}

/// Loads `records` into `store` in batches of `batch_size` (at least 1), calling
/// `on_progress` after each batch. Rejected records are collected, not fatal; a database error
/// stops the import.
pub async fn run<I>(
    store: &dyn CatalogImport,
    records: I,
    batch_size: usize,
    mut on_progress: impl FnMut(&Progress<'_>),
) -> Result<SeedSummary, SeedError>
where
    I: IntoIterator<Item = Result<NewProduct, RecordError>>,
{
    let started = Instant::now();
    let batch_size = batch_size.max(1);
    let mut summary = SeedSummary::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut reported_rejections = 0;
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        for record in records.by_ref().take(batch_size) {
            summary.read += 1;
            match record {
                Ok(product) => batch.push(product),
                Err(rejected) => summary.rejected.push(rejected),
            }
        }
        if !batch.is_empty() {
            match store.upsert_batch(std::mem::take(&mut batch)).await {
                Ok(written) => {
                    summary.inserted += written.inserted;
                    summary.updated += written.updated;
                }
                Err(source) => {
                    summary.elapsed = started.elapsed();
                    return Err(SeedError { partial: summary, source });
                }
            }
        }
        on_progress(&Progress {
            read: summary.read,
            inserted: summary.inserted,
            updated: summary.updated,
            rejected: summary.rejected.len() as u64,
            newly_rejected: &summary.rejected[reported_rejections..],
        });
        reported_rejections = summary.rejected.len();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Fills a new shop's catalog with the demo products ([`DEMO_PRODUCTS`] of seed
/// [`DEMO_SEED`], priced in [`SHOP_CURRENCY`]). Safe to call again: it updates the same SKUs.
pub async fn seed_demo(store: &dyn CatalogImport, currency: &str) -> Result<SeedSummary, SeedError> {
    run(store, generate(DEMO_PRODUCTS, DEMO_SEED).in_currency(currency), BATCH_SIZE, |_| {}).await
}

/// Turns the fields read from record number `record` into a product priced in `currency`, or
/// says what is wrong.
pub(crate) fn parse_record(
    record: usize,
    fields: Result<ProductFields, String>,
    currency: &str,
) -> Result<NewProduct, RecordError> {
    let reject = |reason: String| RecordError { record, reason };
    let fields = fields.map_err(reject)?;
    NewProduct::parse(fields, currency).map_err(|e| {
        let problems: Vec<String> = if e.field_errors().is_empty() {
            vec![e.detail().to_owned()]
        } else {
            e.field_errors().iter().map(|f| format!("{}: {}", f.field, f.message)).collect()
        };
        reject(problems.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use kit::money::Money;

    use super::*;

    fn fields() -> ProductFields {
        ProductFields {
            name: "Lemon".into(),
            description: "A lemon.".into(),
            category: "Grocery".into(),
            price: Some(Money::new(99, "USD")),
            ..ProductFields::default()
        }
    }

    #[test]
    fn a_good_record_parses() {
        let product = parse_record(3, Ok(fields()), "USD").unwrap();
        assert_eq!(product.name, "Lemon");
    }

    #[test]
    fn every_bad_field_is_named_with_the_record_number() {
        let bad = ProductFields { name: String::new(), price: None, ..fields() };
        let err = parse_record(17, Ok(bad), "USD").unwrap_err();
        assert_eq!(err.record, 17);
        assert_eq!(err.reason, "name: is required; price: is required");
        assert_eq!(err.to_string(), "record 17: name: is required; price: is required");
    }

    #[test]
    fn unreadable_records_keep_their_reason() {
        let err = parse_record(2, Err("malformed JSON".into()), "USD").unwrap_err();
        assert_eq!(err, RecordError { record: 2, reason: "malformed JSON".into() });
    }

    #[test]
    fn image_urls_the_store_cannot_keep_are_refused() {
        let long = ProductFields { images: vec!["x".repeat(513)], ..fields() };
        assert!(parse_record(1, Ok(long), "USD").unwrap_err().reason.starts_with("images: "));
        let many = ProductFields { images: vec!["a.jpg".into(); 21], ..fields() };
        assert!(parse_record(1, Ok(many), "USD").is_err());
        let nul = ProductFields { attributes: Some(serde_json::json!({"a": ["x\0"]})), ..fields() };
        assert_eq!(
            parse_record(1, Ok(nul), "USD").unwrap_err().reason,
            "attributes: must not contain NUL characters"
        );
        let fine = ProductFields { images: vec!["https://cdn.example/a.jpg".into()], ..fields() };
        assert_eq!(parse_record(1, Ok(fine), "USD").unwrap().images.len(), 1);
    }
}

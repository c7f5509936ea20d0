//! Catalog files, read one record at a time: their layout (a JSON array, JSON Lines, CSV) and
//! whose fields they use (mercato's own, DummyJSON's, the Algolia Best Buy sample's).

mod bestbuy;
mod delimited;
mod dummyjson;
mod json;
mod mercato;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use super::{RecordError, SHOP_CURRENCY, parse_record};
use products::domain::NewProduct;
use products::domain::product::ProductFields;

/// Whose field names and conventions a catalog file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The body of `POST /api/v1/products` (plus `rating` and `images`), as JSON, JSON Lines
    /// or CSV.
    Mercato,
    /// DummyJSON's `products.json`.
    DummyJson,
    /// Algolia's Best Buy sample (`ecommerce.json`).
    BestBuy,
}

impl Format {
    /// The names `--format` accepts.
    pub const NAMES: [&'static str; 3] = ["mercato", "dummyjson", "bestbuy"];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mercato => "mercato",
            Self::DummyJson => "dummyjson",
            Self::BestBuy => "bestbuy",
        }
    }

    /// Recognises a format by the fields of a file's first record: `title`, `sku` and
    /// `discountPercentage` are DummyJSON's; `categories` and `popularity` are Best Buy's;
    /// anything else is read as mercato's.
    pub fn detect(first: &Value) -> Self {
        let has = |field: &str| first.get(field).is_some();
        if has("title") && has("sku") && has("discountPercentage") {
            Self::DummyJson
        } else if has("categories") && has("popularity") {
            Self::BestBuy
        } else {
            Self::Mercato
        }
    }

    /// The product fields of one JSON record in this format.
    fn fields(self, record: Value) -> Result<ProductFields, String> {
        match self {
            Self::Mercato => mercato::fields(record),
            Self::DummyJson => dummyjson::fields(record),
            Self::BestBuy => bestbuy::fields(record),
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "mercato" => Ok(Self::Mercato),
            "dummyjson" => Ok(Self::DummyJson),
            "bestbuy" => Ok(Self::BestBuy),
            _ => Err(format!("unknown format {name:?}: use one of {}", Self::NAMES.join(", "))),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the records of a file are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    JsonArray,
    JsonLines,
    Csv,
}

/// Why a catalog file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file's layout or header rules it out, e.g. an unknown CSV column.
    #[error("{}: {problem}", path.display())]
    Unusable { path: PathBuf, problem: String },
}

/// The records of a catalog file, each a product or the reason it is not one. Reads lazily:
/// only one record (for a JSON array, a small bounded queue of them) is in memory at a time.
pub struct Records {
    source: Source,
    format: Option<Format>,
    currency: String,
}

enum Source {
    /// JSON records, numbered, not yet mapped to product fields.
    Json(Box<dyn Iterator<Item = (usize, Result<Value, String>)> + Send>),
    /// CSV rows, already mapped (CSV is mercato's format only).
    Csv(Box<delimited::CsvRecords>),
}

impl Records {
    /// Checks prices against `currency` (the shop's) rather than [`SHOP_CURRENCY`]; CSV
    /// prices without a `currency` column are read in it too.
    pub fn in_currency(mut self, currency: &str) -> Self {
        if let Source::Csv(rows) = &mut self.source {
            rows.default_currency = currency.to_owned();
        }
        Self { currency: currency.to_owned(), ..self }
    }

    /// The format the records are read in: as given, or as detected from the first record
    /// (`None` until a record has been read).
    pub fn format(&self) -> Option<Format> {
        match self.source {
            Source::Csv(_) => Some(Format::Mercato),
            Source::Json(_) => self.format,
        }
    }
}

impl Iterator for Records {
    type Item = Result<NewProduct, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (record, fields) = match &mut self.source {
            Source::Csv(rows) => rows.next()?,
            Source::Json(values) => {
                let (record, value) = values.next()?;
                let fields = value.and_then(|value| {
                    let format = *self.format.get_or_insert_with(|| Format::detect(&value));
                    format.fields(value)
                });
                (record, fields)
            }
        };
        Some(parse_record(record, fields, &self.currency))
    }
}

/// Opens the catalog at `path`. The layout comes from the extension (`.json`, `.jsonl` or
/// `.ndjson`, `.csv`) or, failing that, from the first character; the format is `format` or
/// detected from the first record ([`Format::detect`]). Prices are checked against
/// [`SHOP_CURRENCY`] unless [`Records::in_currency`] says otherwise.
pub fn import(path: &Path, format: Option<Format>) -> Result<Records, ImportError> {
    let read_error = |source| ImportError::Read { path: path.to_owned(), source };
    let file = File::open(path).map_err(read_error)?;
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(64 * 1024, file));
    let first = first_significant_byte(&mut reader).map_err(read_error)?;
    let layout = layout_of(path, first);
    records(reader, layout, format)
        .map_err(|problem| ImportError::Unusable { path: path.to_owned(), problem })
}

/// The records of `reader`, laid out as `layout`.
pub(crate) fn records(
    reader: Box<dyn BufRead + Send>,
    layout: Layout,
    format: Option<Format>,
) -> Result<Records, String> {
    let source = match layout {
        Layout::JsonArray => Source::Json(Box::new(json::array_records(reader)?)),
        Layout::JsonLines => Source::Json(Box::new(json::line_records(reader))),
        Layout::Csv => {
            if let Some(other @ (Format::DummyJson | Format::BestBuy)) = format {
                return Err(format!("the {other} format is JSON, this file is CSV"));
            }
            Source::Csv(Box::new(delimited::CsvRecords::new(reader)?))
        }
    };
    Ok(Records { source, format, currency: SHOP_CURRENCY.to_owned() })
}

fn layout_of(path: &Path, first: Option<u8>) -> Layout {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match (extension.as_deref(), first) {
        (Some("jsonl" | "ndjson"), _) => Layout::JsonLines,
        (Some("csv"), _) => Layout::Csv,
        (_, Some(b'[')) => Layout::JsonArray,
        (_, Some(b'{')) => Layout::JsonLines,
        (Some("json"), _) => Layout::JsonArray,
        _ => Layout::Csv,
    }
}

/// Skips a UTF-8 byte order mark, and peeks at the first byte that is not whitespace, without
/// consuming it (the whitespace before it is kept, so line numbers stay right).
fn first_significant_byte(reader: &mut Box<dyn BufRead + Send>) -> io::Result<Option<u8>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if reader.fill_buf()?.starts_with(BOM) {
        reader.consume(BOM.len());
    }
    // The first buffer (64 KiB) is enough to decide; a file that starts with more whitespace
    // than that is read as CSV or by its extension.
    Ok(reader.fill_buf()?.iter().copied().find(|b| !b.is_ascii_whitespace()))
}

/// A serde error's message, prefixed with the path of the field it is about.
fn field_error(error: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if path == "." { inner.to_string() } else { format!("{path}: {inner}") }
}

/// Dollars in a JSON number (`9.99`, `20`) as cents, read from the number's text: never
/// through floating-point arithmetic.
fn cents(number: &serde_json::Number) -> Option<i64> {
    kit::money::Money::minor_units_from_decimal(&number.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The records of an in-memory file.
    pub(crate) fn read(
        text: &str,
        layout: Layout,
        format: Option<Format>,
    ) -> Vec<Result<NewProduct, RecordError>> {
        records(Box::new(io::Cursor::new(text.as_bytes().to_vec())), layout, format).unwrap().collect()
    }

    #[test]
    fn formats_are_detected_by_their_first_record() {
        let dummy = serde_json::json!({"id": 1, "title": "x", "sku": "A-1", "discountPercentage": 3.5});
        assert_eq!(Format::detect(&dummy), Format::DummyJson);
        let bestbuy = serde_json::json!({"name": "x", "categories": ["Phones"], "popularity": 3});
        assert_eq!(Format::detect(&bestbuy), Format::BestBuy);
        let mercato = serde_json::json!({"name": "x", "sku": "A-1", "title": "not enough"});
        assert_eq!(Format::detect(&mercato), Format::Mercato);
    }

    #[test]
    fn format_names_round_trip() {
        for name in Format::NAMES {
            assert_eq!(name.parse::<Format>().unwrap().name(), name);
        }
        assert!("amazon".parse::<Format>().unwrap_err().contains("mercato, dummyjson, bestbuy"));
    }

    #[test]
    fn layout_comes_from_the_extension_then_the_first_character() {
        let at = |name: &str, first: u8| layout_of(Path::new(name), Some(first));
        assert_eq!(at("a.jsonl", b'{'), Layout::JsonLines);
        assert_eq!(at("a.NDJSON", b'{'), Layout::JsonLines);
        assert_eq!(at("a.csv", b'n'), Layout::Csv);
        assert_eq!(at("a.json", b'['), Layout::JsonArray);
        assert_eq!(at("a.json", b'{'), Layout::JsonLines);
        assert_eq!(at("catalog", b'['), Layout::JsonArray);
        assert_eq!(at("catalog", b'{'), Layout::JsonLines);
        assert_eq!(at("catalog.txt", b'n'), Layout::Csv);
    }

    #[test]
    fn a_byte_order_mark_and_leading_whitespace_are_looked_past() {
        let mut reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(b"\xEF\xBB\xBF \n [1]".to_vec()));
        assert_eq!(first_significant_byte(&mut reader).unwrap(), Some(b'['));
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, " \n [1]");
    }

    #[test]
    fn json_numbers_become_cents_exactly() {
        let price: serde_json::Number = serde_json::from_str("9.99").unwrap();
        assert_eq!(cents(&price), Some(999));
        let price: serde_json::Number = serde_json::from_str("1").unwrap();
        assert_eq!(cents(&price), Some(100));
        let price: serde_json::Number = serde_json::from_str("0.1").unwrap();
        assert_eq!(cents(&price), Some(10));
        let negative: serde_json::Number = serde_json::from_str("-5").unwrap();
        assert_eq!(cents(&negative), None);
    }

    #[test]
    fn dummyjson_and_bestbuy_are_refused_for_csv_files() {
        let csv = Box::new(io::Cursor::new(b"name\n".to_vec()));
        let err = records(csv, Layout::Csv, Some(Format::BestBuy)).err().unwrap();
        assert!(err.contains("JSON"), "{err}");
    }
}

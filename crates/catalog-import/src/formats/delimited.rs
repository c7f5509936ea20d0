//! mercato's catalog as CSV: a header row naming the columns, then one product per row.
//!
//! Columns: `name`, `description` and `category` are required, and `price` (decimal dollars,
//! `19.99`) or `price_cents` (`1999`); optional are `sku`, `short_description`, `brand`,
//! `currency` (default: the shop's), `stock`, `rating`, `weight_grams`, `attributes` (a JSON object)
//! and `images` (URLs separated by `|`). Empty cells are absent values. An unknown column
//! rejects the file, so a misspelt one is never silently dropped.

use std::io::BufRead;

use csv::StringRecord;
use kit::money::Money;

use crate::SHOP_CURRENCY;
use products::domain::product::ProductFields;

const COLUMNS: [&str; 14] = [
    "sku",
    "name",
    "short_description",
    "description",
    "category",
    "brand",
    "price",
    "price_cents",
    "currency",
    "stock",
    "rating",
    "weight_grams",
    "attributes",
    "images",
];

/// Rows of a CSV catalog, numbered from 1 after the header, mapped to product fields.
pub(crate) struct CsvRecords {
    reader: csv::Reader<Box<dyn BufRead + Send>>,
    /// For each of [`COLUMNS`], its position in a row, if the file has it.
    positions: [Option<usize>; COLUMNS.len()],
    row: StringRecord,
    record: usize,
    failed: bool,
    /// The currency of prices in a file without a `currency` column.
    pub(super) default_currency: String,
}

impl CsvRecords {
    /// Reads and checks the header.
    pub(crate) fn new(reader: Box<dyn BufRead + Send>) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader);
        let header = reader.headers().map_err(|e| format!("cannot read the CSV header: {e}"))?.clone();
        let mut positions = [None; COLUMNS.len()];
        for (position, name) in header.iter().enumerate() {
            let name = name.to_ascii_lowercase();
            let column = COLUMNS
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| format!("unknown CSV column {name:?} (known: {})", COLUMNS.join(", ")))?;
            if positions[column].replace(position).is_some() {
                return Err(format!("the CSV column {name:?} appears twice"));
            }
        }
        let has =
            |name: &str| COLUMNS.iter().position(|c| *c == name).is_some_and(|i| positions[i].is_some());
        let missing: Vec<&str> =
            ["name", "description", "category"].into_iter().filter(|column| !has(column)).collect();
        if !missing.is_empty() {
            return Err(format!("the CSV header lacks the column(s) {}", missing.join(", ")));
        }
        if !has("price") && !has("price_cents") {
            return Err("the CSV header needs a price (decimal dollars) or price_cents column".into());
        }
        let default_currency = SHOP_CURRENCY.to_owned();
        Ok(Self { reader, positions, row: StringRecord::new(), record: 0, failed: false, default_currency })
    }

    /// The non-empty cell of `column` in the current row.
    fn cell(&self, column: &str) -> Option<&str> {
        let index = COLUMNS.iter().position(|c| *c == column)?;
        self.positions[index].and_then(|p| self.row.get(p)).filter(|cell| !cell.is_empty())
    }

    fn fields(&self) -> Result<ProductFields, String> {
        let mut problems = Vec::new();
        let price = noted(&mut problems, "price", self.price());
        let stock = noted(&mut problems, "stock", self.number("stock", "a whole number"));
        let rating = noted(&mut problems, "rating", self.number("rating", "a number from 0 to 5"));
        let weight_grams =
            noted(&mut problems, "weight_grams", self.number("weight_grams", "a whole number of grams"));
        let attributes = noted(
            &mut problems,
            "attributes",
            self.cell("attributes")
                .map(|json| serde_json::from_str(json).map_err(|e| format!("must be a JSON object: {e}")))
                .transpose(),
        );
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let text = |column| self.cell(column).map(str::to_owned);
        Ok(ProductFields {
            sku: text("sku"),
            name: text("name").unwrap_or_default(),
            short_description: text("short_description"),
            description: text("description").unwrap_or_default(),
            category: text("category").unwrap_or_default(),
            brand: text("brand"),
            price,
            stock,
            rating,
            weight_grams,
            attributes,
            images: self
                .cell("images")
                .map(|cell| {
                    cell.split('|').map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned).collect()
                })
                .unwrap_or_default(),
        })
    }

    fn price(&self) -> Result<Option<Money>, String> {
        let currency = self.cell("currency").unwrap_or(&self.default_currency).to_ascii_uppercase();
        match (self.cell("price"), self.cell("price_cents")) {
            (Some(_), Some(_)) => Err("give price or price_cents, not both".into()),
            (Some(decimal), None) => Money::minor_units_from_decimal(decimal)
                .map(|cents| Some(Money::new(cents, &currency)))
                .ok_or_else(|| format!("{decimal:?} is not an amount like 19.99")),
            (None, Some(cents)) => cents
                .parse()
                .map(|cents| Some(Money::new(cents, &currency)))
                .map_err(|_| format!("price_cents {cents:?} is not a whole number of cents")),
            (None, None) => Ok(None),
        }
    }

    fn number<T: std::str::FromStr>(&self, column: &str, expected: &str) -> Result<Option<T>, String> {
        self.cell(column)
            .map(|cell| cell.parse().map_err(|_| format!("{cell:?} is not {expected}")))
            .transpose()
    }
}

/// The value of a cell, or `None` with its problem noted.
fn noted<T>(problems: &mut Vec<String>, field: &str, cell: Result<Option<T>, String>) -> Option<T> {
    cell.unwrap_or_else(|problem| {
        problems.push(format!("{field}: {problem}"));
        None
    })
}

impl Iterator for CsvRecords {
    type Item = (usize, Result<ProductFields, String>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut row = std::mem::take(&mut self.row);
        let read = self.reader.read_record(&mut row);
        self.row = row;
        self.record += 1;
        match read {
            Ok(false) => None,
            Ok(true) => Some((self.record, self.fields())),
            // A row of the wrong length or with invalid UTF-8 is one bad record; the next
            // row is still read.
            Err(e) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                Some((self.record, Err(format!("unreadable CSV row: {e}"))))
            }
            Err(e) => {
                self.failed = true;
                Some((self.record, Err(format!("cannot read the file, reading stopped here: {e}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::super::{Format, Layout};
    use super::*;

    fn fields_of(csv: &str) -> Vec<(usize, Result<ProductFields, String>)> {
        CsvRecords::new(Box::new(std::io::Cursor::new(csv.as_bytes().to_vec()))).unwrap().collect()
    }

    #[test]
    fn rows_become_products() {
        let csv = "sku,name,description,category,brand,price,stock,rating,weight_grams,attributes,images\n\
                   LMP-1,Desk Lamp,A warm lamp. Dimmable.,Office,Lumen,49.99,12,4.5,900,\"{\"\"color\"\":\"\"oak\"\"}\",https://x.test/a.jpg | https://x.test/b.jpg\n";
        let products = read(csv, Layout::Csv, Some(Format::Mercato));
        let lamp = products[0].as_ref().unwrap();
        assert_eq!(lamp.sku.as_ref().unwrap().as_str(), "LMP-1");
        assert_eq!((lamp.price.amount, lamp.price.currency.as_str()), (4999, "USD"));
        assert_eq!((lamp.stock, lamp.rating, lamp.weight_grams), (12, 4.5, Some(900)));
        assert_eq!(lamp.attributes["color"], "oak");
        assert_eq!(lamp.images, ["https://x.test/a.jpg", "https://x.test/b.jpg"]);
        assert_eq!(lamp.short_description, "A warm lamp.");
    }

    #[test]
    fn price_cents_and_empty_cells() {
        let rows =
            fields_of("name,description,category,price_cents,stock,brand\nPen,Blue ink.,Office,250,,\n");
        let pen = rows[0].1.as_ref().unwrap();
        assert_eq!(pen.price, Some(Money::new(250, "USD")));
        assert_eq!((pen.stock, pen.brand.as_deref()), (None, None));
    }

    #[test]
    fn bad_cells_are_named_and_the_next_row_is_still_read() {
        let csv = "name,description,category,price,stock,attributes\n\
                   A,a.,Office,cheap,many,[1]\n\
                   B,b.,Office,1.00,1\n\
                   C,c.,Office,2.00,2,\n";
        let rows = fields_of(csv);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 1);
        let reason = rows[0].1.as_ref().unwrap_err();
        assert!(reason.starts_with("price: \"cheap\" is not an amount like 19.99; stock: "), "{reason}");
        assert!(rows[1].1.as_ref().unwrap_err().starts_with("unreadable CSV row"), "wrong length");
        assert!(rows[2].1.is_ok());
        // `[1]` parses as JSON; NewProduct::parse then says it must be an object.
        let products = read(csv, Layout::Csv, None);
        assert!(products[0].is_err());
    }

    #[test]
    fn a_row_failing_product_rules_names_the_fields() {
        let products = read("name,description,category,price\n,x.,Office,-1\n", Layout::Csv, None);
        let err = products[0].as_ref().unwrap_err();
        assert_eq!(err.record, 1);
        assert_eq!(err.reason, "price: \"-1\" is not an amount like 19.99");
        let products = read("name,description,category,price_cents\n,x.,Office,5\n", Layout::Csv, None);
        assert_eq!(products[0].as_ref().unwrap_err().reason, "name: is required");
    }

    #[test]
    fn both_price_columns_in_one_row_are_refused() {
        let rows = fields_of("name,description,category,price,price_cents\nA,a.,Office,1.00,100\n");
        assert!(rows[0].1.as_ref().unwrap_err().contains("not both"));
    }

    #[test]
    fn header_problems_reject_the_file() {
        let header =
            |csv: &str| CsvRecords::new(Box::new(std::io::Cursor::new(csv.as_bytes().to_vec()))).err();
        assert!(
            header("name,description,category,price,colour\n")
                .unwrap()
                .contains("unknown CSV column \"colour\"")
        );
        assert!(header("name,description,price\n").unwrap().contains("category"));
        assert!(header("name,description,category\n").unwrap().contains("price"));
        assert!(header("name,name,description,category,price\n").unwrap().contains("twice"));
        assert!(header("Name, Description ,CATEGORY,Price\n").is_none(), "names are trimmed, any case");
    }
}

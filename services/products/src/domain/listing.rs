//! What a product list asks for (search text, filters, sort order, how much to read and the
//! keyset position of a cursor page) and what it answers.

use kit::FieldErrors;
use kit::money::MAX_AMOUNT;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::product::{MAX_NAME, Product, text};
use super::search::SearchQuery;

/// List order. Without `sort`: relevance when searching, else newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    Rating,
    Name,
}

impl Sort {
    /// A `sort` query value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "relevance" => Ok(Self::Relevance),
            "newest" => Ok(Self::Newest),
            "price_asc" => Ok(Self::PriceAsc),
            "price_desc" => Ok(Self::PriceDesc),
            "rating" => Ok(Self::Rating),
            "name" => Ok(Self::Name),
            _ => Err("must be one of relevance, newest, price_asc, price_desc, rating, name".into()),
        }
    }
}

/// A validated product list request (without its page).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub search: Option<SearchQuery>,
    /// Category slug.
    pub category: Option<String>,
    pub brand: Option<String>,
    /// Inclusive bounds in minor units; a maximum below the minimum matches nothing.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// `Some(true)`: only products with stock; `Some(false)`: only sold-out ones.
    pub in_stock: Option<bool>,
    pub sort: Sort,
}

/// The raw query-string values.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    pub in_stock: Option<String>,
    pub sort: Option<String>,
}

impl ListQuery {
    /// Parses every value, listing each bad one.
    pub fn parse(params: ListParams) -> Result<Self, kit::ApiError> {
        let mut errors = FieldErrors::default();
        let q = params.q.filter(|q| !q.trim().is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > 1000) {
            errors.push("q", "must be at most 1000 characters");
        }
        let search = q.as_deref().and_then(SearchQuery::parse);
        let min_price = errors.take("min_price", params.min_price.as_deref().map(price_bound).transpose());
        let max_price = errors.take("max_price", params.max_price.as_deref().map(price_bound).transpose());
        let in_stock = errors.take("in_stock", params.in_stock.as_deref().map(boolean).transpose());
        let sort = errors.take("sort", params.sort.as_deref().map(Sort::parse).transpose());
        let category =
            errors.take("category", params.category.as_deref().map(|c| text(c, 0, 200)).transpose());
        let brand = errors.take("brand", params.brand.as_deref().map(|b| text(b, 0, 100)).transpose());
        errors.finish(|| {
            let sort = match sort? {
                Some(Sort::Relevance) | None if search.is_some() => Sort::Relevance,
                Some(Sort::Relevance) | None => Sort::Newest,
                Some(other) => other,
            };
            Some(ListQuery {
                search,
                category: category?.map(|c| super::product::slugify(&c)).filter(|c| !c.is_empty()),
                brand: brand?.filter(|b| !b.is_empty()),
                min_price: min_price?,
                max_price: max_price?,
                in_stock: in_stock?,
                sort,
            })
        })
    }
}

/// A price bound: no price is outside 0 to [`MAX_AMOUNT`], so neither is a bound.
fn price_bound(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|v| (0..=MAX_AMOUNT).contains(v))
        .ok_or_else(|| format!("must be a whole number of minor units (cents), 0 to {MAX_AMOUNT}"))
}

fn boolean(raw: &str) -> Result<bool, String> {
    match raw {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// Where a cursor page resumes: after the product with this sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "s", rename_all = "snake_case")]
pub enum CursorKey {
    Newest {
        at: i64,
        id: Uuid,
    },
    PriceAsc {
        price: i64,
        id: Uuid,
    },
    PriceDesc {
        price: i64,
        id: Uuid,
    },
    Rating {
        rating: f64,
        id: Uuid,
    },
    Name {
        name: String,
        id: Uuid,
    },
    /// Relevance has no stable key; the cursor carries the position.
    Relevance {
        offset: u64,
    },
}

impl CursorKey {
    /// Checks a decoded cursor's fields are values this service could have written: a cursor
    /// comes from the client, and an out-of-range field must be its 400, not the database's
    /// error or an overflow.
    pub fn check(&self) -> Result<(), String> {
        let fits = match self {
            Self::Newest { at, .. } => chrono::DateTime::from_timestamp_micros(*at).is_some(),
            Self::PriceAsc { price, .. } | Self::PriceDesc { price, .. } => *price >= 0,
            Self::Rating { rating, .. } => (0.0..=5.0).contains(rating),
            Self::Name { name, .. } => text(name, 0, MAX_NAME).is_ok_and(|checked| checked == *name),
            Self::Relevance { offset } => kit::pagination::cursor_offset(*offset).is_ok(),
        };
        if fits { Ok(()) } else { Err("is not a cursor this list gave out".into()) }
    }

    /// The sort order the cursor belongs to.
    pub fn sort(&self) -> Sort {
        match self {
            Self::Newest { .. } => Sort::Newest,
            Self::PriceAsc { .. } => Sort::PriceAsc,
            Self::PriceDesc { .. } => Sort::PriceDesc,
            Self::Rating { .. } => Sort::Rating,
            Self::Name { .. } => Sort::Name,
            Self::Relevance { .. } => Sort::Relevance,
        }
    }
}

/// How much of a list to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// `limit` rows after skipping `offset`, with the total.
    Offset { offset: u64, limit: u64 },
    /// `limit` rows after the cursor position (from the start when `None`).
    Cursor { after: Option<CursorKey>, limit: u64 },
}

/// One page of products.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub items: Vec<Product>,
    /// Offset pages only.
    pub total: Option<u64>,
    /// Cursor pages only: where the next page starts, `None` on the last page.
    pub next: Option<CursorKey>,
}

/// A category and how many live products it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    pub slug: String,
    pub name: String,
    pub product_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sort_depends_on_search() {
        let plain = ListQuery::parse(ListParams::default()).unwrap();
        assert_eq!(plain.sort, Sort::Newest);
        let searching =
            ListQuery::parse(ListParams { q: Some("shoe".into()), ..ListParams::default() }).unwrap();
        assert_eq!(searching.sort, Sort::Relevance);
        let punctuation =
            ListQuery::parse(ListParams { q: Some("!!!".into()), ..ListParams::default() }).unwrap();
        assert_eq!((punctuation.search, punctuation.sort), (None, Sort::Newest));
    }

    #[test]
    fn bad_filters_name_their_fields() {
        let params = ListParams {
            min_price: Some("-1".into()),
            in_stock: Some("maybe".into()),
            sort: Some("random".into()),
            ..ListParams::default()
        };
        let err = ListQuery::parse(params).unwrap_err();
        let names: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["min_price", "in_stock", "sort"]);
    }

    #[test]
    fn price_bounds_above_the_largest_price_are_refused() {
        let params = ListParams {
            min_price: Some("1000000000001".into()),
            max_price: Some("9223372036854775807".into()),
            ..ListParams::default()
        };
        let err = ListQuery::parse(params).unwrap_err();
        let names: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["min_price", "max_price"]);
        let largest = ListParams { max_price: Some("1000000000000".into()), ..ListParams::default() };
        assert_eq!(ListQuery::parse(largest).unwrap().max_price, Some(1_000_000_000_000));
    }

    #[test]
    fn an_inverted_price_range_is_a_query_for_nothing() {
        let params = ListParams {
            min_price: Some("500".into()),
            max_price: Some("100".into()),
            ..ListParams::default()
        };
        let query = ListQuery::parse(params).unwrap();
        assert_eq!((query.min_price, query.max_price), (Some(500), Some(100)));
    }

    #[test]
    fn control_characters_in_text_filters_are_refused() {
        let params = ListParams {
            brand: Some("Ac\0me".into()),
            category: Some("Kit\u{1}".into()),
            ..ListParams::default()
        };
        let err = ListQuery::parse(params).unwrap_err();
        let names: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["category", "brand"]);
    }

    #[test]
    fn cursor_fields_out_of_range_are_refused() {
        let id = Uuid::nil();
        let bad = [
            CursorKey::Newest { at: i64::MAX, id },
            CursorKey::PriceAsc { price: -1, id },
            CursorKey::Rating { rating: 6.0, id },
            CursorKey::Name { name: "nul\0".into(), id },
            CursorKey::Name { name: "n".repeat(MAX_NAME + 1), id },
            CursorKey::Relevance { offset: u64::MAX },
        ];
        for key in bad {
            assert!(key.check().is_err(), "{key:?}");
        }
        assert!(CursorKey::Name { name: "Mug 01".into(), id }.check().is_ok());
        assert!(CursorKey::Relevance { offset: 40 }.check().is_ok());
    }

    #[test]
    fn category_filter_is_a_slug() {
        let q =
            ListQuery::parse(ListParams { category: Some("Home & Kitchen".into()), ..ListParams::default() })
                .unwrap();
        assert_eq!(q.category.as_deref(), Some("home-kitchen"));
    }
}

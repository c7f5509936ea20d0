//! Pagination shared by every list: offset pages (`page` ≤ [`LAST_PAGE`], `limit` ≤ 100, so
//! at most [`MAX_OFFSET`] rows deep) with totals, and opaque keyset cursors.

use axum::extract::FromRequestParts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

/// Largest page any list answers.
pub const MAX_LIMIT: u64 = 100;
/// Page size when the client names none.
pub const DEFAULT_LIMIT: u64 = 20;
/// Deepest row an offset page may start at (`(page − 1) × limit`). Databases read every row an
/// `OFFSET` skips, and an unbounded one overflows the SQL integer; deeper lists use a cursor.
pub const MAX_OFFSET: u64 = 1_000_000;
/// The last offset page of any list: at the largest page size it starts [`MAX_OFFSET`] rows
/// deep. One bound whatever the page size, so a list's document can state it.
pub const LAST_PAGE: u64 = MAX_OFFSET / MAX_LIMIT + 1;
/// Longest cursor accepted; the cursors this crate makes are far shorter.
const MAX_CURSOR_LEN: usize = 1024;

/// A validated offset-page request, extracted from `?page=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u64,
    limit: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { page: 1, limit: DEFAULT_LIMIT }
    }
}

impl PageRequest {
    /// `page` is 1 to [`LAST_PAGE`]; `limit` is 1 to [`MAX_LIMIT`]; so the page starts at most
    /// [`MAX_OFFSET`] rows deep.
    pub fn new(page: Option<i64>, limit: Option<i64>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let page = page.unwrap_or(1);
        if page < 1 {
            errors.push(FieldError::new("page", "must be 1 or more"));
        } else if page as u64 > LAST_PAGE {
            errors.push(FieldError::new(
                "page",
                format!("is too deep: at most {LAST_PAGE}; use a cursor to go further"),
            ));
        }
        let limit = limit.unwrap_or(DEFAULT_LIMIT as i64);
        if !(1..=MAX_LIMIT as i64).contains(&limit) {
            errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Self { page: page as u64, limit: limit as u64 })
    }

    pub fn page(&self) -> u64 {
        self.page
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Rows to skip: at most [`MAX_OFFSET`].
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.limit
    }
}

#[derive(Deserialize)]
struct RawPage {
    page: Option<String>,
    limit: Option<String>,
}

/// An absent parameter is `None`; an empty one (`?limit=`) is not a number, as the documents
/// that call it an integer say.
fn parse_number(field: &str, raw: Option<String>) -> Result<Option<i64>, ApiError> {
    raw.map(|s| s.trim().parse::<i64>().map_err(|_| ApiError::invalid_field(field, "must be a whole number")))
        .transpose()
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw: RawPage = serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        PageRequest::new(parse_number("page", raw.page)?, parse_number("limit", raw.limit)?)
    }
}

/// `page` and `limit` as every list's OpenAPI document describes them: name it in the list's
/// `utoipa::path` (`params(PageParams, …)`); [`PageRequest`] reads the values.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (offset pages), 1 by default; at most 10,001 (deeper: a cursor).
    #[param(nullable = false, minimum = 1, maximum = 10001)]
    pub page: Option<u64>,
    /// Page size, 20 by default.
    #[param(nullable = false, minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

/// One offset page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u64,
    pub limit: u64,
    pub total: u64,
    pub total_pages: u64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, request: PageRequest, total: u64) -> Self {
        Self {
            items,
            page: request.page,
            limit: request.limit,
            total,
            total_pages: total.div_ceil(request.limit),
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            limit: self.limit,
            total: self.total,
            total_pages: self.total_pages,
        }
    }
}

/// One keyset page: the items and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CursorPage<T> {
    pub items: Vec<T>,
    /// Always present (`null` on the last page), which is also what tells this shape from an
    /// offset [`Page`] where a document offers both.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Encodes a keyset position as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is a 400. The caller still
/// checks each decoded field's range ([`cursor_offset`], [`forged_cursor`]): a cursor is client
/// input like any other.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    let cursor = cursor.trim();
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(forged_cursor());
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(forged_cursor)
}

/// The 400 for a cursor this service did not make (or whose fields are out of range).
pub fn forged_cursor() -> ApiError {
    ApiError::invalid_field("cursor", "is not a cursor this list gave out")
}

/// A row offset carried in a cursor (lists without a stable keyset key), bounded as offset
/// pages are by [`MAX_OFFSET`].
pub fn cursor_offset(offset: u64) -> Result<u64, ApiError> {
    if offset > MAX_OFFSET {
        return Err(forged_cursor());
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_enforced_ones() {
        use utoipa::IntoParams;
        let params = serde_json::to_value(PageParams::into_params(|| None)).unwrap();
        assert_eq!(params[0]["schema"]["maximum"], serde_json::json!(LAST_PAGE));
        assert_eq!(params[1]["schema"]["maximum"], serde_json::json!(MAX_LIMIT));
        assert_eq!(DEFAULT_LIMIT, 20, "the document says 20");
    }
    use proptest::prelude::*;

    #[test]
    fn defaults_are_first_page_of_twenty() {
        let p = PageRequest::new(None, None).unwrap();
        assert_eq!((p.page(), p.limit(), p.offset()), (1, 20, 0));
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let err = PageRequest::new(Some(0), Some(101)).unwrap_err();
        let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["page", "limit"]);
    }

    /// A document says `page` and `limit` are integers, and an empty value is none (`?limit=`
    /// read as "the default" was a schema-violating request accepted).
    #[tokio::test]
    async fn empty_page_or_limit_is_a_bad_number_and_absent_is_the_default() {
        let extract = |query: &str| {
            let (mut parts, ()) =
                http::Request::builder().uri(format!("/list?{query}")).body(()).unwrap().into_parts();
            async move { PageRequest::from_request_parts(&mut parts, &()).await }
        };
        for (query, field) in [("limit=", "limit"), ("page=", "page"), ("page=&limit=5", "page")] {
            let err = extract(query).await.unwrap_err();
            assert_eq!(err.field_errors()[0].field, field, "{query}");
        }
        assert_eq!(extract("").await.unwrap(), PageRequest::default());
        assert_eq!(extract("cursor=").await.unwrap(), PageRequest::default());
    }

    #[test]
    fn total_pages_rounds_up() {
        let p = Page::new(vec![1, 2], PageRequest::new(Some(1), Some(20)).unwrap(), 1234);
        assert_eq!(p.total_pages, 62);
        let empty: Page<u8> = Page::new(vec![], PageRequest::default(), 0);
        assert_eq!(empty.total_pages, 0);
    }

    #[test]
    fn pages_deeper_than_the_offset_bound_name_the_page() {
        for (page, limit) in [(i64::MAX, 20), (i64::MAX / 50, 100), (MAX_OFFSET as i64 / 100 + 2, 100)] {
            let err = PageRequest::new(Some(page), Some(limit)).unwrap_err();
            assert_eq!(err.status(), 400);
            let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["page"], "page {page} limit {limit}");
        }
        let deepest = PageRequest::new(Some(MAX_OFFSET as i64 / 100 + 1), Some(100)).unwrap();
        assert_eq!(deepest.offset(), MAX_OFFSET);
    }

    #[test]
    fn no_page_beyond_the_last_whatever_the_limit() {
        for limit in [1, 20, 100] {
            let err = PageRequest::new(Some(LAST_PAGE as i64 + 1), Some(limit)).unwrap_err();
            let fields: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["page"], "limit {limit}");
            assert!(PageRequest::new(Some(LAST_PAGE as i64), Some(limit)).is_ok(), "limit {limit}");
        }
    }

    #[test]
    fn a_cursor_page_always_names_its_next_cursor() {
        let schema = serde_json::to_value(<CursorPage<u8> as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["items", "next_cursor"]));
        let last = serde_json::to_value(CursorPage::<u8> { items: vec![], next_cursor: None }).unwrap();
        assert_eq!(last, serde_json::json!({"items": [], "next_cursor": null}));
    }

    #[test]
    fn cursor_offsets_are_bounded_like_pages() {
        assert_eq!(cursor_offset(MAX_OFFSET).unwrap(), MAX_OFFSET);
        assert_eq!(cursor_offset(MAX_OFFSET + 1).unwrap_err().status(), 400);
        assert_eq!(cursor_offset(u64::MAX).unwrap_err().status(), 400);
    }

    #[test]
    fn overlong_cursor_is_a_bad_request() {
        let long = encode_cursor(&"x".repeat(2 * MAX_CURSOR_LEN));
        assert_eq!(decode_cursor::<String>(&long).unwrap_err().status(), 400);
    }

    #[test]
    fn garbage_cursor_is_a_bad_request() {
        assert_eq!(decode_cursor::<(i64, String)>("%%%").unwrap_err().status(), 400);
        assert_eq!(decode_cursor::<(i64, String)>("").unwrap_err().status(), 400);
    }

    proptest! {
        #[test]
        fn cursor_round_trips(ts in any::<i64>(), id in "[a-z0-9-]{0,40}") {
            let cursor = encode_cursor(&(ts, id.clone()));
            prop_assert_eq!(decode_cursor::<(i64, String)>(&cursor).unwrap(), (ts, id));
        }

        #[test]
        fn any_page_is_a_bounded_offset_or_a_400(page in any::<i64>(), limit in any::<i64>()) {
            match PageRequest::new(Some(page), Some(limit)) {
                Ok(p) => prop_assert!(p.offset() <= MAX_OFFSET),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
        }
    }
}

//! Request extractors whose every rejection is a problem+json naming what is wrong:
//! [`Json`] (rejects unknown fields when the type says `deny_unknown_fields`, names the bad
//! or missing field), [`Query`] and [`Path`].

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

/// A JSON body. Requests need `Content-Type: application/json`; the body must fit the route's
/// limit (413 otherwise); a syntax error, or a wrong, missing or unknown field, answers 400
/// naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::unsupported_media_type(
                "expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let limit = req.extensions().get::<crate::http::BodyLimit>().map(|l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|r| bytes_rejection(r, limit))?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON body into `T`, turning any failure into a 400 that names the field. A body
/// is a JSON object: serde would also fill a struct from an array of its fields in order, which
/// no document describes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        // Empty, or not JSON at all: serde says what is wrong.
        _ => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(format!("the body is not valid JSON: {inner}"));
        }
        ApiError::validation(vec![field_error(&path, &strip_position(&inner.to_string()))])
    })?;
    de.end().map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The field error for serde's `message` at `path` (`.` is the whole body). A missing field
/// is named only in serde's message (the path stops at the object that lacks it), so it gets
/// its own path and "is required", as a bad value gets its path; an unknown field's path
/// already ends with its name.
fn field_error(path: &str, message: &str) -> FieldError {
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`'));
    match (missing, path) {
        (Some((name, _)), ".") => FieldError::new(name, "is required"),
        (Some((name, _)), object) => FieldError::new(format!("{object}.{name}"), "is required"),
        (None, ".") => FieldError::new("body", message),
        (None, field) => FieldError::new(field, message),
    }
}

/// serde_json appends " at line 1 column 42"; the field path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn has_json_content_type(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime_essence::Essence>().ok())
        .is_some_and(|m| m.is_json())
}

/// Minimal media-type parsing: the essence (`type/subtype`) without parameters.
mod mime_essence {
    pub struct Essence(String);

    impl std::str::FromStr for Essence {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s.split(';').next().ok_or(())?.trim().to_ascii_lowercase();
            Ok(Essence(essence))
        }
    }

    impl Essence {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json" || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

fn bytes_rejection(rejection: BytesRejection, limit: Option<usize>) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::payload_too_large(limit)
        }
        other => ApiError::bad_request(format!("could not read the request body: {other}")),
    }
}

/// Query-string parameters; a wrong type answers 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Query(q.0)).map_err(
            |rejection: QueryRejection| {
                ApiError::bad_request(format!("invalid query string: {}", rejection.body_text()))
            },
        )
    }
}

/// Path parameters; a malformed id answers 400 saying which.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| Path(p.0)).map_err(
            |rejection: PathRejection| {
                ApiError::bad_request(format!("invalid path parameter: {}", rejection.body_text()))
            },
        )
    }
}

/// For PATCH bodies: tells an absent field (`None`) from an explicit `null` (`Some(None)`).
/// Use as `#[serde(default, deserialize_with = "kit::extract::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An integer field as JSON Schema's `integer` reads it: `2` and `2.0` alike (a number whose
/// fraction is zero is an integer there, so a document that says `integer` promises both), any
/// other fraction refused. Use as `#[serde(deserialize_with = "kit::extract::whole_number")]`.
pub fn whole_number<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct WholeNumber;

    impl serde::de::Visitor<'_> for WholeNumber {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<i64, E> {
            Ok(n)
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<i64, E> {
            i64::try_from(n).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(n), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<i64, E> {
            // Every whole f64 in this range converts exactly; 2^63 itself is out of range.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n) {
                Ok(n as i64)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(n), &self))
            }
        }
    }

    deserializer.deserialize_any(WholeNumber)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn whole_numbers_may_carry_a_zero_fraction_and_nothing_else() {
        #[derive(Debug, Deserialize)]
        struct Line {
            #[serde(deserialize_with = "whole_number")]
            quantity: i64,
        }
        let read = |json: &str| serde_json::from_str::<Line>(json).map(|l| l.quantity);
        assert_eq!(read(r#"{"quantity": 2}"#).unwrap(), 2);
        assert_eq!(read(r#"{"quantity": 2.0}"#).unwrap(), 2);
        assert_eq!(read(r#"{"quantity": -3e2}"#).unwrap(), -300);
        assert_eq!(read(r#"{"quantity": 9223372036854775807}"#).unwrap(), i64::MAX);
        for refused in ["2.5", "1e300", "9223372036854775808", "\"2\"", "null", "-9.3e18"] {
            assert!(read(&format!(r#"{{"quantity": {refused}}}"#)).is_err(), "{refused}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Register {
        email: String,
        age: u8,
    }

    #[test]
    fn a_body_is_an_object_not_its_fields_in_a_row() {
        // serde fills a struct from an array of its fields; no mercato body is an array.
        for body in [&br#"["a@b.c", 3]"#[..], b" [null, null]", b"3", b"\"a@b.c\"", b"null"] {
            let err = parse_json::<Register>(body).unwrap_err();
            assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(body));
            assert!(err.detail().contains("JSON object"), "{}", err.detail());
        }
        assert!(parse_json::<Register>(b" \n{\"email\":\"a@b.c\",\"age\":3}").is_ok());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse_json::<Register>(br#"{"email":"a@b.c","age":3,"admin":true}"#).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.field_errors()[0].field, "admin");
        assert!(err.detail().contains("unknown field `admin`"), "{}", err.detail());
    }

    #[test]
    fn a_missing_field_is_named_like_a_bad_value() {
        let err = parse_json::<Register>(br#"{"age":3}"#).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.field_errors(), [FieldError::new("email", "is required")]);
        assert_eq!(err.detail(), "email: is required");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        product_id: String,
        quantity: u32,
    }

    #[test]
    fn a_missing_nested_field_is_named_by_its_path() {
        let err = parse_json::<Order>(br#"{"items":[{"product_id":"p","quantity":1},{"product_id":"q"}]}"#)
            .unwrap_err();
        assert_eq!(err.field_errors(), [FieldError::new("items[1].quantity", "is required")]);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<Register>(br#"{"email":"a@b.c","age":-1}"#).unwrap_err();
        assert_eq!(err.field_errors()[0].field, "age");
    }

    #[test]
    fn malformed_json_is_a_bad_request_not_a_validation_error() {
        let err = parse_json::<Register>(br#"{"email": "#).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.detail().starts_with("the body is not valid JSON"));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(parse_json::<Register>(br#"{"email":"a","age":1} x"#).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "nullable")]
        phone: Option<Option<String>>,
    }

    #[test]
    fn nullable_tells_absent_from_null() {
        assert_eq!(parse_json::<Patch>(b"{}").unwrap().phone, None);
        assert_eq!(parse_json::<Patch>(br#"{"phone":null}"#).unwrap().phone, Some(None));
        assert_eq!(parse_json::<Patch>(br#"{"phone":"1"}"#).unwrap().phone, Some(Some("1".into())));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut h = http::HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert!(has_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!has_json_content_type(&h));
    }
}

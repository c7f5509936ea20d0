//! The one error type of every service, rendered as `application/problem+json` (RFC 9457).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Result alias for handlers and anything that answers over HTTP.
pub type ApiResult<T> = Result<T, ApiError>;

/// One invalid input field, listed in a validation problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `email` or `items[2].quantity`.
    pub field: String,
    /// What is wrong with it, in words a person can act on.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Collects field errors while a request is parsed into domain types, so one answer lists
/// every bad field.
///
/// ```
/// # use kit::error::FieldErrors;
/// let mut errors = FieldErrors::default();
/// let age = errors.take("age", "x".parse::<u8>());
/// let name = errors.take("name", Ok::<_, String>("Ada"));
/// let parsed = errors.finish(|| Some((age?, name?)));
/// assert_eq!(parsed.unwrap_err().field_errors()[0].field, "age");
/// ```
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Keeps the value, or records the error under `field`.
    pub fn take<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(FieldError::new(field, e.to_string()))).ok()
    }

    /// Records an error that no parse produced (a rule across fields).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// A validation problem listing every recorded error, or the value `build` assembles from
    /// the parsed parts (all present when nothing was recorded).
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        if !self.0.is_empty() {
            return Err(ApiError::validation(self.0));
        }
        build().ok_or_else(|| ApiError::internal(anyhow::anyhow!("a parsed field went missing")))
    }
}

/// An error that answers a request: a status, a stable problem type and a human detail.
///
/// Internal errors keep their cause for the log and never show it to the client.
#[derive(Debug)]
pub struct ApiError(Box<Problem>);

/// The parts of an [`ApiError`], boxed so `Result<_, ApiError>` stays one pointer wide.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    extra: Option<serde_json::Value>,
    source: Option<anyhow::Error>,
}

/// The JSON body of a problem, as clients see it.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// Stable identifier of the problem type, e.g. `urn:mercato:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Problem-specific members (for example the short products of a 409).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            extra: None,
            source: None,
        }))
    }

    /// 400: the request is malformed (bad JSON, bad query, bad path parameter).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// 400: one or more fields are invalid; each is listed.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut e = Self::new(StatusCode::BAD_REQUEST, "validation", "Invalid input", detail);
        e.0.errors = errors;
        e
    }

    /// 400 for a single bad field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 401: no credentials, or credentials that are not (or no longer) valid.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }

    /// 403: signed in, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: the resource does not exist, or is not the caller's.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405 with the path that exists.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", detail)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 413: the body is larger than this route accepts.
    pub fn payload_too_large(limit_bytes: Option<usize>) -> Self {
        let detail = match limit_bytes {
            Some(limit) => format!("the request body is larger than the {limit} bytes this route accepts"),
            None => "the request body is larger than this route accepts".to_owned(),
        };
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large", detail)
    }

    /// 415: the body's media type is not accepted.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// 422: well-formed, but refers to things that cannot be used.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", "Unprocessable request", detail)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("rate limit exceeded; retry after {retry_after_secs} s"),
        );
        e.0.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// 503: a dependency is down, or this instance is shutting down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail)
    }

    /// 504: an upstream did not answer in time.
    pub fn gateway_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "Upstream timeout", detail)
    }

    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an unexpected error occurred; it has been logged",
        );
        e.0.source = Some(source.into());
        e
    }

    /// Adds problem-specific members to the body (an object's fields are merged in).
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.0.extra = Some(extra);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// The body as clients receive it.
    pub fn body(&self) -> ProblemBody {
        let problem = &self.0;
        let extra = match &problem.extra {
            Some(serde_json::Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        ProblemBody {
            kind: format!("urn:mercato:problem:{}", problem.kind),
            title: problem.title.to_owned(),
            status: problem.status.as_u16(),
            detail: problem.detail.clone(),
            errors: problem.errors.iter().filter_map(|e| serde_json::to_value(e).ok()).collect(),
            request_id: crate::telemetry::current_request_id(),
            extra,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.0.status.as_u16(), self.0.title, self.0.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = &self.0;
        if let Some(source) = &problem.source {
            tracing::error!(error = ?source, "internal error");
        } else if problem.status.is_server_error() {
            tracing::warn!(status = problem.status.as_u16(), detail = %problem.detail, "request failed");
        }
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (problem.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = problem.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if problem.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<sea_orm::DbErr> for ApiError {
    /// A database that cannot be reached, or that dropped the connection, is 503 (retry once it
    /// is back); any other database error is a fault here, 500.
    fn from(err: sea_orm::DbErr) -> Self {
        if database_unavailable(&err) {
            tracing::error!(error = %err, "database unavailable");
            Self::unavailable("the database is not reachable; try again shortly")
        } else {
            Self::internal(err)
        }
    }
}

/// True when `err` says the database could not be reached or ended the connection — a pool
/// timeout, a broken socket, PostgreSQL shutting down or refusing connections, SQLite busy —
/// rather than that the statement or the code is wrong.
fn database_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e.as_ref(),
        _ => return false,
    };
    match sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        // PostgreSQL: class 08 (connection exception), 57P01-03 (shutting down, crashed, not
        // accepting connections yet), 53300 (too many connections). SQLite: busy (5 and its
        // extended codes) after the busy timeout.
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "261" | "517" | "773")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_response_has_problem_media_type_and_stable_type() {
        let response = ApiError::not_found("user 42 does not exist").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["type"], "urn:mercato:problem:not-found");
        assert_eq!(body["status"], 404);
        assert_eq!(body["detail"], "user 42 does not exist");
    }

    #[test]
    fn validation_problem_lists_each_field() {
        let e = ApiError::validation(vec![
            FieldError::new("email", "is not an email address"),
            FieldError::new("password", "must be at least 8 characters"),
        ]);
        let body = e.body();
        assert_eq!(body.status, 400);
        assert_eq!(body.errors.len(), 2);
        assert_eq!(body.errors[1]["field"], "password");
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 leaked"));
        assert!(!e.body().detail.contains("hunter2"));
    }

    #[test]
    fn a_database_that_drops_or_refuses_connections_is_503_not_500() {
        use sea_orm::sqlx::Error as Sqlx;
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
        let sqlx = |e: Sqlx| RuntimeErr::SqlxError(std::sync::Arc::new(e));
        let reset = || Sqlx::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        for passing in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Exec(sqlx(reset())),
            DbErr::Query(sqlx(reset())),
            DbErr::Query(sqlx(Sqlx::PoolTimedOut)),
            DbErr::Exec(sqlx(Sqlx::PoolClosed)),
            DbErr::Query(sqlx(Sqlx::Protocol("expected to read 5 bytes, got 0 bytes at EOF".into()))),
        ] {
            assert_eq!(
                ApiError::from(passing.clone()).status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{passing}"
            );
        }
        for fault in [DbErr::Query(sqlx(Sqlx::RowNotFound)), DbErr::Custom("a bug".into())] {
            assert_eq!(ApiError::from(fault.clone()).status(), StatusCode::INTERNAL_SERVER_ERROR, "{fault}");
        }
    }

    #[test]
    fn rate_limited_problem_carries_retry_after() {
        let response = ApiError::too_many_requests(3).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}

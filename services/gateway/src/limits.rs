//! Edge limits: the rate limiter per client (429) and request body limits (413).

use axum::body::Body;
use axum::extract::Request;
use http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use kit::rate_limit::SharedRateLimiter;
use kit::redis::Redis;

use crate::config::{GatewayConfig, RateLimitConfig};

/// The rate limiter of `config`, `None` when limiting is off; kept in `redis` when there is
/// one, so every gateway replica takes from the same allowance.
pub(crate) fn rate_limiter(config: &RateLimitConfig, redis: Option<Redis>) -> Option<SharedRateLimiter> {
    config.enabled.then(|| SharedRateLimiter::new(config.per_second, config.burst, redis))
}

/// The body limit of each path: an upload pattern's, else the route's own, else the default.
pub(crate) struct BodyLimits {
    default_bytes: usize,
    uploads: Vec<(String, usize)>,
}

impl BodyLimits {
    pub fn new(config: &GatewayConfig) -> Self {
        Self {
            default_bytes: config.http.body_limit_bytes,
            uploads: config.upload_routes.iter().map(|u| (u.pattern.clone(), u.body_limit_bytes)).collect(),
        }
    }

    /// The largest body accepted on `path`, whose route has `route_limit`.
    pub fn for_path(&self, path: &str, route_limit: Option<usize>) -> usize {
        self.uploads
            .iter()
            .find(|(pattern, _)| glob_matches(pattern, path))
            .map(|(_, bytes)| *bytes)
            .or(route_limit)
            .unwrap_or(self.default_bytes)
    }
}

/// Segment glob: `*` is exactly one non-empty segment; everything else matches literally.
/// `/api/v1/products/*/images` matches `/api/v1/products/42/images` only.
pub(crate) fn glob_matches(pattern: &str, path: &str) -> bool {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some("*"), Some(segment)) if !segment.is_empty() => {}
            (Some(literal), Some(segment)) if literal == segment => {}
            _ => return false,
        }
    }
}

/// True when the request declares a `Content-Length` above `limit`: refused before anything is
/// read.
pub(crate) fn declares_more_than(request: &Request, limit: usize) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

/// Caps the request body at `limit` bytes while it streams: past it, the body fails with
/// [`LengthLimitError`] (see [`exceeded_body_limit`]). Any other failure to read it (a broken
/// chunked encoding, the client gone) is marked as the client's (see [`client_body_failed`]).
pub(crate) fn limit_body(request: Request, limit: usize) -> Request {
    request.map(|body| Body::new(Limited::new(body.map_err(ClientBodyError), limit)))
}

/// The client's request body could not be read: the client's fault, whatever the upstream call
/// that was streaming it reports.
#[derive(Debug)]
pub(crate) struct ClientBodyError(axum::Error);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body could not be read: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The [`ClientBodyError`] in `err`'s chain, if the client's body is why it failed.
pub(crate) fn client_body_failed<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ClientBodyError> {
    let mut current = Some(err);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<ClientBodyError>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// True when `err` (or any error it wraps) is a body cut off by [`limit_body`].
pub(crate) fn exceeded_body_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(error) = current {
        if error.is::<LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{RouteConfig, UploadRouteConfig};
    use kit::config::HttpConfig;

    #[test]
    fn star_matches_exactly_one_segment() {
        let pattern = "/api/v1/products/*/images";
        assert!(glob_matches(pattern, "/api/v1/products/42/images"));
        assert!(!glob_matches(pattern, "/api/v1/products/images"));
        assert!(!glob_matches(pattern, "/api/v1/products//images"));
        assert!(!glob_matches(pattern, "/api/v1/products/4/2/images"));
    }

    #[test]
    fn glob_matches_the_whole_path_not_a_prefix() {
        let pattern = "/api/v1/products/*/images";
        assert!(!glob_matches(pattern, "/api/v1/products/42/images/1"));
        assert!(!glob_matches(pattern, "/api/v1/products/42/images/"));
        assert!(!glob_matches(pattern, "/api/v1/products/42/imagesx"));
        assert!(glob_matches("/api/v1/users", "/api/v1/users"));
    }

    #[test]
    fn upload_pattern_beats_route_limit_which_beats_the_default() {
        let mut config = GatewayConfig {
            http: HttpConfig { body_limit_bytes: 1_000, ..HttpConfig::default() },
            ..GatewayConfig::default()
        };
        config.upload_routes =
            vec![UploadRouteConfig { pattern: "/api/v1/users/*/avatar".into(), body_limit_bytes: 9_000 }];
        config
            .routes
            .push(RouteConfig { body_limit_bytes: Some(5_000), ..RouteConfig::new("/api/v1/big", "users") });
        let limits = BodyLimits::new(&config);
        assert_eq!(limits.for_path("/api/v1/users/me/avatar", Some(5_000)), 9_000);
        assert_eq!(limits.for_path("/api/v1/big/thing", Some(5_000)), 5_000);
        assert_eq!(limits.for_path("/api/v1/users/me", None), 1_000);
    }

    #[test]
    fn declared_length_is_compared_with_the_limit() {
        let request = Request::builder().header(header::CONTENT_LENGTH, "2048").body(Body::empty()).unwrap();
        assert!(declares_more_than(&request, 1024));
        assert!(!declares_more_than(&request, 2048));
    }

    #[tokio::test]
    async fn undeclared_body_over_the_limit_fails_with_a_recognisable_error() {
        let request = Request::builder().body(Body::from(vec![0u8; 2048])).unwrap();
        assert!(!declares_more_than(&request, 1024));
        let limited = limit_body(request, 1024);
        let err = axum::body::to_bytes(limited.into_body(), usize::MAX).await.unwrap_err();
        assert!(exceeded_body_limit(&err));
        assert!(!exceeded_body_limit(&std::io::Error::other("reset")));
    }

    #[tokio::test]
    async fn a_body_that_fails_to_stream_is_marked_as_the_clients() {
        let broken = futures_util::stream::iter([Err::<bytes::Bytes, _>(std::io::Error::other("bad chunk"))]);
        let request = Request::builder().body(Body::from_stream(broken)).unwrap();
        let limited = limit_body(request, 1024);
        let err = axum::body::to_bytes(limited.into_body(), usize::MAX).await.unwrap_err();
        assert!(client_body_failed(&err).is_some(), "{err}");
        assert!(!exceeded_body_limit(&err));
        assert!(client_body_failed(&std::io::Error::other("reset")).is_none());
    }
}

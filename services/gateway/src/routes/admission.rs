//! Admission, before any route: the bearer token is checked and the client's rate limit taken.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kit::ApiError;
use kit::auth::Claims;

use crate::forwarded::TrustedProxies;
use crate::state::AppState;
use crate::{auth, forwarded};

/// Middleware: identifies the client (a verified token's user, otherwise its address), takes a
/// token from its bucket, then refuses a bad token. A client sending bad tokens is limited by
/// address like any anonymous one, so refused tokens cannot be sprayed for free.
pub(crate) async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let claims = auth::verified_claims(&state.verifier, request.headers()).await;
    if let Some(limiter) = &state.rate_limiter {
        let user = claims.as_ref().ok().and_then(Option::as_ref);
        let key = rate_key(user, &request, &state.trusted_proxies);
        if let Err(wait) = limiter.check(&key).await {
            tracing::debug!(client = %key, "rate limited");
            return ApiError::too_many_requests(retry_after_secs(wait)).into_response();
        }
    }
    match claims {
        Ok(verified) => {
            let mut request = request;
            if let Some(claims) = verified {
                // The gateway's own endpoints may show more to some roles (the status page).
                request.extensions_mut().insert(claims);
            }
            next.run(request).await
        }
        // Signing in and refreshing are how a client replaces a stale token, so a stale token
        // sent along out of habit must not block them.
        Err(_) if state.token_optional(request.uri().path()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// `user:<sub>` for a verified token, otherwise `ip:<client address>`.
fn rate_key(user: Option<&Claims>, request: &Request, proxies: &TrustedProxies) -> String {
    match user {
        Some(claims) => format!("user:{}", claims.sub),
        None => match proxies.client_ip(request.headers(), forwarded::peer_ip(request)) {
            Some(ip) => format!("ip:{ip}"),
            None => "ip:unknown".to_owned(),
        },
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After` has no fractions; 0 would invite a retry
/// that is refused again).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
    }
}

//! The edge token check: a bearer token, when present, must verify before the request goes on.

use http::HeaderMap;
use kit::ApiError;
use kit::auth::{Claims, TokenVerifier};
use kit::client::ServiceClient;

/// A verifier fetching keys from the auth upstream.
pub(crate) fn verifier(auth_upstream: ServiceClient) -> TokenVerifier {
    TokenVerifier::remote(auth_upstream, kit::auth::KEY_REFRESH_INTERVAL)
}

/// The verified claims of the request's bearer token; `None` without one (the service behind
/// decides whether the route needs a user). A bad, expired or unsigned token is 401; keys that
/// cannot be fetched are 503.
pub(crate) async fn verified_claims(
    verifier: &TokenVerifier,
    headers: &HeaderMap,
) -> Result<Option<Claims>, ApiError> {
    let Some(token) = kit::auth::bearer_token(headers)? else {
        return Ok(None);
    };
    Ok(Some(verifier.verify(token).await?))
}

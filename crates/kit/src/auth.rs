//! Access-token verification shared by every service: EdDSA JWTs checked against a JSON Web
//! Key Set (fetched from the users service and cached; refetched when a token names an unknown
//! `kid`), and extractors for "signed in" ([`CurrentUser`]), "admin" ([`AdminUser`]) and
//! "another service" ([`ServiceCaller`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use http::header;
use http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::client::ServiceClient;
use crate::error::ApiError;

/// Issuer (`iss`) of every mercato access token.
pub const ISSUER: &str = "mercato-users";
/// Audience (`aud`) of every mercato access token.
pub const AUDIENCE: &str = "mercato";
/// Path of the key set on the users service (and through the gateway).
pub const JWKS_PATH: &str = "/api/v1/auth/jwks.json";

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
    /// Another mercato service, authenticated by client credentials.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            "service" => Ok(Role::Service),
            other => Err(format!("unknown role `{other}` (customer, admin or service)")),
        }
    }
}

/// The claims of a mercato access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id (a UUID) for people; the client id for services.
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    /// Unique token id.
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is malformed or its signature is invalid")]
    Invalid,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::KeysUnavailable(_) => ApiError::unavailable(err.to_string()),
            other => ApiError::unauthorized(other.to_string()),
        }
    }
}

/// Where the verifier gets its keys.
enum KeySource {
    /// Keys handed over at construction (the users service verifies with its own key set).
    Fixed,
    /// A JWKS endpoint of the users service.
    Remote { client: ServiceClient, min_refresh: Duration },
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Verifies access tokens. Cheap to share behind an `Arc`.
pub struct TokenVerifier {
    source: KeySource,
    cache: RwLock<KeyCache>,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier for a fixed key set.
    pub fn with_keys(jwks: &JwkSet) -> Self {
        Self {
            source: KeySource::Fixed,
            cache: RwLock::new(KeyCache { keys: decoding_keys(jwks), fetched_at: Some(Instant::now()) }),
            validation: validation(),
        }
    }

    /// A verifier that fetches the key set from `client` (the users service) at
    /// [`JWKS_PATH`] on first use and again, at most every `min_refresh`, when a token names a
    /// key it does not know (key rotation).
    pub fn remote(client: ServiceClient, min_refresh: Duration) -> Self {
        Self {
            source: KeySource::Remote { client, min_refresh },
            cache: RwLock::new(KeyCache { keys: HashMap::new(), fetched_at: None }),
            validation: validation(),
        }
    }

    /// Checks signature, algorithm (EdDSA only), issuer, audience and expiry.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key(&kid).await?;
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let KeySource::Remote { client, min_refresh } = &self.source else {
            return Err(TokenError::UnknownKey);
        };
        let mut cache = self.cache.write().await;
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        // An unknown kid may mean the keys rotated; refetch, but not on every bad token.
        if cache.fetched_at.is_some_and(|at| at.elapsed() < *min_refresh) {
            return Err(TokenError::UnknownKey);
        }
        let jwks: JwkSet =
            client.get_json(JWKS_PATH, None).await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        cache.keys = decoding_keys(&jwks);
        cache.fetched_at = Some(Instant::now());
        cache.keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
    }
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 5;
    v
}

fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, key))
        })
        .collect()
}

/// The bearer token of a request, if it has one. `Err` for an `Authorization` header that is
/// not a bearer token.
pub fn bearer_token(parts: &http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value =
        value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized("expected `Authorization: Bearer <access token>`")),
    }
}

async fn verified_claims<S>(parts: &Parts, state: &S) -> Result<Claims, ApiError>
where
    Arc<TokenVerifier>: FromRef<S>,
{
    let token = bearer_token(&parts.headers)?.ok_or_else(|| {
        ApiError::unauthorized("sign in first: this route needs `Authorization: Bearer <access token>`")
    })?;
    let verifier = Arc::<TokenVerifier>::from_ref(state);
    Ok(verifier.verify(token).await?)
}

/// A signed-in person (customer or admin), from a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    /// The raw token, to act on the user's behalf towards another service.
    pub token: String,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = verified_claims(parts, state).await?;
        if claims.role == Role::Service {
            return Err(ApiError::forbidden("service tokens cannot act as a user"));
        }
        let id = Uuid::parse_str(&claims.sub)
            .map_err(|_| ApiError::unauthorized("the token's subject is not a user id"))?;
        let token = bearer_token(&parts.headers)?.unwrap_or_default().to_owned();
        Ok(CurrentUser { id, role: claims.role, token })
    }
}

/// A signed-in admin; anyone else gets 403 (401 without a valid token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser(pub CurrentUser);

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::forbidden("this route is for admins"));
        }
        Ok(AdminUser(user))
    }
}

/// Another mercato service, authenticated with a service token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    pub client_id: String,
}

impl<S> FromRequestParts<S> for ServiceCaller
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = verified_claims(parts, state).await?;
        if claims.role != Role::Service {
            return Err(ApiError::forbidden("this route is for mercato services only"));
        }
        Ok(ServiceCaller { client_id: claims.sub })
    }
}

/// This service's own identity towards other services: a client id and secret exchanged at the
/// users service (`POST /internal/v1/auth/token`) for a short-lived service token, cached until
/// shortly before it expires.
pub struct ServiceCredentials {
    users: ServiceClient,
    client_id: String,
    client_secret: String,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ServiceCredentials {
    /// Tokens are renewed this long before they expire.
    const RENEW_BEFORE: Duration = Duration::from_secs(30);

    pub fn new(users: ServiceClient, client_id: &str, client_secret: &str) -> Self {
        Self {
            users,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid service token, fetched when the cached one is missing or about to expire.
    pub async fn token(&self) -> Result<String, crate::client::ClientError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let request = self
            .users
            .request(http::Method::POST, "/internal/v1/auth/token")
            .json(&TokenRequest { client_id: &self.client_id, client_secret: &self.client_secret })
            .idempotent();
        let answer: TokenResponse = self.users.send_json(request).await?;
        let lifetime = Duration::from_secs(answer.expires_in).saturating_sub(Self::RENEW_BEFORE);
        *cached = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }

    /// Forgets the cached token (after another service refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut h = http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap(), Some("abc"));
    }

    #[test]
    fn other_schemes_are_refused() {
        let mut h = http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer_token(&h).unwrap_err().status(), 401);
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::Customer, Role::Admin, Role::Service] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}

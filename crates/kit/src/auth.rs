//! Access-token verification shared by every service: EdDSA JWTs checked against a JSON Web
//! Key Set (fetched from the users service and cached; refetched when a token names an unknown
//! `kid`, one fetch at a time and with a back-off after a failed one), and extractors for "signed in" ([`CurrentUser`]), "admin" ([`AdminUser`]) and
//! "another service" ([`ServiceCaller`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use contracts::events::{CloudEvent, UserDeleted, UserRoleChanged};
use contracts::users::{REVOCATIONS_PATH, RevocationEvents, ServiceTokenRequest, ServiceTokenResponse};
use http::header;
use http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::client::ServiceClient;
use crate::error::ApiError;

/// Issuer (`iss`) of every mercato access token.
pub const ISSUER: &str = "mercato-users";
/// Audience (`aud`) of every mercato access token.
pub const AUDIENCE: &str = "mercato";
/// Path of the key set on the users service (and through the gateway).
pub const JWKS_PATH: &str = "/api/v1/auth/jwks.json";
/// How often a token naming an unknown `kid` may make a service refetch the key set (every
/// service verifying tokens uses this for [`TokenVerifier::remote`]).
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

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
    /// Issued at, milliseconds since the Unix epoch (mercato's own claim): a revocation at
    /// time T refuses the tokens issued up to T, and a second is too coarse to tell a token
    /// issued just after a revocation from one issued just before. Tokens without it count as
    /// issued at the start of their `iat` second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
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
    #[error("the access token was revoked (the account was deleted or its role changed); sign in again")]
    Revoked,
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

/// The keys known so far and how the last fetch went.
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// When the last fetch ended (`None`: never fetched).
    fetched_at: Option<Instant>,
    /// Fetches failed in a row, for the back-off.
    failures: u32,
}

/// Why a token's key may not be fetched now.
enum TooSoon {
    /// The key set was fetched within the refresh interval and lacked this `kid`.
    Refreshed,
    /// The last fetch failed; the next waits out the back-off.
    BackingOff(Duration),
}

impl KeyCache {
    /// The first retry after a failed fetch; each further failure doubles it, up to the refresh
    /// interval, so a users service that comes back is noticed within seconds while a flood
    /// of unknown `kid`s during an outage costs a few fetches, not one per request.
    const FIRST_RETRY: Duration = Duration::from_millis(500);

    fn may_fetch(&self, min_refresh: Duration) -> Result<(), TooSoon> {
        let Some(at) = self.fetched_at else {
            return Ok(());
        };
        let wait = match self.failures {
            0 => min_refresh,
            n => Self::FIRST_RETRY.saturating_mul(1 << (n - 1).min(16)).min(min_refresh),
        };
        let left = wait.saturating_sub(at.elapsed());
        match (left.is_zero(), self.failures) {
            (true, _) => Ok(()),
            (false, 0) => Err(TooSoon::Refreshed),
            (false, _) => Err(TooSoon::BackingOff(left)),
        }
    }
}

impl From<TooSoon> for TokenError {
    fn from(too_soon: TooSoon) -> Self {
        match too_soon {
            TooSoon::Refreshed => TokenError::UnknownKey,
            TooSoon::BackingOff(left) => TokenError::KeysUnavailable(format!(
                "the last fetch failed; the next is allowed in {} ms",
                left.as_millis()
            )),
        }
    }
}

/// The longest an access token may live (users refuses a longer `auth.access_token_ttl_secs`):
/// how far back a starting replica reads the revocations it missed.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// How long a revocation is kept: far longer than any access token lives (users accepts an
/// `auth.access_token_ttl_secs` of an hour at most), so every token it refuses has expired by
/// then.
pub const REVOCATION_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// What is refused of one subject's tokens.
#[derive(Debug, Clone, Copy)]
struct Revocation {
    /// Tokens issued at or before this (ms since the epoch) are refused; `i64::MAX`: all.
    issued_until_ms: i64,
    /// Tokens claiming another role than this are refused (the role changed).
    role: Option<Role>,
    /// When the entry may be forgotten.
    forget_at: Instant,
}

/// The deny-list of access tokens: per user, the tokens refused although still unexpired,
/// fed by the `user.deleted` and `user.role_changed` events (`kit::events::with_token_revocation`)
/// and consulted by [`TokenVerifier::verify`]. Entries are kept for [`REVOCATION_RETENTION`].
#[derive(Debug, Default)]
pub struct Revocations {
    entries: std::sync::RwLock<HashMap<Uuid, Revocation>>,
}

impl Revocations {
    /// Refuses every token of `user` (the account was deleted; it gets no new ones).
    pub fn revoke_all(&self, user: Uuid) {
        self.insert(user, Revocation { issued_until_ms: i64::MAX, role: None, forget_at: forget_at() });
    }

    /// Refuses `user`'s tokens issued at or before `at`, and any claiming another role than
    /// `role` (one issued while the change was committing). A deleted user stays refused.
    /// An older change than the one already applied changes nothing (events can arrive out
    /// of order: a redelivery, or a starting replica's backfill behind the live stream).
    pub fn revoke_issued_until(&self, user: Uuid, at: chrono::DateTime<chrono::Utc>, role: Role) {
        if self.read().get(&user).is_some_and(|r| r.issued_until_ms >= at.timestamp_millis()) {
            return;
        }
        let revocation =
            Revocation { issued_until_ms: at.timestamp_millis(), role: Some(role), forget_at: forget_at() };
        self.insert(user, revocation);
    }

    /// Applies a revocation event as it travels: `user.deleted` refuses every token of the
    /// user, `user.role_changed` every token issued before the change or carrying another
    /// role; other types are no revocation (`Ok(false)`). A payload that does not read as its
    /// type is an error.
    pub fn apply(&self, event: &CloudEvent) -> Result<bool, String> {
        if let Some(deleted) = event.decode::<UserDeleted>() {
            let deleted = deleted.map_err(|e| e.to_string())?;
            self.revoke_all(deleted.data.user_id);
            return Ok(true);
        }
        if let Some(changed) = event.decode::<UserRoleChanged>() {
            let changed = changed.map_err(|e| e.to_string())?;
            let role = changed.data.role.parse()?;
            self.revoke_issued_until(changed.data.user_id, changed.data.changed_at, role);
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether the token with `claims` is revoked.
    pub fn refuses(&self, claims: &Claims) -> bool {
        let Ok(user) = Uuid::parse_str(&claims.sub) else {
            return false;
        };
        let entries = self.read();
        let Some(revocation) = entries.get(&user) else {
            return false;
        };
        let issued_ms = claims.iat_ms.unwrap_or_else(|| claims.iat.saturating_mul(1000));
        issued_ms <= revocation.issued_until_ms || revocation.role.is_some_and(|role| role != claims.role)
    }

    fn insert(&self, user: Uuid, revocation: Revocation) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, r| r.forget_at > now);
        entries.insert(user, revocation);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Revocation>> {
        // Every write is one insert or a retain; a panic elsewhere leaves the map whole.
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn forget_at() -> Instant {
    Instant::now() + REVOCATION_RETENTION
}

/// Verifies access tokens. Cheap to share behind an `Arc`.
pub struct TokenVerifier {
    source: KeySource,
    /// Read on every verification; written only for the moment a fetch's result is stored,
    /// never held across the fetch, so tokens of known keys never wait for the network.
    cache: std::sync::RwLock<KeyCache>,
    /// Single flight: one fetch at a time; requests needing a new key wait for that fetch's
    /// outcome instead of starting their own.
    fetching: tokio::sync::Mutex<()>,
    validation: Validation,
    revocations: Arc<Revocations>,
}

impl TokenVerifier {
    /// A verifier for a fixed key set.
    pub fn with_keys(jwks: &JwkSet) -> Self {
        let cache = KeyCache { keys: decoding_keys(jwks), fetched_at: Some(Instant::now()), failures: 0 };
        Self::new(KeySource::Fixed, cache)
    }

    /// A verifier that fetches the key set from `client` (the users service) at
    /// [`JWKS_PATH`] on first use and again, at most every `min_refresh` (services pass
    /// [`KEY_REFRESH_INTERVAL`]), when a token names a key it does not know (key rotation).
    /// After a failed fetch it backs off (0.5 s, doubling, up to `min_refresh`) and answers
    /// [`TokenError::KeysUnavailable`] meanwhile.
    pub fn remote(client: ServiceClient, min_refresh: Duration) -> Self {
        let cache = KeyCache { keys: HashMap::new(), fetched_at: None, failures: 0 };
        Self::new(KeySource::Remote { client, min_refresh }, cache)
    }

    fn new(source: KeySource, cache: KeyCache) -> Self {
        Self {
            source,
            cache: std::sync::RwLock::new(cache),
            fetching: tokio::sync::Mutex::new(()),
            validation: validation(),
            revocations: Arc::default(),
        }
    }

    /// The deny-list this verifier consults: feed it revocation events
    /// (`kit::events::with_token_revocation`).
    pub fn revocations(&self) -> Arc<Revocations> {
        Arc::clone(&self.revocations)
    }

    /// Reads the revocations of the last [`MAX_ACCESS_TOKEN_TTL`] from the users service's
    /// feed ([`REVOCATIONS_PATH`]) into the deny-list, trying again with a back-off (0.5 s,
    /// doubling up to 10 s) until it has them all or `shutdown`. A service runs it beside its
    /// event subscription when it starts: a replica started after a user was deleted (or
    /// demoted) refuses that user's older tokens too, not only those revoked while it runs.
    /// Applying an event twice, or an older one after a newer, changes nothing. A verifier
    /// with fixed keys (the users service itself) has nothing to read.
    pub async fn backfill_revocations(&self, shutdown: tokio_util::sync::CancellationToken) {
        let KeySource::Remote { client, .. } = &self.source else { return };
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(MAX_ACCESS_TOKEN_TTL).unwrap_or(chrono::Duration::hours(1));
        let mut wait = Duration::from_millis(500);
        loop {
            match self.read_revocations(client, since).await {
                Ok(applied) => {
                    tracing::info!(applied, "read the token revocations of the last hour");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "cannot read the token revocations yet; trying again")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    /// Every page of the feed since `since`, applied; how many revocations.
    async fn read_revocations(
        &self,
        client: &ServiceClient,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, crate::client::ClientError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut after = 0;
        let mut applied = 0;
        loop {
            let path = format!("{REVOCATIONS_PATH}?since={}&after={after}", since.replace('+', "%2B"));
            let page: RevocationEvents = client.get_json(&path, None).await?;
            for event in &page.items {
                match self.revocations.apply(event) {
                    Ok(true) => applied += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(event_id = %event.id, error = %e, "a revocation event that cannot be read")
                    }
                }
            }
            match page.next_after {
                Some(next) => after = next,
                None => return Ok(applied),
            }
        }
    }

    /// Checks signature, algorithm (EdDSA only), issuer, audience and expiry, and that the
    /// token is not revoked ([`Self::revocations`]).
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.key(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if self.revocations.refuses(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        // A panic elsewhere cannot leave the map half-written: every write is one assignment.
        self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.read_cache().keys.get(kid) {
            return Ok(key.clone());
        }
        let KeySource::Remote { client, min_refresh } = &self.source else {
            return Err(TokenError::UnknownKey);
        };
        // An unknown kid may mean the keys rotated; refetch, but not on every bad token.
        self.read_cache().may_fetch(*min_refresh)?;
        let _flight = self.fetching.lock().await;
        // The fetch this request waited for may have brought the key, or failed.
        {
            let cache = self.read_cache();
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            cache.may_fetch(*min_refresh)?;
        }
        let fetched = client.get_json::<JwkSet>(JWKS_PATH, None).await;
        let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.fetched_at = Some(Instant::now());
        match fetched {
            Ok(jwks) => {
                cache.keys = decoding_keys(&jwks);
                cache.failures = 0;
                cache.keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
            }
            Err(e) => {
                cache.failures = cache.failures.saturating_add(1);
                tracing::warn!(error = %e, failures = cache.failures, "fetching the signing keys failed");
                Err(TokenError::KeysUnavailable(e.to_string()))
            }
        }
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
            .json(&ServiceTokenRequest {
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.clone(),
            })
            .idempotent();
        let answer: ServiceTokenResponse = self.users.send_json(request).await?;
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
    use base64::Engine;
    use http::StatusCode;

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

    fn claims(user: Uuid, role: Role, iat_ms: Option<i64>, iat: i64) -> Claims {
        Claims {
            sub: user.to_string(),
            role,
            exp: iat + 900,
            iat,
            iat_ms,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            jti: "j".into(),
        }
    }

    #[test]
    fn a_role_change_refuses_older_tokens_and_tokens_of_the_old_role() {
        let revocations = Revocations::default();
        let user = Uuid::from_u128(1);
        let at: chrono::DateTime<chrono::Utc> = "2026-11-30T18:00:00.500Z".parse().unwrap();
        let ms = at.timestamp_millis();
        let (sec, other) = (at.timestamp(), Uuid::from_u128(2));
        assert!(!revocations.refuses(&claims(user, Role::Admin, Some(ms - 1), sec)), "nothing revoked yet");
        revocations.revoke_issued_until(user, at, Role::Customer);
        assert!(revocations.refuses(&claims(user, Role::Admin, Some(ms - 1), sec)), "issued before");
        assert!(revocations.refuses(&claims(user, Role::Customer, Some(ms), sec)), "issued at the change");
        assert!(
            revocations.refuses(&claims(user, Role::Admin, Some(ms + 5), sec)),
            "after, with the old role"
        );
        assert!(!revocations.refuses(&claims(user, Role::Customer, Some(ms + 5), sec)), "after, new role");
        // A token that only knows its second may have been issued before the change in it.
        assert!(revocations.refuses(&claims(user, Role::Customer, None, sec)));
        assert!(!revocations.refuses(&claims(user, Role::Customer, None, sec + 1)));
        assert!(!revocations.refuses(&claims(other, Role::Admin, Some(ms - 1), sec)), "another user");
    }

    #[test]
    fn an_older_role_change_applied_after_a_newer_one_changes_nothing() {
        let revocations = Revocations::default();
        let user = Uuid::from_u128(4);
        let demoted: chrono::DateTime<chrono::Utc> = "2026-11-30T18:00:00Z".parse().unwrap();
        let promoted = demoted + chrono::Duration::minutes(5);
        // The promotion arrives first (live), the demotion after it (a starting replica's
        // backfill, or a redelivery).
        revocations.revoke_issued_until(user, promoted, Role::Admin);
        revocations.revoke_issued_until(user, demoted, Role::Customer);
        let after = promoted.timestamp_millis() + 1_000;
        assert!(!revocations.refuses(&claims(user, Role::Admin, Some(after), after / 1000)), "today's admin");
        assert!(revocations.refuses(&claims(user, Role::Customer, Some(after), after / 1000)));
    }

    #[test]
    fn a_deleted_user_has_every_token_refused_and_a_late_role_change_does_not_undo_it() {
        let revocations = Revocations::default();
        let user = Uuid::from_u128(3);
        let now = chrono::Utc::now();
        revocations.revoke_all(user);
        revocations.revoke_issued_until(user, now, Role::Customer);
        let later = now.timestamp_millis() + 60_000;
        assert!(revocations.refuses(&claims(user, Role::Customer, Some(later), later / 1000)));
        let service = Claims { sub: "orders".into(), ..claims(user, Role::Service, None, 0) };
        assert!(!revocations.refuses(&service), "service tokens are not users'");
    }

    #[test]
    fn a_failed_fetch_backs_off_doubling_up_to_the_refresh_interval() {
        let ago = |secs: f64| Instant::now().checked_sub(Duration::from_secs_f64(secs)).unwrap();
        let cache =
            |failures, secs_ago| KeyCache { keys: HashMap::new(), fetched_at: Some(ago(secs_ago)), failures };
        let interval = Duration::from_secs(30);
        // 0.5 s after the first failure, 1 s after the second, 2 s after the third…
        assert!(matches!(cache(1, 0.2).may_fetch(interval), Err(TooSoon::BackingOff(_))));
        assert!(cache(1, 0.6).may_fetch(interval).is_ok());
        assert!(matches!(cache(3, 1.5).may_fetch(interval), Err(TooSoon::BackingOff(_))));
        assert!(cache(3, 2.5).may_fetch(interval).is_ok());
        // …never longer than the refresh interval.
        assert!(cache(40, 31.0).may_fetch(interval).is_ok());
        // After a successful fetch, an unknown kid waits out the refresh interval.
        assert!(matches!(cache(0, 29.0).may_fetch(interval), Err(TooSoon::Refreshed)));
        assert!(cache(0, 31.0).may_fetch(interval).is_ok());
    }

    /// A token naming `kid`; its signature is garbage, which is checked only once the key is found.
    fn token_with_kid(kid: &str) -> String {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
        format!("{header}.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
    }

    /// A key set with one Ed25519 key named `known`.
    fn jwks_with_known_key() -> serde_json::Value {
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": "known", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})
    }

    /// A JWKS endpoint on 127.0.0.1:0 whose answer the test decides, counting the fetches.
    struct FakeJwks {
        client: ServiceClient,
        fetches: Arc<std::sync::atomic::AtomicUsize>,
    }

    async fn fake_jwks<F, Fut>(answer: F) -> FakeJwks
    where
        F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = axum::response::Response> + Send,
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let app = axum::Router::new().route(
            JWKS_PATH,
            axum::routing::get(move || {
                let answer = answer.clone();
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move { answer(n).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        // No retries, so each fetch is one request; a long timeout, so a hung fetch stays hung.
        let config =
            crate::config::ClientConfig { retries: 0, request_timeout_ms: 60_000, ..Default::default() };
        FakeJwks { client: ServiceClient::new("users", &base, config), fetches }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_kid_flood_while_the_key_set_is_down_fetches_once_and_fails_fast() {
        use axum::response::IntoResponse;
        use std::sync::atomic::Ordering;
        let jwks = fake_jwks(|_| async { StatusCode::SERVICE_UNAVAILABLE.into_response() }).await;
        let verifier = Arc::new(TokenVerifier::remote(jwks.client.clone(), KEY_REFRESH_INTERVAL));
        let flood: Vec<_> = (0..200)
            .map(|i| {
                let verifier = verifier.clone();
                tokio::spawn(async move { verifier.verify(&token_with_kid(&format!("forged-{i}"))).await })
            })
            .collect();
        for request in flood {
            let refused = request.await.unwrap().unwrap_err();
            assert!(matches!(refused, TokenError::KeysUnavailable(_)), "{refused}");
        }
        // One fetch served the whole flood; a later one backs off instead of refetching.
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
        let again = verifier.verify(&token_with_kid("forged-again")).await.unwrap_err();
        assert!(matches!(again, TokenError::KeysUnavailable(_)), "{again}");
        assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn known_keys_verify_while_a_fetch_hangs() {
        use axum::response::IntoResponse;
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
        let release = Arc::new(tokio::sync::Notify::new());
        let hold = release.clone();
        let jwks = fake_jwks(move |n| {
            let (started_tx, hold) = (started_tx.clone(), hold.clone());
            async move {
                if n > 0 {
                    // Every fetch after the first hangs until the test lets it go.
                    let _ = started_tx.send(());
                    hold.notified().await;
                }
                axum::Json(jwks_with_known_key()).into_response()
            }
        })
        .await;
        // Refetch on every unknown kid, so the second verification below does fetch.
        let verifier = Arc::new(TokenVerifier::remote(jwks.client.clone(), Duration::ZERO));
        let first = verifier.verify(&token_with_kid("known")).await.unwrap_err();
        assert!(matches!(first, TokenError::Invalid), "the key is known, the signature is not: {first}");

        let stuck = tokio::spawn({
            let verifier = verifier.clone();
            async move { verifier.verify(&token_with_kid("rotated")).await }
        });
        started.recv().await.unwrap();
        // The fetch is in flight and hangs; a token of a known key still gets its answer.
        let known = tokio::time::timeout(Duration::from_secs(10), verifier.verify(&token_with_kid("known")))
            .await
            .expect("verification of a known key waits for no fetch");
        assert!(matches!(known, Err(TokenError::Invalid)));
        release.notify_one();
        assert!(matches!(stuck.await.unwrap(), Err(TokenError::UnknownKey)));
    }
}

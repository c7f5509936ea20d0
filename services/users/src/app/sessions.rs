//! Signing in and staying signed in: login through the login guard, refresh-token rotation with
//! reuse detection, logout, and the key set that verifies access tokens.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::jwk::JwkSet;
use uuid::Uuid;

use super::PasswordWork;
use crate::domain::{Email, User};
use crate::store::login_attempts::LoginAttempts;
use crate::store::{Rotation, StoreError, UserStore};
use crate::tokens::{TokenIssuer, hash_token, new_refresh_token};

/// A signed-in session: the user, a short-lived access token and a refresh token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No token could be signed, or no randomness was had for one.
    #[error("issuing tokens: {0}")]
    Tokens(anyhow::Error),
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    /// Wrong password, unknown or malformed email, deleted account: one answer for all.
    #[error("invalid email or password")]
    Refused,
    /// Too many failures for this account from this address, or in all this hour.
    #[error("too many failed logins; retry in {0:?}")]
    Throttled(Duration),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password could not be checked (a hashing thread failed).
    #[error("checking the password: {0}")]
    Hashing(anyhow::Error),
}

/// Why a refresh token bought no new pair.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    #[error("the refresh token is invalid or expired")]
    Invalid,
    /// It had been used before: every token of its sign-in is now revoked.
    #[error("this refresh token was already used; sign in again")]
    Reused,
    #[error("this account no longer exists")]
    AccountGone,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Login, refresh, logout.
#[derive(Clone)]
pub(crate) struct Sessions {
    store: UserStore,
    issuer: Arc<TokenIssuer>,
    refresh_ttl: chrono::Duration,
    guard: Arc<dyn LoginAttempts>,
    passwords: PasswordWork,
}

impl Sessions {
    pub fn new(
        store: UserStore,
        issuer: Arc<TokenIssuer>,
        refresh_ttl: chrono::Duration,
        guard: Arc<dyn LoginAttempts>,
        passwords: PasswordWork,
    ) -> Self {
        Self { store, issuer, refresh_ttl, guard, passwords }
    }

    /// Signs in with email and password from `client`. The attempt is counted by the login
    /// guard before the password is hashed, so a burst of parallel guesses cannot pass before
    /// one fails; a right password hands the count back.
    pub async fn login(&self, email: &str, password: String, client: IpAddr) -> Result<Session, LoginError> {
        let Ok(email) = Email::parse(email) else {
            return Err(LoginError::Refused);
        };
        let account = email.normalized();
        let reservation = self.guard.reserve(&account, client, SystemTime::now()).await.map_err(|wait| {
            tracing::info!(retry_after_ms = wait.as_millis() as u64, "login throttled");
            LoginError::Throttled(wait)
        })?;
        let found = self.store.find_credentials(&account).await?;
        let (found, matches) = self
            .passwords
            .run(move |hasher| match found {
                Some(credentials) => {
                    let matches = hasher.verify(&credentials.password_hash, &password);
                    (Some(credentials.user), matches)
                }
                None => {
                    // Unknown emails answer as slowly as wrong passwords.
                    hasher.verify_dummy(&password);
                    (None, false)
                }
            })
            .await
            .map_err(LoginError::Hashing)?;
        match (found, matches) {
            (Some(user), true) => {
                self.guard.succeeded(reservation).await;
                Ok(self.start(user).await?)
            }
            // The reservation stays counted as the failure.
            _ => Err(LoginError::Refused),
        }
    }

    /// Exchanges a refresh token for a new pair. The presented token stops working; presenting
    /// it again revokes every token of that sign-in.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, RefreshError> {
        let successor = new_refresh_token().map_err(SessionError::Tokens)?;
        let expires_at = chrono::Utc::now() + self.refresh_ttl;
        let rotation = self
            .store
            .rotate_refresh_token(&hash_token(refresh_token), hash_token(&successor), expires_at)
            .await?;
        let user_id = match rotation {
            Rotation::Rotated { user_id } => user_id,
            Rotation::Reused => {
                tracing::warn!("a used refresh token was presented again; its sign-in is revoked");
                return Err(RefreshError::Reused);
            }
            Rotation::Refused => return Err(RefreshError::Invalid),
        };
        let user = self.store.find_live(user_id).await?.ok_or(RefreshError::AccountGone)?;
        let access = self.issuer.access_token(user.id, user.role).map_err(SessionError::Tokens)?;
        Ok(Session {
            user,
            access_token: access.token,
            refresh_token: successor,
            expires_in: access.expires_in,
        })
    }

    /// Ends the sign-in the refresh token belongs to; an unknown token changes nothing.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), StoreError> {
        self.store.revoke_refresh_family(&hash_token(refresh_token)).await
    }

    /// The JSON Web Key Set that verifies access tokens.
    pub fn key_set(&self) -> JwkSet {
        self.issuer.jwks()
    }

    /// Starts a new sign-in for `user`: an access token and the first refresh token of a new
    /// family.
    pub async fn start(&self, user: User) -> Result<Session, SessionError> {
        let access = self.issuer.access_token(user.id, user.role).map_err(SessionError::Tokens)?;
        let refresh = new_refresh_token().map_err(SessionError::Tokens)?;
        let expires_at = chrono::Utc::now() + self.refresh_ttl;
        self.store.insert_refresh_token(user.id, Uuid::now_v7(), hash_token(&refresh), expires_at).await?;
        Ok(Session {
            user,
            access_token: access.token,
            refresh_token: refresh,
            expires_in: access.expires_in,
        })
    }
}

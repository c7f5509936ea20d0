//! What every handler of the users service shares: the use cases of the application layer, the
//! verifier of access tokens and whose `X-Forwarded-For` names the client. Built once in
//! `Application::build`.

use std::sync::Arc;

use axum::extract::FromRef;
use ipnet::IpNet;
use kit::auth::TokenVerifier;

use crate::app::PasswordWork;
use crate::app::accounts::Accounts;
use crate::app::addresses::Addresses;
use crate::app::admin::Admin;
use crate::app::revocations::RevocationFeed;
use crate::app::service_tokens::ServiceTokens;
use crate::app::sessions::Sessions;
use crate::config::UsersConfig;
use crate::store::UserStore;
use crate::store::login_attempts::LoginAttempts;
use crate::tokens::TokenIssuer;

/// The users service's shared state: one struct per group of use cases.
#[derive(Clone)]
pub(crate) struct AppState {
    pub accounts: Accounts,
    pub sessions: Sessions,
    pub addresses: Addresses,
    pub admin: Admin,
    pub service_tokens: ServiceTokens,
    pub revocations: RevocationFeed,
    pub verifier: Arc<TokenVerifier>,
    /// Peers whose `X-Forwarded-For` names the client (the gateway).
    pub trusted_proxies: Arc<Vec<IpNet>>,
}

impl AppState {
    /// The state of a validated `config`; `login_attempts` keeps the login guard's counts.
    pub fn new(
        store: UserStore,
        issuer: TokenIssuer,
        login_attempts: Arc<dyn LoginAttempts>,
        config: &UsersConfig,
    ) -> Self {
        let issuer = Arc::new(issuer);
        let verifier = Arc::new(TokenVerifier::with_keys(&issuer.jwks()));
        let passwords = PasswordWork::new(config.passwords);
        let refresh_ttl = chrono::Duration::days(config.auth.refresh_token_ttl_days as i64);
        let sessions =
            Sessions::new(store.clone(), Arc::clone(&issuer), refresh_ttl, login_attempts, passwords.clone());
        Self {
            accounts: Accounts::new(store.clone(), passwords, sessions.clone()),
            sessions,
            addresses: Addresses::new(store.clone()),
            revocations: RevocationFeed::new(store.clone()),
            admin: Admin::new(store),
            service_tokens: ServiceTokens::new(issuer, &config.service_clients),
            verifier,
            trusted_proxies: Arc::new(config.login.trusted_proxies.clone()),
        }
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

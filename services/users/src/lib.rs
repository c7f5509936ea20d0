//! The users service: accounts, credentials, access tokens (EdDSA JWTs with a published JWKS),
//! rotating refresh tokens, addresses and roles. See README.md for its API and its layers.

mod app;
pub mod config;
pub mod domain;
mod routes;
mod state;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kit::events::{Bus, Relay, Transport};
use kit::http::{HttpServer, Service};
use kit::redis::Redis;
use tokio_util::sync::CancellationToken;

pub use app::accounts::AdminOutcome;
pub use config::UsersConfig;
use domain::{Email, Password, UserName};
use state::AppState;
use store::UserStore;
use store::login_attempts::{LoginAttempts, RedisLoginAttempts};
use tokens::{SigningKey, TokenIssuer};

/// The users service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    relay: Relay,
}

impl Application {
    /// Connects the database (migrating it when configured), loads or creates the signing key,
    /// and binds the listener. Its events go to an in-process bus of its own (no service of
    /// this process hears them): a shop shares one bus through [`Self::build_with_events`].
    pub async fn build(config: UsersConfig) -> anyhow::Result<Self> {
        Self::build_with_events(config, Bus::new()).await
    }

    /// As [`Self::build`], publishing its events on `bus` (the embedded shop's).
    pub async fn build_with_events(config: UsersConfig, bus: Bus) -> anyhow::Result<Self> {
        let db = kit::db::connect(&config.database).await?;
        let store = UserStore::new(db.clone());
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let key = match (&config.auth.signing_key, &config.auth.signing_key_file) {
            (Some(pem), _) => SigningKey::from_pem(pem)?,
            (None, Some(path)) => SigningKey::load_or_create(path, config.auth.generate_signing_key)?,
            (None, None) => {
                anyhow::bail!("no signing key configured (auth.signing_key or auth.signing_key_file)")
            }
        };
        let mut issuer = TokenIssuer::new(
            key,
            Duration::from_secs(config.auth.access_token_ttl_secs),
            Duration::from_secs(config.auth.service_token_ttl_secs),
        );
        if let Some(path) = &config.auth.published_keys_file {
            issuer = issuer.with_published_keys(kit::signing::load_published_keys(path)?);
        }
        let transport = Transport::from_config(&config.events, bus);
        let relay = Relay::new("users", db.clone(), transport.publisher(), config.events.clone());
        // The login throttle's counts: in Redis for every replica when there is one.
        let redis = Redis::connect(&config.redis)?;
        let login_attempts: Arc<dyn LoginAttempts> = match redis.clone() {
            Some(redis) => Arc::new(RedisLoginAttempts::new(redis, config.login.policy())),
            None => Arc::new(domain::LoginGuard::new(config.login.policy())),
        };
        let state = AppState::new(store.clone(), issuer, login_attempts, &config);
        let (api, openapi) = routes::router(state);
        let mut ready = kit::db::readiness::<store::migration::Migrator>(db, "users");
        if let Some(redis) = redis {
            // Redis away makes the service degraded (throttling per replica), not unready.
            ready = kit::http::with_optional(ready, "redis", move || {
                let redis = redis.clone();
                async move { redis.ready().await }
            });
        }
        let service = Service { name: "users", api, openapi, ready };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, relay })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves, relaying its outbox, until `shutdown` is cancelled; then drains, and relays
    /// what the last requests recorded.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        self.relay.beside(self.server.run(shutdown)).await
    }
}

/// Applies the users database's pending migrations (what `mercato migrate` runs).
pub async fn migrate(database: &kit::config::DatabaseConfig) -> anyhow::Result<()> {
    UserStore::new(kit::db::connect(database).await?).migrate().await?;
    Ok(())
}

/// Creates an admin account, or promotes the live account with this email (what
/// `mercato admin create` runs). There is no default admin anywhere.
pub async fn create_admin(
    database: &kit::config::DatabaseConfig,
    passwords: domain::PasswordHasher,
    name: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<AdminOutcome> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let name = UserName::parse(name).map_err(|e| anyhow::anyhow!("name {e}"))?;
    let store = UserStore::new(kit::db::connect(database).await?);
    store.migrate().await?;
    app::accounts::create_admin(&store, app::PasswordWork::new(passwords), name, email, password).await
}

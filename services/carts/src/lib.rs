//! The carts service: the signed-in shopper's cart, kept between sessions and devices (Redis in
//! production, SQLite on the embedded default), priced from the catalog on every read, and
//! checked out through the orders service. See README.md.
//!
//! Layers: `routes` (HTTP only) → `app` (the use cases) → `domain` (rules, no I/O), `store`
//! (Redis or SQLite, one trait) and `clients` (products and orders); `state` is what handlers
//! share.

mod app;
mod clients;
pub mod config;
pub mod domain;
mod routes;
mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use contracts::events::{CloudEvent, UserDeleted};
use kit::auth::{Revocations, ServiceCredentials, TokenVerifier};
use kit::client::ServiceClient;
use kit::events::{Bus, Consumer, Subscription, Transport};
use kit::http::{HttpServer, ReadyCheck, Service};
use kit::redis::Redis;
use tokio_util::sync::CancellationToken;

use app::Carts;
use clients::{OrdersClient, ProductsClient};
pub use config::CartsConfig;
use state::AppState;
use store::{CartStore, RedisCarts, SqliteCarts};

/// The carts service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    events: Subscription,
}

impl Application {
    /// Opens its store (Redis when `redis.url` is set, else the SQLite database, migrated when
    /// configured) and binds. Its events come from an in-process bus of its own; a shop shares
    /// one through [`Self::build_with_events`].
    pub async fn build(config: CartsConfig) -> anyhow::Result<Self> {
        Self::build_with_events(config, Bus::new()).await
    }

    /// As [`Self::build`], on the shop's bus `bus`: it takes `user.deleted` (the user's tokens
    /// are refused and their cart deleted) and `user.role_changed` (token revocation) from it.
    pub async fn build_with_events(config: CartsConfig, bus: Bus) -> anyhow::Result<Self> {
        let (store, ready) = open_store(&config).await?;
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let products = ServiceClient::new("products", &config.products_url, config.client.clone());
        let orders = ServiceClient::new("orders", &config.orders_url, config.client.clone());
        let credentials = Arc::new(ServiceCredentials::new(
            users.clone(),
            &config.service_client_id,
            &config.service_client_secret,
        ));
        let verifier = Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL));
        let state = AppState {
            carts: Carts::new(
                store.clone(),
                ProductsClient::new(products, credentials),
                OrdersClient::new(orders),
                &config.currency,
            ),
            verifier: verifier.clone(),
        };
        let transport = Transport::from_url(config.events.url.as_deref(), bus);
        let events = transport
            .subscribe(consumer(store, verifier.revocations()))
            .with_revocation_backfill(verifier.clone());
        events.declare().await;
        let (api, openapi) = routes::router(state);
        let service = Service { name: "carts", api, openapi, ready };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, events })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves, with its event consumer, until `shutdown` is cancelled; then drains.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tokio::spawn(self.events.run(shutdown.clone()));
        self.server.run(shutdown).await
    }
}

/// The store `config` names and its readiness check: Redis is the store when named, so Redis
/// not answering is unready (not degraded, as for the services that only share state there).
async fn open_store(config: &CartsConfig) -> anyhow::Result<(Arc<dyn CartStore>, ReadyCheck)> {
    if let Some(redis) = Redis::connect(&config.redis)? {
        let store = RedisCarts::new(redis, config.idle_expiry());
        let probe = store.clone();
        let ready = kit::http::ready_check(move || {
            let probe = probe.clone();
            async move { probe.ready().await }
        });
        return Ok((Arc::new(store), ready));
    }
    let db = kit::db::connect(&config.database).await?;
    let store = SqliteCarts::new(db.clone());
    if config.database.migrate_on_start {
        store.migrate().await?;
    }
    Ok((Arc::new(store), kit::db::readiness::<store::migration::Migrator>(db, "carts")))
}

/// What carts takes from the bus: token revocation, and on `user.deleted` also the deletion of
/// the user's cart (one handler for the type, so it replaces kit's revocation-only one and
/// revokes too).
pub fn consumer(store: Arc<dyn CartStore>, revocations: Arc<Revocations>) -> Consumer {
    kit::events::with_token_revocation(Consumer::new("carts"), revocations.clone())
        .on::<UserDeleted, _, _, _>((store, revocations), forget_deleted_user)
}

async fn forget_deleted_user(
    (store, revocations): (Arc<dyn CartStore>, Arc<Revocations>),
    event: CloudEvent<UserDeleted>,
) -> anyhow::Result<()> {
    revocations.revoke_all(event.data.user_id);
    store.forget_user(event.data.user_id).await?;
    Ok(())
}

//! The orders service: checkout as a synchronous saga that never oversells, never leaks stock
//! and is idempotent; order history; the order status machine; sales stats. See README.md.
//!
//! Layers: `routes` (HTTP only) → `app` (the use cases) → `domain` (rules, no I/O), `store`
//! (the database) and `clients` (the users and products services); `state` is what handlers
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

use kit::auth::{ServiceCredentials, TokenVerifier};
use kit::client::ServiceClient;
use kit::events::{Bus, Consumer, Relay, Subscription, Transport};
use kit::http::{HttpServer, Service};
use tokio_util::sync::CancellationToken;

use app::checkout::Checkout;
use app::orders::Orders;
use app::recovery::{Policy, Recovery};
use app::stats::SalesStats;
use clients::{ProductsClient, UsersClient};
pub use config::OrdersConfig;
use state::AppState;
use store::OrderStore;

/// What the shop and tests hold to run recovery passes of a running orders service (clones
/// share its store and clients): `settle_once` runs one pass now.
pub use app::recovery::Recovery as RecoveryHandle;
pub use app::recovery::{RecoveryError, Settled};

/// The orders service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    recovery: Recovery,
    relay: Relay,
    events: Subscription,
    config: OrdersConfig,
}

impl Application {
    /// Connects the database (migrating it when configured) and binds. Its events go to, and
    /// come from, an in-process bus of its own; a shop shares one through
    /// [`Self::build_with_events`].
    pub async fn build(config: OrdersConfig) -> anyhow::Result<Self> {
        Self::build_with_events(config, Bus::new()).await
    }

    /// As [`Self::build`], on the shop's bus `bus`: it publishes its outbox there and takes
    /// `user.deleted` and `user.role_changed` from it (token revocation).
    pub async fn build_with_events(config: OrdersConfig, bus: Bus) -> anyhow::Result<Self> {
        let db = kit::db::connect(&config.database).await?;
        let store = OrderStore::new(db.clone());
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let products = ServiceClient::new("products", &config.products_url, config.client.clone());
        let credentials = Arc::new(ServiceCredentials::new(
            users.clone(),
            &config.service_client_id,
            &config.service_client_secret,
        ));
        let products = ProductsClient::new(products, credentials);
        let verifier = Arc::new(TokenVerifier::remote(users.clone(), kit::auth::KEY_REFRESH_INTERVAL));
        let state = AppState {
            checkout: Checkout::new(
                store.clone(),
                UsersClient::new(users.clone()),
                products.clone(),
                &config.currency,
                config.tax_rate_bp,
            ),
            orders: Orders::new(store.clone(), products.clone()),
            stats: SalesStats::new(store.clone(), &config.currency),
            verifier: verifier.clone(),
        };
        let transport = Transport::from_config(&config.events, bus);
        let events = transport
            .subscribe(kit::events::with_token_revocation(Consumer::new("orders"), verifier.revocations()))
            .with_revocation_backfill(verifier.clone());
        events.declare().await;
        let relay =
            Relay::new("orders", store.connection().clone(), transport.publisher(), config.events.clone());
        let policy = Policy {
            pending_timeout: config.recovery.pending_timeout(),
            first_backoff: config.recovery.retry_backoff(),
        };
        let recovery = Recovery::new(store.clone(), products, policy);
        let (api, openapi) = routes::router(state);
        let service = Service {
            name: "orders",
            api,
            openapi,
            ready: kit::db::readiness::<store::migration::Migrator>(db, "orders"),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, recovery, relay, events, config })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A handle for running recovery passes from outside (tests, the shop).
    pub fn recovery_handle(&self) -> RecoveryHandle {
        self.recovery.clone()
    }

    /// Serves, with the recovery worker, the outbox relay and its event consumer, until
    /// `shutdown` is cancelled; then drains, and relays what the last requests recorded.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        if self.config.recovery.enabled {
            tokio::spawn(self.recovery.run(self.config.recovery.interval(), shutdown.clone()));
        }
        tokio::spawn(self.events.run(shutdown.clone()));
        self.relay.beside(self.server.run(shutdown)).await
    }
}

/// Applies the orders database's pending migrations (what `mercato migrate` runs).
pub async fn migrate(database: &kit::config::DatabaseConfig) -> anyhow::Result<()> {
    OrderStore::new(kit::db::connect(database).await?).migrate().await?;
    Ok(())
}

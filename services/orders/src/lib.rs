//! The orders service: checkout as a synchronous saga that never oversells, never leaks stock
//! and is idempotent; order history; the order status machine; sales stats. See README.md.

pub mod checkout;
pub mod config;
pub mod dependencies;
pub mod domain;
pub mod recovery;
pub mod routes;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kit::auth::{ServiceCredentials, TokenVerifier};
use kit::client::ServiceClient;
use kit::http::{HttpServer, Service, ready_check};
use tokio_util::sync::CancellationToken;

pub use config::OrdersConfig;
use dependencies::Dependencies;
use routes::AppState;
use store::OrderStore;

/// The orders service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    state: AppState,
    config: OrdersConfig,
}

impl Application {
    /// Connects the database (migrating it when configured) and binds.
    pub async fn build(config: OrdersConfig) -> anyhow::Result<Self> {
        let store = OrderStore::new(kit::db::connect(&config.database).await?);
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
        let state = AppState {
            store: store.clone(),
            dependencies: Dependencies::new(users.clone(), products, credentials),
            verifier: Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL)),
            currency: config.currency.as_str().into(),
            tax_rate_bp: config.tax_rate_bp,
        };
        let (api, openapi) = routes::router(state.clone());
        let service = Service {
            name: "orders",
            api,
            openapi,
            ready: ready_check(move || {
                let store = store.clone();
                async move { store.ping().await.map_err(|e| format!("database: {e}")) }
            }),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, state, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Settles abandoned checkouts once, now (the worker does this every interval).
    pub async fn settle_once(&self) -> anyhow::Result<recovery::Settled> {
        recovery::settle_once(&self.state, self.config.recovery.policy()).await
    }

    /// A handle for running recovery passes from outside (tests, chores).
    pub fn recovery_handle(&self) -> RecoveryHandle {
        RecoveryHandle { state: self.state.clone(), policy: self.config.recovery.policy() }
    }

    /// Serves, with the recovery worker, until `shutdown` is cancelled; then drains.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let recovery = &self.config.recovery;
        if recovery.enabled {
            tokio::spawn(recovery::run(
                self.state.clone(),
                recovery.interval(),
                recovery.policy(),
                shutdown.clone(),
            ));
        }
        self.server.run(shutdown).await
    }
}

/// Runs recovery passes against a running orders service.
#[derive(Clone)]
pub struct RecoveryHandle {
    state: AppState,
    policy: recovery::Policy,
}

impl RecoveryHandle {
    /// One pass; with `pending_timeout` overridden (e.g. zero in tests, to settle at once).
    pub async fn settle_once(&self, pending_timeout: Option<Duration>) -> anyhow::Result<recovery::Settled> {
        let policy = recovery::Policy {
            pending_timeout: pending_timeout.unwrap_or(self.policy.pending_timeout),
            ..self.policy
        };
        recovery::settle_once(&self.state, policy).await
    }
}

/// Applies the orders database's pending migrations (what `mercato migrate` runs).
pub async fn migrate(database: &kit::config::DatabaseConfig) -> anyhow::Result<()> {
    OrderStore::new(kit::db::connect(database).await?).migrate().await?;
    Ok(())
}

//! The products service: catalog, categories, full-text search, images, stock and
//! reservations. See README.md for its API and its layers.

mod app;
pub mod config;
pub mod domain;
mod routes;
mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use kit::auth::TokenVerifier;
use kit::client::ServiceClient;
use kit::http::{HttpServer, Service, ready_check};
use tokio_util::sync::CancellationToken;

use app::catalog::Catalog;
use app::images::Images;
use app::reservations::Reservations;
pub use config::ProductsConfig;
use state::AppState;
use store::{CacheLimits, CachedCatalog, CatalogHandles, CatalogImport, ImageStore, SqlCatalog, SqlLedger};

/// The products service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    import: Arc<dyn CatalogImport>,
}

impl Application {
    /// Connects the catalogue (migrating it when configured), puts the read cache in front of
    /// it when configured, opens the image store, and binds.
    pub async fn build(config: ProductsConfig) -> anyhow::Result<Self> {
        let database = Arc::new(SqlCatalog::connect(&config.database).await?);
        if config.database.migrate_on_start {
            database.migrate().await?;
        }
        let catalog = match CacheLimits::from_config(&config.cache) {
            Some(limits) => CatalogHandles::of(Arc::new(CachedCatalog::new(database.clone(), limits))),
            None => CatalogHandles::of(database.clone()),
        };
        let ledger = Arc::new(SqlLedger::new(database.connection().clone(), catalog.stock.clone()));
        let images = ImageStore::open(&config.images)?;
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let state = AppState {
            catalog: Catalog::new(catalog.records.clone(), catalog.search),
            images: Images::new(catalog.records, images.clone()),
            reservations: Reservations::new(ledger),
            verifier: Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL)),
            currency: config.currency.as_str().into(),
            image_path: config.images.public_path.trim_end_matches('/').into(),
        };
        let (api, openapi) = routes::router(state);
        let service = Service {
            name: "products",
            api,
            openapi,
            ready: ready_check(move || {
                let (database, images) = (database.clone(), images.clone());
                async move {
                    kit::db::ping(database.connection()).await?;
                    images.ping().await
                }
            }),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, import: catalog.import })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The catalogue's bulk import (through the read cache), e.g. to seed a demo catalogue
    /// before serving.
    pub fn catalog_import(&self) -> Arc<dyn CatalogImport> {
        self.import.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        self.server.run(shutdown).await
    }
}

/// Applies the products database's pending migrations (what `mercato migrate` runs).
pub async fn migrate(database: &kit::config::DatabaseConfig) -> anyhow::Result<()> {
    SqlCatalog::connect(database).await?.migrate().await?;
    Ok(())
}

//! The products service: catalog, categories, full-text search, images, stock and
//! reservations. See README.md for its API.

pub mod config;
pub mod domain;
pub mod images;
pub mod routes;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use kit::auth::TokenVerifier;
use kit::client::ServiceClient;
use kit::http::{HttpServer, Service, ready_check};
use tokio_util::sync::CancellationToken;

pub use config::ProductsConfig;
use images::ImageStore;
use routes::AppState;
use store::{CachedCatalog, CatalogHandles, CatalogImport, SqlCatalog, SqlLedger};

/// The products service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    import: Arc<dyn CatalogImport>,
}

impl Application {
    /// Connects the catalog (migrating it when configured), opens the image store, and binds.
    pub async fn build(config: ProductsConfig) -> anyhow::Result<Self> {
        let database = Arc::new(SqlCatalog::connect(&config.database).await?);
        if config.database.migrate_on_start {
            database.migrate().await?;
        }
        let catalog = match config.cache.limits() {
            Some(limits) => CatalogHandles::of(Arc::new(CachedCatalog::new(database.clone(), limits))),
            None => CatalogHandles::of(database.clone()),
        };
        let ledger = Arc::new(SqlLedger::new(database.connection().clone(), catalog.stock.clone()));
        let images = ImageStore::open(&config.images)?;
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let verifier = Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL));
        let state = AppState {
            catalog: catalog.records,
            search: catalog.search,
            ledger,
            images: images.clone(),
            verifier,
            currency: config.currency.as_str().into(),
            image_path: config.images.public_path.trim_end_matches('/').into(),
            image_work: Arc::new(tokio::sync::Semaphore::new(2)),
        };
        let (api, openapi) = routes::router(state);
        let ready_database = database.clone();
        let service = Service {
            name: "products",
            api,
            openapi,
            ready: ready_check(move || {
                let (database, images) = (ready_database.clone(), images.clone());
                async move {
                    database.ping().await.map_err(|e| format!("database: {e}"))?;
                    images.ping().await
                }
            }),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, import: catalog.import })
    }

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

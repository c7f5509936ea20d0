//! The products service: catalog, categories, full-text search, images, stock and
//! reservations, and catalog import. See README.md for its API.

pub mod config;
pub mod domain;
pub mod images;
pub mod routes;
pub mod seed;
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
use store::{CachedCatalog, CatalogStore, SqlCatalog};

/// The products service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    store: Arc<dyn CatalogStore>,
}

impl Application {
    /// Connects the catalog (migrating it when configured), opens the image store, and binds.
    pub async fn build(config: ProductsConfig) -> anyhow::Result<Self> {
        let mut store: Arc<dyn CatalogStore> = Arc::new(SqlCatalog::connect(&config.database).await?);
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        if let Some(limits) = config.cache.limits() {
            store = Arc::new(CachedCatalog::new(store, limits));
        }
        let images = ImageStore::open(&config.images)?;
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let verifier = Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL));
        let state = AppState {
            store: store.clone(),
            images: images.clone(),
            verifier,
            currency: config.currency.as_str().into(),
            image_path: config.images.public_path.trim_end_matches('/').into(),
            image_work: Arc::new(tokio::sync::Semaphore::new(2)),
        };
        let (api, openapi) = routes::router(state);
        let ready_store = store.clone();
        let service = Service {
            name: "products",
            api,
            openapi,
            ready: ready_check(move || {
                let (store, images) = (ready_store.clone(), images.clone());
                async move {
                    store.ping().await.map_err(|e| format!("database: {e}"))?;
                    images.ping().await
                }
            }),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, store })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The catalog store, e.g. to seed a demo catalog before serving.
    pub fn store(&self) -> Arc<dyn CatalogStore> {
        self.store.clone()
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

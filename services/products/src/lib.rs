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
use kit::redis::Redis;
use tokio_util::sync::CancellationToken;

use app::catalog::Catalog;
use app::images::Images;
use app::reservations::Reservations;
pub use config::ProductsConfig;
use state::AppState;
use store::{
    CacheLimits, CachedCatalog, CatalogHandles, CatalogImport, ImageStore, SharedDetails, SqlCatalog,
    SqlLedger,
};

/// The products service, bound and ready to run.
pub struct Application {
    server: HttpServer,
    import: Arc<dyn CatalogImport>,
    cache: Option<Arc<CachedCatalog<SqlCatalog>>>,
}

impl Application {
    /// Connects the catalogue (migrating it when configured), puts the read cache in front of
    /// it when configured (with Redis as the details' second level when there is one), opens
    /// the image store, and binds.
    pub async fn build(config: ProductsConfig) -> anyhow::Result<Self> {
        let database = Arc::new(SqlCatalog::connect(&config.database).await?);
        if config.database.migrate_on_start {
            database.migrate().await?;
        }
        let redis = Redis::connect(&config.redis)?;
        let cache = CacheLimits::from_config(&config.cache).map(|limits| {
            let cache = CachedCatalog::new(database.clone(), limits);
            let shared_ttl = std::time::Duration::from_millis(config.cache.shared_ttl_ms);
            Arc::new(match redis.clone() {
                Some(redis) if config.cache.shared_ttl_ms > 0 => {
                    cache.with_shared(SharedDetails::new(redis, shared_ttl))
                }
                _ => cache,
            })
        });
        let catalog = match cache.clone() {
            Some(cache) => CatalogHandles::of(cache),
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
        let mut ready = ready_check(move || {
            let (database, images) = (database.clone(), images.clone());
            async move {
                database.ping().await.map_err(|e| format!("database: {e}"))?;
                images.ping().await
            }
        });
        if let Some(redis) = redis {
            // Redis away makes the service degraded (no shared cache level), not unready.
            ready = kit::http::with_optional(ready, "redis", move || {
                let redis = redis.clone();
                async move { redis.ready().await }
            });
        }
        let service = Service { name: "products", api, openapi, ready };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, import: catalog.import, cache })
    }

    /// The read cache, when configured: what drops a product changed elsewhere
    /// ([`CachedCatalog::invalidate`]).
    pub fn catalog_cache(&self) -> Option<Arc<CachedCatalog<SqlCatalog>>> {
        self.cache.clone()
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

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

use contracts::events::{CloudEvent, ProductCreated, ProductDeleted, ProductUpdated};
use kit::auth::{Revocations, TokenVerifier};
use kit::client::ServiceClient;
use kit::events::{Bus, Consumer, Relay, Subscription, Transport};
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
    relay: Relay,
    events: Subscription,
}

impl Application {
    /// Connects the catalogue (migrating it when configured), puts the read cache in front of
    /// it when configured, opens the image store, and binds. Its events go to, and come from,
    /// an in-process bus of its own; a shop shares one through [`Self::build_with_events`].
    pub async fn build(config: ProductsConfig) -> anyhow::Result<Self> {
        Self::build_with_events(config, Bus::new()).await
    }

    /// As [`Self::build`], on the shop's bus `bus`: it publishes its outbox there, and takes
    /// from it `user.deleted` and `user.role_changed` (token revocation) and the `product.*`
    /// events of every replica (dropping those products from its read cache).
    pub async fn build_with_events(config: ProductsConfig, bus: Bus) -> anyhow::Result<Self> {
        let database = Arc::new(
            SqlCatalog::connect(&config.database).await?.with_low_stock_threshold(config.low_stock_threshold),
        );
        if config.database.migrate_on_start {
            database.migrate().await?;
        }
        let cache = CacheLimits::from_config(&config.cache)
            .map(|limits| Arc::new(CachedCatalog::new(database.clone(), limits)));
        let catalog = match &cache {
            Some(cache) => CatalogHandles::of(cache.clone()),
            None => CatalogHandles::of(database.clone()),
        };
        let ledger = Arc::new(
            SqlLedger::new(database.connection().clone(), catalog.stock.clone())
                .with_low_stock_threshold(config.low_stock_threshold),
        );
        let images = ImageStore::open(&config.images)?;
        let users = ServiceClient::new("users", &config.users_url, config.client.clone());
        let verifier = Arc::new(TokenVerifier::remote(users, kit::auth::KEY_REFRESH_INTERVAL));
        let transport = Transport::from_config(&config.events, bus);
        let events = transport.subscribe(consumer(verifier.revocations(), cache));
        let relay = Relay::new(
            "products",
            database.connection().clone(),
            transport.publisher(),
            config.events.clone(),
        );
        let state = AppState {
            catalog: Catalog::new(catalog.records.clone(), catalog.search),
            images: Images::new(catalog.records, images.clone()),
            reservations: Reservations::new(ledger),
            verifier,
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
                    database.ping().await.map_err(|e| format!("database: {e}"))?;
                    images.ping().await
                }
            }),
        };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self { server, import: catalog.import, relay, events })
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

    /// Serves, with the outbox relay and its event consumer, until `shutdown` is cancelled;
    /// then drains, and relays what the last requests recorded.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tokio::spawn(self.events.run(shutdown.clone()));
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(self.relay.run(relay_stop.clone()));
        let served = self.server.run(shutdown).await;
        relay_stop.cancel();
        let _ = relay.await;
        served
    }
}

/// What products takes from the bus, in one place: token revocations, and, with a read cache,
/// every replica's product changes, which drop that product from it.
fn consumer(revocations: Arc<Revocations>, cache: Option<Cached>) -> Consumer {
    let consumer = kit::events::with_token_revocation(Consumer::new("products"), revocations);
    let Some(cache) = cache else {
        return consumer;
    };
    consumer
        .on::<ProductCreated, _, _, _>(cache.clone(), forget_created)
        .on::<ProductUpdated, _, _, _>(cache.clone(), forget_updated)
        .on::<ProductDeleted, _, _, _>(cache, forget_deleted)
}

type Cached = Arc<CachedCatalog<SqlCatalog>>;

async fn forget_created(cache: Cached, event: CloudEvent<ProductCreated>) -> anyhow::Result<()> {
    cache.invalidate(event.data.product.product_id).await;
    Ok(())
}

async fn forget_updated(cache: Cached, event: CloudEvent<ProductUpdated>) -> anyhow::Result<()> {
    cache.invalidate(event.data.product.product_id).await;
    Ok(())
}

async fn forget_deleted(cache: Cached, event: CloudEvent<ProductDeleted>) -> anyhow::Result<()> {
    cache.invalidate(event.data.product_id).await;
    Ok(())
}

/// Applies the products database's pending migrations (what `mercato migrate` runs).
pub async fn migrate(database: &kit::config::DatabaseConfig) -> anyhow::Result<()> {
    SqlCatalog::connect(database).await?.migrate().await?;
    Ok(())
}

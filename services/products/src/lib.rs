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
use std::time::Duration;

use contracts::events::{CloudEvent, ProductCreated, ProductDeleted, ProductUpdated};
use kit::auth::{Revocations, TokenVerifier};
use kit::client::ServiceClient;
use kit::events::{Bus, Consumer, Relay, Subscription, Transport};
use kit::http::{HttpServer, Service};
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
    images: ImageStore,
    cache: Option<Arc<CachedCatalog<SqlCatalog>>>,
    pictures: PictureFiller,
    relay: Relay,
    events: Subscription,
}

/// Draws a picture for every live product without one and adds it, as an upload would be,
/// with its narrower copies for listings: the demo catalog's generated products come without
/// pictures (nothing is downloaded).
#[derive(Clone)]
pub struct PictureFiller(Images);

impl PictureFiller {
    /// Adds the pictures; answers how many.
    pub async fn fill(&self) -> anyhow::Result<usize> {
        self.0.fill_missing_pictures().await.map_err(|e| anyhow::anyhow!("drawing demo pictures: {e}"))
    }
}

/// How often the image store is asked whether it answers (`products_image_store_up`).
const IMAGE_STORE_PROBE_EVERY: Duration = Duration::from_secs(15);
/// How long one such question may take before the store counts as down.
const IMAGE_STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Application {
    /// Connects the catalogue (migrating it when configured), puts the read cache in front of
    /// it when configured (with Redis as the details' second level when there is one), opens
    /// the image store, and binds. Its events go to, and come from, an in-process bus of its
    /// own; a shop shares one through [`Self::build_with_events`].
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
        let events = transport
            .subscribe(consumer(verifier.revocations(), cache.clone()))
            .with_revocation_backfill(verifier.clone());
        events.declare().await;
        let relay = Relay::new(
            "products",
            database.connection().clone(),
            transport.publisher(),
            config.events.clone(),
        );
        let product_images = Images::new(catalog.records.clone(), images.clone());
        let state = AppState {
            catalog: Catalog::new(catalog.records.clone(), catalog.search),
            images: product_images.clone(),
            reservations: Reservations::new(ledger),
            verifier,
            currency: config.currency.as_str().into(),
            image_path: config.images.public_path.trim_end_matches('/').into(),
        };
        let (api, openapi) = routes::router(state);
        // The database only: an image store that does not answer takes images away, not the
        // catalog (`watch_image_store` reports it).
        let mut ready =
            kit::db::readiness::<store::migration::Migrator>(database.connection().clone(), "products");
        if let Some(redis) = redis {
            // Redis away makes the service degraded (no shared cache level), not unready.
            ready = kit::http::with_optional(ready, "redis", move || {
                let redis = redis.clone();
                async move { redis.ready().await }
            });
        }
        let service = Service { name: "products", api, openapi, ready };
        let server = HttpServer::bind(service, &config.http).await?;
        Ok(Self {
            server,
            import: catalog.import,
            images,
            pictures: PictureFiller(product_images),
            cache,
            relay,
            events,
        })
    }

    /// What draws pictures for products that have none (the demo catalog of `mercato up`).
    pub fn picture_filler(&self) -> PictureFiller {
        self.pictures.clone()
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

    /// Serves, with the outbox relay and its event consumer, until `shutdown` is cancelled;
    /// then drains, and relays what the last requests recorded.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tokio::spawn(watch_image_store(self.images, shutdown.clone()));
        tokio::spawn(self.events.run(shutdown.clone()));
        self.relay.beside(self.server.run(shutdown)).await
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

/// Asks the image store every [`IMAGE_STORE_PROBE_EVERY`] whether it answers, until `shutdown`:
/// the gauge `products_image_store_up` (1 or 0) and a log line when that changes. Readiness does
/// not follow it (a slow or forbidding S3 must not take the catalog out of service); image
/// uploads and reads fail on their own meanwhile, with a 503.
async fn watch_image_store(images: ImageStore, shutdown: CancellationToken) {
    let gauge = metrics::gauge!("products_image_store_up");
    let mut was_up = true;
    loop {
        let up = match tokio::time::timeout(IMAGE_STORE_PROBE_TIMEOUT, images.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(cause)) => {
                if was_up {
                    tracing::warn!(%cause, "the image store does not answer; the catalog keeps serving without images");
                }
                false
            }
            Err(_) => {
                if was_up {
                    tracing::warn!(timeout = ?IMAGE_STORE_PROBE_TIMEOUT, "the image store does not answer in time; the catalog keeps serving without images");
                }
                false
            }
        };
        if up && !was_up {
            tracing::info!("the image store answers again");
        }
        was_up = up;
        gauge.set(if up { 1.0 } else { 0.0 });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(IMAGE_STORE_PROBE_EVERY) => {}
        }
    }
}

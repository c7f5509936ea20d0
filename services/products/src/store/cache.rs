//! [`CachedCatalog`]: the catalogue's hot reads (product details, list and search pages, the
//! category list) kept in memory for a short time, in front of a [`CatalogStore`] and
//! [`CatalogSearch`]. It wraps only what it caches and the writes that change it (catalogue
//! writes and imports); the reservation ledger is not wrapped but tells it, as a
//! [`StockObserver`], which products' stock moved.
//!
//! What a reader may see, and why it is safe:
//! - Writes made through this process show at once: creating, editing, deleting, importing
//!   and adding images drop the pages and the categories, and the touched product's detail.
//!   A reservation or a release drops the details of the products whose stock moved. (A read
//!   already in flight when the write lands may still keep what it read, for at most the time
//!   to live.)
//! - Writes made elsewhere (another replica, `mercato seed` against a running shop) show
//!   once their `product.*` event arrives ([`CachedCatalog::invalidate`]), and within the
//!   time to live at the latest.
//! - Stock on list and search pages may lag a reservation by up to the time to live; the
//!   detail page does not (on this replica), and a reservation itself always reads the
//!   database, so a stale number can never oversell.
//! - Concurrent misses of the same entry are coalesced: one database read fills it and the
//!   others wait for that read, so an entry expiring under load (a popular search, say) does
//!   not send every waiting request to the database at once.
//! - Pricing and reservation reads ([`CatalogStore::lookup`], the ledger) and the admin's
//!   low-stock report are never cached.
//!
//! With Redis (`redis.url`), product details have a second level shared by every replica:
//! a detail missing here is read from Redis, and only then from the database (which fills
//! both levels; Redis for `cache.shared_ttl_ms`). Everything that drops a detail here drops it
//! from Redis too, so another replica's next miss reads the database. Another replica's own
//! memory keeps what it has for at most `cache.ttl_ms`; [`CachedCatalog::invalidate`] is
//! what an event from another replica calls to drop it at once. A read racing with a write
//! (it read the database before the write and stores after its invalidation) can leave the
//! old detail in Redis for at most `cache.shared_ttl_ms`. Redis away: the second level is
//! skipped (memory, then the database), never an error. Where each detail came from counts in
//! `catalog_cache_reads_total{level="memory"|"redis"|"database"}`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kit::redis::Redis;
use moka::future::Cache;
use uuid::Uuid;

use super::{CatalogImport, CatalogSearch, CatalogStore, StockObserver, StoreError, UpsertSummary};
use crate::config::CacheConfig;
use crate::domain::{
    CategoryCount, ListQuery, Listing, LookupItem, NewProduct, Paging, Product, ProductPatch, Sku,
};

/// Sizes and lifetime of the read cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// How long an entry is served before the database is read again.
    pub ttl: Duration,
    /// Memory for product details, in bytes (approximate: the text they hold).
    pub product_bytes: u64,
    /// Memory for list and search pages, in bytes (approximate, as above).
    pub page_bytes: u64,
}

impl CacheLimits {
    /// The limits `config` sets, or `None` when it turns the cache off: a quarter of the memory
    /// for product details, the rest for pages.
    pub fn from_config(config: &CacheConfig) -> Option<Self> {
        if config.ttl_ms == 0 || config.max_mib == 0 {
            return None;
        }
        let bytes = config.max_mib * 1024 * 1024;
        Some(Self {
            ttl: Duration::from_millis(config.ttl_ms),
            product_bytes: bytes / 4,
            page_bytes: bytes - bytes / 4,
        })
    }
}

/// A catalogue that serves repeated reads of `inner` from memory, and product details from
/// Redis as a second level when given one (see the module docs for what a reader may see).
pub struct CachedCatalog<S> {
    inner: Arc<S>,
    /// `None` is kept too (briefly): an id that does not exist is not looked up again and again.
    products: Cache<Uuid, Option<Product>>,
    pages: Cache<String, Listing>,
    categories: Cache<(), Vec<CategoryCount>>,
    shared: Option<SharedDetails>,
}

/// The second level of product details: JSON in Redis, one key per product
/// (`<prefix>:product:v1:<id>`), expiring after `ttl`.
pub struct SharedDetails {
    redis: Redis,
    ttl: Duration,
}

impl SharedDetails {
    /// Details kept in `redis` for `ttl` (at least a millisecond).
    pub fn new(redis: Redis, ttl: Duration) -> Self {
        Self { redis, ttl: ttl.max(Duration::from_millis(1)) }
    }

    fn key(&self, id: Uuid) -> String {
        self.redis.key(&format!("product:v1:{id}"))
    }

    /// The detail kept for `id`; `None` when there is none, it cannot be read, or Redis is away.
    async fn get(&self, id: Uuid) -> Option<Product> {
        let key = self.key(id);
        let json = self
            .redis
            .run("product_cache", |mut connection| async move {
                redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut connection).await
            })
            .await
            .ok()??;
        match serde_json::from_slice(&json) {
            Ok(product) => Some(product),
            Err(error) => {
                tracing::warn!(%id, %error, "a product detail in redis could not be read; reading the database");
                None
            }
        }
    }

    async fn put(&self, product: &Product) {
        let Ok(json) = serde_json::to_vec(product) else { return };
        let key = self.key(product.id);
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .redis
            .run("product_cache", |mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await;
    }

    async fn forget(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        let _ = self
            .redis
            .run("product_cache", |mut connection| async move {
                redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await
            })
            .await;
    }

    /// Drops every detail (after an import, which may change any product): the keys under the
    /// prefix, a batch at a time. Redis away: they expire within the time to live.
    async fn forget_all(&self) {
        let pattern = self.redis.key("product:v1:*");
        let mut cursor: u64 = 0;
        loop {
            let pattern = pattern.clone();
            let scanned = self
                .redis
                .run("product_cache", |mut connection| async move {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut connection)
                        .await?;
                    if !keys.is_empty() {
                        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await?;
                    }
                    Ok::<u64, redis::RedisError>(next)
                })
                .await;
            match scanned {
                Ok(0) | Err(_) => return,
                Ok(next) => cursor = next,
            }
        }
    }
}

/// Counts where a product detail was served from.
fn served_from(level: &'static str) {
    metrics::counter!("catalog_cache_reads_total", "level" => level).increment(1);
}

impl<S> CachedCatalog<S> {
    /// Caches `inner`'s reads within `limits`.
    pub fn new(inner: Arc<S>, limits: CacheLimits) -> Self {
        Self {
            inner,
            products: Cache::builder()
                .max_capacity(limits.product_bytes)
                .weigher(|_, product: &Option<Product>| weight(product.as_ref().map_or(64, product_bytes)))
                .time_to_live(limits.ttl)
                .build(),
            pages: Cache::builder()
                .max_capacity(limits.page_bytes)
                .weigher(|key: &String, page: &Listing| {
                    weight(key.len() + page.items.iter().map(product_bytes).sum::<usize>())
                })
                .time_to_live(limits.ttl)
                .build(),
            categories: Cache::builder().max_capacity(1).time_to_live(limits.ttl).build(),
            shared: None,
        }
    }

    /// Product details get `shared` as their second level, below this process's memory.
    pub fn with_shared(mut self, shared: SharedDetails) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Drops what is kept of product `id`, here and in the second level, and every page (it
    /// may be on any): what a `product.*` event telling that `id` changed, perhaps on another replica, calls.
    pub async fn invalidate(&self, id: Uuid) {
        self.forget_product(id).await;
    }

    /// The catalog's shape changed: every page and the category counts may be wrong.
    fn forget_listings(&self) {
        self.pages.invalidate_all();
        self.categories.invalidate_all();
    }

    /// One product changed: its detail (both levels), and any page it is on.
    async fn forget_product(&self, id: Uuid) {
        self.products.invalidate(&id).await;
        if let Some(shared) = &self.shared {
            shared.forget(&[id]).await;
        }
        self.forget_listings();
    }
}

impl<S: CatalogStore> CachedCatalog<S> {
    /// A detail this process does not hold: from the second level, else from the database
    /// (which then fills the second level).
    async fn load_product(&self, id: Uuid) -> Result<Option<Product>, StoreError> {
        if let Some(shared) = &self.shared
            && let Some(product) = shared.get(id).await
        {
            served_from("redis");
            return Ok(Some(product));
        }
        let product = self.inner.product(id).await?;
        served_from("database");
        if let (Some(shared), Some(product)) = (&self.shared, &product) {
            shared.put(product).await;
        }
        Ok(product)
    }
}

/// The error of a read that other waiters shared, as the caller's own (same kind, so a
/// database that is down still answers 503).
fn unshare(shared: Arc<StoreError>) -> StoreError {
    match &*shared {
        StoreError::DuplicateSku(sku) => StoreError::DuplicateSku(sku.clone()),
        StoreError::Db(err) => StoreError::Db(err.clone()),
    }
}

/// About how many bytes a product takes in memory: its fixed part and the text it holds.
fn product_bytes(product: &Product) -> usize {
    let text = product.name.len()
        + product.sku.as_str().len()
        + product.short_description.len()
        + product.description.len()
        + product.category.len()
        + product.brand.as_ref().map_or(0, String::len)
        + product.images.iter().map(String::len).sum::<usize>();
    let attributes: usize =
        product.attributes.iter().map(|(name, value)| name.len() + value.to_string().len() + 64).sum();
    std::mem::size_of::<Product>() + text + attributes
}

/// A cache weight: bytes, saturating at what a weight can hold.
fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The page's identity: every filter, the order, and where it starts.
fn page_key(query: &ListQuery, paging: &Paging) -> String {
    format!("{query:?}|{paging:?}")
}

#[async_trait]
impl<S: CatalogStore + 'static> CatalogStore for CachedCatalog<S> {
    async fn create_product(&self, new: NewProduct) -> Result<Product, StoreError> {
        let created = self.inner.create_product(new).await;
        self.forget_listings();
        created
    }

    async fn update_product(&self, id: Uuid, patch: ProductPatch) -> Result<Option<Product>, StoreError> {
        let updated = self.inner.update_product(id, patch).await;
        self.forget_product(id).await;
        updated
    }

    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_product(id).await;
        self.forget_product(id).await;
        deleted
    }

    async fn product(&self, id: Uuid) -> Result<Option<Product>, StoreError> {
        let entry =
            self.products.entry(id).or_try_insert_with(self.load_product(id)).await.map_err(unshare)?;
        if !entry.is_fresh() {
            served_from("memory");
        }
        Ok(entry.into_value())
    }

    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
        self.inner.product_by_sku(sku).await
    }

    async fn add_image(&self, product_id: Uuid, key: &str) -> Result<Option<Product>, StoreError> {
        let updated = self.inner.add_image(product_id, key).await;
        self.forget_product(product_id).await;
        updated
    }

    async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<LookupItem>, StoreError> {
        self.inner.lookup(ids).await
    }

    async fn without_images(&self, limit: u64) -> Result<Vec<(Uuid, String, String)>, StoreError> {
        self.inner.without_images(limit).await
    }
}

#[async_trait]
impl<S: CatalogSearch + 'static> CatalogSearch for CachedCatalog<S> {
    async fn list(&self, query: &ListQuery, paging: Paging) -> Result<Listing, StoreError> {
        let key = page_key(query, &paging);
        self.pages.try_get_with(key, self.inner.list(query, paging)).await.map_err(unshare)
    }

    async fn categories(&self) -> Result<Vec<CategoryCount>, StoreError> {
        self.categories.try_get_with((), self.inner.categories()).await.map_err(unshare)
    }

    async fn low_stock(
        &self,
        threshold: i64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Product>, u64), StoreError> {
        self.inner.low_stock(threshold, offset, limit).await
    }
}

#[async_trait]
impl<S: CatalogImport + 'static> CatalogImport for CachedCatalog<S> {
    async fn upsert_batch(&self, products: Vec<NewProduct>) -> Result<UpsertSummary, StoreError> {
        let written = self.inner.upsert_batch(products).await;
        self.products.invalidate_all();
        if let Some(shared) = &self.shared {
            shared.forget_all().await;
        }
        self.forget_listings();
        written
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.inner.is_empty().await
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.inner.refresh_statistics().await
    }
}

/// A reservation or a release: the details of those products show their stock, so they go;
/// pages keep theirs for the time to live (see the module docs).
#[async_trait]
impl<S: StockObserver + 'static> StockObserver for CachedCatalog<S> {
    async fn stock_moved(&self, products: &[Uuid]) {
        for id in products {
            self.products.invalidate(id).await;
        }
        if let Some(shared) = &self.shared {
            shared.forget(products).await;
        }
        self.inner.stock_moved(products).await;
    }
}

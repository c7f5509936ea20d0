//! The products service's settings (shared parts come from `kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use kit::config::{ClientConfig, ConfigError, DatabaseConfig, EventsConfig, HttpConfig, Settings};
use kit::redis::RedisConfig;
use serde::{Deserialize, Serialize};

/// Everything the products service reads at start. Environment: `MERCATO_HTTP__LISTEN`,
/// `MERCATO_DATABASE__URL`, `MERCATO_USERS_URL`, `MERCATO_IMAGES__BACKEND=s3`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductsConfig {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    /// The one ISO 4217 currency prices are in.
    pub currency: String,
    /// Base URL of the users service, whose key set verifies tokens.
    pub users_url: String,
    /// Calls to the users service (the key set).
    pub client: ClientConfig,
    pub images: ImagesConfig,
    /// The in-memory cache of hot catalog reads (details, pages, categories).
    pub cache: CacheConfig,
    /// The shared second level of the product details cache (`redis.url`); empty: none, each
    /// replica reads the database on its own misses. Redis away: skipped, never an error.
    pub redis: RedisConfig,
    /// Available stock at or below this is low: a change that takes a product there from above
    /// sends `product.stock_low`.
    pub low_stock_threshold: i64,
    /// The outbox relay of the events products sends.
    pub events: EventsConfig,
}

/// The catalog read cache (see `store::CachedCatalog` for what readers may see).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// How long a cached detail, page or category list is served, in milliseconds; also how
    /// long another replica's writes (and list stock after a checkout) may take to show. 0 turns
    /// the cache off.
    pub ttl_ms: u64,
    /// Memory for the cache, in MiB: a quarter for product details, the rest for pages.
    pub max_mib: u64,
    /// With Redis: how long a product detail is kept there for every replica, in
    /// milliseconds (also the longest a read racing with a write can leave the old one there).
    /// 0 turns the second level off.
    pub shared_ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl_ms: 2_000, max_mib: 16, shared_ttl_ms: 30_000 }
    }
}

impl Default for ProductsConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 8082))),
            database: DatabaseConfig::default(),
            currency: "USD".into(),
            users_url: "http://127.0.0.1:8081".into(),
            client: ClientConfig::default(),
            images: ImagesConfig::default(),
            cache: CacheConfig::default(),
            redis: RedisConfig::default(),
            low_stock_threshold: crate::domain::DEFAULT_LOW_STOCK_THRESHOLD,
            events: EventsConfig::default(),
        }
    }
}

/// Where product images live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageBackend {
    /// A directory on this machine (the embedded default).
    Local,
    /// Any S3-compatible object store.
    S3,
}

/// Image storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    pub backend: ImageBackend,
    /// `local`: the directory (created if missing).
    pub local_dir: PathBuf,
    /// `s3`: bucket, region, endpoint (for MinIO and other S3-compatible stores), path-style
    /// addressing. Credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (or the
    /// fields below), as every AWS tool reads them.
    pub s3: S3Config,
    /// URL path under which images are served (`GET {public_path}/{key}`).
    pub public_path: String,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            backend: ImageBackend::Local,
            local_dir: PathBuf::from("./data/images"),
            s3: S3Config::default(),
            public_path: "/api/v1/images".into(),
        }
    }
}

/// An S3 bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// e.g. `http://minio:9000`; empty for AWS itself.
    pub endpoint: String,
    /// Address buckets as `endpoint/bucket` (MinIO, most S3-compatible stores).
    pub path_style: bool,
    /// Allow a plain-HTTP endpoint (in-cluster MinIO, tests).
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Settings for ProductsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate("http")?;
        self.database.validate("database")?;
        self.redis.validate("redis")?;
        if self.cache.shared_ttl_ms > 24 * 3600 * 1000 {
            return Err(ConfigError::invalid("cache.shared_ttl_ms", "must be at most a day (86400000)"));
        }
        self.events.validate("events")?;
        if self.low_stock_threshold < 0 {
            return Err(ConfigError::invalid("low_stock_threshold", "must be 0 or more"));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid("currency", "must be an ISO 4217 code such as USD"));
        }
        if !(self.users_url.starts_with("http://") || self.users_url.starts_with("https://")) {
            return Err(ConfigError::invalid("users_url", "must be an http(s) URL"));
        }
        if self.images.backend == ImageBackend::S3 && self.images.s3.bucket.is_empty() {
            return Err(ConfigError::invalid("images.s3.bucket", "is required when images.backend is s3"));
        }
        if !self.images.public_path.starts_with('/') {
            return Err(ConfigError::invalid("images.public_path", "must start with /"));
        }
        Ok(())
    }
}

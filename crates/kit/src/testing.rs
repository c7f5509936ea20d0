//! Test support (feature `testing`): a fresh database per test on either backend, and a key
//! prefix of its own per test on the real Redis.
//!
//! PostgreSQL tests use the server named by `MERCATO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and create a new database for each test.
//! Redis tests use `MERCATO_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), never flush it,
//! and delete their own keys when done.

use crate::config::DatabaseConfig;

/// Which relational backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test: a SQLite file in a temporary directory, or a new
/// PostgreSQL database; both are removed on drop.
pub struct TestDatabase {
    pub config: DatabaseConfig,
    /// A scratch directory for the test (the SQLite file, keys…).
    pub dir: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                use sea_orm::ConnectionTrait;
                if let Ok(admin) = sea_orm::Database::connect(postgres_server_url()).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = admin.execute_unprepared(&sql).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// The PostgreSQL server tests use.
pub fn postgres_server_url() -> String {
    std::env::var("MERCATO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDatabase {
    /// A new, empty database on `backend`; `label` becomes part of the PostgreSQL name.
    pub async fn new(backend: Backend, label: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut postgres_name = None;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
            Backend::Postgres => {
                let label: String = label
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
                    .collect();
                let name = format!("t_{}_{}", &label[..label.len().min(30)], uuid::Uuid::new_v4().simple());
                let url =
                    crate::db::create_postgres_database(&postgres_server_url(), &name).await.unwrap_or_else(
                        |e| panic!("PostgreSQL at {} is needed for this test: {e}", postgres_server_url()),
                    );
                postgres_name = Some(name);
                url
            }
        };
        Self {
            config: DatabaseConfig { max_connections: 8, ..DatabaseConfig::with_url(url) },
            dir,
            postgres_name,
        }
    }
}

/// Runs a test body on SQLite and on PostgreSQL: for each `name`, an `async fn name(backend:
/// Backend)` in the same file gets `sqlite::name` and `postgres::name` tests.
///
/// ```ignore
/// kit::on_both_backends!(orders_keep_their_lines, stats_add_up);
/// async fn orders_keep_their_lines(backend: kit::testing::Backend) { /* … */ }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Postgres).await
                }
            )*
        }
    };
}

/// What the users service is to another service's tests: a signing key that mints access and
/// service tokens, and a server on 127.0.0.1 that publishes its key set at
/// [`crate::auth::JWKS_PATH`], hands out service tokens at `POST /internal/v1/auth/token` to
/// any client, and answers the revocation feed a starting service reads (nobody revoked:
/// tests revoke by publishing events). Point the service's `users_url` at [`TestAuth::url`];
/// no users crate needed.
pub struct TestAuth {
    issuer: std::sync::Arc<crate::signing::TokenIssuer>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestAuth {
    /// A fresh key and its server on a free loopback port.
    pub async fn start() -> Self {
        use axum::routing::{get, post};
        let (key, _) = crate::signing::SigningKey::generate().expect("an Ed25519 key");
        let ttl = std::time::Duration::from_secs(900);
        let issuer = std::sync::Arc::new(crate::signing::TokenIssuer::new(key, ttl, ttl));
        let jwks = issuer.jwks();
        let minting = std::sync::Arc::clone(&issuer);
        let router = axum::Router::new()
            .route(crate::auth::JWKS_PATH, get(move || async move { axum::Json(jwks) }))
            .route(
                contracts::users::REVOCATIONS_PATH,
                get(|| async {
                    axum::Json(contracts::users::RevocationEvents { items: Vec::new(), next_after: None })
                }),
            )
            .route(
                "/internal/v1/auth/token",
                post(move |axum::Json(body): axum::Json<contracts::users::ServiceTokenRequest>| async move {
                    let token = minting.service_token(&body.client_id).expect("a service token");
                    axum::Json(contracts::users::ServiceTokenResponse::bearer(token.token, token.expires_in))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { issuer, url, server }
    }

    /// The base URL to give a service as its users service.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An access token for `user` with `role`.
    pub fn token(&self, user: uuid::Uuid, role: crate::auth::Role) -> String {
        self.issuer.access_token(user, role).expect("an access token").token
    }

    /// A customer's access token.
    pub fn customer(&self, user: uuid::Uuid) -> String {
        self.token(user, crate::auth::Role::Customer)
    }

    /// An admin's access token.
    pub fn admin(&self, user: uuid::Uuid) -> String {
        self.token(user, crate::auth::Role::Admin)
    }

    /// Another service's token.
    pub fn service(&self, client_id: &str) -> String {
        self.issuer.service_token(client_id).expect("a service token").token
    }

    /// The key set that verifies the minted tokens.
    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.issuer.jwks()
    }
}

/// The Redis server tests use.
pub fn redis_server_url() -> String {
    std::env::var("MERCATO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix on the test Redis that no other test uses; its keys are deleted on drop.
pub struct TestRedis {
    /// The test server and the prefix (`test:<uuid>`); give it to every instance that should share.
    pub config: crate::redis::RedisConfig,
}

impl TestRedis {
    /// A fresh prefix on [`redis_server_url`]'s server. Panics when that server does not answer:
    /// the test needs it.
    pub fn new() -> Self {
        let config = crate::redis::RedisConfig {
            key_prefix: format!("test:{}", uuid::Uuid::new_v4().simple()),
            // Generous: a loaded test machine must not make a test see the fallback by accident.
            command_timeout_ms: 2_000,
            ..crate::redis::RedisConfig::with_url(redis_server_url())
        };
        let mut connection = redis::Client::open(config.url.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("Redis at {} is needed for this test: {e}", config.url));
        redis::cmd("PING")
            .query::<()>(&mut connection)
            .unwrap_or_else(|e| panic!("Redis at {} is needed for this test: {e}", config.url));
        Self { config }
    }

    /// The keys under this test's prefix (to check what was written).
    pub fn keys(&self) -> Vec<String> {
        let Ok(mut connection) =
            redis::Client::open(self.config.url.as_str()).and_then(|c| c.get_connection())
        else {
            return Vec::new();
        };
        let pattern = format!("{}:*", self.config.key_prefix);
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection);
            let Ok((next, batch)) = scanned else { return keys };
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        if let Ok(mut connection) =
            redis::Client::open(self.config.url.as_str()).and_then(|c| c.get_connection())
        {
            let _ = redis::cmd("DEL").arg(&keys).query::<()>(&mut connection);
        }
    }
}

/// Every event in the outbox of `db`, sent or not, in the order it was recorded: what a
/// producer's store test checks its changes against.
pub async fn outbox_events(db: &sea_orm::DatabaseConnection) -> Vec<contracts::events::CloudEvent> {
    use sea_orm::QueryOrder;
    crate::events::outbox_rows()
        .order_by_asc(crate::events::OutboxColumn::Seq)
        .all(db)
        .await
        .expect("the outbox reads")
        .into_iter()
        .map(|row| serde_json::from_str(&row.payload).expect("an outbox row is a CloudEvent"))
        .collect()
}

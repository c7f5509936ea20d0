//! Test support (feature `testing`): a fresh database per test on either backend.
//!
//! PostgreSQL tests use the server named by `MERCATO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and create a new database for each test.

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

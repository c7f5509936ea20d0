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

/// A database that exists for one test. SQLite files live in a temporary directory removed on
/// drop; PostgreSQL databases are left for inspection (their names say which test made them).
pub struct TestDatabase {
    pub config: DatabaseConfig,
    pub dir: tempfile::TempDir,
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
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
            Backend::Postgres => {
                let label: String =
                    label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
                let name = format!("t_{}_{}", &label[..label.len().min(30)], uuid::Uuid::new_v4().simple());
                crate::db::create_postgres_database(&postgres_server_url(), &name).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {} is needed for this test: {e}", postgres_server_url())
                })
            }
        };
        Self { config: DatabaseConfig { max_connections: 8, ..DatabaseConfig::with_url(url) }, dir }
    }
}

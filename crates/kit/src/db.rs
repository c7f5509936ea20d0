//! Opening a database pool the same way in every service, for SQLite and PostgreSQL, and
//! creating throw-away PostgreSQL databases for tests.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

use crate::config::DatabaseConfig;

/// Opens a pool. SQLite files are created if missing and run in WAL mode with foreign keys on,
/// a busy timeout (concurrent writers wait instead of failing), the file memory-mapped (256 MiB)
/// and an 8 MiB page cache per connection.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Profiling the mixed load showed reads spending their time copying file pages
                // into SQLite's small default cache; map the file instead, and keep a larger cache.
                .pragma("mmap_size", "268435456")
                .pragma("cache_size", "-8192")
        });
    Database::connect(options).await
}

/// True for a PostgreSQL connection string.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Creates a new, empty PostgreSQL database named `name` on the server of `server_url` (which
/// names any existing database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and returns
/// the URL of the new database. Used by tests to give every test its own database.
pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<String, DbErr> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbErr::Custom(format!("database name {name:?} must be [A-Za-z0-9_]")));
    }
    let admin = Database::connect(server_url).await?;
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE \"{name}\""),
        ))
        .await?;
    admin.close().await?;
    let mut url = url::Url::parse(server_url).map_err(|e| DbErr::Custom(e.to_string()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

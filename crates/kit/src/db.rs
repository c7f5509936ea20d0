//! Opening a database pool the same way in every service, for SQLite and PostgreSQL, with
//! errors that name the database and the cause; and creating throw-away PostgreSQL databases
//! for tests.

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, RuntimeErr, Statement};

use crate::config::DatabaseConfig;

/// Opens a pool. SQLite files are created if missing and run in WAL mode with foreign keys on,
/// a busy timeout (concurrent writers wait instead of failing), the file memory-mapped (256 MiB)
/// and an 8 MiB page cache per connection.
///
/// A PostgreSQL service that does not migrate on start (`migrate_on_start = false`: in
/// containers a Job migrates) needs nothing from its database before it serves, so its pool
/// connects lazily: the service starts, answers 503 on `/readyz` until the database answers,
/// and logs once why it does not yet. Otherwise the database must answer now, and a server that
/// refuses, stays silent for `acquire_timeout_ms` or lacks the database is an error naming the
/// server and the cause (never the pool's bare "pool timed out"); so is a SQLite file that
/// cannot be opened, with the operating system's reason.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    let postgres = is_postgres(&config.url);
    let lazy = postgres && !config.migrate_on_start;
    if postgres && !lazy {
        reach_postgres(config).await.map_err(connection_error)?;
    }
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_lazy(lazy)
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
    let db = Database::connect(options).await.map_err(|e| connection_error(explain(&config.url, &e)))?;
    if lazy {
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(why) = reach_postgres(&config).await {
                tracing::warn!("{why}; /readyz answers 503 until it answers");
            }
        });
    }
    Ok(db)
}

/// Whether the database answers, worded for a `/readyz` answer ("database: <cause>"): the
/// readiness check every service with a database runs (`kit::http::ready_check`).
pub async fn ping(db: &DatabaseConnection) -> Result<(), String> {
    db.ping().await.map_err(|e| format!("database: {e}"))
}

/// The readiness check of a service whose dependency is its database, at the schema this
/// binary was built for: `Err` while the database does not answer, or while any migration of
/// `M` (the service's migrator) is not applied — a pod that started
/// before its migration Job finished stays out of service instead of failing requests.
/// Migrations the database has and this binary does not know (a newer schema during a rollback)
/// are fine. Once the schema was seen complete it is not read again, only pinged.
pub fn readiness<M: sea_orm_migration::MigratorTrait>(
    db: DatabaseConnection,
    service: &'static str,
) -> crate::http::ReadyCheck {
    let expected: Vec<String> = M::migrations().iter().map(|m| m.name().to_owned()).collect();
    let migrated = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::http::ready_check(move || {
        let (db, expected, migrated) = (db.clone(), expected.clone(), migrated.clone());
        async move {
            ping(&db).await?;
            if migrated.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            let pending = pending_migrations(&db, &expected).await;
            if pending.is_empty() {
                migrated.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            Err(format!(
                "database schema: {} migration(s) not applied ({}): run `mercato migrate {service}`",
                pending.len(),
                pending.join(", ")
            ))
        }
    })
}

/// The names of `expected` that the database's `seaql_migrations` does not list (all of them
/// when the table does not exist yet).
async fn pending_migrations(db: &DatabaseConnection, expected: &[String]) -> Vec<String> {
    let statement = Statement::from_string(db.get_database_backend(), "SELECT version FROM seaql_migrations");
    let applied: std::collections::HashSet<String> = match db.query_all_raw(statement).await {
        Ok(rows) => rows.iter().filter_map(|row| row.try_get::<String>("", "version").ok()).collect(),
        Err(_) => std::collections::HashSet::new(),
    };
    expected.iter().filter(|name| !applied.contains(*name)).cloned().collect()
}

/// The database `url` names, for messages and the start-up banner, without credentials:
/// `SQLite ./data/users.db` or `PostgreSQL 127.0.0.1:5432/mercato_users`.
pub fn describe(url: &str) -> String {
    if let Some(path) = sqlite_path(url) {
        return match path {
            ":memory:" | "" => "SQLite in memory".to_owned(),
            path => format!("SQLite {path}"),
        };
    }
    match url::Url::parse(url) {
        Ok(parsed) if is_postgres(url) => format!(
            "PostgreSQL {}:{}/{}",
            parsed.host_str().unwrap_or("localhost"),
            parsed.port().unwrap_or(5432),
            parsed.path().trim_start_matches('/')
        ),
        Ok(parsed) => format!("a {} database", parsed.scheme()),
        Err(_) => "a database with an unreadable URL".to_owned(),
    }
}

/// The file of a `sqlite:` URL (`sqlite://data/users.db?mode=rwc` → `data/users.db`).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    rest.split('?').next()
}

/// One direct connection to the PostgreSQL server of `config`, closed at once: the pool retries
/// until its timeout and then reports only that it timed out; a single attempt says why.
async fn reach_postgres(config: &DatabaseConfig) -> Result<(), String> {
    let server = describe(&config.url);
    let options: PgConnectOptions =
        config.url.parse().map_err(|e| format!("database.url is not a usable PostgreSQL URL: {e}"))?;
    let wait = Duration::from_millis(config.acquire_timeout_ms);
    match tokio::time::timeout(wait, options.connect()).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!("cannot connect to {server}: {}", postgres_cause(&e, &options))),
        Err(_) => Err(format!(
            "{server} did not answer within {} ms (database.acquire_timeout_ms)",
            config.acquire_timeout_ms
        )),
    }
}

/// What went wrong talking to PostgreSQL, in its own words (without sqlx's decorations), with the
/// fix when it is a missing database.
fn postgres_cause(error: &sqlx::Error, options: &PgConnectOptions) -> String {
    match error {
        sqlx::Error::Database(e) if e.code().as_deref() == Some("3D000") => {
            let database = options.get_database().unwrap_or_default();
            format!(
                "{} (create it first: createdb -h {} -p {} -U {} {database})",
                e.message(),
                options.get_host(),
                options.get_port(),
                options.get_username()
            )
        }
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// A failed pool open, with the database named; for SQLite, the operating system's reason,
/// which SQLite's "unable to open database file" hides.
fn explain(url: &str, error: &DbErr) -> String {
    let what = describe(url);
    match sqlite_path(url) {
        Some(path) if path != ":memory:" => match sqlite_file_problem(Path::new(path)) {
            Some(problem) => format!("cannot open {what}: {problem}"),
            None => format!("cannot open {what}: {}", error_text(error)),
        },
        _ => format!("cannot connect to {what}: {}", error_text(error)),
    }
}

/// Why the operating system refuses to open `path` for reading and writing, if it does.
fn sqlite_file_problem(path: &Path) -> Option<String> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|dir| !dir.exists()) {
        return Some(format!("its directory {} does not exist", dir.display()));
    }
    let opened = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path);
    opened.err().map(|e| e.to_string())
}

/// A database error's message without the variant's prefix ("Connection Error: …").
fn error_text(error: &DbErr) -> String {
    match error {
        DbErr::Conn(inner) | DbErr::Exec(inner) | DbErr::Query(inner) => inner.to_string(),
        DbErr::ConnectionAcquire(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn connection_error(message: String) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(message))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_url() -> String {
        std::env::var("MERCATO_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    fn database_url(name: &str) -> String {
        let mut url = url::Url::parse(&server_url()).unwrap();
        url.set_path(&format!("/{name}"));
        url.to_string()
    }

    async fn drop_database(name: &str) {
        let admin = Database::connect(server_url()).await.unwrap();
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.unwrap();
    }

    #[test]
    fn describe_names_the_file_or_the_server_and_never_the_credentials() {
        assert_eq!(describe("sqlite://data/users.db?mode=rwc"), "SQLite data/users.db");
        assert_eq!(describe("sqlite:///srv/shop/orders.db"), "SQLite /srv/shop/orders.db");
        assert_eq!(describe("sqlite::memory:"), "SQLite in memory");
        assert_eq!(
            describe("postgres://shop:hunter2@db.internal:6432/mercato_users?sslmode=require"),
            "PostgreSQL db.internal:6432/mercato_users"
        );
        assert_eq!(describe("postgresql://shop@db/mercato_orders"), "PostgreSQL db:5432/mercato_orders");
    }

    #[tokio::test]
    async fn a_refusing_postgres_is_named_with_the_cause_at_once() {
        let config = DatabaseConfig::with_url("postgres://shop:hunter2@127.0.0.1:1/shop");
        let message = connect(&config).await.unwrap_err().to_string();
        assert!(message.contains("cannot connect to PostgreSQL 127.0.0.1:1/shop"), "{message}");
        assert!(message.to_lowercase().contains("connection refused"), "{message}");
        assert!(!message.contains("hunter2") && !message.contains("timed out"), "{message}");
    }

    #[tokio::test]
    async fn a_silent_postgres_is_named_with_how_long_it_was_waited_for() {
        // Accepts connections and never answers, as a server behind a dropped route would.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let config = DatabaseConfig {
            acquire_timeout_ms: 200,
            ..DatabaseConfig::with_url(format!("postgres://shop@127.0.0.1:{port}/shop"))
        };
        let message = connect(&config).await.unwrap_err().to_string();
        assert!(
            message.contains(&format!("PostgreSQL 127.0.0.1:{port}/shop did not answer within 200 ms")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_missing_postgres_database_is_named_once_with_how_to_create_it() {
        let name = format!("t_missing_{}", uuid::Uuid::new_v4().simple());
        let message = connect(&DatabaseConfig::with_url(database_url(&name))).await.unwrap_err().to_string();
        let missing = format!("database \"{name}\" does not exist");
        assert_eq!(message.matches(&missing).count(), 1, "{message}");
        assert!(message.contains(&format!("createdb -h 127.0.0.1 -p 5432 -U postgres {name}")), "{message}");
    }

    #[tokio::test]
    async fn an_sqlite_file_that_cannot_be_opened_is_named_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("users.db");
        std::fs::create_dir(&taken).unwrap();
        let message = connect(&DatabaseConfig::with_url(format!("sqlite://{}?mode=rwc", taken.display())))
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains(&format!("cannot open SQLite {}: ", taken.display())), "{message}");
        assert!(message.contains("Is a directory"), "{message}");

        let nowhere = dir.path().join("nowhere/users.db");
        let message = connect(&DatabaseConfig::with_url(format!("sqlite://{}?mode=rwc", nowhere.display())))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&format!("{} does not exist", dir.path().join("nowhere").display())),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_service_that_does_not_migrate_starts_before_its_database_answers() {
        let name = format!("t_later_{}", uuid::Uuid::new_v4().simple());
        let config = DatabaseConfig {
            migrate_on_start: false,
            acquire_timeout_ms: 500,
            ..DatabaseConfig::with_url(database_url(&name))
        };
        let db = connect(&config).await.expect("a service that does not migrate starts without its database");
        assert!(db.ping().await.is_err(), "no database yet");

        create_postgres_database(&server_url(), &name).await.unwrap();
        let answered = db.ping().await;
        db.close().await.unwrap();
        drop_database(&name).await;
        answered.expect("the pool connects once the database exists");
    }
}

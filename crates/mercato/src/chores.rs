//! The chores around a shop, `mercato migrate` and `mercato admin create`, and where they (and
//! `mercato seed`) find a service's database: the embedded shop's data directory, or the one
//! database of `MERCATO_DATABASE__URL`, as a container or a Job sets it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::ValueEnum;
use kit::config::DatabaseConfig;
use sea_orm_migration::MigratorTrait;

use crate::embedded::{sqlite_in, with_env_overrides};
use crate::serve::DatabaseSettings;
use crate::{errln, outln};

/// Where `mercato up` keeps its data when no directory is given.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// The services that own a database (the gateway has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatabaseService {
    Users,
    Products,
    Orders,
}

impl DatabaseService {
    pub const ALL: [DatabaseService; 3] = [Self::Users, Self::Products, Self::Orders];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Products => "products",
            Self::Orders => "orders",
        }
    }
}

/// Where a chore finds a service's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Databases {
    /// The embedded shop in this directory: one SQLite file per service, unless
    /// `MERCATO_<SERVICE>__DATABASE__URL` puts that service elsewhere, as for `mercato up`.
    DataDir(PathBuf),
    /// The one service database of `MERCATO_DATABASE__URL` (and `MERCATO_CONFIG`), as in a
    /// container.
    Service,
}

impl Databases {
    /// `data_dir` (`--data-dir` or `MERCATO_DATA_DIR`) when given; else the service database
    /// when `MERCATO_DATABASE__URL` is set; else the embedded shop in `./data`, as `mercato up`.
    pub fn choose(data_dir: Option<PathBuf>) -> Self {
        match data_dir {
            Some(dir) => Self::DataDir(dir),
            None if std::env::var_os("MERCATO_DATABASE__URL").is_some() => Self::Service,
            None => Self::DataDir(PathBuf::from(DEFAULT_DATA_DIR)),
        }
    }

    /// `service`'s database settings.
    pub fn database(&self, service: DatabaseService) -> anyhow::Result<DatabaseConfig> {
        match self {
            Self::DataDir(dir) => {
                let defaults = DatabaseSettings { database: sqlite_in(dir, service.as_str()) };
                Ok(with_env_overrides(defaults, service.as_str())?.database)
            }
            Self::Service => Ok(kit::config::load::<DatabaseSettings>()?.database),
        }
    }
}

/// `mercato migrate`: applies the pending migrations of `service`, or of every service with a
/// database, and says what each applied.
pub async fn migrate(service: Option<DatabaseService>, databases: &Databases) -> anyhow::Result<()> {
    let services = match (service, databases) {
        (Some(service), _) => vec![service],
        (None, Databases::DataDir(_)) => DatabaseService::ALL.to_vec(),
        (None, Databases::Service) => anyhow::bail!(
            "MERCATO_DATABASE__URL names one service's database: name the service \
             (mercato migrate users|products|orders), or pass --data-dir for the embedded shop"
        ),
    };
    if let Databases::DataDir(dir) = databases {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    for service in services {
        let database = databases.database(service)?;
        let applied = match service {
            DatabaseService::Users => apply::<users::store::migration::Migrator>(&database).await,
            DatabaseService::Products => apply::<products::store::migration::Migrator>(&database).await,
            DatabaseService::Orders => apply::<orders::store::migration::Migrator>(&database).await,
        }
        .with_context(|| format!("cannot migrate the {} database", service.as_str()))?;
        let place = kit::db::describe(&database.url);
        match applied.as_slice() {
            [] => outln!("{} ({place}): already up to date", service.as_str()),
            names => outln!("{} ({place}): applied {}", service.as_str(), names.join(", ")),
        }
    }
    Ok(())
}

/// Applies `M`'s pending migrations and answers their names, in order.
async fn apply<M: MigratorTrait>(database: &DatabaseConfig) -> anyhow::Result<Vec<String>> {
    // Connect now whatever the service's own setting: kit::db waits for the database lazily
    // only for a service that does not migrate, and this is the migration.
    let db = kit::db::connect(&DatabaseConfig { migrate_on_start: true, ..database.clone() }).await?;
    let pending: Vec<String> =
        M::get_pending_migrations(&db).await?.iter().map(|m| m.name().to_owned()).collect();
    if !pending.is_empty() {
        M::up(&db, None).await?;
    }
    if let Err(e) = db.close().await {
        errln!("warning: closing the database: {e}");
    }
    Ok(pending)
}

/// `mercato admin create`: creates the admin, or promotes the account with that email, in the
/// shop's users database, which must exist: a mistyped data directory is an error, not a new,
/// empty shop that nobody signs in to.
pub async fn create_admin(
    databases: &Databases,
    name: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let database = databases.database(DatabaseService::Users)?;
    if let Databases::DataDir(dir) = databases {
        ensure_embedded_users_database(dir, &database)?;
    }
    // Connect now: creating an admin migrates the database first anyway.
    let database = DatabaseConfig { migrate_on_start: true, ..database };
    let outcome = users::create_admin(&database, Default::default(), name, email, password).await?;
    let place = kit::db::describe(&database.url);
    match outcome {
        users::AdminOutcome::Created => outln!("created admin {email} in the users database ({place})"),
        users::AdminOutcome::Promoted => {
            outln!("{email} is now an admin (password replaced) in the users database ({place})")
        }
    }
    Ok(())
}

/// The embedded shop's users database must already be there, unless the environment moved it
/// (`MERCATO_USERS__DATABASE__URL`, where the server says whether the database exists).
fn ensure_embedded_users_database(dir: &Path, database: &DatabaseConfig) -> anyhow::Result<()> {
    if database.url != sqlite_in(dir, DatabaseService::Users.as_str()).url {
        return Ok(());
    }
    let file = dir.join("users.db");
    let fix = format!(
        "start the shop once (mercato up --data-dir {dir}), or pass the --data-dir of the shop; \
         for a shop on PostgreSQL set MERCATO_USERS__DATABASE__URL as it does",
        dir = dir.display()
    );
    if !dir.is_dir() {
        anyhow::bail!("no shop in {}: the directory does not exist ({fix})", dir.display());
    }
    if !file.is_file() {
        anyhow::bail!("no shop in {}: it has no users database, {} ({fix})", dir.display(), file.display());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn admin_create_refuses_a_data_dir_without_a_shop() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("dat");
        let err = ensure_embedded_users_database(&missing, &sqlite_in(&missing, "users")).unwrap_err();
        assert!(err.to_string().contains("the directory does not exist"), "{err}");
        let err = ensure_embedded_users_database(dir.path(), &sqlite_in(dir.path(), "users")).unwrap_err();
        assert!(err.to_string().contains("it has no users database"), "{err}");
        let elsewhere = DatabaseConfig::with_url("postgres://postgres@127.0.0.1/shop_users");
        ensure_embedded_users_database(&missing, &elsewhere).unwrap();
    }
}

//! `mercato`: run the whole shop on one machine, or one service in a container, and the
//! chores around them (migrations, admin accounts).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mercato::embedded::{EmbeddedOptions, Shop, sqlite_in, with_env_overrides};
use mercato::serve::ServiceName;

/// mercato, an e-commerce backend of Rust microservices.
///
/// With no command, runs the whole shop (`mercato up`): every service in this process on the
/// embedded default (SQLite files, local keys), the gateway in front.
#[derive(Debug, Parser)]
#[command(name = "mercato", version, propagate_version = true, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: the options of `up`.
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole shop in one process: the gateway on --listen, every service on a free
    /// loopback port, data in --data-dir (SQLite files, the token signing key). Migrations run
    /// and keys are created on first start. Ctrl-C stops it cleanly.
    Up(UpArgs),
    /// Run one service alone, configured only by MERCATO_… environment variables (what a
    /// container runs). SIGTERM drains in-flight requests, then exits 0.
    Serve {
        /// The service to run.
        #[arg(value_enum)]
        service: ServiceName,
    },
    /// Apply pending database migrations: of the embedded shop in --data-dir, or of the
    /// database named by MERCATO_DATABASE__URL (what a migration Job runs).
    Migrate {
        /// Migrate the embedded shop's SQLite files in this directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage admin accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Directory for SQLite files and generated keys.
    #[arg(long, default_value = "./data", env = "MERCATO_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the gateway, the shop's one public entry point.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MERCATO_LISTEN")]
    listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin account, or promote the existing account with this email (its password
    /// is replaced). There is no default admin: this is how the first one is made.
    Create {
        /// The admin's email (case-insensitive, unique among live accounts).
        #[arg(long)]
        email: String,
        /// At least 8 characters. May come from MERCATO_ADMIN_PASSWORD instead, to keep it out
        /// of the process list.
        #[arg(long, env = "MERCATO_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// The embedded shop's data directory; without it, the users database named by
        /// MERCATO_DATABASE__URL.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    kit::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Up(cli.up)) {
        Command::Up(args) => up(args).await,
        Command::Serve { service } => {
            kit::telemetry::init(service.as_str());
            mercato::serve::serve(service, kit::http::shutdown_on_signal()).await
        }
        Command::Migrate { data_dir } => {
            kit::telemetry::init("mercato");
            let database = match data_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    with_env_overrides(users_database(sqlite_in(&dir, "users")), "users")?.database
                }
                None => kit::config::load::<users_database::UsersDatabase>()?.database,
            };
            users::migrate(&database).await?;
            println!("users: migrations applied");
            Ok(())
        }
        Command::Admin { command: AdminCommand::Create { email, password, name, data_dir } } => {
            kit::telemetry::init("mercato");
            let database = match data_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    sqlite_in(&dir, "users")
                }
                None => kit::config::load::<users_database::UsersDatabase>()?.database,
            };
            let outcome =
                users::create_admin(&database, Default::default(), &name, &email, &password).await?;
            match outcome {
                users::AdminOutcome::Created => println!("created admin {email}"),
                users::AdminOutcome::Promoted => println!("{email} is now an admin (password replaced)"),
            }
            Ok(())
        }
    }
}

fn users_database(database: kit::config::DatabaseConfig) -> users_database::UsersDatabase {
    users_database::UsersDatabase { database }
}

mod users_database {
    //! Just the database part of the users service's settings, for chores that need no keys.
    use kit::config::{ConfigError, DatabaseConfig, Settings};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    pub struct UsersDatabase {
        pub database: DatabaseConfig,
    }

    impl Settings for UsersDatabase {
        fn validate(&self) -> Result<(), ConfigError> {
            self.database.validate("database")
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    kit::telemetry::init("mercato");
    let stop = kit::http::shutdown_on_signal();
    let shop = Shop::start(EmbeddedOptions { data_dir: args.data_dir.clone(), listen: args.listen }).await?;
    let gateway = shop.gateway;
    println!();
    println!("  mercato is running: http://{gateway}");
    println!("    status   http://{gateway}/api/v1/status");
    println!("    API docs http://{gateway}/docs");
    println!("    data     {}", args.data_dir.display());
    println!("  Ctrl-C stops it.");
    println!();
    shop.run_until(stop).await
}

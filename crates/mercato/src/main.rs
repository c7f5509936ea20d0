//! `mercato`: run the whole shop on one machine, or one service in a container, and the
//! chores around them (migrations, admin accounts).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mercato::chores::{DatabaseService, Databases};
use mercato::embedded::{EmbeddedOptions, Shop};
use mercato::serve::ServiceName;
use mercato::{errln, outln};

/// mimalloc instead of the system allocator: it returns freed memory to the system shortly
/// after a burst (glibc kept the 19 MiB argon2 buffers of every registration, and a users
/// service grew from 20 to 360 MiB), and it is faster on the many small allocations of
/// request handling. See BENCHMARKS.md, "Memory".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Print every MERCATO_… variable a service reads, one per line (what its ConfigMap,
    /// Secret and compose entry must set); with --check, load and validate the settings from
    /// this environment instead, as `serve` would, without starting anything.
    Env {
        #[arg(value_enum)]
        service: ServiceName,
        #[arg(long)]
        check: bool,
    },
    /// Exit 0 if the service in this container answers 2xx on PATH (a HEALTHCHECK for an image
    /// with no shell or curl). The address is --addr, else MERCATO_HTTP__LISTEN.
    Probe {
        #[arg(default_value = "/readyz")]
        path: String,
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Apply pending database migrations and say which: of every service of the embedded shop
    /// in --data-dir (./data by default), or, with a service named, of that service's database
    /// in MERCATO_DATABASE__URL (what a migration Job runs).
    Migrate {
        /// Only this service's database [default: every one]. With MERCATO_DATABASE__URL set and
        /// no --data-dir, the database of that variable.
        #[arg(value_enum)]
        service: Option<DatabaseService>,
        /// The embedded shop's data directory [default: ./data, unless MERCATO_DATABASE__URL is set]
        #[arg(long, value_name = "DIR", env = "MERCATO_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage admin accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Fill the catalog with generated demo products or a catalog file.
    ///
    /// Generates demo products (--generate N) or imports a catalog file (--file PATH: mercato
    /// JSON, JSON Lines or CSV, DummyJSON, Algolia's Best Buy sample) into the embedded shop in
    /// --data-dir or the database of MERCATO_DATABASE__URL.
    #[command(after_long_help = mercato::seed::EXAMPLES)]
    Seed(mercato::seed::SeedArgs),
    /// Put load on a running shop and report throughput, latency percentiles per endpoint,
    /// the ratio to this machine's HTTP ceiling, and the shop's memory and CPU.
    #[command(after_long_help = mercato::bench::EXAMPLES)]
    Bench(mercato::bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Directory for SQLite files and generated keys.
    #[arg(long, default_value = "./data", env = "MERCATO_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the gateway, the shop's one public entry point.
    #[arg(long, default_value = "127.0.0.1:8080", env = "MERCATO_LISTEN")]
    listen: SocketAddr,
    /// Do not load the demo catalog (about 1,000 generated products) into an empty shop.
    #[arg(long)]
    no_seed: bool,
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
        /// The shop's data directory, which must hold a shop (its users database, or
        /// MERCATO_USERS__DATABASE__URL naming it as for `mercato up`) [default: ./data, unless
        /// MERCATO_DATABASE__URL names the users database]
        #[arg(long, value_name = "DIR", env = "MERCATO_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    kit::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {}", mercato::console::describe(&e));
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
        Command::Env { service, check: false } => {
            outln!("{}", mercato::env::variables(service)?.join("\n"));
            Ok(())
        }
        Command::Env { service, check: true } => {
            mercato::env::check(service)?;
            outln!("{}: settings are valid", service.as_str());
            Ok(())
        }
        Command::Probe { path, addr } => mercato::probe::probe(mercato::probe::target(addr)?, &path),
        Command::Migrate { service, data_dir } => {
            kit::telemetry::init("mercato");
            mercato::chores::migrate(service, &Databases::choose(data_dir)).await
        }
        Command::Admin { command: AdminCommand::Create { email, password, name, data_dir } } => {
            kit::telemetry::init("mercato");
            mercato::chores::create_admin(&Databases::choose(data_dir), &name, &email, &password).await
        }
        Command::Seed(args) => mercato::seed::seed(args).await,
        Command::Bench(args) => mercato::bench::run(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    kit::telemetry::init("mercato");
    let stop = kit::http::shutdown_on_signal();
    let options = EmbeddedOptions {
        seed_demo: !args.no_seed,
        ..EmbeddedOptions::new(args.data_dir.clone(), args.listen)
    };
    let shop = Shop::start(options).await?;
    let gateway = shop.gateway;
    outln!();
    outln!("  mercato is running: http://{gateway}");
    outln!("    status   http://{gateway}/api/v1/status");
    outln!("    API docs http://{gateway}/docs");
    outln!("    data     {}", args.data_dir.display());
    outln!("  Ctrl-C stops it.");
    outln!();
    shop.run_until(stop).await
}

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
    /// Print every variable a service reads, with its default or what is required; with
    /// --names, just the MERCATO_… names a deployment sets (what its ConfigMap, Secret and
    /// compose entry must cover); with --check, validate this environment's settings as
    /// `serve` would, without starting anything.
    Env {
        #[arg(value_enum)]
        service: ServiceName,
        /// Load and validate the settings from this environment, as `serve` does before it
        /// binds (the signing key too); warn about MERCATO_… variables nothing reads.
        #[arg(long, conflicts_with = "names")]
        check: bool,
        /// One name a line, nothing else (for scripts: deploy/validate.sh).
        #[arg(long)]
        names: bool,
    },
    /// Exit 0 if GET answers 2xx (a HEALTHCHECK for an image with no shell or curl).
    ///
    /// Beside a shop on its default addresses, `mercato probe` checks its /readyz (on
    /// 127.0.0.1:9090, where `mercato up` serves it); in a container, the service's
    /// MERCATO_HTTP__OPERATIONS_LISTEN when set, else its MERCATO_HTTP__LISTEN.
    Probe {
        /// The path to GET, or a whole URL such as http://localhost:8080/readyz.
        #[arg(default_value = "/readyz", value_name = "PATH|URL")]
        target: String,
        /// The address to GET the path from, e.g. 127.0.0.1:8081 or localhost:8081 [default:
        /// MERCATO_HTTP__OPERATIONS_LISTEN, else MERCATO_HTTP__LISTEN when set (a container's own
        /// service), else 127.0.0.1:9090, the shop's operations listener]
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
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
    /// Follow the shop's events on RabbitMQ.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Put load on a running shop and report throughput, latency percentiles per endpoint,
    /// the ratio to this machine's HTTP ceiling, and the shop's memory and CPU.
    #[command(after_long_help = mercato::bench::EXAMPLES)]
    Bench(mercato::bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Directory for SQLite files, generated keys and product images (one shop at a time).
    #[arg(long, default_value = mercato::chores::DEFAULT_DATA_DIR, env = "MERCATO_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the gateway, the shop's one public entry point (127.0.0.1:8080,
    /// localhost:8080, 0.0.0.0:8080).
    #[arg(long, default_value = mercato::address::SHOP_DEFAULT, env = "MERCATO_LISTEN", value_parser = mercato::address::parse)]
    listen: SocketAddr,
    /// Where the gateway serves /healthz, /readyz and /metrics, off the public port [default:
    /// 127.0.0.1:9090, or a free port when --listen's port is 0]
    #[arg(long, value_name = "HOST:PORT", env = "MERCATO_OPERATIONS_LISTEN", value_parser = mercato::address::parse)]
    operations_listen: Option<SocketAddr>,
    /// Do not load the demo catalog (about 1,000 generated products) into an empty shop.
    #[arg(long)]
    no_seed: bool,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Print the events published on the broker as they arrive, one CloudEvents JSON document
    /// a line, each event once, until Ctrl-C or SIGTERM. Reconnects when the broker goes away;
    /// with --queue, a durable queue keeps what is published meanwhile.
    #[command(after_long_help = mercato::events::EXAMPLES)]
    Watch(mercato::events::WatchArgs),
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
            let command = format!("mercato serve {}", service.as_str());
            warn_about_unknown_variables(&mercato::env::known_to_serve(service)?, &command);
            mercato::serve::serve(service, kit::http::shutdown_on_signal()).await
        }
        Command::Env { service, check: false, names: true } => {
            outln!("{}", mercato::env::variables(service)?.join("\n"));
            Ok(())
        }
        Command::Env { service, check: false, names: false } => {
            outln!("{}", mercato::env::describe(service)?.trim_end());
            Ok(())
        }
        Command::Env { service, check: true, .. } => {
            let command = format!("mercato serve {}", service.as_str());
            for warning in
                mercato::env::unknown_variable_warnings(&mercato::env::known_to_serve(service)?, &command)
            {
                errln!("warning: {warning}");
            }
            mercato::env::check(service)?;
            outln!("{}: settings are valid", service.as_str());
            Ok(())
        }
        Command::Probe { target, addr } => {
            let service = mercato::probe::ServiceAddrs::from_env();
            let (addr, path) = mercato::probe::target(&target, addr.as_deref(), &service)?;
            mercato::probe::probe(addr, &path)
        }
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
        Command::Events { command: EventsCommand::Watch(args) } => {
            mercato::events::watch(args, kit::http::shutdown_on_signal()).await
        }
    }
}

/// Logs a warning for each `MERCATO_…` variable of this environment that `command` does not
/// read: a typo would otherwise leave its setting at the default without a word.
fn warn_about_unknown_variables(known: &[String], command: &str) {
    for warning in mercato::env::unknown_variable_warnings(known, command) {
        tracing::warn!("{warning}");
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    kit::telemetry::init("mercato");
    warn_about_unknown_variables(&mercato::env::known_to_up()?, "mercato up");
    let stop = kit::http::shutdown_on_signal();
    // Tests start shops on port 0 side by side: their operations take a free port too.
    let operations = match args.operations_listen {
        Some(addr) => addr,
        None if args.listen.port() == 0 => std::net::SocketAddr::new(args.listen.ip(), 0),
        None => mercato::address::parse(mercato::address::OPERATIONS_DEFAULT).map_err(anyhow::Error::msg)?,
    };
    let options = EmbeddedOptions {
        seed_demo: !args.no_seed,
        gateway_operations: operations,
        ..EmbeddedOptions::new(args.data_dir, args.listen)
    };
    let shop = Shop::start(options).await?;
    let gateway = shop.gateway;
    outln!();
    outln!("  mercato is running: http://{gateway}");
    outln!("    status   http://{gateway}/api/v1/status");
    outln!("    API docs http://{gateway}/docs");
    outln!("    health   http://{}/readyz (and /healthz, /metrics)", shop.gateway_operations);
    outln!(
        "    services users {}, products {}, orders {}, carts {}, storefront {}",
        shop.users,
        shop.products,
        shop.orders,
        shop.carts,
        shop.storefront
    );
    for (part, place) in shop.storage() {
        outln!("    {part:<8} {place}");
    }
    outln!("  Ctrl-C stops it.");
    outln!();
    shop.run_until(stop).await
}

//! The embedded default: every service in one process on loopback ports, each with its own
//! SQLite file under the data directory, the gateway in front.
//!
//! Each service's settings start from embedded defaults and can be overridden from the
//! environment with the service's prefix, e.g. `MERCATO_USERS__DATABASE__URL=postgres://…` or
//! `MERCATO_GATEWAY__RATE_LIMIT__PER_SECOND=500`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gateway::GatewayConfig;
use kit::config::{DatabaseConfig, HttpConfig, Settings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use users::UsersConfig;

/// What `mercato up` was asked for.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Where SQLite files and generated keys live (created if missing).
    pub data_dir: PathBuf,
    /// The gateway's address; the services take free loopback ports.
    pub listen: SocketAddr,
}

/// The running shop.
pub struct Shop {
    pub gateway: SocketAddr,
    pub users: SocketAddr,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    shutdown: CancellationToken,
}

/// The settings each service gets in the embedded mode before environment overrides.
pub fn users_defaults(data_dir: &Path) -> UsersConfig {
    let mut config = UsersConfig {
        http: loopback_any_port(),
        database: sqlite_in(data_dir, "users"),
        ..UsersConfig::default()
    };
    config.auth.signing_key_file = Some(data_dir.join("keys").join("users-signing-key.pem"));
    config.auth.generate_signing_key = true;
    config
}

/// The gateway's embedded settings, routing to the services at their bound addresses.
pub fn gateway_defaults(listen: SocketAddr, users: SocketAddr) -> GatewayConfig {
    let mut config = GatewayConfig { http: HttpConfig::with_listen(listen), ..GatewayConfig::default() };
    config.upstreams.insert("users".into(), format!("http://{users}"));
    config
}

fn loopback_any_port() -> HttpConfig {
    HttpConfig::with_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// One SQLite file per service, as DESIGN.md §1 says.
pub fn sqlite_in(data_dir: &Path, service: &str) -> DatabaseConfig {
    DatabaseConfig::with_url(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(format!("{service}.db")).display()
    ))
}

/// Applies `MERCATO_<SERVICE>__…` overrides to embedded defaults and validates.
pub fn with_env_overrides<T: Settings>(defaults: T, service: &str) -> anyhow::Result<T> {
    let prefix = format!("MERCATO_{}__", service.to_ascii_uppercase());
    kit::config::load_from(defaults, None, kit::config::env_source(&prefix)).map_err(anyhow::Error::from)
}

impl Shop {
    /// Starts every service, then the gateway; answers once all listen.
    pub async fn start(options: EmbeddedOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&options.data_dir)
            .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let users_config = with_env_overrides(users_defaults(&options.data_dir), "users")?;
        let users = users::Application::build(users_config).await.context("starting the users service")?;
        let users_addr = users.local_addr();
        let token = shutdown.clone();
        tasks.spawn(async move { ("users", users.run(token).await.map_err(anyhow::Error::from)) });

        let gateway_config = with_env_overrides(gateway_defaults(options.listen, users_addr), "gateway")?;
        let gateway = gateway::Application::build(gateway_config).await.context("starting the gateway")?;
        let gateway_addr = gateway.local_addr();
        let token = shutdown.clone();
        tasks.spawn(async move { ("gateway", gateway.run(token).await) });

        Ok(Self { gateway: gateway_addr, users: users_addr, tasks, shutdown })
    }

    /// A token that stops the shop when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until `stop` is cancelled or a service fails; then stops every service, letting
    /// in-flight requests finish.
    pub async fn run_until(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut failure = None;
        tokio::select! {
            () = stop.cancelled() => {}
            Some(joined) = self.tasks.join_next() => {
                failure = Some(describe_exit(joined));
            }
        }
        self.shutdown.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(e) = describe_exit(joined) {
                failure.get_or_insert(Err(e));
            }
        }
        failure.unwrap_or(Ok(()))
    }
}

fn describe_exit(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((service, Err(e))) => Err(e.context(format!("the {service} service stopped"))),
        Err(e) => Err(anyhow::anyhow!("a service task failed: {e}")),
    }
}

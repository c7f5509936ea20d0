//! One service alone, configured only by its environment: what a container runs
//! (`mercato serve users`).

use clap::ValueEnum;
use tokio_util::sync::CancellationToken;

/// The services `mercato serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Gateway,
    Users,
}

impl ServiceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Users => "users",
        }
    }
}

/// Loads the service's settings from `MERCATO_…` (and `MERCATO_CONFIG`), starts it, and serves
/// until SIGTERM or Ctrl-C, draining in-flight requests before returning.
pub async fn serve(service: ServiceName, shutdown: CancellationToken) -> anyhow::Result<()> {
    match service {
        ServiceName::Gateway => {
            let config: gateway::GatewayConfig = kit::config::load()?;
            gateway::Application::build(config).await?.run(shutdown).await
        }
        ServiceName::Users => {
            let config: users::UsersConfig = kit::config::load()?;
            users::Application::build(config).await?.run(shutdown).await?;
            Ok(())
        }
    }
}

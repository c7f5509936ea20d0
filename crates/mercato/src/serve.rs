//! One service alone, configured only by its environment: what a container runs
//! (`mercato serve users`).

use clap::ValueEnum;
use kit::config::{ConfigError, DatabaseConfig, Settings};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The services `mercato serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Gateway,
    Users,
    Products,
    Orders,
    Carts,
    Storefront,
}

impl ServiceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Users => "users",
            ServiceName::Products => "products",
            ServiceName::Orders => "orders",
            ServiceName::Carts => "carts",
            ServiceName::Storefront => "storefront",
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
        ServiceName::Products => {
            let config: products::ProductsConfig = kit::config::load()?;
            products::Application::build(config).await?.run(shutdown).await?;
            Ok(())
        }
        ServiceName::Orders => {
            let config: orders::OrdersConfig = kit::config::load()?;
            orders::Application::build(config).await?.run(shutdown).await?;
            Ok(())
        }
        ServiceName::Carts => {
            let config: carts::CartsConfig = kit::config::load()?;
            carts::Application::build(config).await?.run(shutdown).await?;
            Ok(())
        }
        ServiceName::Storefront => {
            let config: storefront::StorefrontConfig = kit::config::load()?;
            storefront::Application::build(config).await?.run(shutdown).await?;
            Ok(())
        }
    }
}

/// Just the database part of a service's settings, for chores that need nothing else
/// (`migrate`, `admin create`, `seed`): `MERCATO_DATABASE__URL` and friends.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    pub database: DatabaseConfig,
}

impl Settings for DatabaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate("database")
    }
}

//! The embedded default: every service in one process on loopback ports, each with its own
//! SQLite file under the data directory, the gateway in front, and one in-process event bus
//! that every service's outbox relay publishes on and every service's consumer takes from.
//!
//! Each service's settings start from embedded defaults and can be overridden from the
//! environment with the service's prefix, e.g. `MERCATO_USERS__DATABASE__URL=postgres://…` or
//! `MERCATO_GATEWAY__RATE_LIMIT__PER_SECOND=500`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use carts::CartsConfig;
use gateway::GatewayConfig;
use kit::config::{DatabaseConfig, HttpConfig, Settings};
use orders::OrdersConfig;
use products::ProductsConfig;
use std::collections::HashMap;
use storefront::StorefrontConfig;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use users::UsersConfig;

use crate::lock::DataDirLock;

/// What `mercato up` was asked for.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Where SQLite files and generated keys live (created if missing).
    pub data_dir: PathBuf,
    /// The gateway's address; the services take free loopback ports.
    pub listen: SocketAddr,
    /// Where the gateway serves `/healthz`, `/readyz` and `/metrics` (port 0: a free one).
    pub gateway_operations: SocketAddr,
    /// Load a demo catalog into an empty products database on start.
    pub seed_demo: bool,
    /// Last-word changes to each service's settings (after the environment), for tests.
    pub overrides: Overrides,
}

/// Changes applied to each service's embedded settings before it starts.
#[derive(Debug, Clone, Copy)]
pub struct Overrides {
    pub users: fn(&mut UsersConfig),
    pub products: fn(&mut ProductsConfig),
    pub orders: fn(&mut OrdersConfig),
    pub carts: fn(&mut CartsConfig),
    pub storefront: fn(&mut StorefrontConfig),
    pub gateway: fn(&mut GatewayConfig),
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            users: |_| {},
            products: |_| {},
            orders: |_| {},
            carts: |_| {},
            storefront: |_| {},
            gateway: |_| {},
        }
    }
}

impl EmbeddedOptions {
    /// A shop in `data_dir` listening on `listen`, its gateway's operations endpoints on a free
    /// loopback port.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            gateway_operations: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed_demo: false,
            overrides: Overrides::default(),
        }
    }
}

/// A service of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    Users,
    Products,
    Orders,
    Carts,
    Storefront,
    Gateway,
}

impl Member {
    fn name(self) -> &'static str {
        match self {
            Member::Users => "users",
            Member::Products => "products",
            Member::Orders => "orders",
            Member::Carts => "carts",
            Member::Storefront => "storefront",
            Member::Gateway => "gateway",
        }
    }
}

/// The settings each service runs with, listening addresses pinned once bound, so a stopped
/// service restarts where the others expect it.
struct Settled {
    users: UsersConfig,
    products: ProductsConfig,
    orders: OrdersConfig,
    carts: CartsConfig,
    storefront: StorefrontConfig,
    gateway: GatewayConfig,
}

/// A service task and the token that stops it.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The running shop.
pub struct Shop {
    pub gateway: SocketAddr,
    /// The gateway's operations listener: `/healthz`, `/readyz`, `/metrics`.
    pub gateway_operations: SocketAddr,
    pub users: SocketAddr,
    pub products: SocketAddr,
    pub orders: SocketAddr,
    pub carts: SocketAddr,
    /// The web pages, which the gateway serves at `/` (and every other non-API path).
    pub storefront: SocketAddr,
    settings: Settled,
    /// The in-process event bus every service of the shop publishes on and consumes from.
    bus: kit::events::Bus,
    running: HashMap<Member, Running>,
    shutdown: CancellationToken,
    recovery: Option<orders::RecoveryHandle>,
    /// Held while the shop runs: one shop per data directory.
    _lock: DataDirLock,
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

/// The products service's embedded settings: SQLite and a local image directory.
pub fn products_defaults(data_dir: &Path, users: SocketAddr) -> ProductsConfig {
    let mut config = ProductsConfig {
        http: loopback_any_port(),
        database: sqlite_in(data_dir, "products"),
        users_url: format!("http://{users}"),
        ..ProductsConfig::default()
    };
    config.images.local_dir = data_dir.join("images");
    config
}

/// The orders service's embedded settings, calling users and products where they listen, with
/// the client secret this run shares with the users service.
pub fn orders_defaults(
    data_dir: &Path,
    users: SocketAddr,
    products: SocketAddr,
    secret: &str,
) -> OrdersConfig {
    OrdersConfig {
        http: loopback_any_port(),
        database: sqlite_in(data_dir, "orders"),
        users_url: format!("http://{users}"),
        products_url: format!("http://{products}"),
        service_client_secret: secret.to_owned(),
        ..OrdersConfig::default()
    }
}

/// The carts service's embedded settings: SQLite (no Redis to run), calling users, products
/// and orders where they listen, with the client secret this run shares with users.
pub fn carts_defaults(data_dir: &Path, services: ServiceAddrs, secret: &str) -> CartsConfig {
    CartsConfig {
        http: loopback_any_port(),
        database: sqlite_in(data_dir, "carts"),
        users_url: format!("http://{}", services.users),
        products_url: format!("http://{}", services.products),
        orders_url: format!("http://{}", services.orders),
        service_client_secret: secret.to_owned(),
        ..CartsConfig::default()
    }
}

/// The storefront's embedded settings: calling the API through the gateway at `gateway`, its
/// session key generated once in the data directory (like the token signing key), so sessions
/// outlive a restart.
pub fn storefront_defaults(data_dir: &Path, gateway: SocketAddr) -> StorefrontConfig {
    let mut config = StorefrontConfig {
        http: loopback_any_port(),
        gateway_url: format!("http://{gateway}"),
        ..StorefrontConfig::default()
    };
    config.session.key_file = Some(data_dir.join("keys").join("storefront-session.key"));
    config.session.generate_key = true;
    config
}

/// Where each service of the embedded shop listens (carts: once it does).
#[derive(Debug, Clone, Copy)]
pub struct ServiceAddrs {
    pub users: SocketAddr,
    pub products: SocketAddr,
    pub orders: SocketAddr,
    pub carts: Option<SocketAddr>,
    /// The storefront's listener, bound before the gateway that routes pages to it.
    pub storefront: Option<SocketAddr>,
}

/// A fresh secret for one run's service client (the services of one process share it).
fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness for a service secret"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The gateway's embedded settings, routing to the services at their bound addresses; its
/// operations endpoints on a listener of their own, `operations` (`Shop::gateway_operations`).
pub fn gateway_defaults(listen: SocketAddr, operations: SocketAddr, services: ServiceAddrs) -> GatewayConfig {
    let http = HttpConfig { operations_listen: Some(operations), ..HttpConfig::with_listen(listen) };
    let mut config = GatewayConfig { http, ..GatewayConfig::default() };
    config.upstreams.insert("users".into(), format!("http://{}", services.users));
    config.upstreams.insert("products".into(), format!("http://{}", services.products));
    config.upstreams.insert("orders".into(), format!("http://{}", services.orders));
    if let Some(carts) = services.carts {
        config.upstreams.insert("carts".into(), format!("http://{carts}"));
    }
    match services.storefront {
        Some(storefront) => {
            config.upstreams.insert("storefront".into(), format!("http://{storefront}"));
        }
        None => {
            config.upstreams.remove("storefront");
            config.storefront_upstream = None;
        }
    }
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

/// Fails, naming the address, when the gateway could not listen on it: checked before the
/// data directory is created, keyed, migrated or seeded, so a port in use leaves nothing behind.
fn ensure_listenable(addr: SocketAddr) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_free) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(anyhow::anyhow!(
            "cannot listen on {addr} (--listen): it is in use, perhaps by another shop; stop that, or pass \
             another address, e.g. --listen {}",
            SocketAddr::new(addr.ip(), addr.port().saturating_add(1))
        )),
        Err(e) => Err(anyhow::anyhow!("cannot listen on {addr} (--listen): {e}")),
    }
}

impl Shop {
    /// Starts every service, then the gateway; answers once all listen. The gateway's address
    /// is checked first, then the data directory is created and locked (one shop per
    /// directory), before anything is written into it.
    pub async fn start(options: EmbeddedOptions) -> anyhow::Result<Self> {
        ensure_listenable(options.listen)?;
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        let lock = DataDirLock::acquire(dir)?;
        let over = options.overrides;
        let orders_secret = random_secret()?;
        let carts_secret = random_secret()?;
        let bus = kit::events::Bus::new();
        // `MERCATO_EVENTS__URL`: RabbitMQ for the whole shop (a service's own
        // `MERCATO_<SERVICE>__EVENTS__URL` still wins).
        let broker = std::env::var("MERCATO_EVENTS__URL").ok().filter(|url| !url.trim().is_empty());

        let mut users = users_defaults(dir);
        users.service_clients.insert("orders".into(), orders_secret.clone());
        users.service_clients.insert("carts".into(), carts_secret.clone());
        users.events.url = broker.clone();
        let mut users = with_env_overrides(users, "users")?;
        (over.users)(&mut users);
        let users_app = users::Application::build_with_events(users.clone(), bus.clone())
            .await
            .context("starting the users service")?;
        users.http.listen = users_app.local_addr();

        let mut products = products_defaults(dir, users.http.listen);
        products.events.url = broker.clone();
        let mut products = with_env_overrides(products, "products")?;
        (over.products)(&mut products);
        let products_app = products::Application::build_with_events(products.clone(), bus.clone())
            .await
            .context("starting the products service")?;
        products.http.listen = products_app.local_addr();
        if options.seed_demo
            && seed_demo_catalog(products_app.catalog_import().as_ref(), &products.currency).await?
        {
            // Pictures are drawn while the shop already serves: a product shows its picture
            // once it is there (a few seconds for the whole demo catalog).
            let pictures = products_app.picture_filler();
            tokio::spawn(async move {
                match pictures.fill().await {
                    Ok(added) => tracing::info!(added, "drew a picture for every demo product"),
                    Err(e) => tracing::warn!(error = %e, "could not draw the demo pictures"),
                }
            });
        }

        let mut orders = orders_defaults(dir, users.http.listen, products.http.listen, &orders_secret);
        orders.events.url = broker.clone();
        let mut orders = with_env_overrides(orders, "orders")?;
        (over.orders)(&mut orders);
        let orders_app = orders::Application::build_with_events(orders.clone(), bus.clone())
            .await
            .context("starting the orders service")?;
        orders.http.listen = orders_app.local_addr();
        let recovery = Some(orders_app.recovery_handle());

        let mut services = ServiceAddrs {
            users: users.http.listen,
            products: products.http.listen,
            orders: orders.http.listen,
            carts: None,
            storefront: None,
        };
        let mut carts = carts_defaults(dir, services, &carts_secret);
        carts.events.url = broker.clone();
        let mut carts = with_env_overrides(carts, "carts")?;
        (over.carts)(&mut carts);
        let carts_app = carts::Application::build_with_events(carts.clone(), bus.clone())
            .await
            .context("starting the carts service")?;
        carts.http.listen = carts_app.local_addr();
        services.carts = Some(carts.http.listen);

        // The storefront calls the API through the gateway, and the gateway routes pages to the
        // storefront: its listener is bound first, the gateway told where, then it is built.
        // The gateway's address is filled in once the gateway listens (port 0 in tests).
        let storefront = storefront_defaults(dir, options.listen);
        let mut storefront = with_env_overrides(storefront, "storefront")?;
        (over.storefront)(&mut storefront);
        let storefront_listener = tokio::net::TcpListener::bind(storefront.http.listen)
            .await
            .with_context(|| format!("the storefront cannot listen on {}", storefront.http.listen))?;
        storefront.http.listen = storefront_listener.local_addr()?;
        services.storefront = Some(storefront.http.listen);

        let mut gateway = gateway_defaults(options.listen, options.gateway_operations, services);
        gateway.events.url = broker;
        let mut gateway = with_env_overrides(gateway, "gateway")?;
        (over.gateway)(&mut gateway);
        let gateway_app = gateway::Application::build_with_events(gateway.clone(), bus.clone())
            .await
            .with_context(|| format!("starting the gateway on {} (--listen)", options.listen))?;
        gateway.http.listen = gateway_app.local_addr();
        gateway.http.operations_listen = Some(gateway_app.operations_addr());
        if storefront.gateway_url == format!("http://{}", options.listen) {
            storefront.gateway_url = format!("http://{}", gateway.http.listen);
        }
        let storefront_app = storefront::Application::build_on(storefront.clone(), storefront_listener)
            .await
            .context("starting the storefront")?;

        let mut shop = Self {
            gateway: gateway.http.listen,
            gateway_operations: gateway_app.operations_addr(),
            users: users.http.listen,
            products: products.http.listen,
            orders: orders.http.listen,
            carts: carts.http.listen,
            storefront: storefront.http.listen,
            settings: Settled { users, products, orders, carts, storefront, gateway },
            bus,
            running: HashMap::new(),
            shutdown: CancellationToken::new(),
            recovery,
            _lock: lock,
        };
        shop.spawn(
            Member::Users,
            |stop| async move { users_app.run(stop).await.map_err(anyhow::Error::from) },
        );
        shop.spawn(Member::Products, |stop| async move {
            products_app.run(stop).await.map_err(anyhow::Error::from)
        });
        shop.spawn(
            Member::Orders,
            |stop| async move { orders_app.run(stop).await.map_err(anyhow::Error::from) },
        );
        shop.spawn(
            Member::Carts,
            |stop| async move { carts_app.run(stop).await.map_err(anyhow::Error::from) },
        );
        shop.spawn(Member::Storefront, |stop| async move {
            storefront_app.run(stop).await.map_err(anyhow::Error::from)
        });
        shop.spawn(Member::Gateway, |stop| async move { gateway_app.run(stop).await });
        Ok(shop)
    }

    fn spawn<F, Fut>(&mut self, member: Member, run: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(run(stop.clone()));
        self.running.insert(member, Running { stop, task });
    }

    /// Stops one service (draining it), as if its process ended; the others keep running.
    pub async fn stop(&mut self, member: Member) -> anyhow::Result<()> {
        if let Some(running) = self.running.remove(&member) {
            running.stop.cancel();
            running.task.await.map_err(|e| anyhow::anyhow!("the {} task failed: {e}", member.name()))??;
        }
        Ok(())
    }

    /// Starts a stopped service again on its old address.
    pub async fn restart(&mut self, member: Member) -> anyhow::Result<()> {
        self.stop(member).await?;
        let s = &self.settings;
        let bus = self.bus.clone();
        match member {
            Member::Users => {
                let app = users::Application::build_with_events(s.users.clone(), bus).await?;
                self.spawn(member, |stop| async move { app.run(stop).await.map_err(anyhow::Error::from) });
            }
            Member::Products => {
                let app = products::Application::build_with_events(s.products.clone(), bus).await?;
                self.spawn(member, |stop| async move { app.run(stop).await.map_err(anyhow::Error::from) });
            }
            Member::Orders => {
                let app = orders::Application::build_with_events(s.orders.clone(), bus).await?;
                self.recovery = Some(app.recovery_handle());
                self.spawn(member, |stop| async move { app.run(stop).await.map_err(anyhow::Error::from) });
            }
            Member::Carts => {
                let app = carts::Application::build_with_events(s.carts.clone(), bus).await?;
                self.spawn(member, |stop| async move { app.run(stop).await.map_err(anyhow::Error::from) });
            }
            Member::Storefront => {
                let app = storefront::Application::build(s.storefront.clone()).await?;
                self.spawn(member, |stop| async move { app.run(stop).await.map_err(anyhow::Error::from) });
            }
            Member::Gateway => {
                let app = gateway::Application::build_with_events(s.gateway.clone(), bus).await?;
                self.spawn(member, |stop| async move { app.run(stop).await });
            }
        }
        Ok(())
    }

    /// Where the shop keeps what it keeps, for the start-up banner: each service's database
    /// (the file or the server, never a password), the token signing key and the product
    /// images, which stay in the data directory when the databases are on PostgreSQL.
    pub fn storage(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let keys = match (&s.users.auth.signing_key, &s.users.auth.signing_key_file) {
            (Some(_), _) => "from MERCATO_USERS__AUTH__SIGNING_KEY".to_owned(),
            (None, Some(file)) => file.display().to_string(),
            (None, None) => "none".to_owned(),
        };
        let images = match s.products.images.backend {
            products::config::ImageBackend::Local => s.products.images.local_dir.display().to_string(),
            products::config::ImageBackend::S3 => format!("S3 bucket {}", s.products.images.s3.bucket),
        };
        vec![
            ("users", kit::db::describe(&s.users.database.url)),
            ("products", kit::db::describe(&s.products.database.url)),
            ("orders", kit::db::describe(&s.orders.database.url)),
            ("carts", carts_storage(&s.carts)),
            ("keys", keys),
            ("images", images),
        ]
    }

    /// The orders service's recovery worker, to run a pass now.
    pub fn recovery(&self) -> Option<orders::RecoveryHandle> {
        self.recovery.clone()
    }

    /// A token that stops the shop when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until `stop` is cancelled or a service ends on its own; then stops every service,
    /// letting in-flight requests finish.
    pub async fn run_until(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut failure = None;
        let first_exit = async {
            let tasks: Vec<_> = self
                .running
                .iter_mut()
                .map(|(member, r)| Box::pin(async move { (*member, (&mut r.task).await) }))
                .collect();
            if tasks.is_empty() {
                return std::future::pending().await;
            }
            futures_util::future::select_all(tasks).await.0
        };
        tokio::select! {
            () = stop.cancelled() => {}
            (member, joined) = first_exit => {
                failure = Some(describe_exit(member, joined).and_then(|()| Err(anyhow::anyhow!("the {} service stopped on its own", member.name()))));
                self.running.remove(&member);
            }
        }
        self.shutdown.cancel();
        for (member, running) in self.running.drain() {
            if let Err(e) = describe_exit(member, running.task.await) {
                failure.get_or_insert(Err(e));
            }
        }
        failure.unwrap_or(Ok(()))
    }
}

/// Where carts are kept: Redis when named (`MERCATO_CARTS__REDIS__URL`), else SQLite.
fn carts_storage(config: &CartsConfig) -> String {
    if config.redis.is_enabled() {
        format!("Redis (key prefix {})", config.redis.key_prefix)
    } else {
        kit::db::describe(&config.database.url)
    }
}

/// Loads the demo catalog when the products database is empty (the first start).
/// Seeds the demo catalog into an empty catalog; whether it did.
async fn seed_demo_catalog(
    store: &dyn products::store::CatalogImport,
    currency: &str,
) -> anyhow::Result<bool> {
    if !store.is_empty().await? {
        return Ok(false);
    }
    let summary = catalog_import::seed_demo(store, currency).await?;
    tracing::info!(products = summary.inserted, "seeded the demo catalog (skip with --no-seed)");
    Ok(true)
}

fn describe_exit(
    member: Member,
    joined: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.context(format!("the {} service stopped", member.name()))),
        Err(e) => Err(anyhow::anyhow!("the {} task failed: {e}", member.name())),
    }
}

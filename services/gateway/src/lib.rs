//! The mercato API gateway: the one public entry point. It routes `/api/…` paths by prefix to
//! the owning service (never rewriting them, never routing `/internal/…`), checks bearer tokens,
//! rate-limits per client, limits bodies, answers CORS, sets security headers and request ids,
//! bounds every upstream call by a timeout, and serves the shop's status and merged API docs.
//!
//! **API boundary**: the `mercato` binary starts it with [`Application::build`] and
//! [`Application::run`]; everything else is internal.

mod auth;
mod browser;
mod config;
mod forwarded;
mod health;
mod limits;
mod proxy;
mod routes;
mod routing;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use kit::config::Settings;
use kit::events::{Bus, Consumer, Subscription, Transport};
use kit::http::{Draining, HttpServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    CorsConfig, GatewayConfig, RateLimitConfig, ReplicasConfig, RouteConfig, TrustedProxiesConfig,
    UploadRouteConfig,
};
use routes::SERVICE;
use state::AppState;

/// A bound gateway, ready to run.
pub struct Application {
    server: HttpServer,
    state: Arc<AppState>,
    readiness_interval: std::time::Duration,
    events: Subscription,
}

impl Application {
    /// Validates `config`, binds `config.http.listen` (port 0 picks a free port) and assembles
    /// the router. Nothing is called upstream until requests arrive. It hears no events (an
    /// in-process bus of its own); a shop shares one through [`Self::build_with_events`].
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        Self::build_with_events(config, Bus::new()).await
    }

    /// As [`Self::build`], taking `user.deleted` and `user.role_changed` from the shop's bus
    /// `bus`: the token check at the edge then refuses a deleted user's or demoted admin's
    /// older tokens.
    pub async fn build_with_events(config: GatewayConfig, bus: Bus) -> anyhow::Result<Self> {
        config.validate()?;
        // Install the metrics recorder now, so requests before the first scrape are counted.
        kit::metrics::handle();
        let state = Arc::new(AppState::new(&config)?);
        let transport = Transport::from_url(config.events.url.as_deref(), bus);
        let events = transport
            .subscribe(kit::events::with_token_revocation(
                Consumer::new("gateway"),
                state.verifier.revocations(),
            ))
            .with_revocation_backfill(state.verifier.clone());
        events.declare().await;
        let draining = Draining::default();
        // The gateway is ready when it serves; upstreams have their own readiness (see
        // /api/v1/status). Redis away only makes it degraded: it limits per replica meanwhile.
        let mut ready = kit::http::ready_check(|| async { Ok(()) });
        if let Some(redis) = state.redis.clone() {
            ready = kit::http::with_optional(ready, "redis", move || {
                let redis = redis.clone();
                async move { redis.ready().await }
            });
        }
        let operations = match config.http.operations_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (http.operations_listen)"))?,
            ),
            None => None,
        };
        // Without a listener of their own the operations endpoints join the public router.
        let public_operations =
            operations.is_none().then(|| kit::http::operations_router(ready.clone(), draining.clone()));
        let router = routes::router(Arc::clone(&state), &config, public_operations);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
        let mut server = HttpServer::from_parts(SERVICE, listener, router, draining.clone(), &config.http);
        if let Some(listener) = operations {
            server =
                server.with_operations(listener, kit::http::operations_service(SERVICE, ready, draining));
        }
        let readiness_interval = std::time::Duration::from_millis(config.replicas.readiness_interval_ms);
        Ok(Self { server, state, readiness_interval, events })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served (`http.operations_listen`).
    pub fn operations_addr(&self) -> SocketAddr {
        self.server.operations_addr()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let watch =
            health::watch_replicas(self.state.upstreams.clone(), self.readiness_interval, shutdown.clone());
        let watcher = tokio::spawn(watch);
        tokio::spawn(self.events.run(shutdown.clone()));
        let served = self.server.run(shutdown).await.context("the gateway stopped serving");
        watcher.abort();
        served
    }
}

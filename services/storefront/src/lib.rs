//! The storefront: server-rendered HTML pages for shoppers. It is a client of the public API,
//! calling it through the gateway like any other client; the shopper's tokens live in a sealed,
//! `HttpOnly` session cookie, never in a page. See README.md.
//!
//! Layers: `pages` (one handler per page, HTTP only) → `views` (the maud layout and shared
//! pieces) and `api` (the gateway calls); `web` is what every page goes through (session,
//! CSRF, security headers, error pages) and `session` the cookie's sealing and CSRF tokens.

mod api;
pub mod config;
mod pages;
pub mod session;
mod views;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use kit::client::ServiceClient;
use kit::http::{HttpServer, Service};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::StorefrontConfig;
pub use web::CONTENT_SECURITY_POLICY;

/// The storefront, bound and ready to run.
pub struct Application {
    server: HttpServer,
}

impl Application {
    /// Reads (or, when configured, generates) the session key and binds `http.listen`.
    pub async fn build(config: StorefrontConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http.listen).await?;
        Self::build_on(config, listener).await
    }

    /// As [`Self::build`], on a listener bound already: the embedded shop binds the storefront
    /// first, so the gateway can route to it, and learns the gateway's port only after.
    pub async fn build_on(config: StorefrontConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let keys = session::SessionKeys::from_config(&config.session)?;
        let gateway =
            api::Gateway::new(ServiceClient::new("gateway", &config.gateway_url, config.client.clone()));
        let probe = gateway.clone();
        // Pages render an error page when the API is away, so the gateway not answering makes
        // the storefront degraded, not unready (it would only turn every page into a 503).
        let ready =
            kit::http::with_optional(kit::http::ready_check(|| async { Ok(()) }), "gateway", move || {
                let probe = probe.clone();
                async move { probe.ready().await }
            });
        let state = Arc::new(web::App {
            gateway,
            keys,
            always_secure: config.session.always_secure,
            trust_forwarded_proto: config.session.trust_forwarded_proto,
            featured_products: config.featured_products,
            page_size: config.page_size,
        });
        let service = Service {
            name: "storefront",
            api: pages::router(state),
            openapi: utoipa::openapi::OpenApiBuilder::new()
                .info(utoipa::openapi::Info::new(
                    "mercato storefront (HTML pages, no JSON API)",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
            ready,
        };
        let server = HttpServer::bind_on(service, listener, &config.http).await?;
        Ok(Self { server })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` is cancelled; then drains.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        self.server.run(shutdown).await
    }
}

//! The mercato API gateway: the one public entry point. It routes `/api/…` paths by prefix to
//! the owning service (never rewriting them, never routing `/internal/…`), checks bearer tokens,
//! rate-limits per client, limits bodies, answers CORS, sets security headers and request ids,
//! bounds every upstream call by a timeout, and serves the shop's status and merged API docs.
//!
//! **API boundary**: the `mercato` binary starts it with [`Application::build`] and
//! [`Application::run`]; everything else is internal.

mod app;
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

pub use app::Application;
pub use config::{
    CorsConfig, GatewayConfig, RateLimitConfig, ReplicasConfig, RouteConfig, TrustedProxiesConfig,
    UploadRouteConfig,
};

//! What every mercato service shares: configuration, telemetry, the HTTP bootstrap with health,
//! readiness, metrics and graceful shutdown, problem+json errors, request extraction, JWT
//! verification, pagination, the resilient service-to-service client (over one or several
//! replicas), rate limiting, Redis for the state replicas share, and events (the transactional
//! outbox, its relay, the in-process bus and idempotent consumers).
//!
//! **API boundary**: every service depends on this crate; keep its surface small and documented.

pub mod address;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod lines;
pub mod metrics;
pub mod money;
pub mod pagination;
pub mod rate_limit;
pub mod redis;
pub mod replicas;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, ApiResult, FieldError, FieldErrors};

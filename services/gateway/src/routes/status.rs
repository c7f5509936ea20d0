//! `GET /api/v1/status`: every upstream's readiness at a glance, for people.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use futures_util::future::join_all;
use http::Method;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routing::Upstream;
use crate::state::AppState;

/// The readiness of every service behind the gateway.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusReport {
    /// `ok` when every service is ready, otherwise `degraded`.
    status: Overall,
    /// By service name.
    services: BTreeMap<String, ServiceStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Overall {
    Ok,
    Degraded,
}

/// One service's answer to `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
struct ServiceStatus {
    ready: bool,
    /// Where the gateway reaches it.
    url: String,
    /// How long the readiness check took.
    latency_ms: u64,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Asks every upstream's `/readyz` at once, each bounded by the probe timeout. Always 200: a
/// degraded shop is still a status worth reading.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "gateway",
    responses((status = 200, description = "Readiness of each service", body = StatusReport))
)]
pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Json<StatusReport> {
    let checks = state.upstreams.values().map(|upstream| readiness_of(upstream));
    let services: BTreeMap<String, ServiceStatus> = join_all(checks).await.into_iter().collect();
    let status = if services.values().all(|s| s.ready) { Overall::Ok } else { Overall::Degraded };
    Json(StatusReport { status, services })
}

async fn readiness_of(upstream: &Upstream) -> (String, ServiceStatus) {
    let started = Instant::now();
    let answer = upstream.probe.send(upstream.probe.request(Method::GET, "/readyz")).await;
    let detail = match answer {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("/readyz answered {}", response.status())),
        Err(failure) => Some(failure.to_string()),
    };
    let status = ServiceStatus {
        ready: detail.is_none(),
        url: upstream.base_url.clone(),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        detail,
    };
    (upstream.name.clone(), status)
}

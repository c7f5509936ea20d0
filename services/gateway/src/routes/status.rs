//! `GET /api/v1/status`: every upstream's readiness at a glance, for people. Anyone sees whether
//! each service is ready; an admin also sees each replica's address, check latency and detail.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use futures_util::future::join_all;
use kit::auth::Claims;
use kit::error::{PROBLEM_JSON, ProblemBody};
use serde::Serialize;
use utoipa::ToSchema;

use crate::health;
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

/// One service: ready when at least one of its replicas answers `/readyz` with 200.
#[derive(Debug, Serialize, ToSchema)]
struct ServiceStatus {
    ready: bool,
    /// Each replica, for admins only (internal addresses are not for everyone).
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<Vec<ReplicaStatus>>,
}

/// One replica's answer to `/readyz`, as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
struct ReplicaStatus {
    /// Where the gateway reaches it.
    url: String,
    ready: bool,
    /// Whether it gets requests now (not taken out after failures, not draining).
    in_service: bool,
    /// How long the readiness check took.
    latency_ms: u64,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Asks every replica's `/readyz` at once, each bounded by the probe timeout. Always 200: a
/// degraded shop is still a status worth reading. With an admin's token the answer also lists
/// each replica's address, latency and detail.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "gateway",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Readiness of each service; each replica's address, latency and detail for admins", body = StatusReport),
        (status = 401, description = "a bearer token that is not valid (none is needed)", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 429, description = "this client's rate limit is spent", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 503, description = "the key set that verifies tokens cannot be fetched, or the answer took longer than the request timeout", body = ProblemBody, content_type = PROBLEM_JSON)
    )
)]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    claims: Option<Extension<Claims>>,
) -> Json<StatusReport> {
    let admin = claims.is_some_and(|Extension(claims)| claims.role == kit::auth::Role::Admin);
    let checks = state.upstreams.values().map(|upstream| service_status(upstream, admin));
    let services: BTreeMap<String, ServiceStatus> = join_all(checks).await.into_iter().collect();
    let status = if services.values().all(|s| s.ready) { Overall::Ok } else { Overall::Degraded };
    Json(StatusReport { status, services })
}

async fn service_status(upstream: &Upstream, admin: bool) -> (String, ServiceStatus) {
    let checks = (0..upstream.replicas.len()).map(|replica| async move {
        let readiness = health::check(upstream, replica).await;
        ReplicaStatus {
            url: upstream.replicas.url(replica).to_owned(),
            ready: readiness.ready,
            in_service: upstream.replicas.in_service(replica),
            latency_ms: u64::try_from(readiness.latency.as_millis()).unwrap_or(u64::MAX),
            detail: readiness.detail,
        }
    });
    let replicas = join_all(checks).await;
    let ready = replicas.iter().any(|replica| replica.ready);
    (upstream.name.clone(), ServiceStatus { ready, replicas: admin.then_some(replicas) })
}

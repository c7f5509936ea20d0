//! The upstreams' replicas as seen from the gateway: each one's `/readyz`, asked for the status
//! page and, for upstreams with several replicas, every `replicas.readiness_interval_ms`, so a
//! draining replica (readiness 503 before its listener closes) stops getting new requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use http::Method;
use tokio_util::sync::CancellationToken;

use crate::routing::{Upstream, Upstreams};

/// What one replica's `/readyz` said.
#[derive(Debug, Clone)]
pub(crate) struct Readiness {
    pub ready: bool,
    /// How long the check took.
    pub latency: Duration,
    /// Why it is not ready.
    pub detail: Option<String>,
}

/// Asks replica `replica` of `upstream` for its readiness, one attempt within the probe timeout.
pub(crate) async fn check(upstream: &Upstream, replica: usize) -> Readiness {
    let started = Instant::now();
    let probe = &upstream.probes[replica];
    let detail = match probe.send(probe.request(Method::GET, "/readyz")).await {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("/readyz answered {}", response.status())),
        Err(failure) => Some(failure.to_string()),
    };
    Readiness { ready: detail.is_none(), latency: started.elapsed(), detail }
}

/// Until `shutdown`: every `interval`, asks each replica of every upstream that has more than
/// one, and takes those not ready out of the rotation (and puts them back once ready).
pub(crate) async fn watch_replicas(upstreams: Upstreams, interval: Duration, shutdown: CancellationToken) {
    let watched: Vec<Arc<Upstream>> = upstreams.into_values().filter(|u| u.replicas.len() > 1).collect();
    if watched.is_empty() {
        return;
    }
    loop {
        let checks = watched.iter().flat_map(|upstream| {
            (0..upstream.replicas.len()).map(move |replica| async move {
                let readiness = check(upstream, replica).await;
                upstream.replicas.set_ready(replica, readiness.ready);
            })
        });
        join_all(checks).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

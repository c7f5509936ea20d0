//! Prometheus metrics: one process-wide recorder; request count and latency by service,
//! method, route template and status.
//!
//! Every label takes a bounded set of values, so no client can grow the exposition: a method
//! outside RFC 9110's (and PATCH) is `_OTHER`, as OpenTelemetry's HTTP semantic conventions say,
//! and a path no route matches is the one route `unmatched`.
//!
//! In the embedded mode every service shares one process, so each service's `/metrics` shows
//! the whole process; the `service` label tells the series apart.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "http_server_requests_total";
const DURATION: &str = "http_server_request_duration_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the recorder's pending histogram samples are folded into their buckets when no
/// scrape does it (see [`handle`]).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The process-wide recorder, installed on first use. The recorder keeps every histogram sample
/// until something folds it into its buckets; a scrape does, and so does a thread started here
/// every [`UPKEEP_INTERVAL`], so a process nobody scrapes does not grow with its requests.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(DURATION.to_owned()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("the bucket list is non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); then ours just renders empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let upkeep = handle.clone();
        let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = started {
            tracing::warn!(error = %e, "no metrics upkeep thread: histograms are drained by scrapes only");
        }
        handle
    })
}

/// The counter and histogram of one (service, method, route, status).
#[derive(Clone)]
struct RequestSeries {
    count: metrics::Counter,
    duration: metrics::Histogram,
}

/// Series registered so far, by (service, status), then method, then route: looked up with the
/// request's own strings, so a request that was seen before allocates nothing and does not
/// rebuild and hash a labelled key (that showed as 6% of a gateway profile).
type SeriesByRoute = HashMap<String, HashMap<String, RequestSeries>>;
static SERIES: LazyLock<RwLock<HashMap<(&'static str, u16), SeriesByRoute>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Counts one served request and its latency. `route` is the matched route template, or
/// [`UNMATCHED_ROUTE`].
pub fn record_request(service: &'static str, method: &str, route: &str, status: u16, elapsed: Duration) {
    let series = registered(service, method_label(method), route, status);
    series.count.increment(1);
    series.duration.record(elapsed.as_secs_f64());
}

fn registered(service: &'static str, method: &str, route: &str, status: u16) -> RequestSeries {
    // Series registered before the recorder is installed would count nowhere.
    handle();
    let known = |series: &HashMap<(&'static str, u16), SeriesByRoute>| {
        series.get(&(service, status))?.get(method)?.get(route).cloned()
    };
    // A poisoned lock only means a panic elsewhere mid-insert; the maps are still whole.
    if let Some(found) = known(&SERIES.read().unwrap_or_else(|e| e.into_inner())) {
        return found;
    }
    let labels = [
        ("service", service.to_owned()),
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let series = RequestSeries {
        count: metrics::counter!(REQUESTS, &labels),
        duration: metrics::histogram!(DURATION, &labels),
    };
    SERIES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry((service, status))
        .or_default()
        .entry(method.to_owned())
        .or_default()
        .entry(route.to_owned())
        .or_insert(series)
        .clone()
}

/// The method as a label: a known method as itself, anything else `_OTHER`.
pub fn method_label(method: &str) -> &str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    if KNOWN.contains(&method) { method } else { "_OTHER" }
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    handle().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_requests_appear_in_the_exposition() {
        handle();
        record_request("unit", "GET", "/things/{id}", 200, Duration::from_millis(3));
        let text = render();
        assert!(
            text.contains(
                r#"http_server_requests_total{service="unit",method="GET",route="/things/{id}",status="200"}"#
            ),
            "{text}"
        );
        assert!(text.contains("http_server_request_duration_seconds_bucket"));
    }

    #[test]
    fn unknown_methods_are_one_label_value() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "_OTHER", "methods are case-sensitive");
        assert_eq!(method_label("FROBNICATE"), "_OTHER");
    }
}

//! The results of a run: a row per endpoint (requests, answers, rate, percentiles), the ratio
//! to the ceiling, the shop's processes; as a table for people and as JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::process::{ProcessSample, ProcessUsage};
use super::record::{EndpointStats, Recorder};

/// The share of requests answered 429 above which a run fails: its figures are the limiter's.
pub const NOTABLE_RATE_LIMITED: f64 = 0.01;

/// One endpoint's row.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    pub endpoint: &'static str,
    pub requests: u64,
    pub successes: u64,
    /// Checkouts refused with 409 (stock ran out): answers, not failures.
    pub out_of_stock: u64,
    /// Failures by status code, or `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Requests per second over the run.
    pub rate: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl EndpointReport {
    fn of(endpoint: &'static str, stats: &EndpointStats, seconds: f64) -> Self {
        let at = |quantile| stats.latency.value_at_quantile(quantile) as f64 / 1000.0;
        Self {
            endpoint,
            requests: stats.requests(),
            successes: stats.successes,
            out_of_stock: stats.out_of_stock,
            errors: stats.errors.clone(),
            rate: stats.requests() as f64 / seconds,
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: stats.latency.max() as f64 / 1000.0,
        }
    }
}

/// One window of a run cut by `--report-every`: what a soak watches drift over time.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalReport {
    /// 1 for the first window.
    pub index: usize,
    pub seconds: f64,
    pub requests: u64,
    /// Failed requests (409 out of stock is an answer, not a failure).
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Each watched process's memory at the window's end.
    pub processes: Vec<MemoryAt>,
}

/// A process's memory at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryAt {
    pub pid: u32,
    pub rss_mib: f64,
    /// `RssAnon`: the process's private memory.
    pub anon_mib: f64,
}

impl IntervalReport {
    /// The window `index` (from 1) of `seconds`, from its measurements and the processes'
    /// memory sampled at its end.
    pub fn of(
        index: usize,
        seconds: f64,
        window: &Recorder,
        memory: &[ProcessSample],
    ) -> Result<Self, hdrhistogram::AdditionError> {
        let all = EndpointReport::of("window", &window.combined()?, seconds);
        let mib = |kib: u64| kib as f64 / 1024.0;
        Ok(Self {
            index,
            seconds,
            requests: all.requests,
            errors: all.errors.values().sum(),
            p50_ms: all.p50_ms,
            p99_ms: all.p99_ms,
            processes: memory
                .iter()
                .map(|m| MemoryAt { pid: m.pid, rss_mib: mib(m.rss_kib), anon_mib: mib(m.anon_kib) })
                .collect(),
        })
    }
}

/// The ceiling measured in the same run, and this scenario's share of it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CeilingComparison {
    /// The gateway's `/healthz` answers per second.
    pub gateway_rate: f64,
    /// This scenario's answers per second over the gateway's ceiling.
    pub ratio: f64,
}

/// The proxy scenario's comparison: the same trivial request through the gateway and directly.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProxyHop {
    /// Answers per second through the gateway.
    pub via_gateway_rate: f64,
    /// Answers per second straight from the service.
    pub direct_rate: f64,
    /// The share of the direct throughput lost to the hop: `1 - via / direct`.
    pub cost: f64,
    /// Median latency the hop adds, in milliseconds.
    pub added_p50_ms: f64,
}

impl ProxyHop {
    fn of(endpoints: &[EndpointReport]) -> Option<Self> {
        let row =
            |endpoint: super::record::Endpoint| endpoints.iter().find(|r| r.endpoint == endpoint.label());
        let via = row(super::record::Endpoint::ProxiedRefusal)?;
        let direct = row(super::record::Endpoint::DirectRefusal)?;
        (direct.rate > 0.0).then(|| ProxyHop {
            via_gateway_rate: via.rate,
            direct_rate: direct.rate,
            cost: 1.0 - via.rate / direct.rate,
            added_p50_ms: via.p50_ms - direct.p50_ms,
        })
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: super::Scenario,
    /// "open loop, 20 req/s" or "closed loop, 16 connections".
    pub load: String,
    pub seconds: f64,
    pub endpoints: Vec<EndpointReport>,
    pub total: EndpointReport,
    pub ceiling: Option<CeilingComparison>,
    /// The proxy scenario's hop cost.
    pub proxy_hop: Option<ProxyHop>,
    /// The ceiling run itself, when one was measured first.
    pub ceiling_run: Option<Box<Report>>,
    pub processes: Vec<ProcessUsage>,
    /// The run window by window, with `--report-every`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalReport>,
    /// Shop CPU milliseconds per request, summed over the processes watched.
    pub cpu_ms_per_request: Option<f64>,
}

impl Report {
    /// Builds the rows from a run's merged measurements.
    pub fn build(
        scenario: super::Scenario,
        load: String,
        seconds: f64,
        recorder: &Recorder,
    ) -> anyhow::Result<Self> {
        let endpoints: Vec<EndpointReport> =
            recorder.endpoints().map(|(e, stats)| EndpointReport::of(e.label(), stats, seconds)).collect();
        let total = EndpointReport::of("all", &recorder.combined()?, seconds);
        let proxy_hop = ProxyHop::of(&endpoints);
        Ok(Self {
            scenario,
            load,
            seconds,
            endpoints,
            total,
            ceiling: None,
            proxy_hop,
            ceiling_run: None,
            processes: Vec::new(),
            intervals: Vec::new(),
            cpu_ms_per_request: None,
        })
    }

    /// Failed requests over all endpoints.
    pub fn error_count(&self) -> u64 {
        self.total.errors.values().sum()
    }

    /// Requests the gateway refused with 429: its rate limit, not the shop, answered them.
    pub fn rate_limited(&self) -> u64 {
        self.total.errors.get("429").copied().unwrap_or(0)
    }

    /// Whether so many requests hit the rate limit that the figures describe the limiter
    /// rather than the shop: the run then fails (see [`Report::rate_limit_warning`]).
    pub fn mostly_rate_limited(&self) -> bool {
        self.total.requests > 0
            && self.rate_limited() as f64 >= NOTABLE_RATE_LIMITED * self.total.requests as f64
    }

    /// What to say when requests hit the rate limit: how many, and how to lift it.
    pub fn rate_limit_warning(&self) -> Option<String> {
        let limited = self.rate_limited();
        (limited > 0).then(|| {
            format!(
                "{limited} of {} requests ({:.1}%) hit the gateway's rate limit (429): they measure the \
                 limiter, not the shop. Start the shop with MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false for a \
                 load test, or raise MERCATO_GATEWAY__RATE_LIMIT__PER_SECOND and __BURST (a gateway run alone: \
                 MERCATO_RATE_LIMIT__…)",
                self.total.requests,
                limited as f64 * 100.0 / self.total.requests.max(1) as f64
            )
        })
    }

    /// Records the shop's processes, and its CPU cost per request.
    pub fn with_processes(mut self, processes: Vec<ProcessUsage>) -> Self {
        let cpu: f64 = processes.iter().map(|p| p.cpu_seconds).sum();
        if !processes.is_empty() && self.total.requests > 0 {
            self.cpu_ms_per_request = Some(cpu * 1000.0 / self.total.requests as f64);
        }
        self.processes = processes;
        self
    }

    /// The overall rate over the whole run, when endpoints ran one after the other for
    /// part of it each (the ceiling's phases).
    pub fn over(mut self, seconds: f64) -> Self {
        self.total.rate = self.total.requests as f64 / seconds;
        self.seconds = seconds;
        self
    }

    /// Compares this run's throughput with a ceiling measured just before.
    pub fn with_ceiling(mut self, ceiling: Report) -> Self {
        let gateway_rate = ceiling
            .endpoints
            .iter()
            .find(|row| row.endpoint == super::record::Endpoint::GatewayHealth.label())
            .map_or(0.0, |row| row.rate);
        if gateway_rate > 0.0 {
            self.ceiling = Some(CeilingComparison { gateway_rate, ratio: self.total.rate / gateway_rate });
        }
        self.ceiling_run = Some(Box::new(ceiling));
        self
    }

    /// The report as a table for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!("{:?}, {}, {:.1} s\n", self.scenario, self.load, self.seconds).to_lowercase();
        let _ = writeln!(
            out,
            "{:<17} {:>9} {:>9} {:>7} {:<16} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "endpoint",
            "requests",
            "ok",
            "409",
            "errors",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for row in self.endpoints.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(out, "{}", render_row(row));
        }
        if let Some(ceiling) = self.ceiling {
            let _ = writeln!(
                out,
                "ceiling: gateway /healthz {:.0} req/s; this scenario {:.1}% of it",
                ceiling.gateway_rate,
                ceiling.ratio * 100.0
            );
        }
        if let Some(hop) = self.proxy_hop {
            let _ = writeln!(
                out,
                "proxy hop: {:.0} req/s via the gateway, {:.0} req/s direct: the hop costs {:.1}% of the \
                 direct throughput and adds {:.2} ms at p50",
                hop.via_gateway_rate,
                hop.direct_rate,
                hop.cost * 100.0,
                hop.added_p50_ms
            );
        }
        for process in &self.processes {
            let _ = writeln!(
                out,
                "process {}: RSS {:.1} MiB at start, {:.1} MiB at end (private {:.1} → {:.1} MiB); {:.2} CPU s",
                process.pid,
                process.rss_start_mib,
                process.rss_end_mib,
                process.anon_start_mib,
                process.anon_end_mib,
                process.cpu_seconds
            );
        }
        if let Some(cpu) = self.cpu_ms_per_request {
            let _ = writeln!(out, "CPU per request: {cpu:.3} ms");
        }
        if !self.intervals.is_empty() {
            let _ = writeln!(
                out,
                "{:>6} {:>9} {:>7} {:>8} {:>8}  RSS MiB at the window's end",
                "window", "requests", "errors", "p50 ms", "p99 ms"
            );
            for window in &self.intervals {
                let memory: Vec<String> =
                    window.processes.iter().map(|m| format!("{}: {:.1}", m.pid, m.rss_mib)).collect();
                let _ = writeln!(
                    out,
                    "{:>6} {:>9} {:>7} {:>8.2} {:>8.2}  {}",
                    window.index,
                    window.requests,
                    window.errors,
                    window.p50_ms,
                    window.p99_ms,
                    memory.join(", ")
                );
            }
        }
        out
    }

    /// The same report with its windows.
    pub fn with_intervals(mut self, intervals: Vec<IntervalReport>) -> Self {
        self.intervals = intervals;
        self
    }
}

/// `500×2 transport×1`, or `-` when nothing failed.
fn render_errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "-".to_owned();
    }
    errors.iter().map(|(kind, count)| format!("{kind}×{count}")).collect::<Vec<_>>().join(" ")
}

fn render_row(row: &EndpointReport) -> String {
    format!(
        "{:<17} {:>9} {:>9} {:>7} {:<16} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        row.endpoint,
        row.requests,
        row.successes,
        row.out_of_stock,
        render_errors(&row.errors),
        row.rate,
        row.p50_ms,
        row.p90_ms,
        row.p99_ms,
        row.p999_ms,
        row.max_ms
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::Scenario;
    use crate::bench::record::{Endpoint, Outcome};

    fn sample_recorder() -> Recorder {
        let mut recorder = Recorder::default();
        for ms in 1..=1000 {
            recorder.record(Endpoint::Product, &Outcome::Success, Duration::from_millis(ms));
        }
        recorder.record(Endpoint::Checkout, &Outcome::OutOfStock, Duration::from_millis(4));
        recorder.record(Endpoint::Checkout, &Outcome::Status(500), Duration::from_millis(4));
        recorder.record(Endpoint::Checkout, &Outcome::Transport, Duration::ZERO);
        recorder
    }

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let report =
            Report::build(Scenario::Mixed, "closed loop, 4 connections".into(), 10.0, &sample_recorder())
                .unwrap();
        let product = report.endpoints.iter().find(|r| r.endpoint == "product").unwrap();
        assert_eq!(product.requests, 1000);
        assert!((product.rate - 100.0).abs() < 1e-9);
        for (got, want) in [
            (product.p50_ms, 500.0),
            (product.p90_ms, 900.0),
            (product.p99_ms, 990.0),
            (product.max_ms, 1000.0),
        ] {
            assert!((got - want).abs() <= want * 0.001 + 0.001, "{got} ms, expected {want} ms");
        }
        assert_eq!(report.total.requests, 1003);
        assert_eq!(report.error_count(), 2);
    }

    #[test]
    fn the_table_shows_each_endpoint_its_409s_and_errors_by_status() {
        let report =
            Report::build(Scenario::Mixed, "open loop, 100 req/s".into(), 10.0, &sample_recorder()).unwrap();
        let table = report.render();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "mixed, open loop, 100 req/s, 10.0 s");
        assert!(lines[1].starts_with("endpoint") && lines[1].contains("p99.9 ms"));
        let checkout = lines.iter().find(|l| l.starts_with("checkout")).unwrap();
        let columns: Vec<&str> = checkout.split_whitespace().collect();
        assert_eq!(&columns[1..5], ["3", "0", "1", "500×1"]);
        assert_eq!(columns[5], "transport×1");
        let product = lines.iter().find(|l| l.starts_with("product")).unwrap();
        assert_eq!(product.split_whitespace().nth(5), Some("100.0"), "{product}");
        assert!(lines.iter().any(|l| l.starts_with("all")));
    }

    #[test]
    fn requests_refused_by_the_rate_limit_are_told_apart_with_how_to_lift_it() {
        let mut runs = sample_recorder();
        let clean = Report::build(Scenario::Mixed, String::new(), 10.0, &runs).unwrap();
        assert_eq!((clean.rate_limited(), clean.rate_limit_warning()), (0, None));
        for _ in 0..250 {
            runs.record(Endpoint::Browse, &Outcome::Status(429), Duration::from_millis(1));
        }
        let limited = Report::build(Scenario::Mixed, String::new(), 10.0, &runs).unwrap();
        assert_eq!(limited.rate_limited(), 250);
        assert!(limited.mostly_rate_limited());
        let warning = limited.rate_limit_warning().unwrap();
        assert!(
            warning.starts_with("250 of 1253 requests (20.0%) hit the gateway's rate limit (429)"),
            "{warning}"
        );
        assert!(warning.contains("MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false"), "{warning}");
        let mut few = sample_recorder();
        few.record(Endpoint::Browse, &Outcome::Status(429), Duration::from_millis(1));
        let one = Report::build(Scenario::Mixed, String::new(), 10.0, &few).unwrap();
        assert!(one.rate_limit_warning().is_some() && !one.mostly_rate_limited());
    }

    #[test]
    fn the_proxy_hop_compares_the_same_request_through_the_gateway_and_direct() {
        let mut runs = Recorder::default();
        for _ in 0..3000 {
            runs.record(Endpoint::ProxiedRefusal, &Outcome::Success, Duration::from_micros(900));
        }
        for _ in 0..4000 {
            runs.record(Endpoint::DirectRefusal, &Outcome::Success, Duration::from_micros(400));
        }
        let report = Report::build(Scenario::Proxy, String::new(), 1.0, &runs).unwrap();
        let hop = report.proxy_hop.unwrap();
        assert_eq!((hop.via_gateway_rate, hop.direct_rate), (3000.0, 4000.0));
        assert!((hop.cost - 0.25).abs() < 1e-9);
        assert!((hop.added_p50_ms - 0.5).abs() < 0.01, "{}", hop.added_p50_ms);
        assert!(report.render().contains("the hop costs 25.0% of the direct throughput"));
        let mixed = Report::build(Scenario::Mixed, String::new(), 10.0, &sample_recorder()).unwrap();
        assert!(mixed.proxy_hop.is_none());
    }

    #[test]
    fn the_ratio_to_the_ceiling_compares_with_the_gateway_healthz_rate() {
        let mut ceiling_runs = Recorder::default();
        for _ in 0..4000 {
            ceiling_runs.record(Endpoint::GatewayHealth, &Outcome::Success, Duration::from_micros(300));
        }
        let ceiling = Report::build(Scenario::Ceiling, String::new(), 2.0, &ceiling_runs).unwrap();
        let report = Report::build(Scenario::Mixed, String::new(), 10.0, &sample_recorder())
            .unwrap()
            .with_ceiling(ceiling);
        let comparison = report.ceiling.unwrap();
        assert_eq!(comparison.gateway_rate, 2000.0);
        assert!((comparison.ratio - 100.3 / 2000.0).abs() < 1e-9);
        assert!(report.render().contains("this scenario 5.0% of it"));
    }
}

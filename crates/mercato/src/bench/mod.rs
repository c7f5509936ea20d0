//! `mercato bench`: load against a running shop (open loop at a fixed arrival rate, or closed
//! loop at N connections), latencies in HDR histograms per endpoint, a report with the
//! ceiling of the same machine and the shop's memory and CPU.

mod drive;
mod process;
mod record;
mod report;
mod schedule;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::{errln, outln};

pub use process::{ProcessUsage, pids_named};
pub use record::Endpoint;
pub use report::{CeilingComparison, EndpointReport, ProxyHop, Report};
pub use workload::{DirectTargets, Scenario};

/// Closed-loop connections when neither --rate nor --connections is given.
const DEFAULT_CONNECTIONS: usize = 16;
/// How long `--with-ceiling` measures the ceiling before the scenario.
const CEILING_DURATION: Duration = Duration::from_secs(3);
/// Idle connections kept for an uncapped open loop, which opens as many as it needs.
const OPEN_LOOP_IDLE_CONNECTIONS: usize = 256;
/// A request that takes longer than this counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Examples shown by `mercato bench --help`.
pub const EXAMPLES: &str =
    "With --rate, requests are scheduled at that fixed arrival rate whether or not earlier
ones were answered (open loop), and each latency counts from when its request was due, so a
stalling shop is charged for the requests it held back (no coordinated omission). Without
--rate, --connections workers send back to back (closed loop): the maximum throughput.

Examples:
  # the shop, rate limit off:
  MERCATO_LOG=warn MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false mercato up --no-seed --data-dir D &
  # maximum throughput of the mixed journey with 16 connections, compared with the ceiling:
  mercato bench --scenario mixed --connections 16 --duration 10s --with-ceiling --process mercato
  # latency at a fixed arrival rate (open loop, corrected for coordinated omission):
  mercato bench --scenario product --rate 1000 --duration 30s --json product.json
  # the same schedule over at most 16 connections (as wrk2 measures):
  mercato bench --scenario checkout --rate 500 --connections 16 --duration 30s

Answers 429 come from the gateway's rate limit (100 req/s per client by default), not from the
shop: they are counted apart, and a run where 1% or more of the requests got one fails.";

/// Options of `mercato bench`.
///
/// Puts load on a running shop through its gateway and reports, per endpoint, requests,
/// answers, achieved rate and latency percentiles. With --rate, requests are scheduled at that
/// fixed arrival rate whether or not earlier ones were answered (open loop), and each latency
/// counts from when its request was due, so a stalling shop is not flattered (coordinated
/// omission). Without --rate, --connections workers send back to back (closed loop): the
/// maximum throughput.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The gateway's operations listener (its `http.operations_listen`), whose /healthz the
    /// ceiling calls, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    pub operations: Option<String>,
    /// The products service's own base URL, which the ceiling and proxy scenarios call
    /// directly (an admin sees it in /api/v1/status), e.g. http://127.0.0.1:8082.
    #[arg(long)]
    pub service: Option<String>,
    /// What to load: browse (random list pages), list (first pages), search, product
    /// (details), checkout (orders), mixed (60% browse, 20% search, 15% product, 5% checkout),
    /// ceiling (the gateway's and a service's /healthz), proxy (the
    /// same trivial request through the gateway and directly: the hop's cost).
    #[arg(long, value_enum, default_value_t = Scenario::Mixed)]
    pub scenario: Scenario,
    /// Open loop: requests per second, sent on schedule.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: workers sending back to back [default: 16]. With --rate: the most
    /// connections the schedule may use (as wrk2 does); a request due while all are busy waits
    /// for one, and its latency still counts from when it was due.
    #[arg(long)]
    pub connections: Option<usize>,
    /// How long the load lasts, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Buyers registered at setup for checkout (registration hashes a password: slow).
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Watch the RSS and CPU of this shop process (repeatable).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Watch the RSS and CPU of every process with this name (e.g. mercato).
    #[arg(long)]
    pub process: Option<String>,
    /// Measure the ceiling first (closed loop, 3 s) and report this scenario's share of it.
    #[arg(long)]
    pub with_ceiling: bool,
    /// Seed of the request draws, so runs can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also report each consecutive window of this length (requests, errors, p50, p99, and each
    /// watched process's memory at its end): what a soak watches drift. Setup happens once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub report_every: Option<Duration>,
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// This many requests per second, on schedule, each on a connection of its own if need be.
    Rate(f64),
    /// This many requests per second, on schedule, over at most `connections` connections: a
    /// request due while all are busy waits for one, its latency counted from when it was due.
    Paced { rate: f64, connections: usize },
    /// This many workers, back to back.
    Connections(usize),
}

impl Load {
    fn describe(self) -> String {
        match self {
            Load::Rate(rate) => format!("open loop, {rate} req/s"),
            Load::Paced { rate, connections } => {
                format!("open loop, {rate} req/s over {connections} connections")
            }
            Load::Connections(n) => format!("closed loop, {n} connections"),
        }
    }

    /// Connections the client keeps open.
    fn connections(self) -> usize {
        match self {
            Load::Connections(n) | Load::Paced { connections: n, .. } => n,
            Load::Rate(_) => OPEN_LOOP_IDLE_CONNECTIONS,
        }
    }
}

/// A run, as the library takes it.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub target: String,
    /// Addresses the ceiling and proxy scenarios call besides the gateway's public API.
    pub direct: DirectTargets,
    pub scenario: Scenario,
    pub load: Load,
    pub duration: Duration,
    pub users: usize,
    pub seed: u64,
    /// Shop processes to sample at start and end.
    pub pids: Vec<u32>,
    /// Measure the ceiling first with this closed loop for `CEILING_DURATION`.
    pub ceiling_first: bool,
    /// Show the live progress line (on a terminal).
    pub show_progress: bool,
    /// Cut the run into windows of this length and report each.
    pub report_every: Option<Duration>,
}

impl BenchPlan {
    /// A plan with defaults: the mixed scenario at `load` for `duration` against `target`.
    pub fn new(target: impl Into<String>, scenario: Scenario, load: Load, duration: Duration) -> Self {
        Self {
            target: target.into(),
            direct: DirectTargets::default(),
            scenario,
            load,
            duration,
            users: 20,
            seed: 1,
            pids: Vec::new(),
            ceiling_first: false,
            show_progress: false,
            report_every: None,
        }
    }
}

/// `mercato bench`: runs the plan, prints the table, writes the JSON file.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut pids = args.pid.clone();
    if let Some(name) = &args.process {
        let named = pids_named(name)?;
        anyhow::ensure!(!named.is_empty(), "no process named {name}");
        pids.extend(named);
    }
    anyhow::ensure!(args.connections != Some(0), "--connections must be at least 1");
    let load = match (args.rate, args.connections) {
        (Some(rate), connections) => {
            anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be a positive number");
            match connections {
                Some(connections) => Load::Paced { rate, connections },
                None => Load::Rate(rate),
            }
        }
        (None, connections) => Load::Connections(connections.unwrap_or(DEFAULT_CONNECTIONS)),
    };
    let plan = BenchPlan {
        users: args.users,
        seed: args.seed,
        pids,
        ceiling_first: args.with_ceiling,
        show_progress: true,
        report_every: args.report_every,
        direct: DirectTargets { operations: args.operations, service: args.service },
        ..BenchPlan::new(args.target, args.scenario, load, args.duration)
    };
    let report = run_bench(&plan).await?;
    if let Some(ceiling) = &report.ceiling_run {
        outln!("{}", ceiling.render());
    }
    outln!("{}", report.render().trim_end());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(warning) = report.rate_limit_warning() {
        anyhow::ensure!(!report.mostly_rate_limited(), "{warning}");
        errln!("warning: {warning}");
    }
    Ok(())
}

/// Runs a plan: setup, the optional ceiling, the load; returns what was measured.
pub async fn run_bench(plan: &BenchPlan) -> anyhow::Result<Report> {
    let client = http_client(plan.load)?;
    let ceiling = if plan.ceiling_first && plan.scenario != Scenario::Ceiling {
        let connections = match plan.load {
            Load::Connections(n) | Load::Paced { connections: n, .. } => n,
            Load::Rate(_) => DEFAULT_CONNECTIONS,
        };
        let ceiling_plan = BenchPlan {
            scenario: Scenario::Ceiling,
            load: Load::Connections(connections),
            duration: CEILING_DURATION,
            pids: Vec::new(),
            ..plan.clone()
        };
        Some(run_scenario(&client, &ceiling_plan).await?)
    } else {
        None
    };
    let report = run_scenario(&client, plan).await?;
    Ok(match ceiling {
        Some(ceiling) => report.with_ceiling(ceiling),
        None => report,
    })
}

async fn run_scenario(client: &reqwest::Client, plan: &BenchPlan) -> anyhow::Result<Report> {
    let workload = Arc::new(
        workload::Workload::prepare(client, &plan.target, &plan.direct, plan.scenario, plan.users).await?,
    );
    let before = plan.pids.iter().map(|pid| process::sample(*pid)).collect::<anyhow::Result<Vec<_>>>()?;
    let progress = Arc::new(drive::Progress::default());
    let label = format!("{:?}", plan.scenario).to_lowercase();
    let ticker = plan.show_progress.then(|| drive::show_progress(progress.clone(), label));
    let started = std::time::Instant::now();
    let sample_at_end = {
        let pids = plan.pids.clone();
        let at = started + plan.duration.mul_f64(0.95);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            pids.iter().map(|pid| process::sample(*pid)).collect::<anyhow::Result<Vec<_>>>()
        })
    };
    // The ceiling and the proxy scenario measure each endpoint alone, one after the other, so
    // each gets the whole load and the rates compare; every other scenario draws from its mix
    // for the duration.
    let phases = if plan.scenario.runs_endpoints_in_turn() {
        workload.endpoints().into_iter().map(|endpoint| Arc::new(workload.only(endpoint))).collect()
    } else {
        vec![workload]
    };
    let phase_duration = plan.duration.div_f64(phases.len() as f64);
    // A run cut into windows runs its one phase window by window, on the same workload.
    let windows = match plan.report_every {
        Some(every) if phases.len() == 1 && !every.is_zero() => split(phase_duration, every),
        _ => vec![phase_duration],
    };
    let mut recorder = record::Recorder::default();
    let mut intervals = Vec::new();
    for phase in phases {
        for (index, window) in windows.iter().enumerate() {
            let seed = plan.seed.wrapping_add(index as u64);
            let measured = match plan.load {
                Load::Rate(rate) => {
                    drive::open_loop(client, phase.clone(), rate, None, *window, seed, progress.clone()).await
                }
                Load::Paced { rate, connections } => {
                    let cap = Some(connections);
                    drive::open_loop(client, phase.clone(), rate, cap, *window, seed, progress.clone()).await
                }
                Load::Connections(n) => {
                    drive::closed_loop(client, phase.clone(), n, *window, seed, progress.clone()).await?
                }
            };
            if windows.len() > 1 {
                let memory =
                    plan.pids.iter().map(|pid| process::sample(*pid)).collect::<anyhow::Result<Vec<_>>>()?;
                intervals.push(report::IntervalReport::of(
                    index + 1,
                    window.as_secs_f64(),
                    &measured,
                    &memory,
                )?);
            }
            recorder.merge(measured)?;
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
        let _ = ticker.await;
    }
    let after = sample_at_end.await??;
    let usage = before.into_iter().zip(after).map(|(b, a)| ProcessUsage::between(b, a)).collect();
    let report = Report::build(plan.scenario, plan.load.describe(), phase_duration.as_secs_f64(), &recorder)?;
    Ok(report.over(plan.duration.as_secs_f64()).with_processes(usage).with_intervals(intervals))
}

/// `total` as consecutive windows of `every` (the last one shorter if need be).
fn split(total: Duration, every: Duration) -> Vec<Duration> {
    let mut windows = Vec::new();
    let mut left = total;
    while !left.is_zero() {
        let window = left.min(every);
        windows.push(window);
        left -= window;
    }
    windows
}

/// One pooled client for the whole run, with a connection per concurrent request kept open.
fn http_client(load: Load) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections())
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

/// `10s`, `500ms`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text:?} (try 10s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_splits_into_windows_of_the_given_length_the_last_one_shorter() {
        let s = Duration::from_secs;
        assert_eq!(split(s(60), s(20)), [s(20), s(20), s(20)]);
        assert_eq!(split(s(50), s(20)), [s(20), s(20), s(10)]);
        assert_eq!(split(s(5), s(20)), [s(5)]);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn a_rate_with_connections_is_an_open_loop_over_that_many() {
        let paced = Load::Paced { rate: 500.0, connections: 16 };
        assert_eq!(paced.describe(), "open loop, 500 req/s over 16 connections");
        assert_eq!(paced.connections(), 16);
        assert_eq!(Load::Rate(20.0).connections(), OPEN_LOOP_IDLE_CONNECTIONS);
        assert_eq!(Load::Connections(4).describe(), "closed loop, 4 connections");
    }
}

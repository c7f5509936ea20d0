#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mercato bench` against the embedded shop: a short run at a low rate answers every request.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use mercato::bench::{BenchPlan, DirectTargets, Load, Scenario, run_bench};
use mercato::embedded::{EmbeddedOptions, Overrides, Shop};

/// The shop as `mercato up` runs it with the demo catalog, with cheap password hashing (the
/// run registers its buyers) and no rate limit (the load comes from one address).
async fn start_shop() -> (Shop, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let overrides = Overrides {
        users: |c| {
            c.passwords = users::domain::PasswordHasher { memory_kib: 256, iterations: 1, parallelism: 1 }
        },
        gateway: |c| c.rate_limit.enabled = false,
        ..Overrides::default()
    };
    let options = EmbeddedOptions {
        seed_demo: true,
        overrides,
        ..EmbeddedOptions::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    (Shop::start(options).await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_mixed_run_at_a_low_rate_has_no_errors_and_reaches_every_endpoint() {
    let (shop, _dir) = start_shop().await;
    let plan = BenchPlan {
        users: 3,
        pids: vec![std::process::id()],
        ..BenchPlan::new(
            format!("http://{}", shop.gateway),
            Scenario::Mixed,
            Load::Rate(40.0),
            Duration::from_secs(2),
        )
    };

    let report = run_bench(&plan).await.unwrap();

    assert_eq!(report.error_count(), 0, "{}", report.render());
    assert_eq!(report.total.requests, 80, "every scheduled request is counted\n{}", report.render());
    let reached: BTreeSet<&str> =
        report.endpoints.iter().filter(|e| e.requests > 0).map(|e| e.endpoint).collect();
    assert_eq!(reached, BTreeSet::from(["browse", "search", "product", "checkout"]), "{}", report.render());
    assert!(report.total.p50_ms > 0.0);
    assert_eq!(report.processes.len(), 1);
    assert!(report.processes[0].rss_end_mib > 0.0);
    shop.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_keeps_the_schedule_over_few_connections() {
    let (shop, _dir) = start_shop().await;
    let plan = BenchPlan::new(
        format!("http://{}", shop.gateway),
        Scenario::Product,
        Load::Paced { rate: 50.0, connections: 2 },
        Duration::from_secs(2),
    );

    let report = run_bench(&plan).await.unwrap();

    assert_eq!(report.error_count(), 0, "{}", report.render());
    assert_eq!(report.total.requests, 100, "every scheduled request is counted\n{}", report.render());
    assert_eq!(report.load, "open loop, 50 req/s over 2 connections");
    shop.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reported_every_window_counts_each_window_and_the_memory_at_its_end() {
    let (shop, _dir) = start_shop().await;
    let plan = BenchPlan {
        report_every: Some(Duration::from_millis(500)),
        pids: vec![std::process::id()],
        ..BenchPlan::new(
            format!("http://{}", shop.gateway),
            Scenario::Product,
            Load::Paced { rate: 40.0, connections: 2 },
            Duration::from_millis(1500),
        )
    };

    let report = run_bench(&plan).await.unwrap();

    assert_eq!(report.intervals.len(), 3, "{}", report.render());
    for window in &report.intervals {
        assert_eq!(window.requests, 20, "a window's share of the schedule\n{}", report.render());
        assert_eq!(window.errors, 0);
        assert_eq!(window.processes.len(), 1);
        assert!(window.processes[0].rss_mib > 0.0);
    }
    assert_eq!(report.total.requests, 60, "the totals hold every window\n{}", report.render());
    shop.shutdown_token().cancel();
}

/// A one-second run of a scenario that measures its endpoints in turn, with 2 connections;
/// asserts nothing failed and each endpoint was reached.
async fn run_in_turn(scenario: Scenario, endpoints: [&str; 2]) -> mercato::bench::Report {
    let (shop, _dir) = start_shop().await;
    let plan = BenchPlan {
        direct: DirectTargets {
            operations: Some(format!("http://{}", shop.gateway_operations)),
            service: Some(format!("http://{}", shop.products)),
        },
        ..BenchPlan::new(
            format!("http://{}", shop.gateway),
            scenario,
            Load::Connections(2),
            Duration::from_secs(1),
        )
    };

    let report = run_bench(&plan).await.unwrap();

    assert_eq!(report.error_count(), 0, "{}", report.render());
    let reached: BTreeSet<&str> =
        report.endpoints.iter().filter(|e| e.requests > 0).map(|e| e.endpoint).collect();
    assert_eq!(reached, BTreeSet::from(endpoints), "{}", report.render());
    shop.shutdown_token().cancel();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_answers_through_the_gateway_and_at_the_service_directly() {
    run_in_turn(Scenario::Ceiling, ["gateway /healthz", "service /healthz"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_scenario_gets_the_same_refusal_through_the_gateway_and_directly() {
    let report = run_in_turn(Scenario::Proxy, ["400 via gateway", "400 direct"]).await;
    let hop = report.proxy_hop.expect("both sides measured");
    assert!(hop.via_gateway_rate > 0.0 && hop.direct_rate > 0.0, "{}", report.render());
}

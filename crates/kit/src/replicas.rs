//! Several replicas of one service behind one name: round robin over the replicas in service,
//! passive health checks (a refused connection, or a run of failures, takes a replica out for a
//! while) and readiness reported from outside (a replica whose `/readyz` says 503 is draining).
//!
//! A list of base URLs is written as one comma-separated value, so that it works from the
//! environment: `MERCATO_UPSTREAMS__PRODUCTS=http://a:8080,http://b:8080`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// When a replica is taken out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Consecutive failures (errors and 502/503/504 answers) that take a replica out.
    pub failures: u32,
    /// How long it stays out; then it gets traffic again, and one more failure run ejects it.
    pub ejection: Duration,
}

/// The base URLs of one service's replicas and what is known of their health.
#[derive(Debug)]
pub struct Replicas {
    urls: Vec<String>,
    health: Vec<Health>,
    next: AtomicUsize,
    policy: EjectionPolicy,
}

#[derive(Debug, Default)]
struct Health {
    /// Consecutive failures, and until when the replica is out.
    passive: Mutex<Passive>,
    /// Its readiness check says it is not ready (draining, or its dependencies are down).
    not_ready: AtomicBool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Passive {
    failures: u32,
    out_until: Option<Instant>,
    /// Out because it refused a connection, which a ready answer disproves; a failure run is
    /// not (a replica can be ready and still fail its calls).
    out_for_refusing: bool,
}

/// Splits a comma-separated list of base URLs, dropping blanks and trailing slashes.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|url| url.trim().trim_end_matches('/'))
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Replicas {
    /// Replicas at `urls` (at least one), all in service.
    pub fn new(urls: Vec<String>, policy: EjectionPolicy) -> Self {
        let health = urls.iter().map(|_| Health::default()).collect();
        Self { urls, health, next: AtomicUsize::new(0), policy }
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// True when there is none (a list of blanks).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The base URL of replica `index`.
    pub fn url(&self, index: usize) -> &str {
        &self.urls[index]
    }

    /// Every base URL, in configured order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The replicas to try for one call, in order: those in service, taking turns (round robin),
    /// then those out of service, so that a call is still tried somewhere when all are out.
    pub fn order(&self) -> Vec<usize> {
        self.order_at(Instant::now())
    }

    fn order_at(&self, now: Instant) -> Vec<usize> {
        let count = self.urls.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let turn = (0..count).map(|offset| (start + offset) % count);
        let (mut order, out): (Vec<usize>, Vec<usize>) = turn.partition(|&i| self.in_service_at(i, now));
        order.extend(out);
        order
    }

    /// Whether replica `index` gets traffic now.
    pub fn in_service(&self, index: usize) -> bool {
        self.in_service_at(index, Instant::now())
    }

    fn in_service_at(&self, index: usize, now: Instant) -> bool {
        let health = &self.health[index];
        !health.not_ready.load(Ordering::Relaxed)
            && health.passive().out_until.is_none_or(|until| now >= until)
    }

    /// Replica `index` answered: its failure run ends.
    pub fn succeeded(&self, index: usize) {
        let mut passive = self.health[index].passive();
        passive.failures = 0;
    }

    /// Replica `index` failed (an error, or a 502/503/504 answer): a run of them takes it out.
    pub fn failed(&self, index: usize) {
        self.failed_at(index, Instant::now());
    }

    fn failed_at(&self, index: usize, now: Instant) {
        let mut passive = self.health[index].passive();
        passive.failures = passive.failures.saturating_add(1);
        if passive.failures >= self.policy.failures.max(1) {
            passive.failures = 0;
            passive.out_until = Some(now + self.policy.ejection);
            passive.out_for_refusing = false;
            tracing::info!(replica = %self.urls[index], "replica taken out of service after repeated failures");
        }
    }

    /// Replica `index` refused the connection: nothing listens there (stopped, restarting), so
    /// it is out at once.
    pub fn refused(&self, index: usize) {
        self.refused_at(index, Instant::now());
    }

    fn refused_at(&self, index: usize, now: Instant) {
        let mut passive = self.health[index].passive();
        passive.failures = 0;
        passive.out_until = Some(now + self.policy.ejection);
        passive.out_for_refusing = true;
    }

    /// Records what replica `index`'s readiness check said.
    pub fn set_ready(&self, index: usize, ready: bool) {
        let was_ready = !self.health[index].not_ready.swap(!ready, Ordering::Relaxed);
        if was_ready != ready {
            tracing::info!(replica = %self.urls[index], ready, "replica readiness changed");
        }
        let mut passive = self.health[index].passive();
        if ready && passive.out_for_refusing {
            // It answers its readiness check: it is listening again.
            passive.out_until = None;
            passive.out_for_refusing = false;
        }
    }
}

impl Health {
    fn passive(&self) -> std::sync::MutexGuard<'_, Passive> {
        // A poisoned lock only means a panic elsewhere while holding it; the state is a value.
        self.passive.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: EjectionPolicy = EjectionPolicy { failures: 2, ejection: Duration::from_secs(10) };

    fn three() -> Replicas {
        Replicas::new(split_urls("http://a:1, http://b:2/,,http://c:3"), POLICY)
    }

    #[test]
    fn a_comma_separated_list_is_split_and_trimmed() {
        assert_eq!(three().urls(), ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(split_urls("http://a:1"), ["http://a:1"]);
    }

    #[test]
    fn calls_take_turns() {
        let replicas = three();
        let firsts: Vec<usize> = (0..6).map(|_| replicas.order()[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_failure_run_takes_a_replica_out_until_the_ejection_ends() {
        let replicas = three();
        let t0 = Instant::now();
        replicas.failed_at(1, t0);
        assert!(replicas.in_service_at(1, t0), "one failure is not a run");
        replicas.failed_at(1, t0);
        assert!(!replicas.in_service_at(1, t0));
        for _ in 0..3 {
            let order = replicas.order_at(t0);
            assert_eq!(order.last(), Some(&1), "out of service, tried last: {order:?}");
        }
        assert!(replicas.in_service_at(1, t0 + Duration::from_secs(11)));
    }

    #[test]
    fn a_success_ends_the_failure_run() {
        let replicas = three();
        replicas.failed(0);
        replicas.succeeded(0);
        replicas.failed(0);
        assert!(replicas.in_service(0));
    }

    #[test]
    fn a_refused_connection_or_a_not_ready_answer_takes_it_out_at_once() {
        let replicas = three();
        replicas.refused(0);
        replicas.set_ready(2, false);
        assert_eq!(replicas.order()[0], 1);
        assert!(!replicas.in_service(0) && !replicas.in_service(2));
        replicas.set_ready(2, true);
        replicas.set_ready(0, true);
        assert!(replicas.in_service(0) && replicas.in_service(2), "ready again: back in service");
    }

    #[test]
    fn a_ready_answer_does_not_end_an_ejection_for_failing_calls() {
        let replicas = three();
        replicas.failed(1);
        replicas.failed(1);
        replicas.set_ready(1, true);
        assert!(!replicas.in_service(1), "ready, yet its calls failed: it sits out the ejection");
    }

    #[test]
    fn when_every_replica_is_out_all_are_still_tried() {
        let replicas = three();
        for i in 0..3 {
            replicas.refused(i);
        }
        let mut order = replicas.order();
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2]);
    }
}

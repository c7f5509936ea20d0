//! Recorded latencies do not pile up in memory between scrapes. The Prometheus recorder keeps
//! each histogram sample until something drains it (a scrape's render, or the recorder's
//! upkeep); a shop nobody scrapes (the embedded default, a soak) grew by about 8 bytes a request
//! until kit ran the upkeep itself. Its own test binary: the recorder is process-wide.

use std::time::Duration;

/// Resident anonymous memory of this process, in KiB.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).expect("RssAnon in /proc/self/status");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a number of KiB")
}

#[test]
fn histogram_samples_are_drained_without_a_scrape() {
    kit::metrics::handle();
    let histogram = metrics::histogram!("kit_test_unscraped_seconds");
    let chunk = 500_000;
    // Warm up: the first chunk's memory is the baseline the later ones may reuse.
    (0..chunk).for_each(|i| histogram.record(f64::from(i)));
    std::thread::sleep(kit::metrics::UPKEEP_INTERVAL + Duration::from_millis(300));
    let before = rss_anon_kib();
    // Eight more chunks (4 million samples, 32 MB if kept), each followed by an upkeep.
    for _ in 0..8 {
        (0..chunk).for_each(|i| histogram.record(f64::from(i)));
        std::thread::sleep(kit::metrics::UPKEEP_INTERVAL + Duration::from_millis(300));
    }
    let grown = rss_anon_kib().saturating_sub(before);
    assert!(grown < 12 * 1024, "4 million unscraped samples kept {grown} KiB");
}

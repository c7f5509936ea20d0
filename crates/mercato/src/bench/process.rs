//! Memory and CPU of the shop's processes, read from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use anyhow::Context;
use serde::Serialize;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;
/// `/proc/<pid>/comm` holds at most this many bytes of the name.
const COMM_LENGTH: usize = 15;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    pub pid: u32,
    pub rss_kib: u64,
    /// The process's own memory in the RSS (`RssAnon`): heap and stacks, without pages of
    /// mapped files, which the page cache shares (SQLite maps its database file).
    pub anon_kib: u64,
    pub cpu_ticks: u64,
}

/// What a process used over a run: RSS at start (idle) and end (under load), CPU in between.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessUsage {
    pub pid: u32,
    pub rss_start_mib: f64,
    pub rss_end_mib: f64,
    /// `RssAnon` at start and end: the process's private memory.
    pub anon_start_mib: f64,
    pub anon_end_mib: f64,
    pub cpu_seconds: f64,
}

impl ProcessUsage {
    /// The difference between two readings of the same process.
    pub fn between(start: ProcessSample, end: ProcessSample) -> Self {
        Self {
            pid: start.pid,
            rss_start_mib: start.rss_kib as f64 / 1024.0,
            rss_end_mib: end.rss_kib as f64 / 1024.0,
            anon_start_mib: start.anon_kib as f64 / 1024.0,
            anon_end_mib: end.anon_kib as f64 / 1024.0,
            cpu_seconds: end.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / TICKS_PER_SECOND,
        }
    }
}

/// The resident set size (`VmRSS`, KiB) from the text of `/proc/<pid>/status`.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:")
}

/// The anonymous part of the RSS (`RssAnon`, KiB) from the text of `/proc/<pid>/status`.
pub fn parse_anon_kib(status: &str) -> Option<u64> {
    status_kib(status, "RssAnon:")
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU ticks from the text of `/proc/<pid>/stat`. The name in parentheses may
/// hold spaces and parentheses, so fields are counted from the last `)`: utime and stime are
/// fields 14 and 15 of the line, the 12th and 13th after the name.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Reads a process's RSS and CPU now.
pub fn sample(pid: u32) -> anyhow::Result<ProcessSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (is the process running?)"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let rss_kib = parse_rss_kib(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    let anon_kib = parse_anon_kib(&status).with_context(|| format!("no RssAnon in /proc/{pid}/status"))?;
    let cpu_ticks = parse_cpu_ticks(&stat).with_context(|| format!("unexpected /proc/{pid}/stat"))?;
    Ok(ProcessSample { pid, rss_kib, anon_kib, cpu_ticks })
}

/// The pids of the processes whose name (`/proc/<pid>/comm`) is `name`, other than this one
/// (the load tool is often `mercato` too).
pub fn pids_named(name: &str) -> anyhow::Result<Vec<u32>> {
    let wanted: String = name.chars().take(COMM_LENGTH).collect();
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Some(pid) = entry.ok().and_then(|e| e.file_name().to_str()?.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pid != me && comm.trim_end() == wanted {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tmercato\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1402920 kB\n\
        VmSize:\t 1337384 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   48212 kB\nRssAnon:\t   30000 kB\nThreads:\t7\n";
    const STAT: &str = "4242 (mer cato) (x) S 1 4242 4242 0 -1 4194560 9133 0 0 0 1234 567 0 0 20 0 7 0 \
        88431 1369481216 12053 18446744073709551615 1 1 0 0 0 0 0 4096 17987 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn rss_is_read_from_the_vmrss_line_not_the_peak() {
        assert_eq!(parse_rss_kib(STATUS), Some(48212));
        assert_eq!(parse_anon_kib(STATUS), Some(30000));
        assert_eq!(parse_rss_kib("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn cpu_is_utime_plus_stime_counted_after_a_name_with_spaces_and_parentheses() {
        assert_eq!(parse_cpu_ticks(STAT), Some(1234 + 567));
        assert_eq!(parse_cpu_ticks("4242 (short"), None);
    }

    #[test]
    fn usage_between_samples_is_in_mib_and_seconds() {
        let start = ProcessSample { pid: 7, rss_kib: 20 * 1024, anon_kib: 10 * 1024, cpu_ticks: 100 };
        let end = ProcessSample { pid: 7, rss_kib: 30 * 1024, anon_kib: 12 * 1024, cpu_ticks: 350 };
        let usage = ProcessUsage::between(start, end);
        assert_eq!((usage.rss_start_mib, usage.rss_end_mib, usage.cpu_seconds), (20.0, 30.0, 2.5));
        assert_eq!((usage.anon_start_mib, usage.anon_end_mib), (10.0, 12.0));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_kib > 0);
    }
}

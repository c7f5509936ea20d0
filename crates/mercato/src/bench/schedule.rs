//! The open-loop schedule: request `i` is due at `start + i / rate`, whether or not earlier
//! requests have been answered, and its latency counts from when it was due.

use std::time::{Duration, Instant};

/// When request `index` of a run at `rate` requests per second is due.
pub fn scheduled_at(start: Instant, index: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(index as f64 / rate)
}

/// How many requests a run of `duration` at `rate` sends.
pub fn planned_sends(duration: Duration, rate: f64) -> u64 {
    (duration.as_secs_f64() * rate).floor() as u64
}

/// Latency corrected for coordinated omission: from when the request was due, not from when
/// it could finally be sent, so a stalled shop is charged for the requests it held back.
pub fn latency_from_schedule(scheduled: Instant, answered: Instant) -> Duration {
    answered.saturating_duration_since(scheduled)
}

/// Calls `dispatch(index, due)` for every request of the run at its due time. `dispatch` must
/// not wait for the request (it spawns it), so the schedule never waits on the shop; when this
/// task itself falls behind, late requests go out at once, still carrying their due time.
pub async fn run_schedule(
    start: Instant,
    rate: f64,
    duration: Duration,
    mut dispatch: impl FnMut(u64, Instant),
) {
    for index in 0..planned_sends(duration, rate) {
        let due = scheduled_at(start, index, rate);
        tokio::time::sleep_until(due.into()).await;
        dispatch(index, due);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_start_plus_index_over_rate() {
        let start = Instant::now();
        assert_eq!(scheduled_at(start, 0, 50.0), start);
        assert_eq!(scheduled_at(start, 1, 50.0), start + Duration::from_millis(20));
        assert_eq!(scheduled_at(start, 150, 50.0), start + Duration::from_secs(3));
        assert_eq!(planned_sends(Duration::from_secs(3), 50.0), 150);
        assert_eq!(planned_sends(Duration::from_millis(2500), 3.0), 7);
    }

    #[test]
    fn latency_counts_from_the_due_time_not_the_late_send() {
        let due = Instant::now();
        let sent_late = due + Duration::from_millis(50);
        let answered = sent_late + Duration::from_millis(10);
        assert_eq!(latency_from_schedule(due, answered), Duration::from_millis(60));
    }

    #[tokio::test]
    async fn the_schedule_keeps_its_times_when_no_request_ever_completes() {
        let start = Instant::now();
        let mut dispatched = Vec::new();
        let mut never_answered = Vec::new();
        run_schedule(start, 200.0, Duration::from_millis(100), |index, due| {
            dispatched.push((index, due));
            never_answered.push(tokio::spawn(std::future::pending::<()>()));
        })
        .await;
        let elapsed = start.elapsed();

        assert_eq!(dispatched.len(), 20);
        for (index, due) in &dispatched {
            assert_eq!(*due, start + Duration::from_millis(5 * index));
        }
        assert!(never_answered.iter().all(|task| !task.is_finished()));
        assert!(elapsed < Duration::from_millis(500), "the schedule waited on requests: {elapsed:?}");
        never_answered.iter().for_each(|task| task.abort());
    }
}

//! Putting the load on: open loop at a fixed arrival rate, or closed loop with N connections;
//! each request sent with the pooled client and classified; a live progress line.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Client;
use tokio::sync::{Semaphore, mpsc};

use super::record::{Endpoint, Outcome, Recorder};
use super::schedule::{latency_from_schedule, run_schedule};
use super::workload::{PlannedRequest, Workload};

/// How long the run waits, after the last request is sent, for those still in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests sent and failed so far, for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    answered: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    fn count(&self, outcome: &Outcome) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if outcome.is_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends one request and says how it ended.
pub async fn send(client: &Client, planned: PlannedRequest) -> Outcome {
    let mut request = client.request(planned.method, &planned.url).query(&planned.query);
    if let Some(body) = &planned.body {
        request = request.json(body);
    }
    if let Some(token) = &planned.bearer {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        // Reading the body is part of the answer, and frees the connection for reuse.
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(_) => Outcome::of_status(planned.endpoint, status),
                Err(_) => Outcome::Transport,
            }
        }
        Err(_) => Outcome::Transport,
    }
}

/// Open loop: requests go out at `rate` per second on schedule, each on its own task, and
/// their latency counts from when they were due. With `max_in_flight`, at most that many are
/// on the wire at once (one per connection); the others wait for a turn, still timed from when
/// they were due, so a slow shop is charged for the wait.
pub async fn open_loop(
    client: &Client,
    workload: Arc<Workload>,
    rate: f64,
    max_in_flight: Option<usize>,
    duration: Duration,
    seed: u64,
    progress: Arc<Progress>,
) -> Recorder {
    let (answers, mut received) = mpsc::unbounded_channel::<(Endpoint, Outcome, Duration)>();
    let collector = tokio::spawn(async move {
        let mut recorder = Recorder::default();
        while let Some((endpoint, outcome, latency)) = received.recv().await {
            recorder.record(endpoint, &outcome, latency);
        }
        recorder
    });
    let turns = max_in_flight.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut rng = fastrand::Rng::with_seed(seed);
    run_schedule(Instant::now(), rate, duration, |_, due| {
        let planned = workload.next_request(&mut rng);
        let (client, answers, progress) = (client.clone(), answers.clone(), progress.clone());
        let turns = turns.clone();
        tokio::spawn(async move {
            // Never closed, so acquiring only waits.
            let _turn = match turns {
                Some(turns) => turns.acquire_owned().await.ok(),
                None => None,
            };
            let endpoint = planned.endpoint;
            let outcome = send(&client, planned).await;
            progress.count(&outcome);
            let _ = answers.send((endpoint, outcome, latency_from_schedule(due, Instant::now())));
        });
    })
    .await;
    drop(answers);
    tokio::time::timeout(DRAIN_TIMEOUT, collector).await.ok().and_then(Result::ok).unwrap_or_default()
}

/// Closed loop: `connections` workers each send a request as soon as the previous one is
/// answered, until `duration` is over; their recorders are merged.
pub async fn closed_loop(
    client: &Client,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
    progress: Arc<Progress>,
) -> anyhow::Result<Recorder> {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..connections.max(1) as u64)
        .map(|worker| {
            let (client, workload, progress) = (client.clone(), workload.clone(), progress.clone());
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(worker));
                let mut recorder = Recorder::default();
                while Instant::now() < deadline {
                    let planned = workload.next_request(&mut rng);
                    let endpoint = planned.endpoint;
                    let sent = Instant::now();
                    let outcome = send(&client, planned).await;
                    progress.count(&outcome);
                    recorder.record(endpoint, &outcome, sent.elapsed());
                }
                recorder
            })
        })
        .collect();
    let mut merged = Recorder::default();
    for worker in workers {
        merged.merge(worker.await?)?;
    }
    Ok(merged)
}

/// Shows `N requests, R req/s, E errors` on stderr while the run lasts, when it is a terminal.
pub fn show_progress(progress: Arc<Progress>, label: String) -> tokio::task::JoinHandle<()> {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(label);
    let started = Instant::now();
    tokio::spawn(async move {
        let _clear = ClearOnDrop(bar.clone());
        loop {
            let answered = progress.answered.load(Ordering::Relaxed);
            let errors = progress.errors.load(Ordering::Relaxed);
            let rate = answered as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{answered} requests, {rate:.0} req/s, {errors} errors"));
            bar.tick();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

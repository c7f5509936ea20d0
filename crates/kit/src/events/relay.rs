//! The relay: reads a service's unsent outbox rows in order, publishes them through a
//! [`Publisher`], marks them sent, and prunes sent rows after the retention.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use contracts::events::CloudEvent;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use super::outbox::{outbox_backlog, row};
use crate::config::EventsConfig;

/// Why a batch of events was not published.
#[derive(Debug, thiserror::Error)]
#[error("publishing events failed: {0}")]
pub struct PublishError(pub String);

/// Where the relay hands events: the in-process [`super::Bus`], or a broker.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `events` in their order; `Ok` once every one is accepted (for a broker:
    /// confirmed), so the relay may mark them sent.
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PublishError>;
}

/// Why a relay round failed; the relay waits (doubling, up to 5 s) and tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Serializes the relays of the replicas of one service on PostgreSQL, so events leave in
/// order: a transaction-scoped advisory lock (released by the commit).
const RELAY_LOCK: i64 = 0x6d65_7263_6174_6f01;

/// Publishes one service's outbox.
#[derive(Clone)]
pub struct Relay {
    service: &'static str,
    db: DatabaseConnection,
    publisher: Arc<dyn Publisher>,
    config: EventsConfig,
}

impl Relay {
    /// The relay of `service`'s outbox in `db`, publishing through `publisher`.
    pub fn new(
        service: &'static str,
        db: DatabaseConnection,
        publisher: Arc<dyn Publisher>,
        config: EventsConfig,
    ) -> Self {
        Self { service, db, publisher, config }
    }

    /// Publishes the oldest unsent events (at most `relay_batch`) in order and marks them
    /// sent; how many. If publishing fails nothing is marked. On PostgreSQL one relay of the
    /// service's replicas works at a time (the others' round publishes nothing), under a
    /// transaction-scoped advisory lock. SQLite has one process and runs without a transaction:
    /// one that reads first could not write once a checkout had committed meanwhile
    /// (`SQLITE_BUSY_SNAPSHOT`), and would publish its batch again and again.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return self.publish_batch(&self.db).await;
        }
        let txn = self.db.begin().await?;
        let locked = txn
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK}) AS locked"),
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "locked"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            return Ok(0);
        }
        let relayed = self.publish_batch(&txn).await?;
        txn.commit().await?;
        Ok(relayed)
    }

    async fn publish_batch(&self, db: &impl ConnectionTrait) -> Result<usize, RelayError> {
        let rows = row::Entity::find()
            .filter(row::Column::SentAt.is_null())
            .order_by_asc(row::Column::Seq)
            .limit(self.config.relay_batch)
            .all(db)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match serde_json::from_str::<CloudEvent>(&row.payload) {
                Ok(event) => events.push(event),
                // Written by this code a moment ago; should it ever not read back, publishing the
                // rest beats holding every later event behind it.
                Err(e) => {
                    tracing::error!(event_id = %row.id, error = %e, "an outbox row is not a CloudEvent; skipped")
                }
            }
        }
        self.publisher.publish(&events).await?;
        let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
        row::Entity::update_many()
            .col_expr(row::Column::SentAt, Expr::value(Utc::now()))
            .filter(row::Column::Seq.is_in(seqs))
            .exec(db)
            .await?;
        metrics::counter!("events_published_total", "service" => self.service).increment(rows.len() as u64);
        Ok(rows.len())
    }

    /// Deletes events sent longer than `sent_retention_secs` ago; how many.
    pub async fn prune(&self) -> Result<u64, DbErr> {
        let before = Utc::now() - chrono::Duration::seconds(self.config.sent_retention_secs as i64);
        let deleted = row::Entity::delete_many()
            .filter(row::Column::SentAt.is_not_null())
            .filter(row::Column::SentAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Sets the backlog gauges: `events_outbox_backlog` (unsent events) and
    /// `events_outbox_oldest_unsent_seconds` (how long the oldest has waited; 0 when none).
    pub async fn record_backlog(&self) -> Result<(), DbErr> {
        let backlog = outbox_backlog(&self.db).await?;
        let age = backlog.oldest.map_or(0.0, |oldest| (Utc::now() - oldest).as_seconds_f64().max(0.0));
        metrics::gauge!("events_outbox_backlog", "service" => self.service).set(backlog.unsent as f64);
        metrics::gauge!("events_outbox_oldest_unsent_seconds", "service" => self.service).set(age);
        Ok(())
    }

    /// Relays while `serving` (a service's server) runs; once it has returned (drained), stops
    /// after a last round, so what the last requests recorded is relayed too. `serving`'s output.
    pub async fn beside<T>(self, serving: impl Future<Output = T>) -> T {
        let stop = CancellationToken::new();
        let relay = tokio::spawn(self.run(stop.clone()));
        let served = serving.await;
        stop.cancel();
        let _ = relay.await;
        served
    }

    /// Relays until `shutdown`: a round every `relay_interval_ms` (at once again after a full
    /// batch), the backlog gauges about once a second, pruning about once a minute; after a
    /// failed round it waits 0.1 s, doubling up to 5 s.
    pub async fn run(self, shutdown: CancellationToken) {
        crate::metrics::handle();
        let interval = Duration::from_millis(self.config.relay_interval_ms.max(1));
        let mut failures: u32 = 0;
        let mut last_gauges = tokio::time::Instant::now() - Duration::from_secs(1);
        let mut last_prune = tokio::time::Instant::now();
        loop {
            let wait = match self.relay_once().await {
                Ok(relayed) => {
                    failures = 0;
                    if relayed as u64 >= self.config.relay_batch { Duration::ZERO } else { interval }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100).saturating_mul(1 << (failures - 1).min(6));
                    tracing::warn!(service = self.service, error = %e, failures, "relaying events failed; retrying");
                    backoff.min(Duration::from_secs(5))
                }
            };
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = tokio::time::Instant::now();
                if let Err(e) = self.record_backlog().await {
                    tracing::debug!(error = %e, "the outbox backlog could not be read");
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                match self.prune().await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::debug!(service = self.service, pruned, "pruned sent events"),
                    Err(e) => {
                        tracing::warn!(service = self.service, error = %e, "pruning sent events failed")
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        // One last round, so what was committed before the stop leaves now rather than at the
        // next start.
        if let Err(e) = self.relay_once().await {
            tracing::warn!(service = self.service, error = %e, "the last relay round failed; the events wait for the next start");
        }
    }
}

//! The transactional outbox and its relay on SQLite and PostgreSQL: an event exists if and only
//! if its transaction committed, the relay publishes in the order the events were recorded and
//! marks them sent, a failed publish marks nothing, and sent events are pruned after the
//! retention. Events travel over the real in-process bus to a real consumer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use contracts::events::{CloudEvent, UserDeleted};
use kit::config::EventsConfig;
use kit::events::{Bus, Consumer, Outbox, OutboxMigration, PublishError, Publisher, Relay, outbox_backlog};
use kit::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

kit::on_both_backends!(
    a_rolled_back_change_has_no_event_and_a_committed_one_exactly_one,
    the_relay_publishes_in_recorded_order_and_marks_each_sent_once,
    a_failed_publish_marks_nothing_and_the_next_round_sends_it,
    sent_events_are_pruned_after_the_retention_and_unsent_ones_never,
    a_gated_change_records_its_event_only_when_it_matched_and_never_half,
);

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(OutboxMigration)]
    }
}

/// A fresh database with the outbox and a `things` table standing for a service's state.
async fn database(backend: Backend, label: &str) -> (TestDatabase, DatabaseConnection) {
    let test = TestDatabase::new(backend, label).await;
    let db = kit::db::connect(&test.config).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared("CREATE TABLE things (id VARCHAR(36) PRIMARY KEY)").await.unwrap();
    (test, db)
}

fn deleted(n: u128) -> UserDeleted {
    UserDeleted { user_id: Uuid::from_u128(n), deleted_at: chrono::Utc::now() }
}

async fn things(db: &DatabaseConnection) -> usize {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT id FROM things"))
        .await
        .unwrap();
    rows.len()
}

/// A consumer on `bus` that notes the user id of every `user.deleted` it applies.
fn recording(bus: &Bus) -> (Arc<Mutex<Vec<Uuid>>>, CancellationToken) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer =
        Consumer::new("recorder").on::<UserDeleted, _, _, _>(seen.clone(), |seen, event| async move {
            seen.lock().unwrap().push(event.data.user_id);
            anyhow::Ok(())
        });
    let stop = CancellationToken::new();
    tokio::spawn(bus.subscribe(consumer).run(stop.clone()));
    (seen, stop)
}

/// Waits until `seen` holds `count` ids (the consumer runs on its own task).
async fn wait_for(seen: &Mutex<Vec<Uuid>>, count: usize) -> Vec<Uuid> {
    for _ in 0..500 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.lock().unwrap().clone()
}

fn config(batch: u64, retention_secs: u64) -> EventsConfig {
    EventsConfig { url: None, relay_interval_ms: 10, relay_batch: batch, sent_retention_secs: retention_secs }
}

async fn a_rolled_back_change_has_no_event_and_a_committed_one_exactly_one(backend: Backend) {
    let (_test, db) = database(backend, "outbox_atomic").await;
    let outbox = Outbox::new("test");

    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO things (id) VALUES ('rolled-back')").await.unwrap();
    outbox.record(&txn, deleted(1)).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!((things(&db).await, outbox_backlog(&db).await.unwrap().unsent), (0, 0), "no change, no event");

    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO things (id) VALUES ('committed')").await.unwrap();
    let id = outbox.record(&txn, deleted(2)).await.unwrap();
    txn.commit().await.unwrap();
    let backlog = outbox_backlog(&db).await.unwrap();
    assert_eq!((things(&db).await, backlog.unsent), (1, 1), "the change and exactly one event");
    assert!(backlog.oldest.is_some());

    let bus = Bus::new();
    let (seen, stop) = recording(&bus);
    let relay = Relay::new("test", db.clone(), Arc::new(bus), config(10, 3600));
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(wait_for(&seen, 1).await, vec![Uuid::from_u128(2)], "the committed event, with its id {id}");
    assert_eq!(relay.relay_once().await.unwrap(), 0, "sent once");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 0);
    stop.cancel();
}

async fn the_relay_publishes_in_recorded_order_and_marks_each_sent_once(backend: Backend) {
    let (_test, db) = database(backend, "outbox_order").await;
    let outbox = Outbox::new("test");
    for batch in 0..10u128 {
        let txn = db.begin().await.unwrap();
        for n in 0..7u128 {
            outbox.record(&txn, deleted(batch * 7 + n)).await.unwrap();
        }
        txn.commit().await.unwrap();
    }
    let bus = Bus::new();
    let (seen, stop) = recording(&bus);
    // Rounds of 4 cut across the transactions' 7.
    let relay = Relay::new("test", db.clone(), Arc::new(bus), config(4, 3600));
    let mut relayed = 0;
    loop {
        match relay.relay_once().await.unwrap() {
            0 => break,
            n => relayed += n,
        }
    }
    assert_eq!(relayed, 70);
    let expected: Vec<Uuid> = (0..70u128).map(Uuid::from_u128).collect();
    assert_eq!(wait_for(&seen, 70).await, expected, "published in the order recorded");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 0);
    stop.cancel();
}

/// A broker that refuses everything until told otherwise.
struct Refusing {
    refuse: std::sync::atomic::AtomicBool,
    bus: Bus,
}

#[async_trait]
impl Publisher for Refusing {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PublishError> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PublishError("the broker is away".into()));
        }
        self.bus.publish(events).await
    }
}

async fn a_failed_publish_marks_nothing_and_the_next_round_sends_it(backend: Backend) {
    let (_test, db) = database(backend, "outbox_failed").await;
    let outbox = Outbox::new("test");
    let txn = db.begin().await.unwrap();
    outbox.record(&txn, deleted(5)).await.unwrap();
    txn.commit().await.unwrap();

    let bus = Bus::new();
    let (seen, stop) = recording(&bus);
    let publisher = Arc::new(Refusing { refuse: true.into(), bus });
    let relay = Relay::new("test", db.clone(), publisher.clone(), config(10, 3600));
    assert!(relay.relay_once().await.is_err());
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 1, "still waiting");

    publisher.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    let run = CancellationToken::new();
    let task = tokio::spawn(relay.run(run.clone()));
    assert_eq!(wait_for(&seen, 1).await, vec![Uuid::from_u128(5)]);
    run.cancel();
    task.await.unwrap();
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 0);
    stop.cancel();
}

async fn sent_events_are_pruned_after_the_retention_and_unsent_ones_never(backend: Backend) {
    let (_test, db) = database(backend, "outbox_prune").await;
    let outbox = Outbox::new("test");
    let txn = db.begin().await.unwrap();
    outbox.record(&txn, deleted(1)).await.unwrap();
    outbox.record(&txn, deleted(2)).await.unwrap();
    txn.commit().await.unwrap();
    let bus = Bus::new();

    let keeping = Relay::new("test", db.clone(), Arc::new(bus.clone()), config(10, 3600));
    assert_eq!(keeping.relay_once().await.unwrap(), 2);
    let txn = db.begin().await.unwrap();
    outbox.record(&txn, deleted(3)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(keeping.prune().await.unwrap(), 0, "sent just now: kept for the retention");

    tokio::time::sleep(Duration::from_millis(20)).await;
    let pruning = Relay::new("test", db.clone(), Arc::new(bus), config(10, 0));
    assert_eq!(pruning.prune().await.unwrap(), 2, "the two sent ones go");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 1, "the unsent one stays");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT seq FROM event_outbox",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

/// `UPDATE gates SET state = 'open' WHERE id = 'g1' AND state = 'closed'`.
fn open_gate() -> sea_orm::sea_query::UpdateStatement {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    Query::update()
        .table(Alias::new("gates"))
        .value(Alias::new("state"), "open")
        .and_where(Expr::col(Alias::new("id")).eq("g1"))
        .and_where(Expr::col(Alias::new("state")).eq("closed"))
        .to_owned()
}

async fn gate_state(db: &DatabaseConnection) -> String {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT state FROM gates"))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "state").unwrap()
}

async fn a_gated_change_records_its_event_only_when_it_matched_and_never_half(backend: Backend) {
    let (_test, db) = database(backend, "outbox_gated").await;
    db.execute_unprepared("CREATE TABLE gates (id VARCHAR(36) PRIMARY KEY, state VARCHAR(20) NOT NULL)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO gates (id, state) VALUES ('g1', 'closed')").await.unwrap();
    let outbox = Outbox::new("test");

    // An event whose id is taken: the insert fails, so the change must not stay either.
    let taken = outbox.prepare(deleted(1)).unwrap();
    let txn = db.begin().await.unwrap();
    outbox.record_prepared(&txn, taken.clone()).await.unwrap();
    txn.commit().await.unwrap();
    assert!(outbox.change_and_record(&db, open_gate(), taken).await.is_err());
    assert_eq!(gate_state(&db).await, "closed", "no event, no change");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 1);

    let event = outbox.prepare(deleted(2)).unwrap();
    let id = event.id();
    assert!(outbox.change_and_record(&db, open_gate(), event).await.unwrap(), "the gate matched");
    assert_eq!(gate_state(&db).await, "open");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 2, "the change and its event");
    let again = outbox.prepare(deleted(3)).unwrap();
    assert!(!outbox.change_and_record(&db, open_gate(), again).await.unwrap(), "already open");
    assert_eq!(outbox_backlog(&db).await.unwrap().unsent, 2, "no change, no event");

    let bus = Bus::new();
    let (seen, stop) = recording(&bus);
    let relay = Relay::new("test", db.clone(), Arc::new(bus), config(10, 3600));
    assert_eq!(relay.relay_once().await.unwrap(), 2);
    let got = wait_for(&seen, 2).await;
    assert_eq!(
        got,
        vec![Uuid::from_u128(1), Uuid::from_u128(2)],
        "the gated event {id} travels like any other"
    );
    stop.cancel();
}

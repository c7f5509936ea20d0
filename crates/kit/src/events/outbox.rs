//! The transactional outbox: the `event_outbox` table every producing service migrates
//! ([`OutboxMigration`], in its own migrator), and [`Outbox::record`], which writes an event on
//! the caller's transaction, so the event exists if and only if the change committed.

use chrono::{DateTime, Utc};
use contracts::events::{CloudEvent, EventData};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_pk_auto, string_len, text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid_uniq,
};
use uuid::Uuid;

/// The `event_outbox` rows: one event each, in the order `seq` gives them.
pub(crate) mod row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_outbox")]
    pub struct Model {
        /// The order events are published in (the order their transactions wrote them).
        #[sea_orm(primary_key)]
        pub seq: i64,
        /// The event's CloudEvents `id`.
        pub id: Uuid,
        pub event_type: String,
        /// The whole CloudEvent, as JSON.
        pub payload: String,
        pub created_at: DateTimeUtc,
        /// When the relay had it published; `NULL` until then.
        pub sent_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes events into the outbox of one service's database.
#[derive(Debug, Clone)]
pub struct Outbox {
    source: String,
}

impl Outbox {
    /// The outbox of `service`: its events' `source` is `/mercato/<service>`.
    pub fn new(service: &str) -> Self {
        Self { source: format!("/mercato/{service}") }
    }

    /// Records `data` as a new event on `txn`, the transaction that makes the change it tells
    /// of: rolled back, there is no event; committed, exactly one. The event carries the
    /// current trace context. Returns the event's id.
    pub async fn record<D: EventData>(&self, txn: &impl ConnectionTrait, data: D) -> Result<Uuid, DbErr> {
        self.record_prepared(txn, self.prepare(data)?).await
    }

    /// `data` as the event [`Self::record_prepared`] or [`Self::change_and_record`] will write
    /// (stamped now, with the current trace context): for code that decides which event to
    /// record before it knows on which statement.
    pub fn prepare<D: EventData>(&self, data: D) -> Result<PreparedEvent, DbErr> {
        let event = CloudEvent::new(&self.source, Utc::now(), crate::telemetry::current_traceparent(), data);
        let payload = serde_json::to_string(&event).map_err(|e| DbErr::Json(e.to_string()))?;
        Ok(PreparedEvent { id: event.id, event_type: event.event_type, payload, created_at: event.time })
    }

    /// [`Self::record`] of an event prepared before.
    pub async fn record_prepared(
        &self,
        txn: &impl ConnectionTrait,
        event: PreparedEvent,
    ) -> Result<Uuid, DbErr> {
        let id = event.id;
        row::Entity::insert(row::ActiveModel {
            id: Set(id),
            event_type: Set(event.event_type),
            payload: Set(event.payload),
            created_at: Set(event.created_at),
            sent_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(txn)
        .await?;
        Ok(id)
    }

    /// Runs `change` — one UPDATE that is the gate of a state change, matching one row at
    /// most (a conditional status move, say) — and records `event` if and only if it matched;
    /// says whether it did. Atomic on both backends. On PostgreSQL it is a single statement
    /// (`WITH changed AS (UPDATE … RETURNING 1) INSERT INTO event_outbox … SELECT … FROM
    /// changed`): one round trip, where BEGIN, the update, the insert and COMMIT are four (the
    /// cost a checkout's confirmation paid for its event). On SQLite, whose CTEs cannot
    /// change rows, a transaction of the two.
    pub async fn change_and_record(
        &self,
        db: &DatabaseConnection,
        change: UpdateStatement,
        event: PreparedEvent,
    ) -> Result<bool, DbErr> {
        let backend = db.get_database_backend();
        if backend != DbBackend::Postgres {
            let txn = db.begin().await?;
            let changed = txn.execute(&change).await?.rows_affected();
            if changed != 1 {
                txn.rollback().await?;
                return Ok(false);
            }
            self.record_prepared(&txn, event).await?;
            txn.commit().await?;
            return Ok(true);
        }
        let (update, mut values) = change.build(PostgresQueryBuilder);
        let n = values.0.len();
        values.0.extend([
            event.id.into(),
            event.event_type.into(),
            event.payload.into(),
            event.created_at.into(),
        ]);
        let sql = format!(
            "WITH changed AS ({update} RETURNING 1) \
             INSERT INTO event_outbox (id, event_type, payload, created_at) \
             SELECT ${}, ${}, ${}, ${} FROM changed",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        );
        let inserted = db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records many events at once on `txn`, in their order (a bulk import's), a few hundred
    /// rows per statement.
    pub async fn record_many<D: EventData>(
        &self,
        txn: &impl ConnectionTrait,
        data: Vec<D>,
    ) -> Result<(), DbErr> {
        const ROWS_PER_INSERT: usize = 500;
        let traceparent = crate::telemetry::current_traceparent();
        let now = Utc::now();
        let mut rows = Vec::with_capacity(data.len().min(ROWS_PER_INSERT));
        for data in data {
            let event = CloudEvent::new(&self.source, now, traceparent.clone(), data);
            rows.push(row::ActiveModel {
                id: Set(event.id),
                event_type: Set(event.event_type.clone()),
                payload: Set(serde_json::to_string(&event).map_err(|e| DbErr::Json(e.to_string()))?),
                created_at: Set(now),
                sent_at: Set(None),
                ..Default::default()
            });
            if rows.len() == ROWS_PER_INSERT {
                row::Entity::insert_many(std::mem::take(&mut rows)).exec_without_returning(txn).await?;
            }
        }
        if !rows.is_empty() {
            row::Entity::insert_many(rows).exec_without_returning(txn).await?;
        }
        Ok(())
    }
}

/// An event made ready for the outbox ([`Outbox::prepare`]), not yet written.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    id: Uuid,
    event_type: String,
    payload: String,
    created_at: DateTime<Utc>,
}

impl PreparedEvent {
    /// The event's id.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// A page of the events of `types` the outbox recorded at or after `since` (sent or not: sent
/// ones stay for `events.sent_retention_secs`), oldest first, from after the row `after` (the
/// `seq` the previous page ended with), at most `limit`; with the `seq` of its last row. What a
/// service serves to replicas that start after an event was published (users' revocations).
pub async fn recorded_since(
    db: &impl ConnectionTrait,
    types: &[&str],
    since: DateTime<Utc>,
    after: i64,
    limit: u64,
) -> Result<(Vec<CloudEvent>, Option<i64>), DbErr> {
    let rows: Vec<(i64, String)> = row::Entity::find()
        .select_only()
        .column(row::Column::Seq)
        .column(row::Column::Payload)
        .filter(row::Column::EventType.is_in(types.iter().copied()))
        .filter(row::Column::CreatedAt.gte(since))
        .filter(row::Column::Seq.gt(after))
        .order_by_asc(row::Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let last = rows.last().map(|(seq, _)| *seq);
    let events = rows
        .into_iter()
        .map(|(_, payload)| serde_json::from_str(&payload).map_err(|e| DbErr::Json(e.to_string())))
        .collect::<Result<Vec<CloudEvent>, DbErr>>()?;
    Ok((events, last))
}

/// Unsent events: how many, and since when the oldest waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub unsent: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// The outbox's backlog on `db`.
pub async fn outbox_backlog(db: &impl ConnectionTrait) -> Result<Backlog, DbErr> {
    let unsent = row::Entity::find().filter(row::Column::SentAt.is_null()).count(db).await?;
    let oldest: Option<DateTime<Utc>> = row::Entity::find()
        .select_only()
        .column(row::Column::CreatedAt)
        .filter(row::Column::SentAt.is_null())
        .order_by_asc(row::Column::Seq)
        .into_tuple()
        .one(db)
        .await?;
    Ok(Backlog { unsent, oldest })
}

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Seq,
    Id,
    EventType,
    Payload,
    CreatedAt,
    SentAt,
}

/// Creates the `event_outbox` table; each producing service lists it in its migrator.
pub struct OutboxMigration;

impl MigrationName for OutboxMigration {
    fn name(&self) -> &str {
        "m20261130_000001_create_event_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .col(big_pk_auto(EventOutbox::Seq))
                    .col(uuid_uniq(EventOutbox::Id))
                    .col(string_len(EventOutbox::EventType, 100))
                    .col(text(EventOutbox::Payload))
                    .col(timestamp_with_time_zone(EventOutbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(EventOutbox::SentAt))
                    .to_owned(),
            )
            .await?;
        // The relay reads the unsent rows in order; pruning finds the old sent ones. Partial
        // indexes read the same on SQLite and PostgreSQL.
        let connection = manager.get_connection();
        connection
            .execute_unprepared(
                "CREATE INDEX event_outbox_unsent ON event_outbox (seq) WHERE sent_at IS NULL",
            )
            .await?;
        connection
            .execute_unprepared(
                "CREATE INDEX event_outbox_sent ON event_outbox (sent_at) WHERE sent_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventOutbox::Table).to_owned()).await
    }
}

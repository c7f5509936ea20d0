//! The transactional outbox: the `event_outbox` table every producing service migrates
//! ([`OutboxMigration`], in its own migrator), and [`Outbox::record`], which writes an event on
//! the caller's transaction, so the event exists if and only if the change committed.

use chrono::{DateTime, Utc};
use contracts::events::{CloudEvent, EventData};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
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
        let event = CloudEvent::new(&self.source, Utc::now(), crate::telemetry::current_traceparent(), data);
        let id = event.id;
        let event_type = event.event_type.clone();
        let payload = serde_json::to_string(&event).map_err(|e| DbErr::Json(e.to_string()))?;
        row::Entity::insert(row::ActiveModel {
            id: Set(id),
            event_type: Set(event_type),
            payload: Set(payload),
            created_at: Set(event.time),
            sent_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(txn)
        .await?;
        Ok(id)
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

//! The orders database: orders and their lines, through SeaORM on SQLite or PostgreSQL (one
//! code path; the URL picks the backend). Status changes are conditional updates, so two
//! concurrent changes of one order cannot both win.

pub mod entities;
pub mod migration;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use contracts::Money;
use contracts::events::{OrderCancelled, OrderLine, OrderPlaced, OrderStatusChanged};
use kit::address::PostalAddress;
use kit::events::{Outbox, PreparedEvent};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, SqlErr, Statement,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

pub use entities::{order, order_item};

use crate::domain::{Order, OrderStatus, PricedLine, Totals};

/// What can go wrong storing orders, beyond the database failing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The user has an order with this idempotency key already.
    #[error("this idempotency key was already used by this user")]
    DuplicateKey,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A new order, priced and addressed, to record as pending.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: Uuid,
    pub currency: String,
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    pub shipping_address: PostalAddress,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
}

/// Which orders a list shows.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

/// Orders, revenue and counts by status over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Orders that are sales: confirmed, paid, shipped or delivered.
    pub orders: u64,
    /// Sum of those orders' totals: wider than one order's total, so that it cannot overflow.
    pub revenue: i128,
    pub by_status: BTreeMap<OrderStatus, u64>,
}

/// The orders service's storage; status moves record their events in its outbox.
#[derive(Clone)]
pub struct OrderStore {
    db: DatabaseConnection,
    outbox: Outbox,
}

/// Revenue is summed as `total / REVENUE_SPLIT` and `total % REVENUE_SPLIT`: each half of
/// even billions of orders stays far below 64 bits.
const REVENUE_SPLIT: i64 = 1_000_000_000;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl OrderStore {
    /// The store over a connected database (SQLite or PostgreSQL).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, outbox: Outbox::new("orders") }
    }

    /// The connection pool, for the outbox relay.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migration::Migrator::up(&self.db, None).await
    }

    /// Records a new order as pending with its lines, atomically. A second order with the same
    /// user and idempotency key is [`StoreError::DuplicateKey`].
    pub async fn create_pending(&self, new: NewOrder) -> Result<Order, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        let txn = self.db.begin().await?;
        let inserted = order::Entity::insert(order::ActiveModel {
            id: Set(id),
            user_id: Set(new.user_id),
            status: Set(OrderStatus::Pending.as_str().to_owned()),
            currency: Set(new.currency.clone()),
            subtotal: Set(new.totals.subtotal),
            tax: Set(new.totals.tax),
            total: Set(new.totals.total),
            shipping_address: Set(
                serde_json::to_value(&new.shipping_address).map_err(|e| DbErr::Json(e.to_string()))?
            ),
            idempotency_key: Set(new.idempotency_key.clone()),
            request_fingerprint: Set(new.fingerprint.clone()),
            status_reason: Set(None),
            stock_released: Set(false),
            created_at: Set(at),
            updated_at: Set(at),
            recovery_attempts: Set(0),
            next_recovery_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
                return Err(StoreError::DuplicateKey);
            }
            Err(e) => return Err(e.into()),
        }
        let items = new.lines.iter().zip(0..).map(|(line, position)| order_item::ActiveModel {
            order_id: Set(id),
            position: Set(position),
            product_id: Set(line.product_id),
            sku: Set(line.sku.clone()),
            name: Set(line.name.clone()),
            unit_price: Set(line.unit_price),
            quantity: Set(line.quantity),
            line_total: Set(line.line_total),
        });
        order_item::Entity::insert_many(items).exec_without_returning(&txn).await?;
        txn.commit().await?;
        // Everything the row holds was written just now: no need to read it back.
        Ok(Order {
            id,
            user_id: new.user_id,
            status: OrderStatus::Pending,
            currency: new.currency,
            lines: new.lines,
            totals: new.totals,
            shipping_address: new.shipping_address,
            idempotency_key: new.idempotency_key,
            fingerprint: new.fingerprint,
            status_reason: None,
            stock_released: false,
            recovery_attempts: 0,
            created_at: at,
            updated_at: at,
        })
    }

    /// The order with its lines.
    pub async fn get(&self, id: Uuid) -> Result<Option<Order>, DbErr> {
        let Some(model) = order::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(hydrate(&self.db, vec![model]).await?.pop())
    }

    /// The user's order made with this idempotency key.
    pub async fn by_idempotency_key(&self, user_id: Uuid, key: &str) -> Result<Option<Order>, DbErr> {
        let model = order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .filter(order::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?;
        Ok(match model {
            Some(model) => hydrate(&self.db, vec![model]).await?.pop(),
            None => None,
        })
    }

    /// Moves the order to `to` if it is in one of `from`; `None` if it was not (someone else
    /// changed it first, or the move is not allowed from where it is). The move and its event
    /// (`order.placed` on confirmation, `order.cancelled`, else `order.status_changed`) are
    /// one transaction.
    pub async fn transition(
        &self,
        id: Uuid,
        from: &[OrderStatus],
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<Option<Order>, DbErr> {
        self.move_status(id, from, to, reason, None).await
    }

    /// [`Self::transition`] of an order the caller has in hand (just read or written): on
    /// success it comes back with the new status, reason and time, without reading it again (a
    /// status move changes nothing else, and it only succeeds from a status in `from`).
    pub async fn transition_order(
        &self,
        order: Order,
        from: &[OrderStatus],
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<Option<Order>, DbErr> {
        self.move_status(order.id, from, to, reason, Some(order)).await
    }

    /// Sets the status (and reason) if the order is in one of `from`, and records the event,
    /// in one transaction; the order as it is now, or `None` if it was not in `from`.
    async fn move_status(
        &self,
        id: Uuid,
        from: &[OrderStatus],
        to: OrderStatus,
        reason: Option<&str>,
        in_hand: Option<Order>,
    ) -> Result<Option<Order>, DbErr> {
        let at = now();
        let mut update = order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(to.as_str()))
            .col_expr(order::Column::UpdatedAt, Expr::value(at));
        if let Some(reason) = reason {
            update = update.col_expr(order::Column::StatusReason, Expr::value(reason));
        }
        let update = update
            .filter(order::Column::Id.eq(id))
            .filter(order::Column::Status.is_in(from.iter().map(|s| s.as_str())));
        if let Some(mut order) = in_hand {
            // The order is in hand, so its event is known before the move: the move and the
            // event are one statement on PostgreSQL (a checkout's confirmation pays one round
            // trip for both, not four).
            let previous = order.status;
            order.status = to;
            order.updated_at = at;
            if let Some(reason) = reason {
                order.status_reason = Some(reason.to_owned());
            }
            let event = self.status_event(&order, Some(previous))?;
            let moved = self.outbox.change_and_record(&self.db, update.into_query(), event).await?;
            return Ok(moved.then_some(order));
        }
        // The conditional update comes first: it is the gate, and on SQLite a transaction must
        // write before it reads.
        let txn = self.db.begin().await?;
        let result = update.exec(&txn).await?;
        if result.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(None);
        }
        let model = order::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
        let order =
            hydrate(&txn, vec![model]).await?.pop().ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
        // Each status but cancelled is reached from one status only.
        let previous = (from.len() == 1).then(|| from[0]);
        self.outbox.record_prepared(&txn, self.status_event(&order, previous)?).await?;
        txn.commit().await?;
        Ok(Some(order))
    }

    /// The event of `order`'s move to its status from `previous`: `order.placed` on
    /// confirmation, `order.cancelled`, else `order.status_changed`.
    fn status_event(&self, order: &Order, previous: Option<OrderStatus>) -> Result<PreparedEvent, DbErr> {
        let lines = || -> Vec<OrderLine> {
            order
                .lines
                .iter()
                .map(|line| OrderLine {
                    product_id: line.product_id,
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price: Money::new(line.unit_price, &order.currency),
                })
                .collect()
        };
        match order.status {
            OrderStatus::Confirmed => {
                let placed = OrderPlaced {
                    order_id: order.id,
                    user_id: order.user_id,
                    items: lines(),
                    total: Money::new(order.totals.total, &order.currency),
                    placed_at: order.updated_at,
                };
                self.outbox.prepare(placed)
            }
            OrderStatus::Cancelled => {
                let cancelled = OrderCancelled {
                    order_id: order.id,
                    user_id: order.user_id,
                    reason: order.status_reason.clone(),
                    items: lines(),
                    cancelled_at: order.updated_at,
                };
                self.outbox.prepare(cancelled)
            }
            to => {
                let changed = OrderStatusChanged {
                    order_id: order.id,
                    user_id: order.user_id,
                    from: previous.map_or("", OrderStatus::as_str).to_owned(),
                    to: to.as_str().to_owned(),
                    changed_at: order.updated_at,
                };
                self.outbox.prepare(changed)
            }
        }
    }

    /// Notes that a cancelled order holds no stock any more.
    pub async fn mark_stock_released(&self, id: Uuid) -> Result<(), DbErr> {
        order::Entity::update_many()
            .col_expr(order::Column::StockReleased, Expr::value(true))
            .filter(order::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Orders matching `filter`, newest first, as an offset page with the total.
    pub async fn list(
        &self,
        filter: &OrderFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Order>, u64), DbErr> {
        let select = order::Entity::find().filter(condition(filter));
        let total = select.clone().count(&self.db).await?;
        let models = select
            .order_by_desc(order::Column::CreatedAt)
            .order_by_desc(order::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok((hydrate(&self.db, models).await?, total))
    }

    /// Orders matching `filter`, newest first, after the keyset position `after`; one more than
    /// `limit` tells whether a next page exists.
    pub async fn list_after(
        &self,
        filter: &OrderFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> Result<(Vec<Order>, bool), DbErr> {
        let mut select = order::Entity::find().filter(condition(filter));
        if let Some((at, id)) = after {
            select =
                select.filter(Condition::any().add(order::Column::CreatedAt.lt(at)).add(
                    Condition::all().add(order::Column::CreatedAt.eq(at)).add(order::Column::Id.lt(id)),
                ));
        }
        let mut models = select
            .order_by_desc(order::Column::CreatedAt)
            .order_by_desc(order::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = models.len() as u64 > limit;
        models.truncate(limit as usize);
        Ok((hydrate(&self.db, models).await?, more))
    }

    /// Pending orders older than `before` that are due for the recovery worker (never tried,
    /// or their backoff has passed), oldest first: checkouts that never finished.
    pub async fn stale_pending(&self, before: DateTime<Utc>, limit: u64) -> Result<Vec<Order>, DbErr> {
        let models = order::Entity::find()
            .filter(order::Column::Status.eq(OrderStatus::Pending.as_str()))
            .filter(order::Column::CreatedAt.lt(before))
            .filter(due_for_recovery())
            .order_by_asc(order::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        hydrate(&self.db, models).await
    }

    /// Cancelled orders whose stock has not been confirmed released and that are due for the
    /// recovery worker.
    pub async fn unreleased_cancellations(&self, limit: u64) -> Result<Vec<Order>, DbErr> {
        let models = order::Entity::find()
            .filter(order::Column::Status.eq(OrderStatus::Cancelled.as_str()))
            .filter(order::Column::StockReleased.eq(false))
            .filter(due_for_recovery())
            .order_by_asc(order::Column::UpdatedAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        hydrate(&self.db, models).await
    }

    /// Claims the order for one recovery worker for `lease`: `false` if another worker (another
    /// replica) holds it now. While claimed the order is not due for anyone else, so two
    /// workers never settle one order in different ways.
    pub async fn claim_for_recovery(&self, id: Uuid, lease: chrono::Duration) -> Result<bool, DbErr> {
        let result = order::Entity::update_many()
            .col_expr(order::Column::NextRecoveryAt, Expr::value(now() + lease))
            .filter(order::Column::Id.eq(id))
            .filter(due_for_recovery())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Notes a failed recovery attempt: the worker leaves the order alone until `until`.
    pub async fn defer_recovery(&self, id: Uuid, until: DateTime<Utc>) -> Result<(), DbErr> {
        order::Entity::update_many()
            .col_expr(
                order::Column::RecoveryAttempts,
                Expr::col(order::Column::RecoveryAttempts).add(Expr::val(1)),
            )
            .col_expr(order::Column::NextRecoveryAt, Expr::value(until))
            .filter(order::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Counts and revenue of orders created in `[from, to)`.
    pub async fn stats(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Stats, DbErr> {
        #[derive(FromQueryResult)]
        struct Row {
            status: String,
            orders: i64,
            revenue_high: i64,
            revenue_low: i64,
        }
        // A sum of 64-bit totals can pass 64 bits (an error on both backends), so the totals
        // are summed in two halves that cannot, and joined here in 128 bits.
        let backend = self.db.get_database_backend();
        let mut sql = format!(
            "SELECT status, COUNT(*) AS orders, \
                    CAST(COALESCE(SUM(total / {REVENUE_SPLIT}), 0) AS BIGINT) AS revenue_high, \
                    CAST(COALESCE(SUM(total % {REVENUE_SPLIT}), 0) AS BIGINT) AS revenue_low \
             FROM orders WHERE 1 = 1"
        );
        let mut values: Vec<sea_orm::Value> = Vec::new();
        let placeholder = |n: usize| match backend {
            sea_orm::DatabaseBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        };
        if let Some(from) = from {
            values.push(from.into());
            sql.push_str(&format!(" AND created_at >= {}", placeholder(values.len())));
        }
        if let Some(to) = to {
            values.push(to.into());
            sql.push_str(&format!(" AND created_at < {}", placeholder(values.len())));
        }
        sql.push_str(" GROUP BY status");
        let rows = Row::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db)
            .await?;
        let mut stats = Stats {
            orders: 0,
            revenue: 0,
            by_status: OrderStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
        };
        for row in rows {
            let Ok(status) = OrderStatus::parse(&row.status) else {
                continue;
            };
            let count = u64::try_from(row.orders).unwrap_or(0);
            stats.by_status.insert(status, count);
            if status.is_sale() {
                stats.orders += count;
                stats.revenue +=
                    i128::from(row.revenue_high) * i128::from(REVENUE_SPLIT) + i128::from(row.revenue_low);
            }
        }
        Ok(stats)
    }
}

/// Attaches lines to orders, one query for the whole page.
async fn hydrate(db: &impl ConnectionTrait, models: Vec<order::Model>) -> Result<Vec<Order>, DbErr> {
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
    let mut lines: HashMap<Uuid, Vec<PricedLine>> = HashMap::new();
    for item in order_item::Entity::find()
        .filter(order_item::Column::OrderId.is_in(ids))
        .order_by_asc(order_item::Column::OrderId)
        .order_by_asc(order_item::Column::Position)
        .all(db)
        .await?
    {
        lines.entry(item.order_id).or_default().push(PricedLine {
            product_id: item.product_id,
            sku: item.sku,
            name: item.name,
            unit_price: item.unit_price,
            quantity: item.quantity,
            line_total: item.line_total,
        });
    }
    models
        .into_iter()
        .map(|m| {
            let status = OrderStatus::parse(&m.status).map_err(DbErr::Custom)?;
            let shipping_address =
                serde_json::from_value(m.shipping_address).map_err(|e| DbErr::Json(e.to_string()))?;
            Ok(Order {
                lines: lines.remove(&m.id).unwrap_or_default(),
                id: m.id,
                user_id: m.user_id,
                status,
                currency: m.currency,
                totals: Totals { subtotal: m.subtotal, tax: m.tax, total: m.total },
                shipping_address,
                idempotency_key: m.idempotency_key,
                fingerprint: m.request_fingerprint,
                status_reason: m.status_reason,
                stock_released: m.stock_released,
                recovery_attempts: u32::try_from(m.recovery_attempts).unwrap_or(0),
                created_at: m.created_at,
                updated_at: m.updated_at,
            })
        })
        .collect()
}

/// Orders the recovery worker may try now.
fn due_for_recovery() -> Condition {
    Condition::any()
        .add(order::Column::NextRecoveryAt.is_null())
        .add(order::Column::NextRecoveryAt.lte(now()))
}

fn condition(filter: &OrderFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(user) = filter.user_id {
        condition = condition.add(order::Column::UserId.eq(user));
    }
    if let Some(status) = filter.status {
        condition = condition.add(order::Column::Status.eq(status.as_str()));
    }
    condition
}

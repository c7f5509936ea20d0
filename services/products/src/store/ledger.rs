//! The reservation ledger: stock held for orders ([`ReservationLedger`]) and its SQL adapter
//! [`SqlLedger`], apart from the catalogue it takes stock from.
//!
//! The rules it keeps, on both backends and under any concurrency:
//! - Stock changes only by conditional SQL (`stock = stock - q WHERE stock >= q`), all lines
//!   of one reservation in one transaction, in product-id order (so concurrent reservations
//!   lock rows in the same order); a `CHECK (stock >= 0)` backs it. Stock is never negative
//!   and never oversold.
//! - A reservation is keyed by its order id: a replay answers the reservation already there
//!   and takes nothing more.
//! - A release gives the stock back exactly once, however often it is called.
//! - Releasing an order that holds nothing leaves a tombstone (a `released` row), so a
//!   reservation for that order arriving late is refused rather than leaking stock.
//!
//! Whoever keeps copies of stock (list totals, the read cache) is told after each commit that
//! moved it, through [`StockObserver`]. A reservation that takes a product's stock to or below
//! the low-stock threshold from above it records `product.stock_low` in its transaction.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use kit::events::Outbox;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{product, reservation, reservation_line};
use super::sql::{is_unique_violation, now, record_stock_low};
use crate::domain::{
    DEFAULT_LOW_STOCK_THRESHOLD, Reservation, ReservationLine, ReservationRequest, ReservationState, Shortage,
};

/// `reservations.status` of a reservation holding its stock.
const HELD: &str = "held";
/// `reservations.status` of a released reservation, or of a tombstone.
const RELEASED: &str = "released";

/// What a reservation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Everything is held now.
    Reserved(Reservation),
    /// This order already had a reservation (a replay, or a tombstone): it is returned
    /// unchanged.
    Existing(Reservation),
    /// Some lines could not be held; nothing was taken.
    Short(Vec<Shortage>),
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The held stock went back.
    Released,
    /// Nothing was held (released before, or never reserved): nothing changed.
    AlreadyReleased,
}

/// Stock held for orders.
#[async_trait]
pub trait ReservationLedger: Send + Sync {
    /// Holds stock for an order, all lines or none; idempotent on the order id.
    async fn reserve(&self, request: &ReservationRequest) -> Result<ReserveOutcome, StoreError>;
    /// Returns an order's held stock exactly once; idempotent. Releasing an unknown order
    /// records the release, so a late reservation for it is refused.
    async fn release(&self, order_id: Uuid) -> Result<ReleaseOutcome, StoreError>;
    /// An order's reservation, if any.
    async fn reservation(&self, order_id: Uuid) -> Result<Option<Reservation>, StoreError>;
}

/// Told after a reservation or a release moved the stock of `products`, so that copies of it
/// (list totals, cached product details) are dropped.
#[async_trait]
pub trait StockObserver: Send + Sync {
    /// Drops what is held of the stock of `products`.
    async fn stock_moved(&self, products: &[Uuid]);
}

/// The ledger in the products database (the `reservations` and `reservation_lines` tables),
/// taking stock from its `products` rows.
pub struct SqlLedger {
    db: DatabaseConnection,
    observer: Arc<dyn StockObserver>,
    outbox: Outbox,
    low_stock_threshold: i64,
}

impl SqlLedger {
    /// The ledger on `db` (the catalogue's pool: [`super::SqlCatalog::connection`]), telling
    /// `observer` whenever stock moved.
    pub fn new(db: DatabaseConnection, observer: Arc<dyn StockObserver>) -> Self {
        Self {
            db,
            observer,
            outbox: Outbox::new("products"),
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
        }
    }

    /// The same ledger with another low-stock threshold: a reservation that takes a product's
    /// stock from above it to at or below it records `product.stock_low`.
    pub fn with_low_stock_threshold(mut self, threshold: i64) -> Self {
        self.low_stock_threshold = threshold;
        self
    }

    /// Stock of each product found (0 for a deleted one), outside any transaction: what a
    /// short reservation reports as available.
    async fn available(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, i64>, DbErr> {
        let rows: Vec<(Uuid, i64, Option<chrono::DateTime<chrono::Utc>>)> = product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .column(product::Column::Stock)
            .column(product::Column::DeletedAt)
            .filter(product::Column::Id.is_in(ids.to_vec()))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, stock, deleted)| (id, if deleted.is_some() { 0 } else { stock }))
            .collect())
    }
}

#[async_trait]
impl ReservationLedger for SqlLedger {
    async fn reserve(&self, request: &ReservationRequest) -> Result<ReserveOutcome, StoreError> {
        let txn = self.db.begin().await?;
        // Claim the order id first: a write at once (no read→write lock upgrade on SQLite), and a
        // replay or a concurrent duplicate stops here.
        let claim = reservation::ActiveModel {
            order_id: Set(request.order_id),
            status: Set(HELD.into()),
            created_at: Set(now()),
            released_at: Set(None),
        };
        if let Err(e) = reservation::Entity::insert(claim).exec_without_returning(&txn).await {
            txn.rollback().await?;
            if is_unique_violation(&e) {
                let existing = self.reservation(request.order_id).await?;
                return existing.map(ReserveOutcome::Existing).ok_or(StoreError::Db(e));
            }
            return Err(e.into());
        }
        let mut short = Vec::new();
        for line in &request.lines {
            let taken = product::Entity::update_many()
                .col_expr(product::Column::Stock, Expr::col(product::Column::Stock).sub(line.quantity))
                .filter(product::Column::Id.eq(line.product_id))
                .filter(product::Column::DeletedAt.is_null())
                .filter(product::Column::Stock.gte(line.quantity))
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            if !taken {
                short.push(line);
            }
        }
        if !short.is_empty() {
            txn.rollback().await?;
            let ids: Vec<Uuid> = short.iter().map(|l| l.product_id).collect();
            let stock = self.available(&ids).await?;
            return Ok(ReserveOutcome::Short(
                short
                    .into_iter()
                    .map(|l| Shortage {
                        product_id: l.product_id,
                        requested: l.quantity,
                        available: stock.get(&l.product_id).copied().unwrap_or(0),
                    })
                    .collect(),
            ));
        }
        let lines = request.lines.iter().map(|l| reservation_line::ActiveModel {
            order_id: Set(request.order_id),
            product_id: Set(l.product_id),
            quantity: Set(l.quantity),
        });
        reservation_line::Entity::insert_many(lines).exec_without_returning(&txn).await?;
        let ids: Vec<Uuid> = request.lines.iter().map(|l| l.product_id).collect();
        let taken: HashMap<Uuid, i64> = request.lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        for model in product::Entity::find().filter(product::Column::Id.is_in(ids)).all(&txn).await? {
            let before = model.stock + taken.get(&model.id).copied().unwrap_or(0);
            record_stock_low(&self.outbox, &txn, &model, before, self.low_stock_threshold).await?;
        }
        txn.commit().await?;
        let products: Vec<Uuid> = request.lines.iter().map(|l| l.product_id).collect();
        self.observer.stock_moved(&products).await;
        Ok(ReserveOutcome::Reserved(Reservation {
            order_id: request.order_id,
            state: ReservationState::Held,
            lines: request.lines.clone(),
        }))
    }

    async fn release(&self, order_id: Uuid) -> Result<ReleaseOutcome, StoreError> {
        let txn = self.db.begin().await?;
        let at = now();
        let released = reservation::Entity::update_many()
            .col_expr(reservation::Column::Status, Expr::value(RELEASED))
            .col_expr(reservation::Column::ReleasedAt, Expr::value(at))
            .filter(reservation::Column::OrderId.eq(order_id))
            .filter(reservation::Column::Status.eq(HELD))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if released {
            let lines = reservation_line::Entity::find()
                .filter(reservation_line::Column::OrderId.eq(order_id))
                .all(&txn)
                .await?;
            for line in &lines {
                product::Entity::update_many()
                    .col_expr(product::Column::Stock, Expr::col(product::Column::Stock).add(line.quantity))
                    .filter(product::Column::Id.eq(line.product_id))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await?;
            let products: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
            self.observer.stock_moved(&products).await;
            return Ok(ReleaseOutcome::Released);
        }
        // Nothing held: record the release so a reservation arriving late is refused.
        let tombstone = reservation::ActiveModel {
            order_id: Set(order_id),
            status: Set(RELEASED.into()),
            created_at: Set(at),
            released_at: Set(Some(at)),
        };
        reservation::Entity::insert(tombstone)
            .on_conflict_do_nothing_on([reservation::Column::OrderId])
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(ReleaseOutcome::AlreadyReleased)
    }

    async fn reservation(&self, order_id: Uuid) -> Result<Option<Reservation>, StoreError> {
        let Some(found) = reservation::Entity::find_by_id(order_id).one(&self.db).await? else {
            return Ok(None);
        };
        let lines = reservation_line::Entity::find()
            .filter(reservation_line::Column::OrderId.eq(order_id))
            .all(&self.db)
            .await?;
        let state = if found.status == HELD { ReservationState::Held } else { ReservationState::Released };
        Ok(Some(Reservation {
            order_id,
            state,
            lines: lines
                .into_iter()
                .map(|l| ReservationLine { product_id: l.product_id, quantity: l.quantity })
                .collect(),
        }))
    }
}

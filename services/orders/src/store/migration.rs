//! Schema migrations of the orders database, portable across SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Every migration of the orders service, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOrders), Box::new(RecoveryBackoff), Box::new(kit::events::OutboxMigration)]
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Status,
    Currency,
    Subtotal,
    Tax,
    Total,
    ShippingAddress,
    IdempotencyKey,
    RequestFingerprint,
    StatusReason,
    StockReleased,
    CreatedAt,
    UpdatedAt,
    RecoveryAttempts,
    NextRecoveryAt,
}

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    OrderId,
    Position,
    ProductId,
    Sku,
    Name,
    UnitPrice,
    Quantity,
    LineTotal,
}

struct CreateOrders;

impl MigrationName for CreateOrders {
    fn name(&self) -> &str {
        "m20261125_000001_create_orders"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOrders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(pk_uuid(Orders::Id))
                    .col(uuid(Orders::UserId))
                    .col(string_len(Orders::Status, 16))
                    .col(string_len(Orders::Currency, 3))
                    .col(big_integer(Orders::Subtotal))
                    .col(big_integer(Orders::Tax))
                    .col(big_integer(Orders::Total))
                    .col(json_binary(Orders::ShippingAddress))
                    .col(string_len_null(Orders::IdempotencyKey, 200))
                    .col(string_len(Orders::RequestFingerprint, 64))
                    .col(string_len_null(Orders::StatusReason, 500))
                    .col(boolean(Orders::StockReleased))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in [
            // One order per user and key; concurrent checkouts with one key collide here.
            "CREATE UNIQUE INDEX orders_idempotency ON orders (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
            "CREATE INDEX orders_user_newest ON orders (user_id, created_at, id)",
            "CREATE INDEX orders_newest ON orders (created_at, id)",
            "CREATE INDEX orders_status_age ON orders (status, created_at)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(OrderItems::Table)
                    .col(uuid(OrderItems::OrderId))
                    .col(integer(OrderItems::Position))
                    .col(uuid(OrderItems::ProductId))
                    .col(string_len(OrderItems::Sku, 64))
                    .col(string_len(OrderItems::Name, 200))
                    .col(big_integer(OrderItems::UnitPrice))
                    .col(big_integer(OrderItems::Quantity))
                    .col(big_integer(OrderItems::LineTotal))
                    .primary_key(Index::create().col(OrderItems::OrderId).col(OrderItems::Position))
                    .foreign_key(
                        ForeignKey::create()
                            .name("order_items_order")
                            .from(OrderItems::Table, OrderItems::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OrderItems::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Orders::Table).to_owned()).await
    }
}

/// The recovery worker's backoff per order: an order it cannot settle now waits before it is
/// tried again, so orders that keep failing never hold back the ones behind them.
struct RecoveryBackoff;

impl MigrationName for RecoveryBackoff {
    fn name(&self) -> &str {
        "m20261130_000001_recovery_backoff"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RecoveryBackoff {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(integer(Orders::RecoveryAttempts).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(timestamp_with_time_zone_null(Orders::NextRecoveryAt))
                    .to_owned(),
            )
            .await?;
        // What the worker scans for returned stock: few rows, so a partial index.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX orders_unreleased ON orders (updated_at) WHERE status = 'cancelled' AND stock_released = false",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX orders_unreleased").await?;
        for column in [Orders::NextRecoveryAt, Orders::RecoveryAttempts] {
            manager.alter_table(Table::alter().table(Orders::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

//! The schema of the SQLite cart store (the embedded default; production keeps carts in Redis).

use sea_orm_migration::prelude::*;

/// Every migration of the carts database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateCarts), Box::new(CheckoutKeys)]
    }
}

struct CreateCarts;

/// The lines each checkout's Idempotency-Key ordered, so a replay sends the same ones.
struct CheckoutKeys;

impl MigrationName for CheckoutKeys {
    fn name(&self) -> &str {
        "m20261130_000002_checkout_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CheckoutKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE cart_checkout_keys (
                    user_id TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    lines TEXT NOT NULL,
                    PRIMARY KEY (user_id, idempotency_key)
                )",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP TABLE cart_checkout_keys").await?;
        Ok(())
    }
}

impl MigrationName for CreateCarts {
    fn name(&self) -> &str {
        "m20261130_000001_create_carts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCarts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Times are microseconds since the epoch; ids are UUID text.
        db.execute_unprepared(
            "CREATE TABLE carts (user_id TEXT NOT NULL PRIMARY KEY, updated_at INTEGER NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TABLE cart_lines (
                user_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                quantity INTEGER NOT NULL CHECK (quantity > 0),
                added_at INTEGER NOT NULL,
                PRIMARY KEY (user_id, product_id)
            )",
        )
        .await?;
        // The orders already taken out of a cart, so a replayed checkout takes nothing twice.
        db.execute_unprepared(
            "CREATE TABLE cart_checkouts (
                user_id TEXT NOT NULL,
                order_id TEXT NOT NULL,
                PRIMARY KEY (user_id, order_id)
            )",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["cart_checkouts", "cart_lines", "carts"] {
            db.execute_unprepared(&format!("DROP TABLE {table}")).await?;
        }
        Ok(())
    }
}

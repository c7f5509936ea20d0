//! The schema of the SQLite cart store (the embedded default; production keeps carts in Redis).

use sea_orm_migration::prelude::*;

/// Every migration of the carts database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateCarts)]
    }
}

struct CreateCarts;

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

//! Carts in SQLite (the embedded default): three small tables, every write one transaction
//! that writes first (so it holds SQLite's write lock from its first statement and never has
//! to upgrade a read lock).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait, Value,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use super::migration::Migrator;
use super::{CartStore, StoreError, decode_lines, encode_lines};
use crate::domain::{CartLine, Quantity, StoredCart};

/// The SQLite cart store.
#[derive(Clone)]
pub struct SqliteCarts {
    db: DatabaseConnection,
}

impl SqliteCarts {
    /// Carts in `db`, which must be SQLite (see `CartsConfig::validate`).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.db, None).await
    }

    /// The connection (readiness checks it).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

async fn run(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<ExecResult, DbErr> {
    db.execute_raw(statement(sql, values)).await
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

async fn touch(db: &impl ConnectionTrait, user: &str, now: i64) -> Result<(), DbErr> {
    run(
        db,
        "INSERT INTO carts (user_id, updated_at) VALUES (?, ?)
         ON CONFLICT (user_id) DO UPDATE SET updated_at = excluded.updated_at",
        vec![user.into(), now.into()],
    )
    .await
    .map(drop)
}

fn line(row: &QueryResult) -> Result<CartLine, DbErr> {
    let product: String = row.try_get("", "product_id")?;
    Ok(CartLine {
        product_id: Uuid::parse_str(&product).map_err(|e| DbErr::Type(e.to_string()))?,
        quantity: row.try_get("", "quantity")?,
        added_at: from_micros(row.try_get("", "added_at")?),
    })
}

#[async_trait]
impl CartStore for SqliteCarts {
    async fn cart(&self, user: Uuid) -> Result<StoredCart, StoreError> {
        let user = user.to_string();
        let rows = self
            .db
            .query_all_raw(statement(
                "SELECT product_id, quantity, added_at FROM cart_lines WHERE user_id = ?
                 ORDER BY added_at, product_id",
                vec![user.clone().into()],
            ))
            .await?;
        let lines = rows.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        let updated_at = self
            .db
            .query_one_raw(statement("SELECT updated_at FROM carts WHERE user_id = ?", vec![user.into()]))
            .await?
            .map(|row| row.try_get::<i64>("", "updated_at"))
            .transpose()?
            .map(from_micros);
        Ok(StoredCart { lines, updated_at })
    }

    async fn set_quantity(
        &self,
        user: Uuid,
        product: Uuid,
        quantity: Quantity,
        max_lines: usize,
    ) -> Result<(), StoreError> {
        let (user, product) = (user.to_string(), product.to_string());
        let now = micros(Utc::now());
        let max = i64::try_from(max_lines).unwrap_or(i64::MAX);
        let txn = self.db.begin().await?;
        // Written only when the line exists already or the cart has room for one more.
        let written = run(
            &txn,
            "INSERT INTO cart_lines (user_id, product_id, quantity, added_at)
             SELECT ?, ?, ?, ?
             WHERE EXISTS (SELECT 1 FROM cart_lines WHERE user_id = ? AND product_id = ?)
                OR (SELECT COUNT(*) FROM cart_lines WHERE user_id = ?) < ?
             ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity",
            vec![
                user.clone().into(),
                product.clone().into(),
                quantity.get().into(),
                now.into(),
                user.clone().into(),
                product.into(),
                user.clone().into(),
                max.into(),
            ],
        )
        .await?;
        if written.rows_affected() == 0 {
            txn.rollback().await?;
            return Err(StoreError::Full(max_lines));
        }
        touch(&txn, &user, now).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn remove(&self, user: Uuid, product: Uuid) -> Result<(), StoreError> {
        let user = user.to_string();
        let txn = self.db.begin().await?;
        let removed = run(
            &txn,
            "DELETE FROM cart_lines WHERE user_id = ? AND product_id = ?",
            vec![user.clone().into(), product.to_string().into()],
        )
        .await?;
        if removed.rows_affected() > 0 {
            touch(&txn, &user, micros(Utc::now())).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn clear(&self, user: Uuid) -> Result<(), StoreError> {
        let user = user.to_string();
        let txn = self.db.begin().await?;
        run(&txn, "DELETE FROM cart_lines WHERE user_id = ?", vec![user.clone().into()]).await?;
        run(&txn, "DELETE FROM carts WHERE user_id = ?", vec![user.into()]).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn remove_ordered(
        &self,
        user: Uuid,
        order: Uuid,
        lines: &[(Uuid, i64)],
        idempotency_key: Option<&str>,
    ) -> Result<bool, StoreError> {
        let user = user.to_string();
        let txn = self.db.begin().await?;
        if let Some(key) = idempotency_key {
            run(
                &txn,
                "INSERT INTO cart_checkout_keys (user_id, idempotency_key, lines) VALUES (?, ?, ?)
                 ON CONFLICT DO NOTHING",
                vec![user.clone().into(), key.into(), encode_lines(lines).into()],
            )
            .await?;
        }
        let first = run(
            &txn,
            "INSERT INTO cart_checkouts (user_id, order_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![user.clone().into(), order.to_string().into()],
        )
        .await?;
        if first.rows_affected() == 0 {
            txn.commit().await?;
            return Ok(false);
        }
        for (product, quantity) in lines {
            let (product, quantity) = (product.to_string(), *quantity);
            run(
                &txn,
                "DELETE FROM cart_lines WHERE user_id = ? AND product_id = ? AND quantity <= ?",
                vec![user.clone().into(), product.clone().into(), quantity.into()],
            )
            .await?;
            run(
                &txn,
                "UPDATE cart_lines SET quantity = quantity - ? WHERE user_id = ? AND product_id = ?",
                vec![quantity.into(), user.clone().into(), product.into()],
            )
            .await?;
        }
        touch(&txn, &user, micros(Utc::now())).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn checkout_lines(
        &self,
        user: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<Vec<(Uuid, i64)>>, StoreError> {
        let row = self
            .db
            .query_one_raw(statement(
                "SELECT lines FROM cart_checkout_keys WHERE user_id = ? AND idempotency_key = ?",
                vec![user.to_string().into(), idempotency_key.into()],
            ))
            .await?;
        Ok(row.map(|row| row.try_get::<String>("", "lines")).transpose()?.as_deref().and_then(decode_lines))
    }

    async fn forget_user(&self, user: Uuid) -> Result<(), StoreError> {
        let user = user.to_string();
        let txn = self.db.begin().await?;
        for table in ["cart_lines", "carts", "cart_checkouts", "cart_checkout_keys"] {
            run(&txn, &format!("DELETE FROM {table} WHERE user_id = ?"), vec![user.clone().into()]).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

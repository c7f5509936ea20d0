//! Schema migrations of the products database. Tables and indexes are portable; full-text
//! search is the one backend-specific part: a weighted `tsvector` with GIN indexes on
//! PostgreSQL, an FTS5 table kept in sync by triggers on SQLite.

use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Every migration of the products service, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateCatalog),
            Box::new(CreateSearch),
            Box::new(TuneReads),
            Box::new(kit::events::OutboxMigration),
        ]
    }
}

#[derive(DeriveIden)]
enum Categories {
    Table,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Sku,
    Name,
    ShortDescription,
    Description,
    Category,
    Brand,
    PriceAmount,
    Currency,
    Stock,
    Rating,
    WeightGrams,
    Attributes,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ProductImages {
    Table,
    Id,
    ProductId,
    Key,
    Position,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    OrderId,
    Status,
    CreatedAt,
    ReleasedAt,
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    OrderId,
    ProductId,
    Quantity,
}

struct CreateCatalog;

impl MigrationName for CreateCatalog {
    fn name(&self) -> &str {
        "m20261125_000001_create_catalog"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCatalog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Categories::Table)
                    .col(string_len(Categories::Slug, 64).primary_key())
                    .col(string_len(Categories::Name, 64))
                    .col(timestamp_with_time_zone(Categories::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(pk_uuid(Products::Id))
                    .col(string_len(Products::Sku, 64))
                    .col(string_len(Products::Name, 200))
                    .col(string_len(Products::ShortDescription, 400))
                    .col(text(Products::Description))
                    .col(string_len(Products::Category, 64))
                    .col(string_len_null(Products::Brand, 100))
                    .col(big_integer(Products::PriceAmount))
                    .col(string_len(Products::Currency, 3))
                    .col(big_integer(Products::Stock).check(Expr::col(Products::Stock).gte(0)))
                    .col(double(Products::Rating))
                    .col(big_integer_null(Products::WeightGrams))
                    .col(json_binary(Products::Attributes))
                    .col(timestamp_with_time_zone(Products::CreatedAt))
                    .col(timestamp_with_time_zone(Products::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Products::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("products_category")
                            .from(Products::Table, Products::Category)
                            .to(Categories::Table, Categories::Slug),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Live rows only: SKUs are unique among them, and every list reads only them. Keyset
        // pagination walks these (sort key, id) indexes.
        for sql in [
            "CREATE UNIQUE INDEX products_sku_live ON products (sku) WHERE deleted_at IS NULL",
            "CREATE INDEX products_newest ON products (created_at, id) WHERE deleted_at IS NULL",
            "CREATE INDEX products_price ON products (price_amount, id) WHERE deleted_at IS NULL",
            "CREATE INDEX products_rating ON products (rating, id) WHERE deleted_at IS NULL",
            "CREATE INDEX products_name ON products (name, id) WHERE deleted_at IS NULL",
            "CREATE INDEX products_category_newest ON products (category, created_at, id) WHERE deleted_at IS NULL",
            "CREATE INDEX products_stock ON products (stock, id) WHERE deleted_at IS NULL",
        ] {
            db.execute_unprepared(sql).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ProductImages::Table)
                    .col(pk_uuid(ProductImages::Id))
                    .col(uuid(ProductImages::ProductId))
                    .col(string_len(ProductImages::Key, 512))
                    .col(integer(ProductImages::Position))
                    .col(timestamp_with_time_zone(ProductImages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("product_images_product")
                            .from(ProductImages::Table, ProductImages::ProductId)
                            .to(Products::Table, Products::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("product_images_product_position")
                    .table(ProductImages::Table)
                    .col(ProductImages::ProductId)
                    .col(ProductImages::Position)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .col(uuid(Reservations::OrderId).primary_key())
                    .col(string_len(Reservations::Status, 16))
                    .col(timestamp_with_time_zone(Reservations::CreatedAt))
                    .col(timestamp_with_time_zone_null(Reservations::ReleasedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReservationLines::Table)
                    .col(uuid(ReservationLines::OrderId))
                    .col(uuid(ReservationLines::ProductId))
                    .col(big_integer(ReservationLines::Quantity))
                    .primary_key(
                        Index::create().col(ReservationLines::OrderId).col(ReservationLines::ProductId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("reservation_lines_reservation")
                            .from(ReservationLines::Table, ReservationLines::OrderId)
                            .to(Reservations::Table, Reservations::OrderId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["reservation_lines", "reservations", "product_images", "products", "categories"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}

struct CreateSearch;

impl MigrationName for CreateSearch {
    fn name(&self) -> &str {
        "m20261125_000002_create_search"
    }
}

/// PostgreSQL: `search_vector` weighs name (A) > SKU and brand (B) > category (C) > short and
/// long description (D); `short_vector` lifts short-description matches above long-description
/// ones when ranking (see `store::search`).
const POSTGRES_SEARCH: &[&str] = &[
    "ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', sku || ' ' || coalesce(brand, '')), 'B') ||
        setweight(to_tsvector('english', replace(category, '-', ' ')), 'C') ||
        setweight(to_tsvector('english', short_description || ' ' || description), 'D')
    ) STORED",
    "ALTER TABLE products ADD COLUMN short_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('english', short_description)
    ) STORED",
    "CREATE INDEX products_search ON products USING GIN (search_vector)",
];

/// SQLite: an external-content FTS5 table over the live columns, Porter-stemmed, kept in sync
/// by triggers (updates only when a searched column changes, not on every stock change).
const SQLITE_SEARCH: &[&str] = &[
    "CREATE VIRTUAL TABLE products_fts USING fts5(
        name, sku, brand, category, short_description, description,
        content = 'products', content_rowid = 'rowid', tokenize = 'porter unicode61'
    )",
    SQLITE_TRIGGERS[0],
    SQLITE_TRIGGERS[1],
    SQLITE_TRIGGERS[2],
];

const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
        INSERT INTO products_fts (rowid, name, sku, brand, category, short_description, description)
        VALUES (new.rowid, new.name, new.sku, coalesce(new.brand, ''), replace(new.category, '-', ' '),
                new.short_description, new.description);
    END",
    "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
        INSERT INTO products_fts (products_fts, rowid, name, sku, brand, category, short_description, description)
        VALUES ('delete', old.rowid, old.name, old.sku, coalesce(old.brand, ''), replace(old.category, '-', ' '),
                old.short_description, old.description);
    END",
    "CREATE TRIGGER products_fts_update AFTER UPDATE OF name, sku, brand, category, short_description, description
        ON products BEGIN
        INSERT INTO products_fts (products_fts, rowid, name, sku, brand, category, short_description, description)
        VALUES ('delete', old.rowid, old.name, old.sku, coalesce(old.brand, ''), replace(old.category, '-', ' '),
                old.short_description, old.description);
        INSERT INTO products_fts (rowid, name, sku, brand, category, short_description, description)
        VALUES (new.rowid, new.name, new.sku, coalesce(new.brand, ''), replace(new.category, '-', ' '),
                new.short_description, new.description);
    END",
];

#[async_trait::async_trait]
impl MigrationTrait for CreateSearch {
    /// The FTS table and its triggers appear together, on one connection.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_SEARCH,
            DatabaseBackend::Sqlite => SQLITE_SEARCH,
            other => {
                return Err(DbErr::Migration(format!("full-text search is not implemented for {other:?}")));
            }
        };
        for sql in statements {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &[
                "DROP INDEX products_search",
                "ALTER TABLE products DROP COLUMN short_vector",
                "ALTER TABLE products DROP COLUMN search_vector",
            ],
            _ => &[
                "DROP TRIGGER products_fts_update",
                "DROP TRIGGER products_fts_delete",
                "DROP TRIGGER products_fts_insert",
                "DROP TABLE products_fts",
            ],
        };
        for sql in statements {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

struct TuneReads;

impl MigrationName for TuneReads {
    fn name(&self) -> &str {
        "m20261125_000003_tune_reads"
    }
}

/// Measured with 100,000 products: a category page sorted by price sorted the whole category
/// without an index, and SQLite prefix searches (the last word as typed) scanned every term
/// without FTS5 prefix indexes.
#[async_trait::async_trait]
impl MigrationTrait for TuneReads {
    /// One connection, one transaction, on SQLite too: the FTS table is dropped and rebuilt, and
    /// a pooled connection other than the one that dropped it must never see half of that.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX products_category_price ON products (category, price_amount, id) WHERE deleted_at IS NULL",
        )
        .await?;
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            for sql in [
                "DROP TRIGGER products_fts_update",
                "DROP TRIGGER products_fts_delete",
                "DROP TRIGGER products_fts_insert",
                "DROP TABLE products_fts",
                "CREATE VIRTUAL TABLE products_fts USING fts5(
                    name, sku, brand, category, short_description, description,
                    content = 'products', content_rowid = 'rowid', tokenize = 'porter unicode61',
                    prefix = '2 3 4'
                )",
            ]
            .into_iter()
            .chain(SQLITE_TRIGGERS)
            {
                db.execute_unprepared(sql).await?;
            }
            db.execute_unprepared("INSERT INTO products_fts (products_fts) VALUES ('rebuild')").await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX products_category_price").await?;
        Ok(())
    }
}

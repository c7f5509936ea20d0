//! SeaORM entities of the orders database; the same definitions serve SQLite and PostgreSQL.

pub mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub status: String,
        pub currency: String,
        /// Minor units.
        pub subtotal: i64,
        pub tax: i64,
        pub total: i64,
        /// The shipping address as it was at purchase.
        pub shipping_address: Json,
        /// Unique per user when present.
        pub idempotency_key: Option<String>,
        /// SHA-256 of the validated request, to tell a replay from a reused key.
        pub request_fingerprint: String,
        /// Why the order is in its status (e.g. why it was cancelled).
        pub status_reason: Option<String>,
        /// For cancelled orders: the reservation has been released (or there was none).
        pub stock_released: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// How often the recovery worker has failed to settle this order.
        pub recovery_attempts: i32,
        /// The recovery worker leaves the order alone until then.
        pub next_recovery_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_item {
    use sea_orm::entity::prelude::*;

    /// A line, with the product's SKU, name and price as they were at purchase.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        pub product_id: Uuid,
        pub sku: String,
        pub name: String,
        pub unit_price: i64,
        pub quantity: i64,
        pub line_total: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

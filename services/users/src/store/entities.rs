//! SeaORM entities of the users database; the same definitions serve SQLite and PostgreSQL.

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        /// As the user typed it.
        pub email: String,
        /// Lowercased; unique among live users.
        pub email_normalized: String,
        pub phone: Option<String>,
        pub password_hash: String,
        /// `customer` or `admin`.
        pub role: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::address::Entity")]
        Address,
    }

    impl Related<super::address::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Address.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod address {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "addresses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub line1: String,
        pub line2: Option<String>,
        pub city: String,
        pub state: Option<String>,
        pub postal_code: String,
        pub country: String,
        pub is_default: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::user::Entity",
            from = "Column::UserId",
            to = "super::user::Column::Id",
            on_delete = "Cascade"
        )]
        User,
    }

    impl Related<super::user::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::User.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    /// A refresh token, stored as its SHA-256. Tokens of one sign-in share a `family_id`;
    /// presenting a token that was already used revokes its whole family.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub family_id: Uuid,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        /// Set when the token was exchanged for a new pair.
        pub used_at: Option<DateTimeUtc>,
        /// Set on logout, on reuse of the family, or when the user is deleted.
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

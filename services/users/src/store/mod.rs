//! The users database: accounts, addresses and refresh tokens, through SeaORM on SQLite or
//! PostgreSQL (one code path; the URL picks the backend). What it hands out are the domain's
//! `User` and `Address`, never the SeaORM models. Apart from it, `login_attempts`: where the
//! login guard keeps its counts (this process, or Redis for every replica).

pub(crate) mod entities;
pub mod login_attempts;
pub mod migration;

use chrono::{DateTime, Utc};
use contracts::events::{CloudEvent, EventData, UserDeleted, UserRegistered, UserRoleChanged};
use kit::events::Outbox;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use entities::{address, refresh_token, user};

use crate::domain::address::PostalAddress;
use crate::domain::user::stored_role;
use crate::domain::{Address, AddressChanges, NewAddress, User, UserSearch};

/// What can go wrong storing users.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a live account already uses this email")]
    EmailTaken,
    /// Demoting or deleting this account would leave the shop without a live admin.
    #[error("the shop's last administrator cannot be demoted or deleted")]
    LastAdmin,
    /// The database failed or could not be reached.
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn map_unique(err: DbErr) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::EmailTaken,
        _ => StoreError::Db(err),
    }
}

/// A new account, already validated and with its password hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub email_normalized: String,
    pub phone: Option<String>,
    pub password_hash: String,
    pub role: kit::auth::Role,
}

/// Changes to an account; `None` leaves a field alone, `Some(None)` clears the phone.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<(String, String)>,
    pub phone: Option<Option<String>>,
    pub role: Option<kit::auth::Role>,
    pub password_hash: Option<String>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; it is now used and a successor was stored.
    Rotated { user_id: Uuid },
    /// The token had been used or revoked before: its whole family is now revoked.
    Reused,
    /// Expired, unknown, or its user is gone.
    Refused,
}

/// A live account and the hash its password is checked against.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    /// PHC string (`$argon2id$…`).
    pub password_hash: String,
}

/// The users service's storage. Every change other services hear of records its event in the
/// outbox in the same transaction: `user.registered`, `user.role_changed`, `user.deleted`.
#[derive(Clone)]
pub struct UserStore {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl UserStore {
    /// A store over a connected database (see `kit::db::connect`).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, outbox: Outbox::new("users") }
    }

    /// The connection pool, for the outbox relay.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A page of the revocation events (`user.deleted`, `user.role_changed`) the outbox holds
    /// from `since` on, after the row `after`; with the `after` of the next page.
    pub async fn revocation_events(
        &self,
        since: DateTime<Utc>,
        after: i64,
        limit: u64,
    ) -> Result<(Vec<CloudEvent>, Option<i64>), DbErr> {
        let types = [UserDeleted::TYPE, UserRoleChanged::TYPE];
        kit::events::recorded_since(&self.db, &types, since, after, limit).await
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migration::Migrator::up(&self.db, None).await
    }

    /// Adds an account and its `user.registered` event; [`StoreError::EmailTaken`] when a live
    /// one has its email.
    pub async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let created = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(new.name),
            email: Set(new.email),
            email_normalized: Set(new.email_normalized),
            phone: Set(new.phone),
            password_hash: Set(new.password_hash),
            role: Set(new.role.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        }
        .insert(&txn)
        .await
        .map(user_of)
        .map_err(map_unique)?;
        let registered = UserRegistered {
            user_id: created.id,
            name: created.name.clone(),
            email: created.email.clone(),
            role: created.role.as_str().to_owned(),
            registered_at: created.created_at,
        };
        self.outbox.record(&txn, registered).await?;
        txn.commit().await?;
        Ok(created)
    }

    /// A live (not deleted) user by id.
    pub async fn find_live(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let found =
            user::Entity::find_by_id(id).filter(user::Column::DeletedAt.is_null()).one(&self.db).await?;
        Ok(found.map(user_of))
    }

    /// A live user by normalized (lowercased) email.
    pub async fn find_live_by_email(&self, email_normalized: &str) -> Result<Option<User>, StoreError> {
        Ok(self.find_credentials(email_normalized).await?.map(|found| found.user))
    }

    /// A live user by normalized (lowercased) email, with the hash to check a password against.
    pub async fn find_credentials(&self, email_normalized: &str) -> Result<Option<Credentials>, StoreError> {
        let found = user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(email_normalized))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(found
            .map(|model| Credentials { password_hash: model.password_hash.clone(), user: user_of(model) }))
    }

    /// Applies `patch` to a live user; `None` if there is none. Demoting the last live admin is
    /// refused ([`StoreError::LastAdmin`]). A new role records `user.role_changed`.
    pub async fn update_user(&self, id: Uuid, patch: UserPatch) -> Result<Option<User>, StoreError> {
        let txn = self.db.begin().await?;
        if patch.role.is_some_and(|role| role != kit::auth::Role::Admin) {
            lock_admins(&txn).await?;
        }
        lock_user(&txn, id).await?;
        let Some(current) =
            user::Entity::find_by_id(id).filter(user::Column::DeletedAt.is_null()).one(&txn).await?
        else {
            return Ok(None);
        };
        if patch.role.is_some_and(|role| role != kit::auth::Role::Admin) {
            refuse_removing_last_admin(&txn, &current).await?;
        }
        let previous_role = current.role.clone();
        let mut model: user::ActiveModel = current.into();
        if let Some(name) = patch.name {
            model.name = Set(name);
        }
        if let Some((email, normalized)) = patch.email {
            model.email = Set(email);
            model.email_normalized = Set(normalized);
        }
        if let Some(phone) = patch.phone {
            model.phone = Set(phone);
        }
        if let Some(role) = patch.role {
            model.role = Set(role.as_str().to_owned());
        }
        if let Some(hash) = patch.password_hash {
            model.password_hash = Set(hash);
        }
        let now = Utc::now();
        model.updated_at = Set(now);
        let updated = model.update(&txn).await.map_err(map_unique)?;
        if updated.role != previous_role {
            let changed = UserRoleChanged {
                user_id: updated.id,
                previous_role,
                role: updated.role.clone(),
                changed_at: now,
            };
            self.outbox.record(&txn, changed).await?;
        }
        txn.commit().await?;
        Ok(Some(user_of(updated)))
    }

    /// Soft-deletes a live user, revokes all their refresh tokens and records `user.deleted`,
    /// atomically.
    /// `false` if there was no live user; deleting the last live admin is refused
    /// ([`StoreError::LastAdmin`]).
    pub async fn soft_delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        lock_admins(&txn).await?;
        let Some(current) =
            user::Entity::find_by_id(id).filter(user::Column::DeletedAt.is_null()).one(&txn).await?
        else {
            return Ok(false);
        };
        refuse_removing_last_admin(&txn, &current).await?;
        user::Entity::update_many()
            .col_expr(user::Column::DeletedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        revoke_tokens(&txn, Condition::all().add(refresh_token::Column::UserId.eq(id)), now).await?;
        self.outbox.record(&txn, UserDeleted { user_id: id, deleted_at: now }).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Live users, newest first, optionally filtered by a case-insensitive substring of name or
    /// email; and the total that matches.
    pub async fn list_users(
        &self,
        query: Option<&UserSearch>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), StoreError> {
        let mut select = user::Entity::find().filter(user::Column::DeletedAt.is_null());
        if let Some(q) = query {
            let pattern = format!("%{}%", escape_like(&q.as_str().to_lowercase()));
            select = select.filter(
                Condition::any()
                    .add(
                        Func::lower(Expr::col(user::Column::Name))
                            .like(LikeExpr::new(pattern.as_str()).escape('\\')),
                    )
                    .add(user::Column::EmailNormalized.like(LikeExpr::new(pattern.as_str()).escape('\\'))),
            );
        }
        let total = select.clone().count(&self.db).await?;
        let items = select
            .order_by_desc(user::Column::CreatedAt)
            .order_by_desc(user::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok((items.into_iter().map(user_of).collect(), total))
    }

    /// The user's addresses, the default first, then oldest first.
    pub async fn addresses(&self, user_id: Uuid) -> Result<Vec<Address>, StoreError> {
        let found = address::Entity::find()
            .filter(address::Column::UserId.eq(user_id))
            .order_by_desc(address::Column::IsDefault)
            .order_by_asc(address::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(found.into_iter().map(address_of).collect())
    }

    /// One of the user's addresses; `None` if absent or someone else's.
    pub async fn address(&self, user_id: Uuid, id: Uuid) -> Result<Option<Address>, StoreError> {
        let found =
            address::Entity::find_by_id(id).filter(address::Column::UserId.eq(user_id)).one(&self.db).await?;
        Ok(found.map(address_of))
    }

    /// Adds an address. The first address becomes the default; a new default demotes the old one.
    pub async fn create_address(&self, user_id: Uuid, new: NewAddress) -> Result<Address, StoreError> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let txn = self.db.begin().await?;
        lock_user(&txn, user_id).await?;
        let has_default = address::Entity::find()
            .filter(address::Column::UserId.eq(user_id))
            .filter(address::Column::IsDefault.eq(true))
            .count(&txn)
            .await?
            > 0;
        let is_default = new.is_default || !has_default;
        let address = new.address;
        if is_default && has_default {
            clear_default(&txn, user_id, id).await?;
        }
        let model = address::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            line1: Set(address.line1),
            line2: Set(address.line2),
            city: Set(address.city),
            state: Set(address.state),
            postal_code: Set(address.postal_code),
            country: Set(address.country),
            is_default: Set(is_default),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(address_of(model))
    }

    /// Applies `patch` to one of the user's addresses; `None` if absent or someone else's.
    pub async fn update_address(
        &self,
        user_id: Uuid,
        id: Uuid,
        patch: AddressChanges,
    ) -> Result<Option<Address>, StoreError> {
        let txn = self.db.begin().await?;
        lock_user(&txn, user_id).await?;
        let Some(current) =
            address::Entity::find_by_id(id).filter(address::Column::UserId.eq(user_id)).one(&txn).await?
        else {
            return Ok(None);
        };
        let mut model: address::ActiveModel = current.into();
        if let Some(v) = patch.line1 {
            model.line1 = Set(v);
        }
        if let Some(v) = patch.line2 {
            model.line2 = Set(v);
        }
        if let Some(v) = patch.city {
            model.city = Set(v);
        }
        if let Some(v) = patch.state {
            model.state = Set(v);
        }
        if let Some(v) = patch.postal_code {
            model.postal_code = Set(v);
        }
        if let Some(v) = patch.country {
            model.country = Set(v.into_inner());
        }
        if patch.is_default == Some(true) {
            clear_default(&txn, user_id, id).await?;
            model.is_default = Set(true);
        }
        model.updated_at = Set(Utc::now());
        let updated = model.update(&txn).await?;
        txn.commit().await?;
        Ok(Some(address_of(updated)))
    }

    /// Deletes one of the user's addresses; if it was the default, the oldest remaining one
    /// becomes the default. `false` if absent or someone else's.
    pub async fn delete_address(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        lock_user(&txn, user_id).await?;
        let Some(current) =
            address::Entity::find_by_id(id).filter(address::Column::UserId.eq(user_id)).one(&txn).await?
        else {
            return Ok(false);
        };
        address::Entity::delete_by_id(id).exec(&txn).await?;
        if current.is_default {
            let next = address::Entity::find()
                .filter(address::Column::UserId.eq(user_id))
                .order_by_asc(address::Column::CreatedAt)
                .one(&txn)
                .await?;
            if let Some(next) = next {
                let mut next: address::ActiveModel = next.into();
                next.is_default = Set(true);
                next.update(&txn).await?;
            }
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Stores a new refresh token (its hash).
    pub async fn insert_refresh_token(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        token_hash: String,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(insert_token(&self.db, user_id, family_id, token_hash, expires_at).await?)
    }

    /// Exchanges the token with hash `presented` for a successor with hash `successor`,
    /// atomically: of two concurrent uses, one rotates and the other is treated as reuse.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor: String,
        successor_expires_at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        // Write first: claiming the token takes the write lock at once (no read→write upgrade).
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(presented))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        let Some(token) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(presented))
            .one(&txn)
            .await?
        else {
            return Ok(Rotation::Refused);
        };
        if !claimed {
            revoke_tokens(
                &txn,
                Condition::all().add(refresh_token::Column::FamilyId.eq(token.family_id)),
                now,
            )
            .await?;
            txn.commit().await?;
            return Ok(Rotation::Reused);
        }
        let user_live = user::Entity::find_by_id(token.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .count(&txn)
            .await?
            == 1;
        if token.expires_at <= now || !user_live {
            txn.commit().await?;
            return Ok(Rotation::Refused);
        }
        insert_token(&txn, token.user_id, token.family_id, successor, successor_expires_at).await?;
        txn.commit().await?;
        Ok(Rotation::Rotated { user_id: token.user_id })
    }

    /// Revokes the family of the token with this hash (logout). Unknown tokens are ignored.
    pub async fn revoke_refresh_family(&self, token_hash: &str) -> Result<(), StoreError> {
        let Some(token) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        revoke_tokens(
            &self.db,
            Condition::all().add(refresh_token::Column::FamilyId.eq(token.family_id)),
            Utc::now(),
        )
        .await?;
        Ok(())
    }
}

/// The domain's view of a stored account (the password hash stays behind).
fn user_of(model: user::Model) -> User {
    User {
        id: model.id,
        role: stored_role(&model.role),
        name: model.name,
        email: model.email,
        phone: model.phone,
        created_at: model.created_at,
    }
}

fn address_of(model: address::Model) -> Address {
    Address {
        id: model.id,
        postal: PostalAddress {
            line1: model.line1,
            line2: model.line2,
            city: model.city,
            state: model.state,
            postal_code: model.postal_code,
            country: model.country,
        },
        is_default: model.is_default,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

/// Serializes every change that could remove an admin, on both backends: a no-op write to the
/// live admins' rows. On PostgreSQL it row-locks them, so of two transactions demoting two
/// admins the second waits for the first and then sees its result (READ COMMITTED re-reads a
/// row changed under it); on SQLite any write takes the database's write lock at once. A
/// check-then-update without it lets two admins demote each other and both succeed.
async fn lock_admins(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::col(user::Column::Role))
        .filter(user::Column::Role.eq(kit::auth::Role::Admin.as_str()))
        .filter(user::Column::DeletedAt.is_null())
        .exec(txn)
        .await
        .map(|_| ())
}

/// Serializes the changes to one account and its address book, on both backends, by writing
/// first: a no-op write to the user's row. On SQLite a transaction that reads before it writes
/// cannot write at all once another has committed in between ("database is locked", whatever
/// the busy timeout); on PostgreSQL two address-book changes moving the default would otherwise
/// lock the same rows in opposite orders (a deadlock).
async fn lock_user(txn: &DatabaseTransaction, user_id: Uuid) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await
        .map(|_| ())
}

/// `Err(LastAdmin)` when `user` is the only live admin. Call after [`lock_admins`].
async fn refuse_removing_last_admin(txn: &DatabaseTransaction, user: &user::Model) -> Result<(), StoreError> {
    if user.role != kit::auth::Role::Admin.as_str() {
        return Ok(());
    }
    let other_admins = user::Entity::find()
        .filter(user::Column::Role.eq(kit::auth::Role::Admin.as_str()))
        .filter(user::Column::DeletedAt.is_null())
        .filter(user::Column::Id.ne(user.id))
        .count(txn)
        .await?;
    if other_admins == 0 {
        return Err(StoreError::LastAdmin);
    }
    Ok(())
}

async fn insert_token(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        family_id: Set(family_id),
        token_hash: Set(token_hash),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map(|_| ())
}

async fn revoke_tokens(db: &impl ConnectionTrait, which: Condition, now: DateTime<Utc>) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(which)
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

async fn clear_default(db: &impl ConnectionTrait, user_id: Uuid, except: Uuid) -> Result<(), DbErr> {
    address::Entity::update_many()
        .col_expr(address::Column::IsDefault, Expr::value(false))
        .filter(address::Column::UserId.eq(user_id))
        .filter(address::Column::Id.ne(except))
        .exec(db)
        .await
        .map(|_| ())
}

/// Escapes LIKE wildcards so a search for `50%` finds "50%" literally.
fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

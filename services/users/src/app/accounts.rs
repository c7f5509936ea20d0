//! A person's own account: registering (which signs it in), reading and changing the profile,
//! deleting it; and the `mercato admin create` chore.

use kit::auth::Role;
use uuid::Uuid;

use super::sessions::{Session, SessionError, Sessions};
use super::{PasswordWork, Profile};
use crate::domain::{Email, NewAccount, Password, ProfileChanges, User, UserName};
use crate::store::{NewUser, StoreError, UserPatch, UserStore};

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegisterError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The password could not be hashed.
    #[error("hashing the password: {0}")]
    Hashing(anyhow::Error),
}

impl From<StoreError> for RegisterError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Self::EmailTaken,
            other => Self::Store(other),
        }
    }
}

/// Why a profile change failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Deleted while the request was in flight.
    #[error("this account no longer exists")]
    AccountGone,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ProfileError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Self::EmailTaken,
            other => Self::Store(other),
        }
    }
}

/// Why an account could not be deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeleteAccountError {
    /// The shop must keep one live admin.
    #[error("the shop's last administrator cannot be deleted")]
    LastAdmin,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DeleteAccountError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::LastAdmin => Self::LastAdmin,
            other => Self::Store(other),
        }
    }
}

/// What [`crate::create_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    /// The account existed; it is now an admin and its password was replaced.
    Promoted,
}

/// Registration and a person's own account.
#[derive(Clone)]
pub(crate) struct Accounts {
    store: UserStore,
    passwords: PasswordWork,
    sessions: Sessions,
}

impl Accounts {
    pub fn new(store: UserStore, passwords: PasswordWork, sessions: Sessions) -> Self {
        Self { store, passwords, sessions }
    }

    /// Creates a customer account and signs it in.
    pub async fn register(&self, account: NewAccount) -> Result<Session, RegisterError> {
        let NewAccount { name, email, password, phone } = account;
        if self.store.find_live_by_email(&email.normalized()).await?.is_some() {
            return Err(RegisterError::EmailTaken);
        }
        let password_hash = self
            .passwords
            .run(move |hasher| hasher.hash(&password))
            .await
            .and_then(|hashed| hashed)
            .map_err(RegisterError::Hashing)?;
        let user = self
            .store
            .create_user(NewUser {
                name: name.into_inner(),
                email: email.as_str().to_owned(),
                email_normalized: email.normalized(),
                phone: phone.map(|p| p.into_inner()),
                password_hash,
                role: Role::Customer,
            })
            .await?;
        tracing::info!(user_id = %user.id, "registered");
        Ok(self.sessions.start(user).await?)
    }

    /// The live account with this id: a deleted user's tokens stop working at once.
    pub async fn live(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.store.find_live(id).await
    }

    /// The account with its addresses.
    pub async fn profile(&self, user: User) -> Result<Profile, StoreError> {
        let addresses = self.store.addresses(user.id).await?;
        Ok(Profile { user, addresses })
    }

    /// Changes the caller's name, email or phone.
    pub async fn update_profile(
        &self,
        user: &User,
        changes: ProfileChanges,
    ) -> Result<Profile, ProfileError> {
        if let Some(email) = &changes.email
            && !user.owns_email(email)
            && self.store.find_live_by_email(&email.normalized()).await?.is_some()
        {
            return Err(ProfileError::EmailTaken);
        }
        let patch = UserPatch {
            name: changes.name.map(UserName::into_inner),
            email: changes.email.map(|e| (e.as_str().to_owned(), e.normalized())),
            phone: changes.phone.map(|p| p.map(|p| p.into_inner())),
            ..UserPatch::default()
        };
        let updated = self.store.update_user(user.id, patch).await?.ok_or(ProfileError::AccountGone)?;
        Ok(self.profile(updated).await?)
    }

    /// Soft-deletes the caller's account (orders keep their history); its tokens stop working
    /// and the email can register again.
    pub async fn delete(&self, user: &User) -> Result<(), DeleteAccountError> {
        self.store.soft_delete(user.id).await?;
        tracing::info!(user_id = %user.id, "account deleted by its owner");
        Ok(())
    }
}

/// Creates an admin account, or promotes the live account with this email and replaces its
/// password. There is no default admin anywhere.
pub(crate) async fn create_admin(
    store: &UserStore,
    passwords: PasswordWork,
    name: UserName,
    email: Email,
    password: Password,
) -> anyhow::Result<AdminOutcome> {
    let password_hash = passwords.run(move |hasher| hasher.hash(&password)).await??;
    if let Some(existing) = store.find_live_by_email(&email.normalized()).await? {
        let patch =
            UserPatch { role: Some(Role::Admin), password_hash: Some(password_hash), ..UserPatch::default() };
        store.update_user(existing.id, patch).await?;
        return Ok(AdminOutcome::Promoted);
    }
    store
        .create_user(NewUser {
            name: name.into_inner(),
            email: email.as_str().to_owned(),
            email_normalized: email.normalized(),
            phone: None,
            password_hash,
            role: Role::Admin,
        })
        .await?;
    Ok(AdminOutcome::Created)
}

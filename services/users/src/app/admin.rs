//! An admin's management of accounts: list and search, read, change role or name, delete. The
//! shop always keeps one live admin.

use kit::pagination::PageRequest;
use uuid::Uuid;

use super::Profile;
use crate::domain::{AdminChanges, User, UserName, UserSearch};
use crate::store::{StoreError, UserPatch, UserStore};

/// Why an admin's change was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// Absent or deleted.
    #[error("no such user")]
    NotFound,
    /// Demoting or deleting this account would leave the shop without a live admin.
    #[error("the shop's last administrator cannot be demoted or deleted")]
    LastAdmin,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::LastAdmin => Self::LastAdmin,
            other => Self::Store(other),
        }
    }
}

/// Account management for admins (the caller's role is checked before these are called).
#[derive(Clone)]
pub(crate) struct Admin {
    store: UserStore,
}

impl Admin {
    pub fn new(store: UserStore) -> Self {
        Self { store }
    }

    /// Live users, newest first, optionally those whose name or email contains `search`; and
    /// how many match.
    pub async fn list(
        &self,
        search: Option<&UserSearch>,
        page: PageRequest,
    ) -> Result<(Vec<User>, u64), StoreError> {
        self.store.list_users(search, page.offset(), page.limit()).await
    }

    /// One live user with addresses.
    pub async fn get(&self, id: Uuid) -> Result<Profile, AdminError> {
        let user = self.store.find_live(id).await?.ok_or(AdminError::NotFound)?;
        let addresses = self.store.addresses(id).await?;
        Ok(Profile { user, addresses })
    }

    /// Changes a user's role or name; demoting the last admin is refused.
    pub async fn change(&self, by: &User, id: Uuid, changes: AdminChanges) -> Result<Profile, AdminError> {
        let patch = UserPatch {
            role: changes.role.map(|role| role.role()),
            name: changes.name.map(UserName::into_inner),
            ..UserPatch::default()
        };
        let user = self.store.update_user(id, patch).await?.ok_or(AdminError::NotFound)?;
        tracing::info!(admin_id = %by.id, user_id = %id, role = user.role.as_str(), "user changed by admin");
        let addresses = self.store.addresses(id).await?;
        Ok(Profile { user, addresses })
    }

    /// Soft-deletes a user; their tokens stop working. Deleting the last admin is refused.
    pub async fn delete(&self, by: &User, id: Uuid) -> Result<(), AdminError> {
        if !self.store.soft_delete(id).await? {
            return Err(AdminError::NotFound);
        }
        tracing::info!(admin_id = %by.id, user_id = %id, "user deleted by admin");
        Ok(())
    }
}

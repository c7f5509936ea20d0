//! A person's address book: list, read, add, change, remove. Another user's address is as absent
//! as one that never existed.

use uuid::Uuid;

use crate::domain::{Address, AddressChanges, NewAddress};
use crate::store::{StoreError, UserStore};

/// Why an address could not be read, changed or removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AddressError {
    /// Absent, or someone else's.
    #[error("no such address among yours")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The address book of each user.
#[derive(Clone)]
pub(crate) struct Addresses {
    store: UserStore,
}

impl Addresses {
    pub fn new(store: UserStore) -> Self {
        Self { store }
    }

    /// The user's addresses, the default first.
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<Address>, StoreError> {
        self.store.addresses(user_id).await
    }

    /// One of the user's addresses.
    pub async fn get(&self, user_id: Uuid, id: Uuid) -> Result<Address, AddressError> {
        self.store.address(user_id, id).await?.ok_or(AddressError::NotFound)
    }

    /// Adds an address; the first one becomes the default, and a new default demotes the old.
    pub async fn add(&self, user_id: Uuid, address: NewAddress) -> Result<Address, StoreError> {
        self.store.create_address(user_id, address).await
    }

    /// Changes one of the user's addresses.
    pub async fn change(
        &self,
        user_id: Uuid,
        id: Uuid,
        changes: AddressChanges,
    ) -> Result<Address, AddressError> {
        self.store.update_address(user_id, id, changes).await?.ok_or(AddressError::NotFound)
    }

    /// Removes one of the user's addresses; if it was the default, the oldest remaining one
    /// becomes the default.
    pub async fn remove(&self, user_id: Uuid, id: Uuid) -> Result<(), AddressError> {
        if self.store.delete_address(user_id, id).await? { Ok(()) } else { Err(AddressError::NotFound) }
    }
}

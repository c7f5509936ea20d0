//! The users service's use cases, one file per group: accounts (register, profile, delete),
//! sessions (login with the login guard, refresh with rotation, logout), addresses, admin and
//! service tokens. Each struct owns what its use cases need (the store, the token issuer, the
//! login guard); each method returns its own error enum, never an HTTP status.

pub(crate) mod accounts;
pub(crate) mod addresses;
pub(crate) mod admin;
pub(crate) mod revocations;
pub(crate) mod service_tokens;
pub(crate) mod sessions;

use std::sync::Arc;

use crate::domain::{Address, PasswordHasher, User};

/// An account with its address book, as single-user answers show it.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub user: User,
    pub addresses: Vec<Address>,
}

/// Password hashing and verification, off the async threads and at most a few at a time: each
/// hash holds `passwords.memory_kib` of memory, so a burst of logins must queue rather than
/// exhaust the pod's memory.
#[derive(Clone)]
pub(crate) struct PasswordWork {
    hasher: PasswordHasher,
    slots: Arc<tokio::sync::Semaphore>,
}

impl PasswordWork {
    pub fn new(hasher: PasswordHasher) -> Self {
        let slots = 2 * std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self { hasher, slots: Arc::new(tokio::sync::Semaphore::new(slots)) }
    }

    /// Runs `work` with the hasher on a blocking thread once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(PasswordHasher) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _slot = self.slots.acquire().await?;
        let hasher = self.hasher;
        Ok(tokio::task::spawn_blocking(move || work(hasher)).await?)
    }
}

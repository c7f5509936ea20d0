//! The revocation feed: the `user.deleted` and `user.role_changed` events of the last hour, for
//! a replica of another service that starts (or restarts) after some were published, so that
//! it refuses the tokens revoked before it started, not only those revoked after. Read from the
//! outbox, which keeps sent events for `events.sent_retention_secs` — at least as long as an
//! access token lives (the configuration refuses less).

use chrono::{DateTime, Utc};
use contracts::users::RevocationEvents;
use kit::ApiError;

use crate::store::UserStore;

/// Events per page: a few hundred bytes each.
const PAGE: u64 = 500;

#[derive(Clone)]
pub(crate) struct RevocationFeed {
    store: UserStore,
}

impl RevocationFeed {
    pub fn new(store: UserStore) -> Self {
        Self { store }
    }

    /// The events recorded at or after `since`, oldest first, after the row `after` (0 for the
    /// first page).
    pub async fn page(&self, since: DateTime<Utc>, after: i64) -> Result<RevocationEvents, ApiError> {
        let (items, last) = self.store.revocation_events(since, after.max(0), PAGE).await?;
        let next_after = if items.len() as u64 == PAGE { last } else { None };
        Ok(RevocationEvents { items, next_after })
    }
}

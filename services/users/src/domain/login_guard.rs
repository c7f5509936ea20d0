//! Slows down password guessing against one account: after a number of failed logins for an
//! email, further attempts for that email answer 429 until the window passes. Keyed by account,
//! never by IP alone, so a shared address (an office, a carrier NAT) does not lock out everyone.

use std::time::Duration;

/// Failed-login counts per normalized email, forgotten `window` after the last failure.
pub struct LoginGuard {
    max_failures: u32,
    window: Duration,
    failures: moka::sync::Cache<String, u32>,
}

impl LoginGuard {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            failures: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(window).build(),
        }
    }

    /// `Err(retry_after)` when this account has failed too often recently.
    pub fn check(&self, email: &str) -> Result<(), Duration> {
        match self.failures.get(email) {
            Some(count) if count >= self.max_failures => Err(self.window),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str) {
        self.failures
            .entry_by_ref(email)
            .and_upsert_with(|current| current.map_or(1, |c| c.into_value() + 1));
    }

    pub fn record_success(&self, email: &str) {
        self.failures.invalidate(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_failures_lock_only_that_account() {
        let guard = LoginGuard::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(guard.check("ada@example.com").is_ok());
            guard.record_failure("ada@example.com");
        }
        assert_eq!(guard.check("ada@example.com"), Err(Duration::from_secs(60)));
        assert!(guard.check("bob@example.com").is_ok());
    }

    #[test]
    fn success_clears_the_count() {
        let guard = LoginGuard::new(2, Duration::from_secs(60));
        guard.record_failure("ada@example.com");
        guard.record_success("ada@example.com");
        guard.record_failure("ada@example.com");
        assert!(guard.check("ada@example.com").is_ok());
    }
}

//! Slows down password guessing without letting anyone lock an account's owner out, as OWASP's
//! Authentication Cheat Sheet ("Login Throttling") advises: failures are counted per account
//! and per (account, client address); an address that keeps failing waits longer and longer
//! (a progressive delay, never a hard lock), and every account has an hourly budget of failed
//! guesses from all addresses together — one budget for addresses it has never signed in
//! from and one for those it has, so guessing from elsewhere cannot shut out its owner.
//!
//! An attempt is counted when it is *reserved*, before the password is hashed, so parallel
//! requests cannot all slip through before the first failure is recorded; a correct password
//! hands its reservation back. Time comes in as an argument (`now`, wall-clock time, so that
//! replicas sharing the counts agree on it), which keeps this module free of clocks and I/O.
//!
//! [`LoginGuard`] keeps the counts in this process. The same rules run on counts kept in Redis
//! for every replica (`store::login_attempts`), which takes its numbers from [`LoginPolicy`]
//! ([`LoginPolicy::delay_schedule`]) and the windows below.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The window of the per-account budgets.
pub const HOUR: Duration = Duration::from_secs(3600);
/// An address this long without a failure starts again with its free failures.
pub const FORGET_ADDRESS_AFTER: Duration = HOUR;
/// An address an account signed in from counts as the owner's this long.
pub const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The throttle's numbers (configured by `login.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed attempts from one address at one account answered without delay.
    pub free_failures: u32,
    /// The wait after those; each further failure doubles it…
    pub first_delay: Duration,
    /// …up to this.
    pub max_delay: Duration,
    /// Failed attempts an account takes per hour from the addresses it has never signed in
    /// from, all together; the addresses it has signed in from have a budget of their own.
    pub account_failures_per_hour: u32,
}

impl LoginPolicy {
    /// How long an address must wait after its `failures`-th failure in a row.
    pub fn delay_after(&self, failures: u32) -> Duration {
        match failures.checked_sub(self.free_failures) {
            None => Duration::ZERO,
            Some(doublings) => self.first_delay.saturating_mul(1 << doublings.min(30)).min(self.max_delay),
        }
    }

    /// The waits after the `free_failures`-th failure, the next one, and so on until the wait
    /// stops growing: the `n`-th entry is [`Self::delay_after`]`(free_failures + n)`, and the
    /// last one holds for every failure after it. (What the shared counts take, so the rule is
    /// written once.)
    pub fn delay_schedule(&self) -> Vec<Duration> {
        let mut schedule = vec![self.delay_after(self.free_failures)];
        for step in 1..=31 {
            let delay = self.delay_after(self.free_failures.saturating_add(step));
            if schedule.last() == Some(&delay) {
                break;
            }
            schedule.push(delay);
        }
        schedule
    }

    /// The policy with an hourly budget of at least 1 (0 is taken as 1).
    pub fn normalized(self) -> Self {
        Self { account_failures_per_hour: self.account_failures_per_hour.max(1), ..self }
    }
}

/// `now - earlier`, or zero when `earlier` is not earlier (a clock stepped back).
pub fn elapsed(now: SystemTime, earlier: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or_default()
}

/// An attempt counted in advance. Hand it back with [`LoginGuard::succeeded`] when the password
/// was right; otherwise it stays counted as a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The normalized email tried.
    pub account: String,
    pub client: IpAddr,
    /// Whether `client` is an address the account signed in from (which budget it counts in).
    pub known_address: bool,
    /// When it was reserved.
    pub at: SystemTime,
}

/// Failed-login state of every account, in memory.
pub struct LoginGuard {
    policy: LoginPolicy,
    accounts: moka::sync::Cache<String, Arc<Mutex<AccountAttempts>>>,
    /// (account, address) pairs that signed in successfully.
    known_addresses: moka::sync::Cache<(String, IpAddr), ()>,
}

#[derive(Debug, Default)]
struct AccountAttempts {
    /// When each failed attempt of the last hour from addresses this account never signed in
    /// from was reserved, oldest first.
    from_unknown: VecDeque<SystemTime>,
    /// The same for the addresses it has signed in from.
    from_known: VecDeque<SystemTime>,
    /// The progressive delay of each address.
    addresses: HashMap<IpAddr, AddressAttempts>,
}

#[derive(Debug, Clone, Copy)]
struct AddressAttempts {
    failures: u32,
    last_failure: SystemTime,
    next_allowed: SystemTime,
}

impl AccountAttempts {
    fn forget_old(&mut self, now: SystemTime) {
        for log in [&mut self.from_unknown, &mut self.from_known] {
            while log.front().is_some_and(|at| elapsed(now, *at) >= HOUR) {
                log.pop_front();
            }
        }
        self.addresses.retain(|_, a| elapsed(now, a.last_failure) < FORGET_ADDRESS_AFTER);
    }

    fn log(&mut self, known_address: bool) -> &mut VecDeque<SystemTime> {
        if known_address { &mut self.from_known } else { &mut self.from_unknown }
    }
}

impl LoginGuard {
    /// An empty guard applying `policy` (an hourly budget of 0 is taken as 1).
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy: policy.normalized(),
            // Every entry expires an hour after its last use (all its state is older by then).
            accounts: moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(HOUR).build(),
            known_addresses: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KNOWN_ADDRESS_TTL)
                .build(),
        }
    }

    /// Counts an attempt to sign in to `account` from `client` before the password is checked.
    /// `Err(wait)` when this address must wait, or the account's hourly budget for addresses
    /// like this one is spent: `wait` is the time left until an attempt would be counted.
    pub fn reserve(&self, account: &str, client: IpAddr, now: SystemTime) -> Result<Reservation, Duration> {
        let known_address = self.known_addresses.contains_key(&(account.to_owned(), client));
        let slot = self.accounts.get_with_by_ref(account, Default::default);
        let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
        state.forget_old(now);
        if let Some(address) = state.addresses.get(&client)
            && address.next_allowed > now
        {
            return Err(elapsed(address.next_allowed, now));
        }
        let log = state.log(known_address);
        if log.len() >= self.policy.account_failures_per_hour as usize {
            let oldest = log.front().copied().unwrap_or(now);
            return Err(elapsed(oldest + HOUR, now));
        }
        log.push_back(now);
        let failures = state.addresses.get(&client).map_or(0, |a| a.failures) + 1;
        let next_allowed = now + self.policy.delay_after(failures);
        state.addresses.insert(client, AddressAttempts { failures, last_failure: now, next_allowed });
        Ok(Reservation { account: account.to_owned(), client, known_address, at: now })
    }

    /// The reserved attempt had the right password: it no longer counts, its address starts
    /// afresh, and the address is the owner's from now on.
    pub fn succeeded(&self, reservation: Reservation) {
        let Reservation { account, client, known_address, at } = reservation;
        if let Some(slot) = self.accounts.get(&account) {
            let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
            let log = state.log(known_address);
            if let Some(position) = log.iter().rposition(|reserved| *reserved == at) {
                log.remove(position);
            }
            state.addresses.remove(&client);
        }
        self.known_addresses.insert((account, client), ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: &str = "ada@example.com";

    fn policy() -> LoginPolicy {
        LoginPolicy {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(900),
            account_failures_per_hour: 50,
        }
    }

    fn address(n: u32) -> IpAddr {
        IpAddr::from(0xC633_6400u32.wrapping_add(n).to_be_bytes())
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_delay_schedule_is_the_delay_after_each_failure_past_the_free_ones() {
        let flat = LoginPolicy { free_failures: 0, first_delay: secs(3.0), max_delay: secs(3.0), ..policy() };
        let off = LoginPolicy { first_delay: Duration::ZERO, ..policy() };
        for policy in [policy(), flat, off] {
            let schedule = policy.delay_schedule();
            assert!(schedule.len() <= 32, "{schedule:?}");
            for n in 0..64u32 {
                let expected = policy.delay_after(policy.free_failures + n);
                assert_eq!(
                    schedule[(n as usize).min(schedule.len() - 1)],
                    expected,
                    "failure {n} past the free ones"
                );
            }
        }
        assert_eq!(policy().delay_schedule().len(), 11, "1 s doubling to 512 s, then 900 s");
    }

    #[test]
    fn attempts_at_once_past_the_free_failures_are_refused() {
        let guard = LoginGuard::new(policy());
        let now = SystemTime::now();
        let admitted = (0..60).filter(|_| guard.reserve(ADA, address(1), now).is_ok()).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn the_wait_doubles_up_to_the_maximum_and_retry_after_is_the_time_left() {
        let guard = LoginGuard::new(policy());
        let start = SystemTime::now();
        for _ in 0..5 {
            guard.reserve(ADA, address(1), start).unwrap();
        }
        assert_eq!(guard.reserve(ADA, address(1), start).unwrap_err(), secs(1.0));
        assert_eq!(guard.reserve(ADA, address(1), start + secs(0.25)).unwrap_err(), secs(0.75));
        let mut now = start + secs(1.0);
        let mut expected: f64 = 2.0;
        for _ in 0..12 {
            guard.reserve(ADA, address(1), now).unwrap();
            let wait = guard.reserve(ADA, address(1), now).unwrap_err();
            assert_eq!(wait, secs(expected.min(900.0)));
            assert_eq!(guard.reserve(ADA, address(1), now + wait / 2).unwrap_err(), wait / 2, "time left");
            now += wait;
            expected *= 2.0;
        }
    }

    #[test]
    fn an_attackers_failures_do_not_slow_the_owner_elsewhere() {
        let guard = LoginGuard::new(policy());
        let mut now = SystemTime::now();
        let end = now + HOUR;
        // An attacker on one address, trying as fast as it is allowed for an hour.
        let mut guesses = 0;
        while now < end {
            match guard.reserve(ADA, address(66), now) {
                Ok(_) => guesses += 1,
                Err(wait) => now += wait,
            }
        }
        assert!(guesses < 20, "one address gets {guesses} guesses an hour");
        let owner = guard.reserve(ADA, address(1), now).expect("the owner is not locked out");
        guard.succeeded(owner);
    }

    #[test]
    fn the_hourly_budget_holds_across_addresses_and_spares_the_owners() {
        let guard = LoginGuard::new(LoginPolicy { account_failures_per_hour: 8, ..policy() });
        let start = SystemTime::now();
        // The owner signed in from address 0 before.
        guard.succeeded(guard.reserve(ADA, address(0), start).unwrap());
        for n in 1..=8 {
            guard.reserve(ADA, address(n), start + secs(f64::from(n))).unwrap();
        }
        // A ninth new address must wait until the first failure is an hour old.
        let now = start + secs(60.0);
        assert_eq!(guard.reserve(ADA, address(100), now).unwrap_err(), HOUR - secs(59.0));
        assert!(guard.reserve("bob@example.com", address(100), now).is_ok(), "other accounts are untouched");
        // The owner's address has its own budget.
        guard.succeeded(guard.reserve(ADA, address(0), now).unwrap());
        assert!(guard.reserve(ADA, address(100), start + HOUR + secs(1.0)).is_ok());
    }

    #[test]
    fn a_right_password_refunds_its_reservation_and_clears_the_address() {
        let guard = LoginGuard::new(LoginPolicy { account_failures_per_hour: 6, ..policy() });
        let now = SystemTime::now();
        for _ in 0..4 {
            guard.reserve(ADA, address(1), now).unwrap();
        }
        guard.succeeded(guard.reserve(ADA, address(1), now).unwrap());
        // Four failures remain counted in the unknown-address budget; the address starts afresh.
        for _ in 0..2 {
            guard.reserve(ADA, address(2), now).unwrap();
        }
        assert!(guard.reserve(ADA, address(3), now).is_err(), "the budget of 6 is spent");
        for _ in 0..5 {
            guard.reserve(ADA, address(1), now).unwrap();
        }
    }
}

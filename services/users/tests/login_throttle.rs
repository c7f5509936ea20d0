//! The login guard's rules on both places its counts live: this process (`LoginGuard`) and the
//! real Redis (`RedisLoginAttempts`, under a key prefix of each test's own), with made-up
//! times; and a Redis that is not there.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kit::redis::{Redis, RedisConfig};
use kit::testing::TestRedis;
use users::domain::LoginGuard;
use users::domain::login_guard::{HOUR, LoginPolicy};
use users::store::login_attempts::{LoginAttempts, RedisLoginAttempts};

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

/// Now, to the millisecond (what Redis keeps).
fn start() -> SystemTime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(now.as_millis() as u64)
}

/// Where the counts live in a test.
#[derive(Debug, Clone, Copy)]
enum Counts {
    InProcess,
    Redis,
}

/// The counts of one test under `policy`; the [`TestRedis`] (when there is one) must live as
/// long as they do.
fn attempts(counts: Counts, policy: LoginPolicy) -> (Box<dyn LoginAttempts>, Option<TestRedis>) {
    match counts {
        Counts::InProcess => (Box::new(LoginGuard::new(policy)), None),
        Counts::Redis => {
            let test = TestRedis::new();
            let redis = Redis::connect(&test.config).unwrap().unwrap();
            (Box::new(RedisLoginAttempts::new(redis, policy)), Some(test))
        }
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Counts::InProcess).await
                }
            )*
        }
        mod in_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Counts::Redis).await
                }
            )*
        }
    };
}

on_both!(
    attempts_at_once_past_the_free_failures_are_refused,
    the_wait_doubles_up_to_the_maximum_and_retry_after_is_the_time_left,
    an_attackers_failures_do_not_slow_the_owner_elsewhere,
    the_hourly_budget_holds_across_addresses_and_spares_the_owners,
    a_right_password_refunds_its_reservation_and_clears_the_address,
    an_address_is_forgotten_an_hour_after_its_last_failure,
);

async fn attempts_at_once_past_the_free_failures_are_refused(counts: Counts) {
    let (guard, _redis) = attempts(counts, policy());
    let now = start();
    let burst = (0..60).map(|_| guard.reserve(ADA, address(1), now));
    let admitted = futures_util::future::join_all(burst).await.into_iter().filter(Result::is_ok).count();
    assert_eq!(admitted, 5);
}

async fn the_wait_doubles_up_to_the_maximum_and_retry_after_is_the_time_left(counts: Counts) {
    let (guard, _redis) = attempts(counts, policy());
    let start = start();
    for _ in 0..5 {
        guard.reserve(ADA, address(1), start).await.unwrap();
    }
    assert_eq!(guard.reserve(ADA, address(1), start).await.unwrap_err(), secs(1.0));
    assert_eq!(guard.reserve(ADA, address(1), start + secs(0.25)).await.unwrap_err(), secs(0.75));
    let mut now = start + secs(1.0);
    let mut expected: f64 = 2.0;
    for _ in 0..12 {
        guard.reserve(ADA, address(1), now).await.unwrap();
        let wait = guard.reserve(ADA, address(1), now).await.unwrap_err();
        assert_eq!(wait, secs(expected.min(900.0)));
        assert_eq!(guard.reserve(ADA, address(1), now + wait / 2).await.unwrap_err(), wait / 2, "time left");
        now += wait;
        expected *= 2.0;
    }
}

async fn an_attackers_failures_do_not_slow_the_owner_elsewhere(counts: Counts) {
    let (guard, _redis) = attempts(counts, policy());
    let mut now = start();
    let end = now + HOUR;
    let mut guesses = 0;
    while now < end {
        match guard.reserve(ADA, address(66), now).await {
            Ok(_) => guesses += 1,
            Err(wait) => now += wait,
        }
    }
    assert!(guesses < 20, "one address gets {guesses} guesses an hour");
    let owner = guard.reserve(ADA, address(1), now).await.expect("the owner is not locked out");
    guard.succeeded(owner).await;
}

async fn the_hourly_budget_holds_across_addresses_and_spares_the_owners(counts: Counts) {
    let (guard, _redis) = attempts(counts, LoginPolicy { account_failures_per_hour: 8, ..policy() });
    let start = start();
    // The owner signed in from address 0 before.
    guard.succeeded(guard.reserve(ADA, address(0), start).await.unwrap()).await;
    for n in 1..=8 {
        guard.reserve(ADA, address(n), start + secs(f64::from(n))).await.unwrap();
    }
    // A ninth new address must wait until the first failure is an hour old.
    let now = start + secs(60.0);
    assert_eq!(guard.reserve(ADA, address(100), now).await.unwrap_err(), HOUR - secs(59.0));
    assert!(
        guard.reserve("bob@example.com", address(100), now).await.is_ok(),
        "other accounts are untouched"
    );
    // The owner's address has its own budget.
    let owner = guard.reserve(ADA, address(0), now).await.unwrap();
    assert!(owner.reservation().known_address);
    guard.succeeded(owner).await;
    assert!(guard.reserve(ADA, address(100), start + HOUR + secs(1.0)).await.is_ok());
}

async fn a_right_password_refunds_its_reservation_and_clears_the_address(counts: Counts) {
    let (guard, _redis) = attempts(counts, LoginPolicy { account_failures_per_hour: 6, ..policy() });
    let now = start();
    for _ in 0..4 {
        guard.reserve(ADA, address(1), now).await.unwrap();
    }
    guard.succeeded(guard.reserve(ADA, address(1), now).await.unwrap()).await;
    // Four failures remain counted in the unknown-address budget; the address starts afresh.
    for _ in 0..2 {
        guard.reserve(ADA, address(2), now).await.unwrap();
    }
    assert!(guard.reserve(ADA, address(3), now).await.is_err(), "the budget of 6 is spent");
    for _ in 0..5 {
        guard.reserve(ADA, address(1), now).await.unwrap();
    }
}

async fn an_address_is_forgotten_an_hour_after_its_last_failure(counts: Counts) {
    let (guard, _redis) = attempts(counts, policy());
    let start = start();
    for _ in 0..5 {
        guard.reserve(ADA, address(1), start).await.unwrap();
    }
    assert!(guard.reserve(ADA, address(1), start).await.is_err());
    // An hour on, the address has its free failures again.
    let later = start + HOUR;
    for _ in 0..5 {
        guard.reserve(ADA, address(1), later).await.unwrap();
    }
    assert_eq!(guard.reserve(ADA, address(1), later).await.unwrap_err(), secs(1.0));
}

#[tokio::test]
async fn two_replicas_sharing_redis_count_together() {
    let test = TestRedis::new();
    let replica = || RedisLoginAttempts::new(Redis::connect(&test.config).unwrap().unwrap(), policy());
    let (first, second) = (replica(), replica());
    let now = start();
    for n in 0..5 {
        let replica = if n % 2 == 0 { &first } else { &second };
        replica.reserve(ADA, address(1), now).await.unwrap();
    }
    assert_eq!(second.reserve(ADA, address(1), now).await.unwrap_err(), secs(1.0));
    assert_eq!(first.reserve(ADA, address(1), now).await.unwrap_err(), secs(1.0));
    let keys = test.keys();
    assert!(
        keys.iter().all(|key| key.starts_with(&format!("{}:login:{{{ADA}}}:", test.config.key_prefix))),
        "{keys:?}"
    );
}

#[tokio::test]
async fn with_redis_unreachable_each_replica_counts_on_its_own() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let guard =
        RedisLoginAttempts::new(Redis::connect(&RedisConfig::with_url(url)).unwrap().unwrap(), policy());
    let now = start();
    for _ in 0..5 {
        guard.reserve(ADA, address(1), now).await.expect("counted in process");
    }
    assert_eq!(guard.reserve(ADA, address(1), now).await.unwrap_err(), secs(1.0), "still throttled");
    let owner = guard.reserve(ADA, address(2), now).await.unwrap();
    guard.succeeded(owner).await;
}

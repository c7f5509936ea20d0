//! Rate limiting keyed by client (user id or IP): `rate` requests per second sustained, `burst`
//! at once, and for a refused request how long until one would pass. The `governor` crate's
//! GCRA does the arithmetic (a token bucket's semantics, one atomic word per key, no lock).
//!
//! [`RateLimiter`] is the in-process limiter of the embedded default. Keys whose state is that
//! of a client never seen (idle long enough to have their whole burst again) are swept out from
//! time to time, so memory follows the clients active in the last refill period.
//!
//! [`SharedRateLimiter`] is what a service with several replicas uses: the same GCRA in a Lua
//! script on Redis (one key per client holding its theoretical arrival time, expiring when the
//! client has its whole burst back, and Redis's clock, so replicas' clocks do not matter), so
//! every replica takes from one allowance. Without Redis, or while Redis is away
//! ([`crate::redis`]), it answers from its in-process limiter: per replica, never refusing
//! because of Redis.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Gcra};

use crate::redis::Redis;

/// A keyed rate limiter.
pub struct RateLimiter<C: Clock = DefaultClock> {
    gcra: Gcra<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    /// How often idle keys are swept out: the time a client takes to get its whole burst back.
    sweep_every: Duration,
    /// When the last sweep ran; also who sweeps (the one caller holding the lock).
    last_sweep: Mutex<C::Instant>,
    /// Checks until the next look at the clock for a sweep, so a check rarely reads it twice.
    until_sweep_check: AtomicU32,
}

/// Checks between two looks at whether a sweep is due.
const CHECKS_PER_SWEEP_LOOK: u32 = 1024;

impl RateLimiter {
    /// `rate_per_sec` > 0 sustained, `burst` ≥ 1 at once.
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Self::with_clock(rate_per_sec, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// As [`RateLimiter::new`], on `clock` (tests use a fake one).
    pub fn with_clock(rate_per_sec: f64, burst: u32, clock: C) -> Self {
        // One request per this long, between a nanosecond and a day.
        let period = Duration::from_secs_f64(1.0 / rate_per_sec.clamp(1.0 / 86_400.0, 1e9));
        let burst = NonZeroU32::MIN.saturating_add(burst.saturating_sub(1));
        let quota =
            Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MAX)).allow_burst(burst);
        let refill =
            period.saturating_mul(burst.get()).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        Self {
            gcra: Gcra::new(quota, DefaultKeyedStateStore::default(), clock.clone()),
            last_sweep: Mutex::new(clock.now()),
            clock,
            sweep_every: refill,
            until_sweep_check: AtomicU32::new(CHECKS_PER_SWEEP_LOOK),
        }
    }

    /// Takes one request from `key`'s allowance, or answers how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.sweep_when_due();
        self.gcra.check_key(&key.to_owned()).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Keys remembered now (idle ones go at the next sweep).
    pub fn len(&self) -> usize {
        self.gcra.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.gcra.is_empty()
    }

    /// Every [`CHECKS_PER_SWEEP_LOOK`] checks, looks whether a refill period has passed since
    /// the last sweep; if so, one caller forgets the keys that are as good as new.
    fn sweep_when_due(&self) {
        if self.until_sweep_check.fetch_sub(1, Ordering::Relaxed) > 1 {
            return;
        }
        self.until_sweep_check.store(CHECKS_PER_SWEEP_LOOK, Ordering::Relaxed);
        let Ok(mut last) = self.last_sweep.try_lock() else { return };
        let now = self.clock.now();
        if Duration::from(now.duration_since(*last)) >= self.sweep_every {
            *last = now;
            self.sweep();
        }
    }

    /// Forgets every key whose state is that of a client never seen.
    fn sweep(&self) {
        self.gcra.retain_recent();
        self.gcra.shrink_to_fit();
    }
}

/// A keyed rate limiter shared by the replicas of a service through Redis, with the
/// in-process [`RateLimiter`] as its fallback (see the module docs).
pub struct SharedRateLimiter {
    local: RateLimiter,
    shared: Option<RedisGcra>,
}

/// The GCRA on Redis: one key per client, holding its theoretical arrival time in µs.
struct RedisGcra {
    redis: Redis,
    script: redis::Script,
    /// One request per this long, in µs.
    interval_us: f64,
    /// How far ahead of now the arrival time may run before a request is refused: the burst.
    tolerance_us: f64,
}

/// GCRA, atomically on Redis. KEYS[1]: the client's key; ARGV: the emission interval and the
/// burst tolerance, in µs. Answers 0 when the request passes, else the µs to wait. Times are
/// Redis's own (`TIME`), so the replicas' clocks play no part; µs since the epoch are exact in
/// Lua's doubles, and written with `%.0f` so no digit is lost to `%.14g`.
const GCRA_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local wait = tat - tolerance - now
if wait > 0 then
  return math.ceil(wait)
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

impl SharedRateLimiter {
    /// `rate_per_sec` > 0 sustained and `burst` ≥ 1 at once per key, kept in `redis` when
    /// given (keys `<prefix>:rl:<key>`), else in this process only.
    pub fn new(rate_per_sec: f64, burst: u32, redis: Option<Redis>) -> Self {
        let interval_us = 1e6 / rate_per_sec.clamp(1.0 / 86_400.0, 1e9);
        let shared = redis.map(|server| RedisGcra {
            redis: server,
            script: redis::Script::new(GCRA_SCRIPT),
            interval_us,
            tolerance_us: interval_us * f64::from(burst.max(1) - 1),
        });
        Self { local: RateLimiter::new(rate_per_sec, burst), shared }
    }

    /// Takes one request from `key`'s allowance, or answers how long until one is available;
    /// from Redis when it answers, from this process's limiter otherwise.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(gcra) = &self.shared else {
            return self.local.check(key);
        };
        let redis_key = gcra.redis.key(&format!("rl:{key}"));
        let answer = gcra
            .redis
            .run("rate_limit", |mut connection| async move {
                gcra.script
                    .key(&redis_key)
                    .arg(gcra.interval_us)
                    .arg(gcra.tolerance_us)
                    .invoke_async::<u64>(&mut connection)
                    .await
            })
            .await;
        match answer {
            Ok(0) => Ok(()),
            Ok(wait_us) => Err(Duration::from_micros(wait_us)),
            Err(_unavailable) => self.local.check(key),
        }
    }

    /// True when the allowance is kept in Redis (while it answers).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(rate: f64, burst: u32) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimiter::with_clock(rate, burst, clock.clone()), clock)
    }

    #[test]
    fn burst_is_allowed_then_refused_with_a_wait() {
        let (limiter, _clock) = limiter(10.0, 5);
        for _ in 0..5 {
            assert!(limiter.check("ip").is_ok());
        }
        let wait = limiter.check("ip").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let (limiter, clock) = limiter(10.0, 1);
        assert!(limiter.check("ip").is_ok());
        clock.advance(Duration::from_millis(50));
        assert_eq!(limiter.check("ip").unwrap_err(), Duration::from_millis(50), "the wait is the time left");
        clock.advance(Duration::from_millis(51));
        assert!(limiter.check("ip").is_ok());
    }

    #[test]
    fn a_fractional_rate_is_kept() {
        let (limiter, clock) = limiter(0.5, 1);
        assert!(limiter.check("ip").is_ok());
        clock.advance(Duration::from_millis(1_900));
        assert!(limiter.check("ip").is_err());
        clock.advance(Duration::from_millis(100));
        assert!(limiter.check("ip").is_ok());
    }

    #[test]
    fn clients_have_separate_allowances() {
        let (limiter, _clock) = limiter(1.0, 1);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("b").is_ok());
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn idle_clients_are_forgotten_once_their_burst_is_back() {
        let (limiter, clock) = limiter(100.0, 200);
        for n in 0..500 {
            limiter.check(&format!("ip:{n}")).unwrap();
        }
        assert_eq!(limiter.len(), 500);
        // Two seconds on, every one of them has its 200 back: the next sweep forgets them.
        clock.advance(Duration::from_secs(2));
        for _ in 0..CHECKS_PER_SWEEP_LOOK {
            limiter.check("ip:active").unwrap_or_default();
        }
        assert_eq!(limiter.len(), 1, "only the client still sending is remembered");
    }
}

//! Token-bucket rate limiting keyed by client (user id or IP): `rate` tokens per second refill a
//! bucket of `burst`; a request takes one token or is told how long to wait.
//!
//! This is the in-process limiter of the embedded default; buckets idle long enough to be full
//! again are evicted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A keyed token-bucket limiter.
pub struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    buckets: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `rate_per_sec` > 0 sustained, `burst` ≥ 1 at once.
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        let rate_per_sec = rate_per_sec.max(f64::MIN_POSITIVE);
        let burst = f64::from(burst.max(1));
        // After this long idle a bucket is full again, so forgetting it changes nothing.
        let refill = Duration::from_secs_f64((burst / rate_per_sec).clamp(1.0, 3600.0));
        Self {
            rate_per_sec,
            burst,
            buckets: moka::sync::Cache::builder().max_capacity(1_000_000).time_to_idle(refill).build(),
        }
    }

    /// Takes a token for `key`, or answers how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let bucket = self
            .buckets
            .get_with_by_ref(key, || Arc::new(Mutex::new(Bucket { tokens: self.burst, updated: now })));
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_sec).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate_per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_allowed_then_refused_with_a_wait() {
        let limiter = RateLimiter::new(10.0, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check_at("ip", t0).is_ok());
        }
        let wait = limiter.check_at("ip", t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let limiter = RateLimiter::new(10.0, 1);
        let t0 = Instant::now();
        assert!(limiter.check_at("ip", t0).is_ok());
        assert!(limiter.check_at("ip", t0 + Duration::from_millis(50)).is_err());
        assert!(limiter.check_at("ip", t0 + Duration::from_millis(101)).is_ok());
    }

    #[test]
    fn clients_have_separate_buckets() {
        let limiter = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        assert!(limiter.check_at("a", t0).is_ok());
        assert!(limiter.check_at("b", t0).is_ok());
        assert!(limiter.check_at("a", t0).is_err());
    }
}

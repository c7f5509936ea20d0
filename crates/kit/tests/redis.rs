//! `kit::redis` and the shared rate limiter against the real Redis (`MERCATO_TEST_REDIS_URL`),
//! each test under a key prefix of its own; and against a Redis that is not there or never
//! answers.

use std::time::{Duration, Instant};

use kit::rate_limit::SharedRateLimiter;
use kit::redis::{Redis, RedisConfig};
use kit::testing::TestRedis;

fn connect(config: &RedisConfig) -> Redis {
    Redis::connect(config).expect("a valid configuration").expect("a URL is set")
}

/// A port on loopback where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn the_gcra_on_redis_admits_the_burst_then_the_rate_and_says_how_long_to_wait() {
    let test = TestRedis::new();
    let limiter = SharedRateLimiter::new(10.0, 5, Some(connect(&test.config)));
    for n in 0..5 {
        assert_eq!(limiter.check("ip:192.0.2.1").await, Ok(()), "request {n} of the burst");
    }
    let wait = limiter.check("ip:192.0.2.1").await.expect_err("past the burst");
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
    // Another client has its own allowance.
    assert_eq!(limiter.check("ip:192.0.2.2").await, Ok(()));
    // After the wait, one more passes, and the next waits a whole period again.
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert_eq!(limiter.check("ip:192.0.2.1").await, Ok(()));
    let again = limiter.check("ip:192.0.2.1").await.expect_err("the rate holds");
    assert!(again > Duration::from_millis(50) && again <= Duration::from_millis(100), "{again:?}");
    // The state is one key per client under the test's prefix, and it expires.
    let keys = test.keys();
    assert!(keys.contains(&format!("{}:rl:ip:192.0.2.1", test.config.key_prefix)), "{keys:?}");
}

#[tokio::test]
async fn two_limiters_sharing_redis_admit_what_one_would() {
    let test = TestRedis::new();
    let first = SharedRateLimiter::new(0.01, 10, Some(connect(&test.config)));
    let second = SharedRateLimiter::new(0.01, 10, Some(connect(&test.config)));
    let mut admitted = 0;
    for n in 0..40 {
        let limiter = if n % 2 == 0 { &first } else { &second };
        if limiter.check("user:ada").await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "one burst between them, not one each");
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_the_limiter_in_process() {
    kit::metrics::handle();
    let config = RedisConfig::with_url(closed_port_url());
    let limiter = SharedRateLimiter::new(1.0, 3, Some(connect(&config)));
    let started = Instant::now();
    let answers: Vec<_> =
        futures_util::future::join_all((0..5).map(|_| limiter.check("ip:198.51.100.7"))).await;
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        3,
        "the local limiter still limits: {answers:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "answered in {:?}", started.elapsed());
    let metrics = kit::metrics::render();
    assert!(metrics.contains("redis_fallback_total{use=\"rate_limit\"}"), "{metrics}");
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_one_command_timeout_then_nothing() {
    // Accepts connections and never answers a byte.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("redis://{}", silent.local_addr().expect("an address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let config =
        RedisConfig { command_timeout_ms: 100, retry_after_ms: 60_000, ..RedisConfig::with_url(url) };
    let redis = connect(&config);
    let limiter = SharedRateLimiter::new(100.0, 100, Some(redis.clone()));
    let started = Instant::now();
    assert_eq!(limiter.check("ip:203.0.113.9").await, Ok(()));
    let first = started.elapsed();
    assert!(first < Duration::from_millis(600), "the first check waited {first:?}");
    // Paused after the failure: the next checks do not wait for Redis at all.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(limiter.check("ip:203.0.113.9").await, Ok(()));
    }
    assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
    let why = redis.ready().await.expect_err("not ready while paused");
    assert!(why.contains("paused"), "{why}");
    held.abort();
}

#[tokio::test]
async fn readiness_pings_the_real_redis_and_keys_carry_the_prefix() {
    let test = TestRedis::new();
    let redis = connect(&test.config);
    redis.ready().await.expect("the test Redis answers");
    assert_eq!(redis.key("a:b"), format!("{}:a:b", test.config.key_prefix));
    let unreachable = connect(&RedisConfig::with_url(closed_port_url()));
    assert!(unreachable.ready().await.is_err());
}

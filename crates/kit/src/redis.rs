//! Redis for the state replicas share (the gateway's rate limits, the login throttle, the
//! catalog's second cache level): one multiplexed connection per service, made from `redis.*`
//! and re-made in the background when it breaks, every command bounded by
//! `redis.command_timeout_ms`.
//!
//! Redis is never required. [`Redis::run`] answers [`Unavailable`] when a command fails or is
//! slow, and then at once, without asking Redis, for `redis.retry_after_ms` (one trial command
//! is let through when that pause is over), so every caller serves from its in-process
//! fallback without waiting for a dead server. Each such answer counts in
//! `redis_fallback_total{use}`; the switch to the fallback is logged as a warning, at most once
//! a minute while Redis stays away. `/readyz` reports Redis as *degraded*, never as unready
//! ([`Redis::ready`], [`crate::http::with_optional`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The connection to Redis (`MERCATO_REDIS__…`, or `MERCATO_<SERVICE>__REDIS__…` in the
/// embedded shop). An empty `url` keeps everything in process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`; empty: no Redis, every replica keeps its own state.
    pub url: String,
    /// Every key this service writes starts with this and `:` (several shops may share a server).
    pub key_prefix: String,
    /// A command without an answer within this counts as Redis being away; the request goes on
    /// with the in-process fallback.
    pub command_timeout_ms: u64,
    /// Bound of one attempt to (re)connect.
    pub connect_timeout_ms: u64,
    /// After a failure, Redis is left alone this long (the fallback answers at once), then
    /// one command tries it again.
    pub retry_after_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            key_prefix: "mercato".to_owned(),
            command_timeout_ms: 150,
            connect_timeout_ms: 1_000,
            retry_after_ms: 1_000,
        }
    }
}

impl RedisConfig {
    /// A configuration using the server at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }

    /// True when a server is named.
    pub fn is_enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Checks the values; `prefix` is the key of this table (`redis`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.is_enabled() {
            redis::Client::open(self.url.trim()).map_err(|e| {
                ConfigError::invalid(format!("{prefix}.url"), format!("is not a Redis URL ({e})"))
            })?;
        }
        for (key, value, range) in [
            ("command_timeout_ms", self.command_timeout_ms, 1..=60_000),
            ("connect_timeout_ms", self.connect_timeout_ms, 1..=60_000),
            ("retry_after_ms", self.retry_after_ms, 1..=3_600_000),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::invalid(
                    format!("{prefix}.{key}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        if self.key_prefix.is_empty() || self.key_prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::invalid(
                format!("{prefix}.key_prefix"),
                "must be non-empty, without spaces or control characters",
            ));
        }
        Ok(())
    }
}

/// Redis did not serve a command (down, slow, or paused after a failure): use the fallback.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub struct Unavailable(String);

/// A shared handle on one Redis server (cheap to clone).
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    key_prefix: String,
    command_timeout: Duration,
    retry_after: Duration,
    /// What the times below count from.
    started: Instant,
    /// Until when (ms after `started`) commands are not sent; 0 while Redis answers.
    paused_until: AtomicU64,
    /// When the last warning was logged (ms after `started`).
    warned_at: AtomicU64,
}

/// While Redis stays away, the warning is repeated this often at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("key_prefix", &self.inner.key_prefix).finish_non_exhaustive()
    }
}

impl Redis {
    /// The server `config` names, or `None` when it names none. Nothing is awaited: the
    /// connection is made in the background (a first `PING` is sent at once, so an unreachable
    /// server is logged at start) and whenever it breaks; a server that is down at start is
    /// not an error. Call inside a Tokio runtime.
    pub fn connect(config: &RedisConfig) -> Result<Option<Self>, ConfigError> {
        if !config.is_enabled() {
            return Ok(None);
        }
        let invalid = |e: redis::RedisError| ConfigError::invalid("redis.url", e.to_string());
        let client = redis::Client::open(config.url.trim()).map_err(invalid)?;
        let command_timeout = Duration::from_millis(config.command_timeout_ms);
        let retry_after = Duration::from_millis(config.retry_after_ms);
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
            .set_response_timeout(Some(command_timeout))
            // One quick retry per reconnection; afterwards the next command starts another, so
            // a server that comes back is found within `retry_after`.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(retry_after);
        let connection = ConnectionManager::new_lazy_with_config(client, manager).map_err(invalid)?;
        let redis = Self {
            inner: Arc::new(Inner {
                connection,
                key_prefix: config.key_prefix.clone(),
                command_timeout,
                retry_after,
                started: Instant::now(),
                paused_until: AtomicU64::new(0),
                warned_at: AtomicU64::new(0),
            }),
        };
        let first = redis.clone();
        tokio::spawn(async move {
            if first.ready().await.is_ok() {
                tracing::info!(key_prefix = %first.inner.key_prefix, "connected to redis");
            }
        });
        Ok(Some(redis))
    }

    /// `parts` under this service's key prefix: `key("rl:ip:1.2.3.4")` is `mercato:rl:ip:1.2.3.4`.
    pub fn key(&self, parts: &str) -> String {
        format!("{}:{parts}", self.inner.key_prefix)
    }

    /// Runs `command` on the shared connection within the command timeout. `Err(Unavailable)`
    /// when it fails or is late, or when Redis is paused after a failure (then at once);
    /// each such answer counts as a fallback for `purpose` (a metric label: `rate_limit`,
    /// `login_throttle`, `product_cache`).
    pub async fn run<T, F, Fut>(&self, purpose: &'static str, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let answer = self.execute(purpose, command).await;
        if answer.is_err() {
            metrics::counter!("redis_fallback_total", "use" => purpose).increment(1);
        }
        answer
    }

    /// For `/readyz`: `Err` says why Redis does not serve now (the service is then degraded,
    /// not unready).
    pub async fn ready(&self) -> Result<(), String> {
        self.execute("readiness", |mut connection| async move {
            redis::cmd("PING").query_async::<()>(&mut connection).await
        })
        .await
        .map_err(|unavailable| unavailable.0)
    }

    async fn execute<T, F, Fut>(&self, purpose: &'static str, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.admits_a_command() {
            return Err(Unavailable("paused after a failure; the in-process fallback answers".to_owned()));
        }
        let inner = &self.inner;
        match tokio::time::timeout(inner.command_timeout, command(inner.connection.clone())).await {
            Ok(Ok(value)) => {
                self.answered();
                Ok(value)
            }
            Ok(Err(error)) => Err(self.failed(purpose, error.to_string())),
            Err(_) => {
                Err(self
                    .failed(purpose, format!("no answer within {} ms", inner.command_timeout.as_millis())))
            }
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1, so that a pause set at once is never the "not paused" 0.
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// False while paused after a failure. When the pause is over, one caller takes the trial
    /// (the others keep using the fallback until its outcome, or its timeout, is known).
    fn admits_a_command(&self) -> bool {
        let paused_until = &self.inner.paused_until;
        let until = paused_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let trial_ends = now.saturating_add(duration_ms(self.inner.command_timeout));
        paused_until.compare_exchange(until, trial_ends, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn answered(&self) {
        let paused_until = &self.inner.paused_until;
        if paused_until.load(Ordering::Relaxed) != 0 && paused_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("redis answers again; shared state is used again");
        }
    }

    fn failed(&self, purpose: &'static str, why: String) -> Unavailable {
        let now = self.now_ms();
        let was_paused = self
            .inner
            .paused_until
            .swap(now.saturating_add(duration_ms(self.inner.retry_after)), Ordering::Relaxed)
            != 0;
        let warned_at = self.inner.warned_at.load(Ordering::Relaxed);
        let warn_due = !was_paused || now.saturating_sub(warned_at) >= duration_ms(WARN_EVERY);
        if warn_due
            && self
                .inner
                .warned_at
                .compare_exchange(warned_at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %why,
                during = purpose,
                retry_after_ms = duration_ms(self.inner.retry_after),
                "redis is unavailable; each replica uses its in-process state until it answers again"
            );
        } else {
            tracing::debug!(error = %why, during = purpose, "redis is still unavailable");
        }
        Unavailable(why)
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_url_is_no_redis_and_a_bad_one_names_the_key() {
        assert!(!RedisConfig::default().is_enabled());
        RedisConfig::default().validate("redis").unwrap();
        let err = RedisConfig::with_url("http://cache:6379").validate("redis").unwrap_err();
        assert!(err.to_string().contains("`redis.url`"), "{err}");
        let config = RedisConfig { command_timeout_ms: 0, ..RedisConfig::with_url("redis://127.0.0.1:6379") };
        assert!(config.validate("redis").unwrap_err().to_string().contains("`redis.command_timeout_ms`"));
        let config = RedisConfig { key_prefix: "a b".into(), ..RedisConfig::default() };
        assert!(config.validate("redis").unwrap_err().to_string().contains("`redis.key_prefix`"));
    }

    #[tokio::test]
    async fn no_url_connects_nothing() {
        assert!(Redis::connect(&RedisConfig::default()).unwrap().is_none());
    }
}

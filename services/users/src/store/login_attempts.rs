//! Where the login guard keeps its counts: in this process ([`LoginGuard`], the embedded
//! default) or in Redis, shared by every users replica ([`RedisLoginAttempts`]), behind one
//! trait ([`LoginAttempts`]). The policy is the domain's either way (`domain::login_guard`).
//!
//! In Redis, per account (every key under `<prefix>:login:{<account>}:`, one hash slot):
//! `unknown` and `known` are sorted sets of the failures of the last hour from addresses the
//! account never / did sign in from (score: when, in ms); `addr:<ip>` is a hash with the
//! address's failures in a row, its last failure and when it may try again; `known:<ip>`
//! marks an address the account signed in from. A reservation is one Lua script (forget what
//! is older than the windows, check, count), so replicas racing on one account cannot both
//! slip past a limit; handing it back is one `MULTI`. Every key expires with its window.
//!
//! Redis away: the attempt is counted in this replica's own [`LoginGuard`], with a warning and
//! `redis_fallback_total{use="login_throttle"}`; a login never fails because of Redis.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use kit::redis::Redis;

use crate::domain::LoginGuard;
use crate::domain::login_guard::{FORGET_ADDRESS_AFTER, HOUR, KNOWN_ADDRESS_TTL, LoginPolicy, Reservation};

/// An attempt counted in advance by a [`LoginAttempts`]: hand it back with
/// [`LoginAttempts::succeeded`] when the password was right.
#[derive(Debug)]
pub struct Attempt {
    reservation: Reservation,
    /// Counted in Redis under this member of the account's log; `None`: in this process.
    shared_as: Option<String>,
}

impl Attempt {
    /// What was reserved.
    pub fn reservation(&self) -> &Reservation {
        &self.reservation
    }
}

/// The login guard's counts (see the module docs).
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Counts an attempt at `account` from `client` before its password is checked, or answers
    /// how long until one would be counted (the progressive delay of this address, or the
    /// account's hourly budget for addresses like it).
    async fn reserve(&self, account: &str, client: IpAddr, now: SystemTime) -> Result<Attempt, Duration>;

    /// The attempt had the right password: it no longer counts, its address starts afresh and
    /// is the owner's from now on.
    async fn succeeded(&self, attempt: Attempt);
}

#[async_trait]
impl LoginAttempts for LoginGuard {
    async fn reserve(&self, account: &str, client: IpAddr, now: SystemTime) -> Result<Attempt, Duration> {
        LoginGuard::reserve(self, account, client, now)
            .map(|reservation| Attempt { reservation, shared_as: None })
    }

    async fn succeeded(&self, attempt: Attempt) {
        LoginGuard::succeeded(self, attempt.reservation);
    }
}

/// The counts in Redis, shared by every replica; this process's [`LoginGuard`] while Redis is
/// away.
pub struct RedisLoginAttempts {
    redis: Redis,
    reserve: redis::Script,
    free_failures: u32,
    budget: u32,
    /// [`LoginPolicy::delay_schedule`], in ms.
    schedule_ms: Vec<u64>,
    fallback: LoginGuard,
}

/// KEYS: the unknown-address log, the known-address log, the address's hash, the address's
/// known mark. ARGV: now (ms), this attempt's member, the hourly budget, the hour (ms), how
/// long an address's failures are remembered (ms), the free failures, then the delay schedule
/// (ms). Answers `{counted (0|1), wait (ms), known address (0|1)}`. The same steps as
/// `LoginGuard::reserve`.
const RESERVE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local hour = tonumber(ARGV[4])
local forget = tonumber(ARGV[5])
local known = redis.call('EXISTS', KEYS[4]) == 1
local known_flag = 0
if known then known_flag = 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - hour))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - hour))
local address = redis.call('HMGET', KEYS[3], 'failures', 'last', 'next')
local failures = tonumber(address[1]) or 0
local last = tonumber(address[2])
local next_allowed = tonumber(address[3])
if last and now - last >= forget then
  failures = 0
  next_allowed = nil
end
if next_allowed and next_allowed > now then
  return {0, next_allowed - now, known_flag}
end
local log = KEYS[1]
if known then log = KEYS[2] end
if redis.call('ZCARD', log) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + hour - now
  if wait < 0 then wait = 0 end
  return {0, wait, known_flag}
end
redis.call('ZADD', log, string.format('%.0f', now), ARGV[2])
redis.call('PEXPIRE', log, string.format('%.0f', hour))
failures = failures + 1
local delay = 0
local free = tonumber(ARGV[6])
if failures >= free then
  local step = failures - free
  local last_step = #ARGV - 7
  if step > last_step then step = last_step end
  delay = tonumber(ARGV[7 + step])
end
redis.call('HSET', KEYS[3], 'failures', failures, 'last', string.format('%.0f', now),
  'next', string.format('%.0f', now + delay))
redis.call('PEXPIRE', KEYS[3], string.format('%.0f', forget))
return {1, 0, known_flag}
";

impl RedisLoginAttempts {
    /// Counts kept in `redis` under `policy`, falling back to a [`LoginGuard`] of this process.
    pub fn new(redis: Redis, policy: LoginPolicy) -> Self {
        let policy = policy.normalized();
        Self {
            redis,
            reserve: redis::Script::new(RESERVE_SCRIPT),
            free_failures: policy.free_failures,
            budget: policy.account_failures_per_hour,
            schedule_ms: policy.delay_schedule().iter().map(|delay| millis(*delay)).collect(),
            fallback: LoginGuard::new(policy),
        }
    }

    fn key(&self, account: &str, what: &str) -> String {
        // `{account}` is the hash tag: an account's keys share one slot on a cluster.
        self.redis.key(&format!("login:{{{account}}}:{what}"))
    }
}

#[async_trait]
impl LoginAttempts for RedisLoginAttempts {
    async fn reserve(&self, account: &str, client: IpAddr, now: SystemTime) -> Result<Attempt, Duration> {
        let now_ms = millis(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        // Two attempts in the same millisecond are two members of the log.
        let member = format!("{now_ms}:{}", uuid::Uuid::new_v4().simple());
        let keys = [
            self.key(account, "unknown"),
            self.key(account, "known"),
            self.key(account, &format!("addr:{client}")),
            self.key(account, &format!("known:{client}")),
        ];
        let answer = self
            .redis
            .run("login_throttle", |mut connection| {
                let mut invocation = self.reserve.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                invocation
                    .arg(now_ms)
                    .arg(&member)
                    .arg(self.budget)
                    .arg(millis(HOUR))
                    .arg(millis(FORGET_ADDRESS_AFTER))
                    .arg(self.free_failures);
                for delay in &self.schedule_ms {
                    invocation.arg(*delay);
                }
                async move { invocation.invoke_async::<(u8, u64, u8)>(&mut connection).await }
            })
            .await;
        match answer {
            Ok((1, _, known)) => Ok(Attempt {
                reservation: Reservation {
                    account: account.to_owned(),
                    client,
                    known_address: known == 1,
                    at: now,
                },
                shared_as: Some(member),
            }),
            Ok((_, wait_ms, _)) => Err(Duration::from_millis(wait_ms)),
            Err(_unavailable) => LoginGuard::reserve(&self.fallback, account, client, now)
                .map(|reservation| Attempt { reservation, shared_as: None }),
        }
    }

    async fn succeeded(&self, attempt: Attempt) {
        let Attempt { reservation, shared_as } = attempt;
        let Some(member) = shared_as else {
            return LoginGuard::succeeded(&self.fallback, reservation);
        };
        let Reservation { account, client, known_address, .. } = reservation;
        let log = self.key(&account, if known_address { "known" } else { "unknown" });
        let address = self.key(&account, &format!("addr:{client}"));
        let known = self.key(&account, &format!("known:{client}"));
        let mut handback = redis::pipe();
        handback
            .atomic()
            .cmd("ZREM")
            .arg(&log)
            .arg(&member)
            .ignore()
            .cmd("DEL")
            .arg(&address)
            .ignore()
            .cmd("SET")
            .arg(&known)
            .arg(1)
            .arg("PX")
            .arg(millis(KNOWN_ADDRESS_TTL))
            .ignore();
        // Redis away: the attempt stays counted as a failure there (a refund lost, never a
        // guess gained); `run` has logged and counted it.
        let _ = self
            .redis
            .run("login_throttle", |mut connection| async move {
                handback.query_async::<()>(&mut connection).await
            })
            .await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

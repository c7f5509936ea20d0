//! Carts in Redis (production): one hash per user, `<prefix>:cart:{<user id>}`, whose fields are
//! product ids (value `<quantity>:<added at, µs>`) and `updated_at` (µs); beside it a set,
//! `<prefix>:cart:{<user id>}:orders`, of the orders already taken out of the cart, and a hash,
//! `<prefix>:cart:{<user id>}:keys`, of the lines each checkout's Idempotency-Key ordered. All
//! expire after `idle_expiry` without a write, and every write sets that expiry again. Each write is
//! one Lua script, so the line limit and a checkout's removal are atomic; the `{…}` hash tag
//! keeps a user's two keys in one slot of a Redis Cluster.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kit::redis::Redis;
use uuid::Uuid;

use super::{CartStore, StoreError, decode_lines, encode_lines};
use crate::domain::{CartLine, Quantity, StoredCart};

/// The hash field holding when the cart last changed.
const UPDATED_AT: &str = "updated_at";

/// KEYS: cart. ARGV: product, quantity, now, max lines, expiry (ms). 1 written, 0 full.
const SET_SCRIPT: &str = r"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
local added = ARGV[3]
if existing then
  added = string.match(existing, ':(%d+)$') or ARGV[3]
else
  local lines = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], 'updated_at')
  if lines >= tonumber(ARGV[4]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. added, 'updated_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
";

/// KEYS: cart. ARGV: product, now, expiry (ms).
const REMOVE_SCRIPT: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
";

/// KEYS: cart, orders taken out, checkout keys. ARGV: order, now, expiry (ms), idempotency key
/// (empty: none), the lines as kept under it, then product and quantity pairs. 1 taken out now,
/// 0 taken out before.
const REMOVE_ORDERED_SCRIPT: &str = r"
if ARGV[4] ~= '' then
  redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
for i = 6, #ARGV, 2 do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value then
    local quantity, added = string.match(value, '^(%d+):(%d+)$')
    local left = tonumber(quantity) - tonumber(ARGV[i + 1])
    if left > 0 then
      redis.call('HSET', KEYS[1], ARGV[i], left .. ':' .. added)
    else
      redis.call('HDEL', KEYS[1], ARGV[i])
    end
  end
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// What `redis_fallback_total{use}` counts a failed cart command as.
const PURPOSE: &str = "cart";

/// The Redis cart store.
#[derive(Clone)]
pub struct RedisCarts {
    redis: Redis,
    idle_expiry_ms: u64,
    set: redis::Script,
    remove: redis::Script,
    remove_ordered: redis::Script,
}

impl RedisCarts {
    /// Carts in `redis`, each dropped after `idle_expiry` without a write.
    pub fn new(redis: Redis, idle_expiry: Duration) -> Self {
        Self {
            redis,
            idle_expiry_ms: u64::try_from(idle_expiry.as_millis()).unwrap_or(u64::MAX),
            set: redis::Script::new(SET_SCRIPT),
            remove: redis::Script::new(REMOVE_SCRIPT),
            remove_ordered: redis::Script::new(REMOVE_ORDERED_SCRIPT),
        }
    }

    /// The key of `user`'s cart (tests look at its expiry).
    pub fn cart_key(&self, user: Uuid) -> String {
        self.redis.key(&format!("cart:{{{user}}}"))
    }

    fn orders_key(&self, user: Uuid) -> String {
        self.redis.key(&format!("cart:{{{user}}}:orders"))
    }

    fn checkout_keys_key(&self, user: Uuid) -> String {
        self.redis.key(&format!("cart:{{{user}}}:keys"))
    }

    /// For `/readyz`: Redis is this store, so it not answering makes the service unready.
    pub async fn ready(&self) -> Result<(), String> {
        self.redis.ready().await.map_err(|why| format!("redis: {why}"))
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn from_micros(text: &str) -> Option<DateTime<Utc>> {
    text.parse().ok().and_then(DateTime::from_timestamp_micros)
}

/// kit's reason speaks of a fallback, which carts do not have (kit logs it); the answer says
/// what the shopper's request met.
fn unavailable(_: kit::redis::Unavailable) -> StoreError {
    StoreError::Unavailable("redis does not answer; try again shortly".to_owned())
}

#[async_trait]
impl CartStore for RedisCarts {
    async fn cart(&self, user: Uuid) -> Result<StoredCart, StoreError> {
        let key = self.cart_key(user);
        let fields: HashMap<String, String> = self
            .redis
            .run(PURPOSE, |mut connection| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut connection).await
            })
            .await
            .map_err(unavailable)?;
        let mut cart = StoredCart::default();
        for (field, value) in &fields {
            if field == UPDATED_AT {
                cart.updated_at = from_micros(value);
                continue;
            }
            // A field this version cannot read is skipped, never a failed cart.
            let Ok(product_id) = Uuid::parse_str(field) else { continue };
            let Some((quantity, added)) = value.split_once(':') else { continue };
            let (Ok(quantity), Some(added_at)) = (quantity.parse(), from_micros(added)) else { continue };
            cart.lines.push(CartLine { product_id, quantity, added_at });
        }
        cart.lines.sort_by_key(|l| (l.added_at, l.product_id));
        Ok(cart)
    }

    async fn set_quantity(
        &self,
        user: Uuid,
        product: Uuid,
        quantity: Quantity,
        max_lines: usize,
    ) -> Result<(), StoreError> {
        let key = self.cart_key(user);
        let written: u8 = self
            .redis
            .run(PURPOSE, |mut connection| {
                let mut invocation = self.set.prepare_invoke();
                invocation
                    .key(&key)
                    .arg(product.to_string())
                    .arg(quantity.get())
                    .arg(now_micros())
                    .arg(max_lines)
                    .arg(self.idle_expiry_ms);
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
            .map_err(unavailable)?;
        if written == 0 {
            return Err(StoreError::Full(max_lines));
        }
        Ok(())
    }

    async fn remove(&self, user: Uuid, product: Uuid) -> Result<(), StoreError> {
        let key = self.cart_key(user);
        self.redis
            .run(PURPOSE, |mut connection| {
                let mut invocation = self.remove.prepare_invoke();
                invocation.key(&key).arg(product.to_string()).arg(now_micros()).arg(self.idle_expiry_ms);
                async move { invocation.invoke_async::<u8>(&mut connection).await }
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn clear(&self, user: Uuid) -> Result<(), StoreError> {
        let key = self.cart_key(user);
        self.redis
            .run(PURPOSE, |mut connection| async move {
                redis::cmd("DEL").arg(&key).query_async::<()>(&mut connection).await
            })
            .await
            .map_err(unavailable)
    }

    async fn remove_ordered(
        &self,
        user: Uuid,
        order: Uuid,
        lines: &[(Uuid, i64)],
        idempotency_key: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (cart, orders, keys) = (self.cart_key(user), self.orders_key(user), self.checkout_keys_key(user));
        let now_taken: u8 = self
            .redis
            .run(PURPOSE, |mut connection| {
                let mut invocation = self.remove_ordered.prepare_invoke();
                invocation
                    .key(&cart)
                    .key(&orders)
                    .key(&keys)
                    .arg(order.to_string())
                    .arg(now_micros())
                    .arg(self.idle_expiry_ms)
                    .arg(idempotency_key.unwrap_or(""))
                    .arg(encode_lines(lines));
                for (product, quantity) in lines {
                    invocation.arg(product.to_string()).arg(*quantity);
                }
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await
            .map_err(unavailable)?;
        Ok(now_taken == 1)
    }

    async fn checkout_lines(
        &self,
        user: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<Vec<(Uuid, i64)>>, StoreError> {
        let keys = self.checkout_keys_key(user);
        let kept: Option<String> = self
            .redis
            .run(PURPOSE, |mut connection| async move {
                redis::cmd("HGET").arg(&keys).arg(idempotency_key).query_async(&mut connection).await
            })
            .await
            .map_err(unavailable)?;
        Ok(kept.as_deref().and_then(decode_lines))
    }

    async fn forget_user(&self, user: Uuid) -> Result<(), StoreError> {
        let (cart, orders, keys) = (self.cart_key(user), self.orders_key(user), self.checkout_keys_key(user));
        self.redis
            .run(PURPOSE, |mut connection| async move {
                redis::cmd("DEL").arg(&cart).arg(&orders).arg(&keys).query_async::<()>(&mut connection).await
            })
            .await
            .map_err(unavailable)
    }
}

//! Where rate-limit windows are counted: in this process, or in Redis so a limit holds across every instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::Script;

use crate::clock::Clock;
use crate::store::StoreKind;

/// Counts hits in fixed windows: the hit's number in the current window, and the time left in it.
#[async_trait]
pub trait Counter: Send + Sync + 'static {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String>;
}

/// Windows in this process: for the embedded store's single instance, on its clock.
#[derive(Default)]
pub struct MemoryCounter {
    windows: Mutex<HashMap<String, (u64, Instant)>>,
    clock: Clock,
}

impl MemoryCounter {
    pub fn new(clock: Clock) -> Self {
        MemoryCounter {
            windows: Mutex::default(),
            clock,
        }
    }
}

#[async_trait]
impl Counter for MemoryCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String> {
        // Monotonic: a wall clock set back must not lock a client out for as long.
        let now = self.clock.instant();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok((entry.0, entry.1 - now))
    }
}

/// Windows in Redis, so a limit holds across every instance sharing it.
pub struct RedisCounter {
    conn: crate::store::RedisConnection,
    prefix: String,
    script: Script,
}

/// The window starts with its first hit and ends by Redis's clock.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
";

impl RedisCounter {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        // Fails fast like the store: a limit that cannot be counted lets the request through.
        let conn = crate::store::redis_connect(url)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            script: Script::new(HIT),
        })
    }
}

#[async_trait]
impl Counter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String> {
        let (n, left): (u64, u64) = self
            .script
            .key(format!("{}:rl:{key}", self.prefix))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok((n, Duration::from_millis(left)))
    }
}

/// The counter that fits the store: Redis counters for a Redis store, else this process's on
/// the embedded store's `clock`.
pub async fn counter(
    kind: &StoreKind,
    prefix: &str,
    clock: &Clock,
) -> Result<Arc<dyn Counter>, String> {
    Ok(match kind {
        StoreKind::Memory => Arc::new(MemoryCounter::new(clock.clone())),
        StoreKind::Redis { url } => Arc::new(RedisCounter::connect(url, prefix).await?),
    })
}

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

    /// One hit in each window, in order: where it can, in one go.
    async fn hit_all(
        &self,
        windows: &[(String, Duration)],
    ) -> Vec<Result<(u64, Duration), String>> {
        futures::future::join_all(windows.iter().map(|(key, window)| self.hit(key, *window))).await
    }
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
    /// A cluster keeps each window where its key hashes: one script can only count one.
    cluster: bool,
}

/// A hit in each window KEYS[i] of ARGV[i] ms; a window starts with its first hit and ends by
/// Redis's clock. Returns each window's count and time left, in order.
const HIT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  local left = redis.call('PTTL', key)
  if left < 0 then
    redis.call('PEXPIRE', key, ARGV[i])
    left = tonumber(ARGV[i])
  end
  out[#out + 1] = n
  out[#out + 1] = left
end
return out
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
            cluster: crate::store::cluster_nodes(url).is_some(),
        })
    }
}

#[async_trait]
impl Counter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String> {
        let mut hits = self.count(&[(key.to_owned(), window)]).await?;
        hits.pop()
            .ok_or_else(|| "no count for the window".to_owned())
    }

    /// On one Redis, every window in one script: a request's limits cost one command, not one
    /// each.
    async fn hit_all(
        &self,
        windows: &[(String, Duration)],
    ) -> Vec<Result<(u64, Duration), String>> {
        if self.cluster {
            let each = windows.iter().map(|(key, window)| self.hit(key, *window));
            return futures::future::join_all(each).await;
        }
        match self.count(windows).await {
            Ok(hits) if hits.len() == windows.len() => hits.into_iter().map(Ok).collect(),
            // A sharding proxy in front of several Redis servers, addressed as one: each window
            // where its key lives, rather than none counted at all.
            Err(e) if e.contains("CROSSSLOT") => {
                let each = windows.iter().map(|(key, window)| self.hit(key, *window));
                futures::future::join_all(each).await
            }
            Ok(_) => vec![Err("a count is missing".to_owned()); windows.len()],
            Err(e) => vec![Err(e); windows.len()],
        }
    }
}

impl RedisCounter {
    async fn count(&self, windows: &[(String, Duration)]) -> Result<Vec<(u64, Duration)>, String> {
        let mut invocation = self.script.prepare_invoke();
        for (key, window) in windows {
            invocation
                .key(format!("{}:rl:{key}", self.prefix))
                .arg(window.as_millis() as u64);
        }
        let flat: Vec<u64> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(flat
            .chunks_exact(2)
            .map(|pair| (pair[0], Duration::from_millis(pair[1])))
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs Redis (and `redis-server` to start a cluster); skips without.
    async fn windows_counted_together_stay_apart(url: &str) {
        let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
        let counter = RedisCounter::connect(url, &prefix).await.unwrap();
        let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        let both = [("a".to_owned(), minute), ("b".to_owned(), hour)];
        counter.hit_all(&both).await;
        counter.hit("a", minute).await.unwrap();
        let hits: Vec<_> = counter
            .hit_all(&both)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!((hits[0].0, hits[1].0), (3, 2), "each window its own count");
        assert!(hits[0].1 <= minute && hits[0].1 > minute - Duration::from_secs(5));
        assert!(
            hits[1].1 <= hour && hits[1].1 > minute,
            "each its own window"
        );
    }

    #[tokio::test]
    async fn windows_counted_in_one_script_stay_apart() {
        if let Some(url) = crate::testing::redis_url() {
            windows_counted_together_stay_apart(&url).await;
        }
    }

    #[tokio::test]
    async fn windows_on_a_cluster_are_counted_where_each_key_lives() {
        if let Some(url) = crate::testing::cluster_url() {
            windows_counted_together_stay_apart(&url).await;
        }
    }
}

//! The Redis store: one hash per session under a Cluster hash tag, every change a Lua compare-and-set judged by Redis's clock.
//!
//! Layout: `<prefix>:{<session id>}` is a hash with `rev` (bumped on every write), `exp`
//! (`expires_at` in ms, for the scripts) and `body` (the session as JSON). The key carries a TTL
//! set with `PEXPIREAT` on Redis's own clock. The braces make every key of a session hash to one
//! Cluster slot, so later per-session keys (challenges, channels) can join it in one script.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{KEPT_AFTER_EXPIRY, Loaded, Replaced, Store, StoreError};
use crate::session::{Session, SessionId, Timestamp};

/// Redis 7.0 has no `SET … IFEQ`, so creation refuses an existing key inside a script.
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rev', '1', 'exp', ARGV[2], 'body', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
";

/// Reads the session and Redis's clock in one round trip.
const LOAD: &str = r"
local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'rev', 'body')
return {t[1], t[2], v[1], v[2]}
";

/// Compare-and-set on the revision; refuses once Redis's clock has reached `exp`.
const REPLACE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'rev', 'exp')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(cur[2]) then return -2 end
redis.call('HSET', KEYS[1], 'body', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
return 1
";

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    insert: Script,
    load: Script,
    replace: Script,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn millis(seconds: &str, micros: &str) -> Result<Timestamp, StoreError> {
    let s: u64 = seconds
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("TIME seconds {seconds:?}")))?;
    let us: u64 = micros
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("TIME micros {micros:?}")))?;
    Ok(Timestamp::from_millis(s * 1000 + us / 1000))
}

impl RedisStore {
    /// Connects (and fails at once if Redis cannot be reached); the manager reconnects by itself later.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            insert: Script::new(INSERT),
            load: Script::new(LOAD),
            replace: Script::new(REPLACE),
        })
    }

    fn key(&self, id: &SessionId) -> String {
        format!("{}:{{{id}}}", self.prefix)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        let (s, us): (String, String) = redis::cmd("TIME")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        millis(&s, &us)
    }

    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let body =
            serde_json::to_string(session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let drop_at = session.expires_at.plus(KEPT_AFTER_EXPIRY);
        let created: i64 = self
            .insert
            .key(self.key(&session.id))
            .arg(body)
            .arg(session.expires_at.as_millis())
            .arg(drop_at.as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Duplicate)
        }
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let (s, us, rev, body): (String, String, Option<u64>, Option<String>) = self
            .load
            .key(self.key(id))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let now = millis(&s, &us)?;
        let (Some(rev), Some(body)) = (rev, body) else {
            return Ok(None);
        };
        let session = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("session {id}: {e}")))?;
        Ok(Some(Loaded { session, rev, now }))
    }

    async fn replace(
        &self,
        id: &SessionId,
        rev: u64,
        session: &Session,
    ) -> Result<Replaced, StoreError> {
        let body =
            serde_json::to_string(session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let outcome: i64 = self
            .replace
            .key(self.key(id))
            .arg(rev)
            .arg(body)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match outcome {
            1 => Replaced::Done,
            0 => Replaced::Stale,
            -1 => Replaced::Gone,
            _ => Replaced::Expired,
        })
    }
}

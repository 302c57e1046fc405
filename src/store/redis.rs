//! The Redis store: one hash per session under a Cluster hash tag, every change a Lua compare-and-set judged by Redis's clock.
//!
//! Layout (braces are Cluster hash tags: every key of one session, or of one app's users, shares a slot):
//! - `<prefix>:{<session id>}`: a hash with `rev` (bumped by Redis on every write), `exp`
//!   (`expires_at` in ms, for the scripts) and `body` (the session as JSON), expiring by
//!   `PEXPIREAT` on Redis's own clock;
//! - `<prefix>:{<session id>}:ceremony`: the pending WebAuthn ceremony, taken with `GETDEL`;
//! - `<prefix>:app:{<app id>}:user:<user id>`: a user and their passkeys as JSON, no expiry;
//! - `<prefix>:app:{<app id>}:ext:<external user id>`: the user id it maps to, no expiry.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{KEPT_AFTER_EXPIRY, Loaded, Replaced, Store, StoreError, decode, encode};
use crate::passkey::{Ceremony, User};
use crate::session::{Session, SessionId, Timestamp, UserId};

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

    fn ceremony_key(&self, id: &SessionId) -> String {
        format!("{}:{{{id}}}:ceremony", self.prefix)
    }

    fn user_key(&self, app_id: &str, id: &UserId) -> String {
        format!("{}:app:{{{app_id}}}:user:{id}", self.prefix)
    }

    fn external_key(&self, app_id: &str, external_user_id: &str) -> String {
        format!("{}:app:{{{app_id}}}:ext:{external_user_id}", self.prefix)
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

    async fn put_ceremony(
        &self,
        id: &SessionId,
        ceremony: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(self.ceremony_key(id))
            .arg(encode(ceremony)?)
            .arg("PXAT")
            .arg(until.as_millis())
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError> {
        let json: Option<String> = redis::cmd("GETDEL")
            .arg(self.ceremony_key(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        json.map(|j| decode("ceremony", &j)).transpose()
    }

    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<User>, StoreError> {
        let json: Option<String> = redis::cmd("GET")
            .arg(self.user_key(app_id, id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        json.map(|j| decode(&format!("user {id}"), &j)).transpose()
    }

    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let id: Option<String> = redis::cmd("GET")
            .arg(self.external_key(app_id, external_user_id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match id {
            Some(id) => self.load_user(app_id, &UserId::new(id)).await,
            None => Ok(None),
        }
    }

    async fn save_user(&self, user: &User) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.user_key(&user.app_id, &user.id))
            .arg(encode(user)?)
            .ignore();
        if let Some(external) = &user.external_user_id {
            pipe.cmd("SET")
                .arg(self.external_key(&user.app_id, external))
                .arg(user.id.as_str())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }
}

//! The Redis store: one hash per session under a Cluster hash tag, every change a Lua compare-and-set judged by Redis's clock.
//!
//! Layout (braces are Cluster hash tags: every key of one session, or of one app's users, shares a slot):
//! - `<prefix>:{<session id>}`: a hash with `rev` (bumped by Redis on every write), `exp`
//!   (`expires_at` in ms, for the scripts) and `body` (the session as JSON), expiring by
//!   `PEXPIREAT` on Redis's own clock;
//! - `<prefix>:{<session id>}:ceremony`: the pending WebAuthn ceremony, taken with `GETDEL`;
//! - `<prefix>:{<session id>}:events`: the pub/sub channel every write of the session announces;
//! - `<prefix>:app:{<app id>}:user:<user id>`: a hash with `rev` and `body` (the user and their
//!   passkeys as JSON), no expiry, changed only by compare-and-set;
//! - `<prefix>:app:{<app id>}:ext:<external user id>`: the user id it maps to, no expiry, written
//!   in the same script that creates the user;
//! - `<prefix>:app:{<app id>}:users`: a set of the app's user ids, for listing them (a user made
//!   before the set existed joins it at its next sign-in);
//! - `<prefix>:app:{<app id>}:signed-out:<user id>`: when the user was last signed out
//!   everywhere (ms), expiring once every token issued before then has;
//! - `<prefix>:signing-keys`: a hash with `version` and `ring` (the signing keys as JSON);
//! - `<prefix>:revoked:{<token id>}`: present while a revoked token would still be valid;
//! - `<prefix>:{webhooks}:due` (a sorted set of delivery ids by when they are due, in ms),
//!   `<prefix>:{webhooks}:jobs` (a hash of id to delivery JSON) and `<prefix>:{webhooks}:claims`
//!   (id to the token of the instance holding it): the webhook queue, one slot;
//! - `<prefix>:audit`: a stream of audit events (field `e`, the event as JSON), trimmed by
//!   entry id (Redis's clock) to the retention on every append.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, ScriptInvocation, Value,
};

use super::pubsub::Hub;
use super::{
    Created, KEPT_AFTER_EXPIRY, Loaded, LoadedUser, Replaced, Store, StoreError, StoredKeys,
    Subscription, decode, encode,
};

use crate::account::{Ceremony, User};
use crate::audit::AuditEvent;
use crate::outbox::{Claimed, Delivery};
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

/// Compare-and-set on the revision; refuses once Redis's clock has reached `exp`. The notice is
/// published in the same script (`ARGV[4]`: `PUBLISH`, or `SPUBLISH` on a cluster, where the
/// channel shares the session's slot), so no write can go unannounced.
const REPLACE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'rev', 'exp')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(cur[2]) then return -2 end
redis.call('HSET', KEYS[1], 'body', ARGV[2])
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call(ARGV[4], ARGV[3], rev)
return 1
";

/// Marks a session seen expired, once: only a session whose `exp` Redis's clock has passed.
const NOTE_EXPIRY: &str = r"
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(exp) then return 0 end
return redis.call('HSETNX', KEYS[1], 'expiry_noted', '1')
";

/// The most events the trail keeps on Redis, whatever the retention (a few hundred MB at most).
pub const AUDIT_MAX_EVENTS: u64 = 1_000_000;

/// Appends an event, dropping those past retention (exactly, by entry id) and, should there be
/// more than ARGV[2], the oldest (approximately: whole stream nodes at a time).
const APPEND_AUDIT: &str = r"
local id = redis.call('XADD', KEYS[1], 'MINID', ARGV[1], '*', 'e', ARGV[3])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
return id
";

/// Queues a delivery, due now (Redis's clock).
const ENQUEUE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
";

/// Takes the first due delivery: it becomes due again only when the lease (ARGV[1] ms) ends,
/// and the claim token (ARGV[2]) is what finishing or rescheduling it must show.
const CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then return false end
local id = due[1]
local job = redis.call('HGET', KEYS[2], id)
if not job then
  redis.call('ZREM', KEYS[1], id)
  return false
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
redis.call('HSET', KEYS[3], id, ARGV[2])
return {job, tostring(now)}
";

/// Ends a delivery (ARGV[3] absent) or makes it due again at ARGV[3] as ARGV[4] says, if the
/// claim ARGV[2] still holds it.
const SETTLE: &str = r"
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if ARGV[3] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
";

/// Creates a user, lists it in its app's set and claims its external id in one step, refusing
/// if either id is taken. KEYS[3] is the external id's key, absent for a user without one; every
/// key shares the app's hash tag.
const CREATE_USER: &str = r"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'rev', '1', 'body', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[2]) end
return 1
";

/// Compare-and-set of a user on its revision (which also lists a user made before the app's set).
const REPLACE_USER: &str = r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return -1 end
if rev ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('SADD', KEYS[2], ARGV[3])
return 1
";

/// Removes a user on its revision, with its entry in the app's set and its external id (KEYS[3],
/// when it has one).
const REMOVE_USER: &str = r"
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return -1 end
if rev ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
return 1
";

/// Records a sign-out unless a later one is already there.
const SIGN_OUT: &str = r"
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if at >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
";

/// Compare-and-set of the key ring on its version (0 when none is stored yet).
const SAVE_KEYS: &str = r"
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version + 1 ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'ring', ARGV[2])
return 1
";

/// How long any Redis connection may take to connect, or to answer a command. Redis answers in
/// well under a millisecond; past this it is down or stalled, and the request is better refused
/// at once (503) than left hanging.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// A connection manager that fails fast: short timeouts, one reconnect attempt per failure (the
/// next command tries again), so an outage costs each request a quarter second at most and the
/// first command after Redis returns finds it.
pub async fn manager(client: &redis::Client) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(0);
    client.get_connection_manager_with_config(config).await
}

/// The node URLs of `redis+cluster://[user:password@]host:port,host:port[/…]` (`rediss+…` once
/// the redis crate is built with TLS), each a plain `redis://` URL with the same credentials;
/// `None` for a one-node URL.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis://", rest)
    } else {
        ("rediss://", url.strip_prefix("rediss+cluster://")?)
    };
    // Credentials first (up to the last '@', so a password may hold '/', '?' or '@'), then
    // the hosts up to the path, query or fragment that every node URL keeps.
    let (credentials, rest) = match rest.rfind('@') {
        Some(at) => rest.split_at(at + 1),
        None => ("", rest),
    };
    let (hosts, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    Some(
        hosts
            .split(',')
            .map(|host| format!("{scheme}{credentials}{}{path}", host.trim()))
            .collect(),
    )
}

/// One Redis, or a Redis Cluster whose client routes each command to the node that holds its key.
#[derive(Clone)]
pub enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Node(_) => "Redis",
            Connection::Cluster(_) => "Redis Cluster",
        })
    }
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A cluster client that fails as fast as [`manager`]: short timeouts, no retries. With
/// `pushes`, it speaks RESP3 and delivers sharded pub/sub messages there.
pub fn cluster_client(
    nodes: &[String],
    pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> Result<ClusterClient, RedisError> {
    // No retries of its own: a command whose reply was lost may have run, and a write that must
    // run once is never sent again (see `RedisStore::send`, which resends only what a shard
    // refused before running it).
    let mut builder = ClusterClient::builder(nodes.to_vec())
        .connection_timeout(REDIS_TIMEOUT)
        .response_timeout(REDIS_TIMEOUT)
        .retries(0);
    if let Some(pushes) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
    }
    builder.build()
}

/// Connects to the Redis or Redis Cluster at `url`.
pub async fn connect(url: &str) -> Result<Connection, RedisError> {
    match cluster_nodes(url) {
        None => manager(&redis::Client::open(url)?)
            .await
            .map(Connection::Node),
        Some(nodes) => cluster_client(&nodes, None)?
            .get_async_connection()
            .await
            .map(Connection::Cluster),
    }
}

/// Lists every user in its app's set (`<prefix>:app:{<app>}:users`), for users made before the
/// sets existed: without it `users list` and `passkeys revoke` would miss them until their next
/// sign-in. Scans each node (in a cluster, a user's key and its app's set share a slot, so the
/// node that holds one holds the other); returns how many users were listed anew.
pub async fn index_users(url: &str, prefix: &str) -> Result<u64, String> {
    let nodes = cluster_nodes(url).unwrap_or_else(|| vec![url.to_owned()]);
    let pattern = format!("{prefix}:app:*:user:*");
    let mut added = 0;
    for node in nodes {
        let client = redis::Client::open(node.as_str()).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) = scan
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            for key in &keys {
                let Some((set, id)) = user_set(key, prefix) else {
                    continue;
                };
                let mut add = redis::cmd("SADD");
                add.arg(set).arg(id);
                // A replica's keys are its master's to list: refused there, listed there.
                if let Ok(n) = add.query_async::<u64>(&mut conn).await {
                    added += n;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(added)
}

/// `<prefix>:app:{<app>}:user:<id>` → (`<prefix>:app:{<app>}:users`, `<id>`).
fn user_set<'k>(key: &'k str, prefix: &str) -> Option<(String, &'k str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(":app:{")?;
    let (app, id) = rest.split_once("}:user:")?;
    Some((format!("{prefix}:app:{{{app}}}:users"), id))
}

/// Whether the Redis at `url` keeps its data across a restart: an append-only file or snapshots.
/// Users and passkeys live only there, so a Redis that keeps nothing loses every account when it
/// restarts. The error says what to set, naming the server by host and port only (a URL may hold
/// a password).
pub async fn check_persistence(url: &str) -> Result<(), String> {
    // In a cluster, each node keeps its own slots: every listed node must keep them.
    if let Some(nodes) = cluster_nodes(url) {
        for node in nodes {
            Box::pin(check_persistence(&node)).await?;
        }
        return Ok(());
    }
    let server = url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(6379))))
        .unwrap_or_else(|| "the Redis server".into());
    let client = redis::Client::open(url).map_err(|e| format!("{server}: {e}"))?;
    let mut conn = manager(&client)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let setting = async |name: &str, conn: &mut ConnectionManager| {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(conn)
            .await
            .map_err(|e| {
                format!(
                    "cannot read {name} from {server} ({e}); if it keeps its data on disk, set \
                     allow_volatile_redis = true to start without checking"
                )
            })?;
        Ok::<_, String>(pair.get(1).cloned().unwrap_or_default())
    };
    let appendonly = setting("appendonly", &mut conn).await?;
    let save = setting("save", &mut conn).await?;
    if appendonly == "yes" || !save.trim().is_empty() {
        return Ok(());
    }
    Err(format!(
        "{server} keeps nothing on disk (appendonly no, save \"\"): every user and passkey would be \
         lost when it restarts. Set `appendonly yes` (or `save 60 1`) in its redis.conf; for tests \
         only, allow_volatile_redis = true starts anyway"
    ))
}

/// What [`RedisStore::run`] can send.
#[derive(Clone, Copy)]
enum Command<'a> {
    One(&'a Cmd),
    Script(&'a ScriptInvocation<'a>),
}

pub struct RedisStore {
    conn: Connection,
    /// `PUBLISH`, or `SPUBLISH` on a cluster: the notice goes to the shard of its session only.
    publish: &'static str,
    prefix: String,
    insert: Script,
    load: Script,
    replace: Script,
    note_expiry: Script,
    append_audit: Script,
    enqueue: Script,
    claim: Script,
    settle: Script,
    create_user: Script,
    replace_user: Script,
    remove_user: Script,
    sign_out: Script,
    save_keys: Script,
    hub: Hub,
    /// Redis's clock between readings: most calls to `now` cost no round trip.
    clock: crate::clock::Carried,
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
        let conn = connect(url).await.map_err(unavailable)?;
        let (hub, publish) = match cluster_nodes(url) {
            None => (
                Hub::start(redis::Client::open(url).map_err(unavailable)?),
                "PUBLISH",
            ),
            Some(nodes) => (Hub::start_sharded(&nodes).await?, "SPUBLISH"),
        };
        Ok(Self {
            conn,
            publish,
            prefix: prefix.to_owned(),
            insert: Script::new(INSERT),
            load: Script::new(LOAD),
            replace: Script::new(REPLACE),
            note_expiry: Script::new(NOTE_EXPIRY),
            append_audit: Script::new(APPEND_AUDIT),
            enqueue: Script::new(ENQUEUE),
            claim: Script::new(CLAIM),
            settle: Script::new(SETTLE),
            create_user: Script::new(CREATE_USER),
            replace_user: Script::new(REPLACE_USER),
            remove_user: Script::new(REMOVE_USER),
            sign_out: Script::new(SIGN_OUT),
            save_keys: Script::new(SAVE_KEYS),
            hub,
            clock: crate::clock::Carried::default(),
        })
    }

    /// Reads Redis's clock (a round trip) and carries it on from there.
    async fn read_clock(&self) -> Result<Timestamp, StoreError> {
        let asked = std::time::Instant::now();
        let time = redis::cmd("TIME");
        let (s, us): (String, String) = self.run(Command::One(&time)).await?;
        // Redis read its clock somewhere within the round trip: carried on from the middle.
        let read_at = asked + asked.elapsed() / 2;
        Ok(self.clock.read(read_at, millis(&s, &us)?))
    }

    /// How many pub/sub connections this instance has opened (more than one: it reconnected).
    pub fn pubsub_connections(&self) -> u64 {
        self.hub.connections()
    }

    /// Channels carry the session's hash tag too, ready for sharded pub/sub in a Cluster.
    fn channel(&self, id: &SessionId) -> String {
        format!("{}:{{{id}}}:events", self.prefix)
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

    /// Runs a read (or a write that may safely land twice), and once more if a dropped connection
    /// cut it off (Redis restarted, a proxy closed it): the manager reconnects on the failure, so
    /// the retry meets a live connection instead of the person meeting an error.
    async fn run<T: FromRedisValue>(&self, command: Command<'_>) -> Result<T, StoreError> {
        self.send(command, true).await
    }

    /// Sends a write that must not be applied twice: a retry after a lost reply would answer
    /// "stale" or "exists" for what the first attempt did.
    async fn run_once<T: FromRedisValue>(&self, command: Command<'_>) -> Result<T, StoreError> {
        self.send(command, false).await
    }

    async fn send<T: FromRedisValue>(
        &self,
        command: Command<'_>,
        may_retry: bool,
    ) -> Result<T, StoreError> {
        let mut retried = !may_retry;
        let mut refused_once = false;
        loop {
            let mut conn = self.conn.clone();
            let result = match command {
                Command::One(cmd) => cmd.query_async(&mut conn).await,
                Command::Script(script) => script.invoke_async(&mut conn).await,
            };
            match result {
                Err(e) if !retried && (e.is_connection_dropped() || e.is_io_error()) => {
                    tracing::warn!(error = %e, "Redis connection dropped; retrying once");
                    retried = true;
                }
                // MOVED, ASK, TRYAGAIN, CLUSTERDOWN: the shard refused it before running it, so
                // even a write may go once more (the client has learnt where the slot went).
                Err(e) if !refused_once && e.is_cluster_error() => {
                    tracing::debug!(error = %e, "Redis Cluster redirected a command; sending it again");
                    refused_once = true;
                }
                other => return other.map_err(unavailable),
            }
        }
    }

    fn users_key(&self, app_id: &str) -> String {
        format!("{}:app:{{{app_id}}}:users", self.prefix)
    }

    fn signed_out_key(&self, app_id: &str, id: &UserId) -> String {
        format!("{}:app:{{{app_id}}}:signed-out:{id}", self.prefix)
    }

    fn external_key(&self, app_id: &str, external_user_id: &str) -> String {
        format!("{}:app:{{{app_id}}}:ext:{external_user_id}", self.prefix)
    }

    /// The queue's keys: due, jobs, claims (one hash tag, so one slot for the scripts).
    fn queue_keys(&self) -> [String; 3] {
        ["due", "jobs", "claims"].map(|k| format!("{}:{{webhooks}}:{k}", self.prefix))
    }

    /// Ends the claimed delivery, or (`again`) makes it due at that time as that JSON says.
    async fn settle(
        &self,
        claim: &Claimed,
        again: Option<(Timestamp, String)>,
    ) -> Result<bool, StoreError> {
        let [due, jobs, claims] = self.queue_keys();
        let mut script = self.settle.key(due);
        script
            .key(jobs)
            .key(claims)
            .arg(&claim.delivery.id)
            .arg(&claim.token);
        if let Some((at, json)) = again {
            script.arg(at.as_millis()).arg(json);
        }
        // Safe to send twice: the claim is spent by the first.
        let settled: i64 = self.run(Command::Script(&script)).await?;
        Ok(settled == 1)
    }

    fn audit_key(&self) -> String {
        format!("{}:audit", self.prefix)
    }

    fn keys_key(&self) -> String {
        format!("{}:signing-keys", self.prefix)
    }

    fn revoked_key(&self, jti: &str) -> String {
        format!("{}:revoked:{{{jti}}}", self.prefix)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        match self.clock.at(std::time::Instant::now()) {
            Some(now) => Ok(now),
            None => self.read_clock().await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read_clock().await.map(|_| ())
    }

    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let drop_at = session.expires_at.plus(KEPT_AFTER_EXPIRY);
        let mut script = self.insert.key(self.key(&session.id));
        script
            .arg(encode(session)?)
            .arg(session.expires_at.as_millis())
            .arg(drop_at.as_millis());
        let created: i64 = self.run_once(Command::Script(&script)).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Duplicate)
        }
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let script = self.load.key(self.key(id));
        let (s, us, rev, body): (String, String, Option<u64>, Option<String>) =
            self.run(Command::Script(&script)).await?;
        let now = millis(&s, &us)?;
        let (Some(rev), Some(body)) = (rev, body) else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            session: decode(&format!("session {id}"), &body)?,
            rev,
            now,
        }))
    }

    async fn replace(
        &self,
        id: &SessionId,
        rev: u64,
        session: &Session,
    ) -> Result<Replaced, StoreError> {
        let mut script = self.replace.key(self.key(id));
        script
            .arg(rev)
            .arg(encode(session)?)
            .arg(self.channel(id))
            .arg(self.publish);
        let outcome: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(match outcome {
            1 => Replaced::Done,
            0 => Replaced::Stale,
            -1 => Replaced::Gone,
            _ => Replaced::Expired,
        })
    }

    async fn note_expiry(&self, id: &SessionId) -> Result<bool, StoreError> {
        let script = self.note_expiry.key(self.key(id));
        // Never sent twice: a lost reply would have a second attempt answer "not first".
        let first: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(first == 1)
    }

    async fn put_ceremony(
        &self,
        id: &SessionId,
        ceremony: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.ceremony_key(id))
            .arg(encode(ceremony)?)
            .arg("PXAT")
            .arg(until.as_millis());
        self.run(Command::One(&set)).await
    }

    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError> {
        let mut getdel = redis::cmd("GETDEL");
        getdel.arg(self.ceremony_key(id));
        let json: Option<String> = self.run_once(Command::One(&getdel)).await?;
        json.map(|j| decode("ceremony", &j)).transpose()
    }

    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<LoadedUser>, StoreError> {
        let mut get = redis::cmd("HMGET");
        get.arg(self.user_key(app_id, id)).arg("rev").arg("body");
        let (rev, body): (Option<u64>, Option<String>) = self.run(Command::One(&get)).await?;
        let (Some(rev), Some(body)) = (rev, body) else {
            return Ok(None);
        };
        Ok(Some(LoadedUser {
            user: decode(&format!("user {id}"), &body)?,
            rev,
        }))
    }

    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.external_key(app_id, external_user_id));
        let id: Option<String> = self.run(Command::One(&get)).await?;
        match id {
            Some(id) => Ok(self
                .load_user(app_id, &UserId::new(id))
                .await?
                .map(|loaded| loaded.user)),
            None => Ok(None),
        }
    }

    async fn create_user(&self, user: &User) -> Result<Created, StoreError> {
        let mut script = self.create_user.key(self.user_key(&user.app_id, &user.id));
        script.key(self.users_key(&user.app_id));
        if let Some(external) = &user.external_user_id {
            script.key(self.external_key(&user.app_id, external));
        }
        script.arg(encode(user)?).arg(user.id.as_str());
        let outcome: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(match outcome {
            1 => Created::Done,
            0 => Created::ExternalIdTaken,
            _ => Created::Exists,
        })
    }

    async fn replace_user(&self, user: &User, rev: u64) -> Result<Replaced, StoreError> {
        let mut script = self.replace_user.key(self.user_key(&user.app_id, &user.id));
        script.key(self.users_key(&user.app_id));
        script.arg(rev).arg(encode(user)?).arg(user.id.as_str());
        let outcome: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(match outcome {
            1 => Replaced::Done,
            0 => Replaced::Stale,
            _ => Replaced::Gone,
        })
    }

    async fn list_users(&self, app_id: &str) -> Result<Vec<LoadedUser>, StoreError> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(self.users_key(app_id));
        let mut ids: Vec<String> = self.run(Command::One(&members)).await?;
        ids.sort();
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            // Removed meanwhile: not listed.
            if let Some(user) = self.load_user(app_id, &UserId::new(id)).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    async fn remove_user(
        &self,
        app_id: &str,
        id: &UserId,
        rev: u64,
    ) -> Result<Replaced, StoreError> {
        let Some(loaded) = self.load_user(app_id, id).await? else {
            return Ok(Replaced::Gone);
        };
        if loaded.rev != rev {
            return Ok(Replaced::Stale);
        }
        let mut script = self.remove_user.key(self.user_key(app_id, id));
        script.key(self.users_key(app_id));
        if let Some(external) = &loaded.user.external_user_id {
            script.key(self.external_key(app_id, external));
        }
        script.arg(rev).arg(id.as_str());
        let outcome: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(match outcome {
            1 => Replaced::Done,
            0 => Replaced::Stale,
            _ => Replaced::Gone,
        })
    }

    async fn sign_out_user(
        &self,
        app_id: &str,
        id: &UserId,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut script = self.sign_out.key(self.signed_out_key(app_id, id));
        script.arg(at.as_millis()).arg(until.as_millis());
        // Safe to send twice: the second finds the same time there and leaves it.
        let _: i64 = self.run(Command::Script(&script)).await?;
        Ok(())
    }

    async fn signed_out_at(
        &self,
        app_id: &str,
        id: &UserId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.signed_out_key(app_id, id));
        let at: Option<u64> = self.run(Command::One(&get)).await?;
        Ok(at.map(Timestamp::from_millis))
    }

    async fn load_keys(&self) -> Result<Option<StoredKeys>, StoreError> {
        let mut get = redis::cmd("HMGET");
        get.arg(self.keys_key()).arg("version").arg("ring");
        let (version, json): (Option<u64>, Option<String>) = self.run(Command::One(&get)).await?;
        Ok(version
            .zip(json)
            .map(|(version, json)| StoredKeys { json, version }))
    }

    async fn save_keys(&self, json: &str, version: u64) -> Result<bool, StoreError> {
        let mut script = self.save_keys.key(self.keys_key());
        script.arg(version).arg(json);
        let saved: i64 = self.run_once(Command::Script(&script)).await?;
        Ok(saved == 1)
    }

    async fn revoke_token(&self, jti: &str, until: Timestamp) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.revoked_key(jti))
            .arg(1)
            .arg("PXAT")
            .arg(until.as_millis());
        self.run(Command::One(&set)).await
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.revoked_key(jti));
        let n: i64 = self.run(Command::One(&exists)).await?;
        Ok(n == 1)
    }

    async fn append_audit(&self, event: &AuditEvent, keep: Duration) -> Result<(), StoreError> {
        let oldest = event
            .at
            .as_millis()
            .saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
        let mut script = self.append_audit.key(self.audit_key());
        script.arg(oldest).arg(AUDIT_MAX_EVENTS).arg(encode(event)?);
        // Once only: a retry after a lost reply would write the event twice.
        let _: String = self.run_once(Command::Script(&script)).await?;
        Ok(())
    }

    async fn read_audit(&self, since: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let mut events = Vec::new();
        let mut from = since.as_millis().to_string();
        loop {
            let mut range = redis::cmd("XRANGE");
            range
                .arg(self.audit_key())
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(1000);
            let entries: Entries = self.run(Command::One(&range)).await?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            from = format!("({last}");
            for (_, fields) in &entries {
                for (_, json) in fields.iter().filter(|(name, _)| name == "e") {
                    let event: AuditEvent = decode("audit event", json)?;
                    if event.at >= since {
                        events.push(event);
                    }
                }
            }
        }
        Ok(events)
    }

    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let [due, jobs, _] = self.queue_keys();
        let mut script = self.enqueue.key(due);
        script.key(jobs).arg(&delivery.id).arg(encode(delivery)?);
        // Safe to send twice: a delivery already queued (perhaps claimed) is left as it is.
        let _: i64 = self.run(Command::Script(&script)).await?;
        Ok(())
    }

    async fn claim_delivery(&self, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let [due, jobs, claims] = self.queue_keys();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut script = self.claim.key(due);
        script
            .key(jobs)
            .key(claims)
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX))
            .arg(&token);
        // Once: a lost reply leaves a lease that simply runs out.
        let claimed: Option<(String, String)> = self.run_once(Command::Script(&script)).await?;
        let Some((job, now)) = claimed else {
            return Ok(None);
        };
        let now = now
            .parse::<u64>()
            .map_err(|e| StoreError::Corrupt(format!("queue clock: {e}")))?;
        Ok(Some(Claimed {
            delivery: decode("webhook delivery", &job)?,
            token,
            now: Timestamp::from_millis(now),
        }))
    }

    async fn finish_delivery(&self, claim: &Claimed) -> Result<bool, StoreError> {
        self.settle(claim, None).await
    }

    async fn retry_delivery(
        &self,
        claim: &Claimed,
        delivery: &Delivery,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.settle(claim, Some((at, encode(delivery)?))).await
    }

    async fn subscribe(&self, id: &SessionId) -> Result<Subscription, StoreError> {
        self.hub.subscribe(self.channel(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn a_cluster_url_names_each_node_with_the_same_credentials() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://:p@ss/w?rd@10.0.0.5:6379, 10.0.0.6:6379/?protocol=3")
                .unwrap(),
            [
                "redis://:p@ss/w?rd@10.0.0.5:6379/?protocol=3",
                "redis://:p@ss/w?rd@10.0.0.6:6379/?protocol=3"
            ]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://[::1]:7000,[::1]:7001").unwrap(),
            ["redis://[::1]:7000", "redis://[::1]:7001"]
        );
    }
}

//! The embedded store: sessions in this process's memory, users and passkeys also in a file that survives restarts.
//!
//! Longer than 400 lines: it is one whole backend of the `Store` trait, kept in one file to be read
//! side by side with `redis.rs`, method for method.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{
    CHANNEL_DEPTH, Created, KEPT_AFTER_EXPIRY, Loaded, LoadedUser, Notice, Replaced, Store,
    StoreError, StoredKeys, Subscription, decode, encode,
};
use crate::account::{Ceremony, User};
use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::outbox::{Claimed, Delivery};
use crate::session::{Session, SessionId, Timestamp, UserId};

/// How often an insert may also sweep out revocations and sign-outs past their time (few, and
/// scanned whole); sessions and ceremonies leave through their expiry indexes at every insert.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

const USERS_FILE: &str = "users.json";

/// The signing keys, apart from the users: `qr-bridge keys` rewrites this file while the bridge
/// runs, and the bridge reads it again on every refresh.
const KEYS_FILE: &str = "signing-keys.json";

/// Revoked token ids with when they expire: a restart must not bring a revoked token back.
const REVOKED_FILE: &str = "revoked-tokens.json";

/// Users signed out everywhere, with when and until when: as for revocations, a restart must
/// not bring their tokens back.
const SIGNED_OUT_FILE: &str = "signed-out.json";

/// The audit trail, one JSON event per line, appended as events happen and rewritten without
/// the expired ones once they are many.
const AUDIT_FILE: &str = "audit.jsonl";

/// Webhook deliveries waiting to be sent, rewritten on every change: a restart sends what was
/// still waiting (a claim in flight at the crash is sent again: at least once).
const WEBHOOKS_FILE: &str = "webhooks.json";

/// A queued delivery: when it is due, in which order it came, and who holds it until when.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Queued {
    delivery: Delivery,
    due: Timestamp,
    seq: u64,
    #[serde(skip)]
    claim: Option<(String, Timestamp)>,
}

/// The most events the embedded trail keeps, whatever the retention: it lives in this process's
/// memory (about half a kilobyte each).
pub const AUDIT_MAX_EVENTS: usize = 100_000;

/// How many expired events may wait in the audit file before it is rewritten without them.
const AUDIT_REWRITE_AFTER: usize = 1000;

/// One user's sign-out as kept in memory and in [`SIGNED_OUT_FILE`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SignedOut {
    app_id: String,
    user_id: UserId,
    at: Timestamp,
    until: Timestamp,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Where users are written; `None` keeps them in memory only (tests).
    users_file: Option<PathBuf>,
    /// Where the signing keys are kept; `None` keeps them in memory only (tests).
    keys_file: Option<PathBuf>,
    /// Where revocations are kept; `None` keeps them in memory only (tests).
    revoked_file: Option<PathBuf>,
    /// Where sign-outs are kept; `None` keeps them in memory only (tests).
    signed_out_file: Option<PathBuf>,
    /// Where the audit trail is kept; `None` keeps it in memory only (tests).
    audit_file: Option<PathBuf>,
    /// Where waiting webhook deliveries are kept; `None` keeps them in memory only (tests).
    webhooks_file: Option<PathBuf>,
    /// Serialises file writes so that a newer snapshot is never overwritten by an older one.
    write_lock: tokio::sync::Mutex<()>,
    /// One channel per watched session; shared with the subscriptions, which remove it when the
    /// last one goes.
    channels: Arc<Mutex<HashMap<SessionId, broadcast::Sender<Notice>>>>,
    clock: Clock,
}

#[derive(Default)]
struct Inner {
    /// Boxed: when the map grows it moves every slot under the lock, and a pointer moves faster
    /// than a whole session (at a million sessions, init's p99 fell from 190 ms to a few ms).
    sessions: HashMap<SessionId, Box<Entry>>,
    /// Sessions by the time they leave the store: a sweep takes what is due from the front, so
    /// its cost follows the sessions that expire, not all of them. An entry whose session was
    /// replaced by a newer one of the same id is skipped when it comes up.
    leaving: std::collections::BTreeSet<(Timestamp, SessionId)>,
    /// Ceremonies are kept as JSON, as in Redis, so both stores hand out a fresh value on take.
    ceremonies: HashMap<SessionId, (String, Timestamp)>,
    /// Ceremonies by the time they lapse, as `leaving` for sessions.
    lapsing: std::collections::BTreeSet<(Timestamp, SessionId)>,
    /// Each user with its revision.
    users: HashMap<(String, UserId), (User, u64)>,
    external_ids: HashMap<(String, String), UserId>,
    /// Revoked token ids, until the tokens would have expired anyway.
    revoked: HashMap<String, Timestamp>,
    /// Users signed out everywhere.
    signed_out: HashMap<(String, UserId), SignedOut>,
    /// The audit trail, oldest first.
    audit: std::collections::VecDeque<AuditEvent>,
    /// Events dropped from `audit` since the file was last rewritten.
    audit_dropped: usize,
    /// Webhook deliveries by id.
    queue: HashMap<String, Queued>,
    queue_seq: u64,
    /// The key ring when there is no keys file.
    keys: Option<StoredKeys>,
    last_sweep: u64,
}

struct Entry {
    session: Session,
    rev: u64,
    /// Someone has seen it expired (see `Store::note_expiry`).
    expiry_noted: bool,
}

fn dropped_at(session: &Session) -> Timestamp {
    session.expires_at.plus(KEPT_AFTER_EXPIRY)
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

/// The JSON in `path`, or `None` when there is no such file yet.
fn read_if_there<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode(&path.display().to_string(), &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Adds one line to `path`, synced, so an event written is an event kept.
fn append_line(path: &Path, line: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    // Addresses and devices of people: the owner's to read, like the other files here.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| io(path, e))?;
    file.sync_data().map_err(|e| io(path, e))
}

/// Replaces `path` with `text` through a temporary file and a rename, syncing both file and
/// directory, so a crash leaves either the old file or the new one, never a torn one.
fn write_atomically(path: &Path, text: &str) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| io(dir, e))?;
    file.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
    file.as_file().sync_all().map_err(|e| io(path, e))?;
    file.persist(path).map_err(|e| io(path, e.error))?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

impl MemoryStore {
    /// An embedded store whose users live in `<data_dir>/users.json`, read back now if present.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, Clock::system())
    }

    /// An embedded store in memory only, on `clock` (tests turn it rather than sleep).
    pub fn in_memory(clock: Clock) -> Self {
        MemoryStore {
            clock,
            ..MemoryStore::default()
        }
    }

    /// As [`MemoryStore::open`], on `clock`.
    pub fn open_with(data_dir: &Path, clock: Clock) -> Result<Self, StoreError> {
        let path = data_dir.join(USERS_FILE);
        let store = MemoryStore {
            clock,
            users_file: Some(path.clone()),
            keys_file: Some(data_dir.join(KEYS_FILE)),
            revoked_file: Some(data_dir.join(REVOKED_FILE)),
            signed_out_file: Some(data_dir.join(SIGNED_OUT_FILE)),
            audit_file: Some(data_dir.join(AUDIT_FILE)),
            webhooks_file: Some(data_dir.join(WEBHOOKS_FILE)),
            ..MemoryStore::default()
        };
        if let Some(queue) = read_if_there::<Vec<Queued>>(&data_dir.join(WEBHOOKS_FILE))? {
            let mut inner = store.lock();
            inner.queue_seq = queue.iter().map(|q| q.seq + 1).max().unwrap_or(0);
            inner.queue = queue
                .into_iter()
                .map(|q| (q.delivery.id.clone(), q))
                .collect();
        }
        let audit_path = data_dir.join(AUDIT_FILE);
        match std::fs::read_to_string(&audit_path) {
            Ok(text) => {
                let mut inner = store.lock();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    // A line cut short by a crash mid-append is the only one that may not parse.
                    match serde_json::from_str::<AuditEvent>(line) {
                        Ok(event) => inner.audit.push_back(event),
                        Err(e) => tracing::warn!(error = %e, "skipping an unreadable audit line"),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&audit_path, e)),
        }
        if let Some(revoked) = read_if_there(&data_dir.join(REVOKED_FILE))? {
            store.lock().revoked = revoked;
        }
        if let Some(signed_out) = read_if_there::<Vec<SignedOut>>(&data_dir.join(SIGNED_OUT_FILE))?
        {
            store.lock().signed_out = signed_out
                .into_iter()
                .map(|s| ((s.app_id.clone(), s.user_id.clone()), s))
                .collect();
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let users: Vec<User> = decode(&path.display().to_string(), &text)?;
                let mut inner = store.lock();
                for user in users {
                    inner.index(user, 1);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path, e)),
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every write below is one map operation, so a panic elsewhere cannot leave a half-written
        // entry and a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Entries past retention are treated as gone at once and removed in batches, so reads never
    /// see them and memory stays bounded without a background task.
    fn live(&self, id: &SessionId, now: Timestamp) -> Option<&Entry> {
        self.sessions
            .get(id)
            .map(Box::as_ref)
            .filter(|e| now < dropped_at(&e.session))
    }

    fn sweep(&mut self, now: Timestamp) {
        while let Some(&(at, id)) = self.leaving.first().filter(|(at, _)| *at <= now) {
            self.leaving.pop_first();
            if self
                .sessions
                .get(&id)
                .is_some_and(|e| dropped_at(&e.session) == at)
            {
                self.sessions.remove(&id);
            }
        }
        while let Some(&(at, id)) = self.lapsing.first().filter(|(at, _)| *at <= now) {
            self.lapsing.pop_first();
            if self
                .ceremonies
                .get(&id)
                .is_some_and(|(_, until)| *until == at)
            {
                self.ceremonies.remove(&id);
            }
        }
        if now.as_millis().saturating_sub(self.last_sweep) >= SWEEP_EVERY.as_millis() as u64 {
            self.revoked.retain(|_, until| now < *until);
            self.signed_out.retain(|_, s| now < s.until);
            self.last_sweep = now.as_millis();
        }
    }

    fn index(&mut self, user: User, rev: u64) {
        if let Some(external) = &user.external_user_id {
            self.external_ids
                .insert((user.app_id.clone(), external.clone()), user.id.clone());
        }
        self.users
            .insert((user.app_id.clone(), user.id.clone()), (user, rev));
    }
}

impl MemoryStore {
    /// Writes every user to the file, after the change just made under the lock.
    async fn persist_users(&self) -> Result<(), StoreError> {
        self.write_snapshot(self.users_file.as_ref(), |inner| {
            let users: Vec<&User> = inner.users.values().map(|(u, _)| u).collect();
            encode(&users)
        })
        .await
    }

    /// Writes what `snapshot` takes of the state (under the lock, after the change just made)
    /// to `path`; nothing when the store keeps no files.
    async fn write_snapshot(
        &self,
        path: Option<&PathBuf>,
        snapshot: impl FnOnce(&mut Inner) -> Result<String, StoreError>,
    ) -> Result<(), StoreError> {
        let Some(path) = path.cloned() else {
            return Ok(());
        };
        let _writing = self.write_lock.lock().await;
        // Taken under the write lock, so the file written last holds every change before it.
        let text = snapshot(&mut self.lock())?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &text))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn persist_queue(&self) -> Result<(), StoreError> {
        self.write_snapshot(self.webhooks_file.as_ref(), |inner| {
            let mut queue: Vec<&Queued> = inner.queue.values().collect();
            queue.sort_by_key(|q| q.seq);
            encode(&queue)
        })
        .await
    }

    fn read_keys_file(path: &Path) -> Result<Option<StoredKeys>, StoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: KeysFile = decode(&path.display().to_string(), &text)?;
                Ok(Some(StoredKeys {
                    json: file.ring.to_string(),
                    version: file.version,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path, e)),
        }
    }
}

/// The keys file: the ring as the token module wrote it, and its version.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeysFile {
    version: u64,
    ring: serde_json::Value,
}

#[async_trait]
impl Store for MemoryStore {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        Ok(self.clock.now())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now);
        if inner.live(&session.id, now).is_some() {
            return Err(StoreError::Duplicate);
        }
        inner.leaving.insert((dropped_at(session), session.id));
        inner.sessions.insert(
            session.id,
            Box::new(Entry {
                session: session.clone(),
                rev: 1,
                expiry_noted: false,
            }),
        );
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let now = self.clock.now();
        let inner = self.lock();
        Ok(inner.live(id, now).map(|e| Loaded {
            session: e.session.clone(),
            rev: e.rev,
            now,
        }))
    }

    async fn replace(
        &self,
        id: &SessionId,
        rev: u64,
        session: &Session,
    ) -> Result<Replaced, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(current) = inner.live(id, now) else {
            return Ok(Replaced::Gone);
        };
        if current.rev != rev {
            return Ok(Replaced::Stale);
        }
        if now >= current.session.expires_at {
            return Ok(Replaced::Expired);
        }
        inner.sessions.insert(
            *id,
            Box::new(Entry {
                session: session.clone(),
                rev: rev + 1,
                expiry_noted: false,
            }),
        );
        drop(inner);
        if let Some(listeners) = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            let _ = listeners.send(Notice::Changed);
        }
        Ok(Replaced::Done)
    }

    async fn note_expiry(&self, id: &SessionId) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(entry) = inner.sessions.get_mut(id) else {
            return Ok(false);
        };
        let first = now >= entry.session.expires_at
            && now < dropped_at(&entry.session)
            && !entry.expiry_noted;
        entry.expiry_noted |= first;
        Ok(first)
    }

    async fn put_ceremony(
        &self,
        id: &SessionId,
        ceremony: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let json = encode(ceremony)?;
        let mut inner = self.lock();
        inner.lapsing.insert((until, *id));
        inner.ceremonies.insert(*id, (json, until));
        Ok(())
    }

    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError> {
        let now = self.clock.now();
        let taken = self.lock().ceremonies.remove(id);
        match taken {
            Some((json, until)) if now < until => Ok(Some(decode("ceremony", &json)?)),
            _ => Ok(None),
        }
    }

    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<LoadedUser>, StoreError> {
        Ok(self
            .lock()
            .users
            .get(&(app_id.to_owned(), id.clone()))
            .map(|(user, rev)| LoadedUser {
                user: user.clone(),
                rev: *rev,
            }))
    }

    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        let id = inner
            .external_ids
            .get(&(app_id.to_owned(), external_user_id.to_owned()));
        Ok(id
            .and_then(|id| inner.users.get(&(app_id.to_owned(), id.clone())))
            .map(|(user, _)| user.clone()))
    }

    async fn create_user(&self, user: &User) -> Result<Created, StoreError> {
        {
            let mut inner = self.lock();
            if let Some(external) = &user.external_user_id
                && inner
                    .external_ids
                    .contains_key(&(user.app_id.clone(), external.clone()))
            {
                return Ok(Created::ExternalIdTaken);
            }
            if inner
                .users
                .contains_key(&(user.app_id.clone(), user.id.clone()))
            {
                return Ok(Created::Exists);
            }
            inner.index(user.clone(), 1);
        }
        self.persist_users().await?;
        Ok(Created::Done)
    }

    async fn replace_user(&self, user: &User, rev: u64) -> Result<Replaced, StoreError> {
        {
            let mut inner = self.lock();
            let key = (user.app_id.clone(), user.id.clone());
            let Some((current, current_rev)) = inner.users.get_mut(&key) else {
                return Ok(Replaced::Gone);
            };
            if *current_rev != rev {
                return Ok(Replaced::Stale);
            }
            if current.external_user_id != user.external_user_id {
                return Err(StoreError::Corrupt(format!(
                    "user {}: the external_user_id of a user never changes",
                    user.id
                )));
            }
            *current = user.clone();
            *current_rev = rev + 1;
        }
        self.persist_users().await?;
        Ok(Replaced::Done)
    }

    async fn list_users(&self, app_id: &str) -> Result<Vec<LoadedUser>, StoreError> {
        let mut users: Vec<LoadedUser> = (self.lock().users.values())
            .filter(|(user, _)| user.app_id == app_id)
            .map(|(user, rev)| LoadedUser {
                user: user.clone(),
                rev: *rev,
            })
            .collect();
        users.sort_by(|a, b| a.user.id.as_str().cmp(b.user.id.as_str()));
        Ok(users)
    }

    async fn remove_user(
        &self,
        app_id: &str,
        id: &UserId,
        rev: u64,
    ) -> Result<Replaced, StoreError> {
        {
            let mut inner = self.lock();
            let key = (app_id.to_owned(), id.clone());
            let Some((user, current_rev)) = inner.users.get(&key) else {
                return Ok(Replaced::Gone);
            };
            if *current_rev != rev {
                return Ok(Replaced::Stale);
            }
            if let Some(external) = user.external_user_id.clone() {
                inner.external_ids.remove(&(app_id.to_owned(), external));
            }
            inner.users.remove(&key);
        }
        self.persist_users().await?;
        Ok(Replaced::Done)
    }

    async fn sign_out_user(
        &self,
        app_id: &str,
        id: &UserId,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        {
            let mut inner = self.lock();
            let key = (app_id.to_owned(), id.clone());
            if inner.signed_out.get(&key).is_none_or(|s| s.at < at) {
                let entry = SignedOut {
                    app_id: app_id.to_owned(),
                    user_id: id.clone(),
                    at,
                    until,
                };
                inner.signed_out.insert(key, entry);
            }
        }
        let now = self.clock.now();
        self.write_snapshot(self.signed_out_file.as_ref(), |inner| {
            inner.signed_out.retain(|_, s| now < s.until);
            encode(&inner.signed_out.values().collect::<Vec<_>>())
        })
        .await
    }

    async fn signed_out_at(
        &self,
        app_id: &str,
        id: &UserId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let now = self.clock.now();
        Ok((self.lock().signed_out)
            .get(&(app_id.to_owned(), id.clone()))
            .filter(|s| now < s.until)
            .map(|s| s.at))
    }

    async fn load_keys(&self) -> Result<Option<StoredKeys>, StoreError> {
        match &self.keys_file {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Self::read_keys_file(&path))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
            }
            None => Ok(self.lock().keys.clone()),
        }
    }

    async fn save_keys(&self, json: &str, version: u64) -> Result<bool, StoreError> {
        let Some(path) = self.keys_file.clone() else {
            let mut inner = self.lock();
            let stored = inner.keys.as_ref().map_or(0, |k| k.version);
            if stored + 1 != version {
                return Ok(false);
            }
            inner.keys = Some(StoredKeys {
                json: json.to_owned(),
                version,
            });
            return Ok(true);
        };
        let ring: serde_json::Value = decode("key ring", json)?;
        let text = encode(&KeysFile { version, ring })?;
        // Within this process the write lock orders writers; between the bridge and the
        // `qr-bridge keys` command, the version check just before the rename does (rotations are
        // rare and made by hand, so that narrow window is accepted).
        let _writing = self.write_lock.lock().await;
        tokio::task::spawn_blocking(move || {
            let stored = Self::read_keys_file(&path)?.map_or(0, |k| k.version);
            if stored + 1 != version {
                return Ok(false);
            }
            // The temporary file behind the rename is made readable by its owner only.
            write_atomically(&path, &text)?;
            Ok(true)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn revoke_token(&self, jti: &str, until: Timestamp) -> Result<(), StoreError> {
        self.lock().revoked.insert(jti.to_owned(), until);
        let now = self.clock.now();
        self.write_snapshot(self.revoked_file.as_ref(), |inner| {
            inner.revoked.retain(|_, until| now < *until);
            encode(&inner.revoked)
        })
        .await
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .revoked
            .get(jti)
            .is_some_and(|until| now < *until))
    }

    async fn append_audit(&self, event: &AuditEvent, keep: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        let oldest =
            Timestamp::from_millis(now.as_millis().saturating_sub(keep.as_millis() as u64));
        let line = encode(event)?;
        // Held from the change in memory to the write, so the file gets the events in the order
        // memory does, each once.
        let _writing = self.write_lock.lock().await;
        let rewrite = {
            let mut inner = self.lock();
            inner.audit.push_back(event.clone());
            while inner.audit.front().is_some_and(|e| e.at < oldest)
                || inner.audit.len() > AUDIT_MAX_EVENTS
            {
                inner.audit.pop_front();
                inner.audit_dropped += 1;
            }
            if inner.audit_dropped >= AUDIT_REWRITE_AFTER {
                inner.audit_dropped = 0;
                let mut text = String::new();
                for event in &inner.audit {
                    text.push_str(&encode(event)?);
                    text.push('\n');
                }
                Some(text)
            } else {
                None
            }
        };
        let Some(path) = self.audit_file.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || match rewrite {
            Some(text) => write_atomically(&path, &text),
            None => append_line(&path, &line),
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn read_audit(&self, since: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        Ok((self.lock().audit.iter())
            .filter(|e| e.at >= since)
            .cloned()
            .collect())
    }

    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let now = self.clock.now();
        {
            let mut inner = self.lock();
            // Queued already (perhaps claimed): left as it is.
            if inner.queue.contains_key(&delivery.id) {
                return Ok(());
            }
            let seq = inner.queue_seq;
            inner.queue_seq += 1;
            let queued = Queued {
                delivery: delivery.clone(),
                due: now,
                seq,
                claim: None,
            };
            inner.queue.insert(delivery.id.clone(), queued);
        }
        self.persist_queue().await
    }

    async fn claim_delivery(&self, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let next = (inner.queue.values_mut())
            .filter(|q| q.due <= now && q.claim.as_ref().is_none_or(|(_, until)| *until <= now))
            .min_by_key(|q| (q.due, q.seq));
        Ok(next.map(|q| {
            let token = uuid::Uuid::new_v4().simple().to_string();
            q.claim = Some((token.clone(), now.plus(lease)));
            Claimed {
                delivery: q.delivery.clone(),
                token,
                now,
            }
        }))
    }

    async fn finish_delivery(&self, claim: &Claimed) -> Result<bool, StoreError> {
        {
            let mut inner = self.lock();
            let id = &claim.delivery.id;
            let held = (inner.queue.get(id))
                .and_then(|q| q.claim.as_ref())
                .is_some_and(|(token, _)| *token == claim.token);
            if !held {
                return Ok(false);
            }
            inner.queue.remove(id);
        }
        self.persist_queue().await.map(|()| true)
    }

    async fn retry_delivery(
        &self,
        claim: &Claimed,
        delivery: &Delivery,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        {
            let mut inner = self.lock();
            let Some(queued) = inner.queue.get_mut(&claim.delivery.id) else {
                return Ok(false);
            };
            if queued
                .claim
                .as_ref()
                .is_none_or(|(token, _)| *token != claim.token)
            {
                return Ok(false);
            }
            queued.delivery = delivery.clone();
            queued.due = at;
            queued.claim = None;
        }
        self.persist_queue().await.map(|()| true)
    }

    async fn subscribe(&self, id: &SessionId) -> Result<Subscription, StoreError> {
        let rx = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels
                .entry(*id)
                .or_insert_with(|| broadcast::channel(CHANNEL_DEPTH).0)
                .subscribe()
        };
        let (channels, id) = (self.channels.clone(), *id);
        Ok(Subscription::new(rx, move || {
            let mut channels = channels.lock().unwrap_or_else(|p| p.into_inner());
            if channels.get(&id).is_some_and(|tx| tx.receiver_count() == 0) {
                channels.remove(&id);
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Kind, NewSession, Requester, StartedBy};

    fn session(now: Timestamp, ttl: Duration) -> Session {
        let new = NewSession {
            id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            app_id: "app".into(),
            kind: Kind::Auth,
            polling_token_sha256: "ab".repeat(32),
            approval_context: None,
            external_user_id: None,
            started_by: StartedBy::Browser,
            requester: Requester::default(),
        };
        Session::new(new, now, ttl)
    }

    /// The sweep takes exactly the sessions whose time has come, from the front of their index,
    /// and the index stays in step with what is stored.
    #[tokio::test]
    async fn an_insert_sweeps_exactly_what_is_due_through_the_expiry_index() {
        let clock = Clock::turnable();
        let store = MemoryStore::in_memory(clock.clone());
        let now = clock.now();
        let mut kept = Vec::new();
        for minutes in 1..=20u64 {
            let s = session(now, Duration::from_secs(60 * minutes));
            store.insert(&s).await.unwrap();
            kept.push(s);
        }
        // Ten sessions' retention ends (their lifetime plus KEPT_AFTER_EXPIRY).
        clock.turn(Duration::from_secs(60 * 10) + KEPT_AFTER_EXPIRY);
        store
            .insert(&session(clock.now(), Duration::from_secs(60)))
            .await
            .unwrap();
        let inner = store.lock();
        assert_eq!(inner.sessions.len(), 11, "ten gone, ten left, one new");
        assert_eq!(inner.leaving.len(), 11, "the index holds what is stored");
        for s in &kept[..10] {
            assert!(!inner.sessions.contains_key(&s.id));
        }
        for s in &kept[10..] {
            assert!(inner.sessions.contains_key(&s.id));
        }
    }
}

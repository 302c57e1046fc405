//! Where sessions live: one trait, an embedded backend and a Redis backend, held to one contract suite.

mod measured;
mod memory;
mod pubsub;
mod redis;
mod web;

#[cfg(test)]
mod contract;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::account::{Ceremony, User};
use crate::audit::AuditEvent;
use crate::outbox::{Claimed, Delivery};
use crate::session::{Session, SessionId, Timestamp, UserId};

pub use memory::MemoryStore;
pub use redis::{
    Connection as RedisConnection, REDIS_TIMEOUT, RedisStore, check_persistence, cluster_nodes,
    connect as redis_connect, index_users,
};
pub use web::{MemoryWebSessions, RedisWebSessions, WebSessions};

/// Where sessions are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process: nothing to run beside the bridge, but one instance only.
    Memory,
    /// A Redis server shared by every instance of a deployment.
    Redis { url: String },
}

/// Notices a slow subscriber may fall behind by before it is told to resync instead.
const CHANNEL_DEPTH: usize = 8;

/// Why a subscriber should read its session again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The session was written (on this instance or another).
    Changed,
    /// Notices may have been lost (a reconnect, a slow reader): whatever changed meanwhile is only
    /// known by reading again.
    Resync,
}

/// Change notices for one session. Dropping it gives the channel back.
pub struct Subscription {
    rx: Option<tokio::sync::broadcast::Receiver<Notice>>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Subscription {
    fn new(
        rx: tokio::sync::broadcast::Receiver<Notice>,
        release: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        Self {
            rx: Some(rx),
            release: Some(Box::new(release)),
        }
    }

    /// Waits for the next reason to read again. If the channel is gone it never returns, leaving
    /// the caller's other wake-ups (expiry, shutdown) in charge.
    pub async fn next(&mut self) -> Notice {
        use tokio::sync::broadcast::error::RecvError;
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(notice) => notice,
            Err(RecvError::Lagged(_)) => Notice::Resync,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The receiver goes first, so the release sees the true number of listeners left.
        drop(self.rx.take());
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// How long a session stays readable after `expires_at`, so that a late poll learns "expired"
/// (and a late desktop its token) instead of "unknown session".
pub const KEPT_AFTER_EXPIRY: Duration = Duration::from_secs(600);

/// A stored session together with its revision and the store's clock at the moment it was read.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub session: Session,
    /// Bumped by every write; what [`Store::replace`] compares against.
    pub rev: u64,
    /// The store's clock: the time expiry is judged by.
    pub now: Timestamp,
}

/// The result of a compare-and-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    Done,
    /// Someone wrote first: read again and re-decide.
    Stale,
    /// The key is gone (never existed or dropped after expiry).
    Gone,
    /// The store's clock says the session expired before this write.
    Expired,
}

/// A user as stored, with the revision [`Store::replace_user`] compares against.
#[derive(Clone, Debug)]
pub struct LoadedUser {
    pub user: User,
    pub rev: u64,
}

/// The result of creating a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Done,
    /// Another user of the app already has this `external_user_id`; nothing was written.
    ExternalIdTaken,
    /// A user with this id exists already; nothing was written.
    Exists,
}

/// The signing-key ring as stored (JSON, see `token::KeyRing`), with the version that
/// [`Store::save_keys`] compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKeys {
    pub json: String,
    pub version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("a session with this id already exists")]
    Duplicate,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The store's clock. Every instance sharing a store judges expiry by it, not by its own.
    async fn now(&self) -> Result<Timestamp, StoreError>;

    /// Whether the store answers right now: a round trip, never an answer kept from before.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Saves a new session at revision 1. It is dropped by the store [`KEPT_AFTER_EXPIRY`] after
    /// its `expires_at`.
    async fn insert(&self, session: &Session) -> Result<(), StoreError>;

    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError>;

    /// Writes `session` if the stored revision is still `rev` and it has not expired, atomically,
    /// and tells the session's subscribers on every instance.
    async fn replace(
        &self,
        id: &SessionId,
        rev: u64,
        session: &Session,
    ) -> Result<Replaced, StoreError>;

    /// Marks that an expired session was seen expired: `true` for the first caller only (on
    /// any instance), `false` after that, or when the session is gone or not expired yet.
    async fn note_expiry(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Keeps the WebAuthn ceremony of a session until `until`, replacing any earlier one, so only
    /// the newest challenge can be answered.
    async fn put_ceremony(
        &self,
        id: &SessionId,
        ceremony: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError>;

    /// Takes the ceremony out in one atomic step: of two concurrent callers, one gets it.
    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError>;

    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<LoadedUser>, StoreError>;

    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external_user_id: &str,
    ) -> Result<Option<User>, StoreError>;

    /// Saves a new user durably (no expiry) at revision 1, with its `external_user_id` index, in
    /// one atomic step that refuses an id or an external id already taken: of two registrations
    /// racing for one external id, exactly one creates the user.
    async fn create_user(&self, user: &User) -> Result<Created, StoreError>;

    /// Writes `user` if its stored revision is still `rev`, atomically; the `external_user_id`
    /// of a user never changes.
    async fn replace_user(&self, user: &User, rev: u64) -> Result<Replaced, StoreError>;

    /// Every user of one app, for the management commands (never on a request's path).
    async fn list_users(&self, app_id: &str) -> Result<Vec<LoadedUser>, StoreError>;

    /// Removes a user and its `external_user_id` if its stored revision is still `rev`, in one
    /// atomic step; the external id is free again afterwards.
    async fn remove_user(
        &self,
        app_id: &str,
        id: &UserId,
        rev: u64,
    ) -> Result<Replaced, StoreError>;

    /// From now on, every token issued to this user before `at` is refused. Kept until `until`
    /// (when the last such token would have expired anyway); a later `at` replaces an earlier
    /// one, never the reverse.
    async fn sign_out_user(
        &self,
        app_id: &str,
        id: &UserId,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError>;

    /// When the user was last signed out everywhere, while that still matters.
    async fn signed_out_at(
        &self,
        app_id: &str,
        id: &UserId,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// The deployment's signing keys, shared by every instance on this store.
    async fn load_keys(&self) -> Result<Option<StoredKeys>, StoreError>;

    /// Writes the key ring as `version` if the stored one is still `version - 1` (nothing stored
    /// for version 1); `false` when another writer came first.
    async fn save_keys(&self, json: &str, version: u64) -> Result<bool, StoreError>;

    /// Remembers until `until` that the token with this `jti` was revoked.
    async fn revoke_token(&self, jti: &str, until: Timestamp) -> Result<(), StoreError>;

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    /// Appends to the audit trail, and forgets what is older than `keep`.
    async fn append_audit(&self, event: &AuditEvent, keep: Duration) -> Result<(), StoreError>;

    /// The audit trail from `since` on, oldest first.
    async fn read_audit(&self, since: Timestamp) -> Result<Vec<AuditEvent>, StoreError>;

    /// Queues a webhook delivery, due at once.
    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;

    /// Takes the first due delivery for `lease`: no other caller (on any instance) gets it
    /// until the lease ends or its holder gives it back.
    async fn claim_delivery(&self, lease: Duration) -> Result<Option<Claimed>, StoreError>;

    /// The claimed delivery is over (all sent, or given up): it leaves the queue. `false` when
    /// the claim was no longer the holder's (its lease ended and someone else took it).
    async fn finish_delivery(&self, claim: &Claimed) -> Result<bool, StoreError>;

    /// The claimed delivery, as `delivery` now stands, is due again at `at`.
    async fn retry_delivery(
        &self,
        claim: &Claimed,
        delivery: &Delivery,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Notices of every write to one session, from whichever instance made it. Subscribe before
    /// reading, so that no change can fall between the read and the subscription.
    async fn subscribe(&self, id: &SessionId) -> Result<Subscription, StoreError>;
}

/// Opens the store the settings name. The embedded store keeps users under `data_dir`; for
/// Redis, `prefix` starts every key (`qrb` in production).
pub async fn open(
    kind: &StoreKind,
    prefix: &str,
    data_dir: &Path,
    clock: &crate::clock::Clock,
) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match kind {
        StoreKind::Memory => Arc::new(MemoryStore::open_with(data_dir, clock.clone())?),
        StoreKind::Redis { url } => Arc::new(RedisStore::connect(url, prefix).await?),
    };
    // Timed for the metrics (a no-op until `serve` installs a recorder).
    Ok(Arc::new(measured::Measured(store)))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

//! The embedded store: sessions in this process's memory, for a single instance with nothing to run beside it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{KEPT_AFTER_EXPIRY, Loaded, Replaced, Store, StoreError};
use crate::session::{Session, SessionId, Timestamp};

/// How often an insert may also sweep out sessions past their retention.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, Entry>,
    last_sweep: u64,
}

struct Entry {
    session: Session,
    rev: u64,
}

fn clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn dropped_at(session: &Session) -> Timestamp {
    session.expires_at.plus(KEPT_AFTER_EXPIRY)
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written entry (each write is one
        // map operation), so a poisoned lock is still consistent.
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
            .filter(|e| now < dropped_at(&e.session))
    }

    fn sweep(&mut self, now: Timestamp) {
        if now.as_millis().saturating_sub(self.last_sweep) >= SWEEP_EVERY.as_millis() as u64 {
            self.sessions.retain(|_, e| now < dropped_at(&e.session));
            self.last_sweep = now.as_millis();
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        Ok(clock())
    }

    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let now = clock();
        let mut inner = self.lock();
        inner.sweep(now);
        if inner.live(&session.id, now).is_some() {
            return Err(StoreError::Duplicate);
        }
        inner.sessions.insert(
            session.id,
            Entry {
                session: session.clone(),
                rev: 1,
            },
        );
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let now = clock();
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
        let now = clock();
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
            Entry {
                session: session.clone(),
                rev: rev + 1,
            },
        );
        Ok(Replaced::Done)
    }
}

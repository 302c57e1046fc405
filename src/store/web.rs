//! Browser sessions (the cookie's server side): in this process with eviction, or in Redis so every instance knows the browser.

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};

use super::StoreKind;

/// Where browser sessions live: in this process, or in Redis so every instance knows the browser.
#[derive(Clone, Debug)]
pub enum WebSessions {
    Memory(MemoryWebSessions),
    Redis(RedisWebSessions),
}

impl WebSessions {
    pub fn new(kind: &StoreKind, prefix: &str) -> Result<Self, String> {
        Ok(match kind {
            StoreKind::Memory => WebSessions::Memory(MemoryWebSessions::default()),
            StoreKind::Redis { url } => WebSessions::Redis(RedisWebSessions::new(url, prefix)?),
        })
    }

    /// The cookie: `Secure` when the bridge is reached over https, never readable by scripts.
    pub fn layer(self, secure: bool) -> SessionManagerLayer<WebSessions> {
        SessionManagerLayer::new(self)
            .with_name("qrb")
            .with_secure(secure)
            .with_same_site(SameSite::Lax)
            .with_http_only(true)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::hours(12),
            ))
    }
}

#[async_trait]
impl SessionStore for WebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.create(record).await,
            WebSessions::Redis(r) => r.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.save(record).await,
            WebSessions::Redis(r) => r.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            WebSessions::Memory(m) => m.load(id).await,
            WebSessions::Redis(r) => r.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            WebSessions::Memory(m) => m.delete(id).await,
            WebSessions::Redis(r) => r.delete(id).await,
        }
    }
}

/// How often creating a browser session also sweeps out the expired ones.
const WEB_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Browser sessions in this process, dropped once expired (tower-sessions' own memory store
/// keeps every session it ever made: one per visitor, forever).
#[derive(Clone, Debug, Default)]
pub struct MemoryWebSessions(Arc<std::sync::Mutex<WebSessionMap>>);

#[derive(Debug, Default)]
struct WebSessionMap {
    records: std::collections::HashMap<Id, Record>,
    last_sweep: Option<std::time::Instant>,
}

impl MemoryWebSessions {
    fn map(&self) -> std::sync::MutexGuard<'_, WebSessionMap> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sessions are kept, expired or not.
    pub fn len(&self) -> usize {
        self.map().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn is_active(record: &Record) -> bool {
    record.expiry_date > tower_sessions::cookie::time::OffsetDateTime::now_utc()
}

#[async_trait]
impl SessionStore for MemoryWebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut map = self.map();
        if map
            .last_sweep
            .is_none_or(|at| at.elapsed() >= WEB_SWEEP_EVERY)
        {
            map.records.retain(|_, r| is_active(r));
            map.last_sweep = Some(std::time::Instant::now());
        }
        while map.records.contains_key(&record.id) {
            record.id = Id::default();
        }
        map.records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.map().records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self.map().records.get(id).filter(|r| is_active(r)).cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.map().records.remove(id);
        Ok(())
    }
}

/// Browser sessions as JSON under `<prefix>:web:<id>`, expiring when the cookie does.
#[derive(Clone, Debug)]
pub struct RedisWebSessions {
    url: String,
    conn: Arc<tokio::sync::OnceCell<super::RedisConnection>>,
    prefix: String,
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl RedisWebSessions {
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        // Checked now, connected on first use.
        match super::cluster_nodes(url) {
            Some(nodes) => nodes
                .iter()
                .try_for_each(|n| redis::Client::open(n.as_str()).map(drop)),
            None => redis::Client::open(url).map(drop),
        }
        .map_err(|e| e.to_string())?;
        Ok(Self {
            url: url.to_owned(),
            conn: Arc::new(tokio::sync::OnceCell::new()),
            prefix: prefix.to_owned(),
        })
    }

    async fn conn(&self) -> session_store::Result<super::RedisConnection> {
        self.conn
            .get_or_try_init(|| super::redis_connect(&self.url))
            .await
            .cloned()
            .map_err(backend)
    }

    fn key(&self, id: &Id) -> String {
        format!("{}:web:{id}", self.prefix)
    }

    async fn write(&self, record: &Record, only_if_new: bool) -> session_store::Result<bool> {
        let json = serde_json::to_string(record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let at_ms = (record.expiry_date.unix_timestamp_nanos() / 1_000_000).max(1) as u64;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&record.id))
            .arg(json)
            .arg("PXAT")
            .arg(at_ms);
        if only_if_new {
            set.arg("NX");
        }
        let written: Option<String> = set
            .query_async(&mut self.conn().await?)
            .await
            .map_err(backend)?;
        Ok(written.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisWebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are random 128-bit values; a collision is only ever met in theory, but never overwritten.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.write(record, false).await.map(drop)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(id));
        let json: Option<String> = get
            .query_async(&mut self.conn().await?)
            .await
            .map_err(backend)?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(id));
        del.query_async::<()>(&mut self.conn().await?)
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};

    /// The behaviour both backends promise, whichever the deployment uses.
    async fn contract(store: &dyn SessionStore) {
        let mut made = record(Duration::hours(12));
        made.data.insert("k".into(), serde_json::json!("v"));
        let first_id = made.id;
        store.create(&mut made).await.unwrap();
        assert_eq!(
            store.load(&made.id).await.unwrap().unwrap().data,
            made.data,
            "reads back"
        );

        let mut taken = record(Duration::hours(12));
        taken.id = made.id;
        store.create(&mut taken).await.unwrap();
        assert_ne!(
            taken.id, first_id,
            "a taken id is never overwritten: the new one moves"
        );
        assert_eq!(
            store.load(&first_id).await.unwrap().unwrap().data,
            made.data
        );

        made.data.insert("k".into(), serde_json::json!("w"));
        store.save(&made).await.unwrap();
        assert_eq!(
            store.load(&made.id).await.unwrap().unwrap().data,
            made.data,
            "saved over"
        );

        store.delete(&made.id).await.unwrap();
        assert!(store.load(&made.id).await.unwrap().is_none(), "deleted");
        assert!(
            store.load(&Id::default()).await.unwrap().is_none(),
            "unknown"
        );

        let expired = record(Duration::seconds(-1));
        store.save(&expired).await.unwrap();
        assert!(
            store.load(&expired.id).await.unwrap().is_none(),
            "expired reads as absent"
        );
        store.delete(&taken.id).await.unwrap();
    }

    #[tokio::test]
    async fn memory_browser_sessions_keep_the_contract() {
        contract(&MemoryWebSessions::default()).await;
    }

    #[tokio::test]
    async fn redis_browser_sessions_keep_the_contract() {
        let Some(url) = crate::testing::redis_url() else {
            return;
        };
        let prefix = format!("qrb-test-web-{}", uuid::Uuid::new_v4().simple());
        contract(&RedisWebSessions::new(&url, &prefix).unwrap()).await;
    }

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn expired_browser_sessions_are_evicted() {
        let store = MemoryWebSessions::default();
        let expired: Vec<Record> = (0..100).map(|_| record(Duration::minutes(-1))).collect();
        for r in &expired {
            store.save(r).await.unwrap();
        }
        let live = record(Duration::hours(12));
        store.save(&live).await.unwrap();
        assert_eq!(store.len(), 101);
        assert!(
            store.load(&expired[0].id).await.unwrap().is_none(),
            "expired reads as absent"
        );
        store
            .create(&mut record(Duration::hours(12)))
            .await
            .unwrap();
        assert_eq!(
            store.len(),
            2,
            "the expired ones are gone, the live ones kept"
        );
        assert!(store.load(&live.id).await.unwrap().is_some());
    }
}

//! The harness: a real bridge on port 0 over the embedded store or the real Redis, and a client that speaks like the SDK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use qr_bridge::secret;
use qr_bridge::server::{AppState, app};
use qr_bridge::session::{Session, SessionId, Timestamp};
use qr_bridge::settings::Settings;
use qr_bridge::store::{Loaded, MemoryStore, RedisStore, Replaced, Store, StoreError};
use qr_bridge::wire::Started;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

pub const SHOP_KEY: &str = "cli_shop_test_key_0001";
pub const SHOP_SECRET: &str = "sk_shop_test_secret";
pub const SHOP_ORIGIN: &str = "https://shop.test";
pub const OWN_KEY: &str = "cli_own_page_test_key_0001";
pub const OWN_ORIGIN: &str = "https://own.test";
pub const BRIDGE_ORIGIN: &str = "https://bridge.test";

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two apps: "shop" on the hosted page, "own" with its own approval page.
pub fn settings_toml(ttl: &str) -> String {
    format!(
        r#"
        public_origin = "{BRIDGE_ORIGIN}"
        session_ttl = "{ttl}"

        [[apps]]
        id = "shop"
        name = "Shop <b>Test</b>"
        publishable_key = "{SHOP_KEY}"
        secret_key_sha256 = "{shop_digest}"
        allowed_origins = ["{SHOP_ORIGIN}"]
        rp_id = "bridge.test"

        [[apps]]
        id = "own"
        name = "Own Page"
        publishable_key = "{OWN_KEY}"
        secret_key_sha256 = "{own_digest}"
        allowed_origins = ["{OWN_ORIGIN}"]
        rp_id = "own.test"
        primary_qr_base_url = "https://m.own.test/app/"
        "#,
        shop_digest = secret::digest(SHOP_SECRET),
        own_digest = secret::digest("sk_own_test_secret"),
    )
}

/// Deletes every key under a test's prefix when the test ends, whatever its outcome.
pub struct RedisCleanup(pub String);

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// The real store, with every call counted: how tests show a refused request never reached it.
pub struct Counted {
    inner: Arc<dyn Store>,
    pub calls: AtomicUsize,
}

#[async_trait]
impl Store for Counted {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.now().await
    }
    async fn insert(&self, s: &Session) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.insert(s).await
    }
    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id).await
    }
    async fn replace(&self, id: &SessionId, rev: u64, s: &Session) -> Result<Replaced, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.replace(id, rev, s).await
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<Counted>,
    _cleanup: Option<RedisCleanup>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, "5m").await
    }

    pub async fn spawn_with(backend: Backend, ttl: &str) -> Self {
        let settings = Settings::from_toml(&settings_toml(ttl)).expect("test settings");
        let (inner, cleanup): (Arc<dyn Store>, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::default()), None),
            Backend::Redis => {
                let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
                let store = RedisStore::connect(&redis_url(), &prefix)
                    .await
                    .expect("Redis at REDIS_URL");
                (Arc::new(store), Some(RedisCleanup(prefix)))
            }
        };
        let store = Arc::new(Counted {
            inner,
            calls: AtomicUsize::new(0),
        });
        let router = app(AppState::new(&settings, store.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        TestApp {
            base: format!("http://{addr}"),
            http,
            store,
            _cleanup: cleanup,
        }
    }

    pub fn store_calls(&self) -> usize {
        self.store.calls.load(Ordering::SeqCst)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// A request as the SDK in a browser on the shop's origin sends it.
    pub fn shop_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .bearer_auth(SHOP_KEY)
            .header("Origin", SHOP_ORIGIN)
    }

    pub async fn init_with(&self, body: Value) -> Started {
        let res = self
            .shop_request(Method::POST, "/v1/auth/cross-device/init")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        serde_json::from_value(v["data"].clone()).unwrap()
    }

    pub async fn init(&self) -> Started {
        self.init_with(serde_json::json!({})).await
    }

    pub async fn status(&self, id: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.shop_request(Method::GET, &format!("/v1/auth/cross-device/status/{id}"));
        if let Some(token) = token {
            req = req.header("X-Polling-Token", token);
        }
        reply(req).await
    }

    pub async fn context(&self, id: &str) -> (StatusCode, Value) {
        reply(self.shop_request(Method::GET, &format!("/v1/auth/cross-device/context/{id}"))).await
    }

    pub async fn cancel(&self, id: &str, token: &str) -> (StatusCode, Value) {
        reply(
            self.shop_request(Method::POST, &format!("/v1/auth/cross-device/cancel/{id}"))
                .header("X-Polling-Token", token),
        )
        .await
    }

    pub async fn deny(&self, id: &str) -> (StatusCode, Value) {
        reply(self.shop_request(Method::POST, &format!("/v1/auth/cross-device/deny/{id}"))).await
    }
}

/// Status and JSON body (`Null` for an empty one).
pub async fn reply(req: RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (status, body)
}

/// The contract's error envelope with this code.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["ok"], Value::Bool(false), "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// Runs an async test once per backend: `both_stores!(name)` expects `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn memory() {
                    super::$name($crate::helpers::Backend::Memory).await
                }
                #[tokio::test]
                async fn redis() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            }
        )*
    };
}

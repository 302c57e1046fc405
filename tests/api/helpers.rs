//! The harness: a real bridge on port 0 over the embedded store or the real Redis, and a client that speaks like the SDK.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use qr_bridge::account::{Ceremony, User};
use qr_bridge::secret;
use qr_bridge::server::app;
use qr_bridge::session::{Session, SessionId, Timestamp, UserId};
use qr_bridge::state::AppState;

use qr_bridge::clock::Clock;
use qr_bridge::limits::{Counter, MemoryCounter, RedisCounter};
use qr_bridge::settings::Settings;
use qr_bridge::store::{
    Created, Loaded, LoadedUser, MemoryStore, RedisStore, Replaced, Store, StoreError, StoredKeys,
    Subscription,
};
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
pub const OWN_SECRET: &str = "sk_own_test_secret";
pub const SHOP_ORIGIN: &str = "https://shop.test";
pub const OWN_KEY: &str = "cli_own_page_test_key_0001";
pub const OWN_ORIGIN: &str = "https://own.test";
pub const BRIDGE_ORIGIN: &str = "https://bridge.test";
/// An app that lets browsers name the external id of the new accounts they create.
pub const CLUB_KEY: &str = "cli_club_test_key_0001";
pub const CLUB_ORIGIN: &str = "https://club.test";

/// The Redis the tests use (see `kit::testing::redis_url`); tests that need it call
/// [`no_redis`] first and skip when it says so.
pub fn redis_url() -> String {
    crate::kit::testing::redis_url().unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// The settings lines that put a bridge process on the Redis at `redis` under a prefix of its
/// own (none: the embedded store), with what removes its keys when the test ends.
pub fn store_lines(redis: Option<&str>) -> (String, Option<RedisCleanup>) {
    let Some(url) = redis else {
        return (String::new(), None);
    };
    let prefix = format!("qrbproc-{}", uuid::Uuid::new_v4().simple());
    let lines =
        format!("store = \"{url}\"\nredis_prefix = \"{prefix}\"\nallow_volatile_redis = true\n");
    (lines, Some(RedisCleanup(prefix, url.to_owned())))
}

/// Whether no Redis answers: the test that needs one returns at once (one line says so per
/// run; `.ci/test` makes it a failure instead).
pub fn no_redis() -> bool {
    crate::kit::testing::redis_url().is_none()
}

/// One key ring per test process, given to each test bridge's fresh store: generating RSA keys
/// for every test server would cost more than the tests.
pub fn key_ring_json() -> &'static str {
    static RING: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        let pem = || qr_bridge::token::generate_pem().unwrap();
        let ring =
            qr_bridge::token::KeyRing::from_pems(pem(), pem(), Timestamp::from_millis(0)).unwrap();
        serde_json::to_string(&ring).unwrap()
    })
}

/// Limits far above what any test sends from its one address; limit tests set their own.
pub const RELAXED_LIMITS: &str = "[limits]\nstatus_per_token = \"100000/1m\"\nstatus_per_client = \"100000/1m\"\n\
                       init_per_key = \"100000/1m\"\ninit_per_client = \"100000/1m\"\nphone_per_client = \"100000/1m\"\npin_per_client = \"100000/1m\"";

/// Two apps: "shop" on the hosted page (open sign-up), "own" with its own approval page.
/// `extra` goes before the apps: top-level keys first, then any tables (e.g. `[limits]`).
pub fn settings_toml(ttl: &str, dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
        public_origin = "{BRIDGE_ORIGIN}"
        session_ttl = "{ttl}"
        data_dir = "{data}"
        {extra}

        [[apps]]
        id = "shop"
        name = "Shop <b>Test</b>"
        publishable_key = "{SHOP_KEY}"
        secret_key_sha256 = "{shop_digest}"
        allowed_origins = ["{SHOP_ORIGIN}"]
        rp_id = "bridge.test"
        open_signup = true
        hosted_login = true

        [[apps]]
        id = "own"
        name = "Own Page"
        publishable_key = "{OWN_KEY}"
        secret_key_sha256 = "{own_digest}"
        allowed_origins = ["{OWN_ORIGIN}"]
        rp_id = "own.test"
        primary_qr_base_url = "https://m.own.test/app/"

        [[apps]]
        id = "club"
        name = "Club"
        publishable_key = "{CLUB_KEY}"
        secret_key_sha256 = "{club_digest}"
        allowed_origins = ["{CLUB_ORIGIN}"]
        rp_id = "bridge.test"
        open_signup = true
        browser_external_ids = true
        "#,
        shop_digest = secret::digest(SHOP_SECRET),
        own_digest = secret::digest(OWN_SECRET),
        club_digest = secret::digest("sk_club_test_secret"),
        data = dir.display(),
    )
}

/// Deletes every key under a test's prefix (on the Redis at that URL) when the test ends, whatever its outcome.
pub struct RedisCleanup(pub String, pub String);

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.1.as_str()) else {
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
    async fn ping(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.ping().await
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
    async fn note_expiry(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.note_expiry(id).await
    }
    async fn put_ceremony(
        &self,
        id: &SessionId,
        c: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put_ceremony(id, c, until).await
    }
    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.take_ceremony(id).await
    }
    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<LoadedUser>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load_user(app_id, id).await
    }
    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external: &str,
    ) -> Result<Option<User>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.find_user_by_external_id(app_id, external).await
    }
    async fn create_user(&self, user: &User) -> Result<Created, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.create_user(user).await
    }
    async fn replace_user(&self, user: &User, rev: u64) -> Result<Replaced, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.replace_user(user, rev).await
    }
    async fn list_users(&self, app_id: &str) -> Result<Vec<LoadedUser>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list_users(app_id).await
    }
    async fn remove_user(
        &self,
        app_id: &str,
        id: &UserId,
        rev: u64,
    ) -> Result<Replaced, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.remove_user(app_id, id, rev).await
    }
    async fn sign_out_user(
        &self,
        app_id: &str,
        id: &UserId,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.sign_out_user(app_id, id, at, until).await
    }
    async fn signed_out_at(
        &self,
        app_id: &str,
        id: &UserId,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.signed_out_at(app_id, id).await
    }
    async fn load_keys(&self) -> Result<Option<StoredKeys>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load_keys().await
    }
    async fn save_keys(&self, json: &str, version: u64) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.save_keys(json, version).await
    }
    async fn revoke_token(&self, jti: &str, until: Timestamp) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_token(jti, until).await
    }
    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.is_token_revoked(jti).await
    }
    async fn append_audit(
        &self,
        event: &qr_bridge::audit::AuditEvent,
        keep: Duration,
    ) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.append_audit(event, keep).await
    }
    async fn read_audit(
        &self,
        since: Timestamp,
    ) -> Result<Vec<qr_bridge::audit::AuditEvent>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.read_audit(since).await
    }
    async fn enqueue_delivery(&self, d: &qr_bridge::outbox::Delivery) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.enqueue_delivery(d).await
    }
    async fn claim_delivery(
        &self,
        lease: Duration,
    ) -> Result<Option<qr_bridge::outbox::Claimed>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.claim_delivery(lease).await
    }
    async fn finish_delivery(&self, c: &qr_bridge::outbox::Claimed) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.finish_delivery(c).await
    }
    async fn retry_delivery(
        &self,
        c: &qr_bridge::outbox::Claimed,
        d: &qr_bridge::outbox::Delivery,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.retry_delivery(c, d, at).await
    }
    async fn subscribe(&self, id: &SessionId) -> Result<Subscription, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.subscribe(id).await
    }
}

/// A bridge under test, in this process: its client, and its store for inspection.
pub struct TestApp {
    pub client: Client,
    pub store: Arc<Counted>,
    /// The Redis store itself, for what only it can tell (its pub/sub connections).
    pub redis: Option<Arc<RedisStore>>,
    /// Set by a real shutdown signal; ends open streams, then the server.
    pub shutdown: tokio_util::sync::CancellationToken,
    pub server: tokio::task::JoinHandle<()>,
    /// The service itself, for what only it can be asked (reading the keys again).
    pub bridge: Arc<qr_bridge::bridge::Bridge>,
    pub backend: Backend,
    pub settings: Settings,
    /// The embedded store's clock (wall time for Redis, which keeps its own).
    pub clock: Clock,
    redis_url: String,
    _cleanup: Option<RedisCleanup>,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestApp {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Speaks to a bridge at `base` the way the shop's SDK and the phone page do.
pub use crate::kit::client::{Client, reply};

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, "5m").await
    }

    /// With limits far above what any test sends from its one address; limit tests set their own.
    pub async fn spawn_with(backend: Backend, ttl: &str) -> Self {
        Self::spawn_configured(backend, ttl, RELAXED_LIMITS).await
    }

    /// Behind a trusted proxy on loopback, so a test can speak from several client addresses
    /// (`X-Forwarded-For`), with relaxed limits.
    pub async fn spawn_behind_proxy(backend: Backend) -> Self {
        let extra = format!("trusted_proxies = [\"127.0.0.0/8\"]\n{RELAXED_LIMITS}");
        Self::spawn_configured(backend, "5m", &extra).await
    }

    /// `extra` is added to the settings (see [`settings_toml`]). Each app gets its own Redis
    /// key prefix, so tests run side by side and clean up only their own keys.
    pub async fn spawn_configured(backend: Backend, ttl: &str, extra: &str) -> Self {
        Self::spawn_full(backend, ttl, extra, &redis_url()).await
    }

    async fn spawn_full(backend: Backend, ttl: &str, extra: &str, url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
        let extra = format!("redis_prefix = \"{prefix}\"\n{extra}");
        let settings =
            Settings::from_toml(&settings_toml(ttl, dir.path(), &extra)).expect("test settings");
        let mut app = Self::start(backend, settings, url.to_owned(), "127.0.0.1:0").await;
        app._cleanup = (backend == Backend::Redis).then(|| RedisCleanup(prefix, url.to_owned()));
        app._dir = Some(dir);
        app
    }

    /// Another instance of the same deployment: same settings and key, same Redis keys.
    pub async fn sibling(&self) -> Self {
        Self::start(
            self.backend,
            self.settings.clone(),
            self.redis_url.clone(),
            "127.0.0.1:0",
        )
        .await
    }

    /// A bridge on the Redis at `url` (not the machine's shared one).
    pub async fn spawn_on_redis(url: &str) -> Self {
        Self::spawn_full(Backend::Redis, "5m", "", url).await
    }

    /// Listening on `[::]` (both IPv6 and IPv4, as a dual-stack server does): an IPv4 client then
    /// arrives as `::ffff:127.0.0.1`. Behind a trusted proxy on IPv4 loopback.
    pub async fn spawn_dual_stack_behind_proxy(backend: Backend, limits: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
        let extra =
            format!("redis_prefix = \"{prefix}\"\ntrusted_proxies = [\"127.0.0.0/8\"]\n{limits}");
        let settings =
            Settings::from_toml(&settings_toml("5m", dir.path(), &extra)).expect("test settings");
        let mut app = Self::start(backend, settings, redis_url(), "[::]:0").await;
        app._cleanup = (backend == Backend::Redis).then(|| RedisCleanup(prefix, redis_url()));
        app._dir = Some(dir);
        // Reach it over IPv4, so the peer is IPv4-mapped.
        let port = app.client.base.rsplit(':').next().unwrap().to_owned();
        app.client.base = format!("http://127.0.0.1:{port}");
        app
    }

    /// A bridge with settings of the test's own (`toml`, given this bridge's data directory).
    pub async fn spawn_settings(
        backend: Backend,
        toml: impl FnOnce(&std::path::Path) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
        let text = format!("redis_prefix = \"{prefix}\"\n{}", toml(dir.path()));
        let settings = Settings::from_toml(&text).expect("test settings");
        let mut app = Self::start(backend, settings, redis_url(), "127.0.0.1:0").await;
        app._cleanup = (backend == Backend::Redis).then(|| RedisCleanup(prefix, redis_url()));
        app._dir = Some(dir);
        app
    }

    /// The same deployment started again with other settings (an app's, changed), on the same
    /// store: what it kept (users, passkeys, keys) is there, on either backend.
    pub async fn restarted_with(&self, toml: &str) -> Self {
        let mut settings = Settings::from_toml(toml).expect("test settings");
        settings.redis_prefix = self.settings.redis_prefix.clone();
        let mut app = Self::start_on(
            self.backend,
            settings,
            self.redis_url.clone(),
            "127.0.0.1:0",
            Some(self.store.inner.clone()),
        )
        .await;
        app.clock = self.clock.clone();
        app
    }

    async fn start(backend: Backend, settings: Settings, redis_url: String, bind: &str) -> Self {
        Self::start_on(backend, settings, redis_url, bind, None).await
    }

    async fn start_on(
        backend: Backend,
        settings: Settings,
        redis_url: String,
        bind: &str,
        existing: Option<Arc<dyn Store>>,
    ) -> Self {
        let prefix = settings.redis_prefix.clone();
        // The embedded store and its rate windows share one clock a test may turn.
        let clock = match backend {
            Backend::Memory => Clock::turnable(),
            Backend::Redis => Clock::system(),
        };
        let (inner, redis, counter): (Arc<dyn Store>, _, Arc<dyn Counter>) = match backend {
            Backend::Memory if existing.is_some() => (
                existing.clone().unwrap(),
                None,
                Arc::new(MemoryCounter::new(clock.clone())),
            ),
            Backend::Memory => (
                Arc::new(MemoryStore::in_memory(clock.clone())),
                None,
                Arc::new(MemoryCounter::new(clock.clone())),
            ),
            Backend::Redis => {
                let store = Arc::new(
                    RedisStore::connect(&redis_url, &prefix)
                        .await
                        .expect("Redis at REDIS_URL"),
                );
                let counter = RedisCounter::connect(&redis_url, &prefix)
                    .await
                    .expect("Redis at REDIS_URL");
                (store.clone(), Some(store), Arc::new(counter))
            }
        };
        // The browser sessions follow the backend, as in production.
        let mut settings = settings;
        if backend == Backend::Redis {
            settings.store = qr_bridge::settings::StoreKind::Redis {
                url: redis_url.clone(),
            };
        }
        // A sibling finds the ring its first instance was given.
        inner.save_keys(key_ring_json(), 1).await.unwrap();
        let store = Arc::new(Counted {
            inner,
            calls: AtomicUsize::new(0),
        });
        let state = AppState::new(&settings, store.clone(), counter, None)
            .await
            .expect("bridge");
        // What the bridge reads at start (its keys, the clock) is no request's doing.
        store.calls.store(0, Ordering::SeqCst);
        let shutdown = state.shutdown.clone();
        let bridge = state.bridge.clone();
        let router = app(state);
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = shutdown.clone();
        // Served as the binary serves it: hyper's timeouts, the connection cap, graceful shutdown.
        let connections = settings.connections;
        let server = tokio::spawn(qr_bridge::server::serve_on(
            listener,
            router,
            connections,
            None,
            stop,
        ));
        TestApp {
            client: Client::new(&format!("http://{addr}")),
            store,
            redis,
            shutdown,
            server,
            bridge,
            backend,
            settings,
            clock,
            redis_url,
            _cleanup: None,
            _dir: None,
        }
    }

    /// Lets `by` pass for the bridge: the embedded store's clock is turned at once; Redis's
    /// own clock must be waited for.
    pub async fn pass(&self, by: Duration) {
        if !self.clock.turn(by) {
            tokio::time::sleep(by).await;
        }
    }

    pub fn store_calls(&self) -> usize {
        self.store.calls.load(Ordering::SeqCst)
    }
}

/// The calls only the tests make; the kit holds those the benchmark harness makes too.
impl Client {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Client::for_app(http, base, SHOP_KEY, SHOP_ORIGIN)
    }

    /// A request as the SDK in a browser on the shop's origin sends it.
    pub fn shop_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app_request(method, path)
    }

    pub async fn status(&self, id: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.shop_request(Method::GET, &format!("/v1/auth/cross-device/status/{id}"));
        if let Some(token) = token {
            req = req.header("X-Polling-Token", token);
        }
        reply(req).await
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

    /// A registration session started by the shop's backend (secret key, no `Origin`),
    /// optionally for the integrator's own user id: the one way to add to an existing user.
    pub async fn init_registration(&self, external_user_id: Option<&str>) -> Started {
        let req = self
            .request(Method::POST, "/v1/auth/cross-device/init-registration")
            .bearer_auth(SHOP_SECRET);
        crate::kit::client::started(self.start_registration(req, external_user_id).await)
    }

    pub async fn signup(&self, id: &str) -> (StatusCode, Value) {
        reply(self.shop_request(Method::POST, &format!("/v1/auth/cross-device/signup/{id}"))).await
    }

    pub async fn validate(&self, token: &str) -> (StatusCode, Value) {
        reply(
            self.request(Method::GET, "/v1/sessions/validate")
                .bearer_auth(token),
        )
        .await
    }

    /// The completed status: `(user_id, session_token)`.
    pub async fn completion(&self, s: &Started) -> (String, String) {
        let (status, body) = self.status(&s.session_id, Some(&s.polling_token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["status"], "completed", "{body}");
        let data = &body["data"];
        (
            data["user_id"].as_str().unwrap().to_owned(),
            data["session_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers a passkey for `external_user_id` on `phone` through the API; returns the user id.
    pub async fn register(
        &self,
        phone: &mut crate::phone::Phone,
        external_user_id: Option<&str>,
    ) -> String {
        let s = self.init_registration(external_user_id).await;
        self.register_phone(phone, BRIDGE_ORIGIN, &s.session_id)
            .await;
        self.completion(&s).await.0
    }

    /// A whole sign-in with `phone`'s passkey: `(user_id, session_token)` as the desktop receives them.
    pub async fn sign_in(&self, phone: &mut crate::phone::Phone) -> (String, String) {
        let (s, options) = self.opened_sign_in().await;
        let got = self
            .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await;
        assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
        self.completion(&s).await
    }

    /// A browser with its own cookie jar, as the pages' visitors have.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// Calls a page's server function `F` as its page does (a form POST), from `origin`.
    pub async fn server_fn<F: leptos::server_fn::ServerFn>(
        &self,
        browser: &reqwest::Client,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut req = browser.post(format!("{}{}", self.base, F::PATH)).form(form);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// A sign-in session the phone has opened: the session and its request options.
    pub async fn opened_sign_in(&self) -> (Started, Value) {
        let s = self.init().await;
        let options = self.options(&s.session_id).await;
        (s, options)
    }
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
                    if $crate::helpers::no_redis() {
                        return;
                    }
                    super::$name($crate::helpers::Backend::Redis).await
                }
            }
        )*
    };
}

/// A Redis server of this test's own, on a free port, keeping its data across restarts (AOF), so
/// it can be restarted without touching the machine's shared one.
pub struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    process: std::process::Child,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = crate::kit::free_port();
        let dir = tempfile::tempdir().unwrap();
        let process = Self::launch(port, dir.path());
        OwnRedis { port, dir, process }
    }

    fn launch(port: u16, dir: &std::path::Path) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (the data is kept); nothing answers on its port until [`OwnRedis::start_again`].
    pub fn stop(&mut self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let _: Result<(), _> = redis::cmd("SHUTDOWN").query(&mut conn);
        self.process.wait().unwrap();
    }

    pub fn start_again(&mut self) {
        self.process = Self::launch(self.port, self.dir.path());
    }

    /// A clean shutdown (the data is kept), then the same server again.
    pub fn restart(&mut self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let _: Result<(), _> = redis::cmd("SHUTDOWN").query(&mut conn);
        self.process.wait().unwrap();
        self.process = Self::launch(self.port, self.dir.path());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

//! The application state every handler and server function reaches: the service, the limits, the browser sessions, the shutdown signal and the site's build settings.

use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::apps::Invalid;
use crate::bridge::{Bridge, KEY_REFRESH, SetupError};
use crate::limits::{Counter, Limiter, OpenStreams, TrustedProxies};
use crate::settings::Settings;
use crate::site::Site;
use crate::store::{Store, WebSessions};

/// What every handler and server function reaches, behind one `Arc`: extractors clone the state
/// on every request, and field by field that clone was a measurable share of a cheap request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The service, the rate limits, the shutdown signal open streams listen to, and the pages'
/// build settings.
pub struct Shared {
    pub bridge: Arc<Bridge>,
    pub limiter: Arc<Limiter>,
    pub proxies: Arc<TrustedProxies>,
    pub shutdown: CancellationToken,
    /// The app whose sign-in page is served at `/`.
    pub home_app: Option<String>,
    /// Where a request comes from, as the phone is told (see `place`).
    pub places: Arc<crate::place::Places>,
    pub web_sessions: WebSessions,
    /// Status streams open on this instance, by session and by browser session.
    pub streams: OpenStreams,
    /// How long a request may take to be answered (see `Connections`).
    pub request_timeout: std::time::Duration,
    /// How often a quiet status stream sends a comment (see `Connections`).
    pub stream_heartbeat: std::time::Duration,
    pub public_origin: String,
    pub leptos: LeptosOptions,
    /// The built site and its files' names.
    pub site: Site,
    /// Renders `/metrics` on the main listener (`metrics = "main"`); `None` answers 404 there.
    pub metrics: Option<PrometheusHandle>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// `counter` keeps the rate-limit windows: shared through Redis when the store is. Starts
    /// the task that picks up key rotations, which ends with the shutdown signal.
    pub async fn new(
        settings: &Settings,
        store: Arc<dyn Store>,
        counter: Arc<dyn Counter>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, SetupError> {
        let bridge = Arc::new(Bridge::new(settings, store).await?);
        let shutdown = CancellationToken::new();
        let site = Site::find(settings);
        tokio::spawn(refresh_keys(Arc::downgrade(&bridge), shutdown.clone()));
        Ok(Self(Arc::new(Shared {
            bridge,
            limiter: Arc::new(Limiter::new(settings.limits.clone(), counter)),
            proxies: Arc::new(settings.proxies.clone()),
            shutdown,
            home_app: settings.home_app.clone(),
            places: settings.places.clone(),
            streams: OpenStreams::default(),
            request_timeout: settings.connections.request_timeout,
            stream_heartbeat: settings.connections.stream_heartbeat,
            web_sessions: WebSessions::new(&settings.store, &settings.redis_prefix)
                .map_err(|e| SetupError::Settings(Invalid::new("store", e)))?,
            public_origin: settings.public_origin.clone(),
            leptos: site.leptos_options(settings),
            site,
            metrics,
        })))
    }
}

/// Reads the signing keys every [`KEY_REFRESH`], so a `qr-bridge keys rotate` reaches every
/// instance without a restart; a failed read keeps the keys it has.
async fn refresh_keys(bridge: std::sync::Weak<Bridge>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(KEY_REFRESH) => {}
        }
        let Some(bridge) = bridge.upgrade() else {
            return;
        };
        if let Err(e) = bridge.refresh_keys().await {
            tracing::warn!(error = %e, "could not read the signing keys; keeping the current ones");
        }
    }
}

//! The HTTP server: one router for the API and the pages over shared state, served with graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use crate::limits;
use crate::limits::Activity;
use crate::settings::{Connections, MetricsAt, Settings, StoreKind};
use crate::state::AppState;
use crate::store;
use crate::telemetry;
use crate::tls::{Accepted, Tls};
use crate::ui::{App, shell};
use crate::{api, headers};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, api::ApiError> {
    state.bridge.ready().await?;
    Ok("ready")
}

/// The whole site: `main` serves it, and the tests serve it on port 0.
pub fn app(state: AppState) -> Router {
    let request_timeout = state.request_timeout;
    let proxies = state.proxies.clone();
    let pages = generate_route_list(App);
    let options = state.leptos.clone();
    let https = state.public_origin.starts_with("https://");
    let sessions = state.web_sessions.clone().layer(https);
    let router = Router::new()
        .merge(api::routes(state.bridge.apps()))
        .merge(crate::widget::routes())
        .route(
            "/login/{app_id}/events",
            axum::routing::get(crate::ui::desk_events),
        )
        // Liveness, for the benchmark's HTTP ceiling too: touches no store.
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        // Readiness, for load balancers: fails while the store does not answer.
        .route("/readyz", axum::routing::get(readyz))
        .route(
            "/metrics",
            axum::routing::get(|state: axum::extract::State<AppState>| {
                std::future::ready(scrape(state.metrics.as_ref()))
            }),
        )
        // The site's build output, served with the request's own headers (leptos's fallback
        // drops them), so a browser's If-Modified-Since gets a 304 instead of the whole wasm.
        .merge(state.site.routes())
        .leptos_routes(&state, pages, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ui::server::guard_server_fns,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ui::server::remember_language,
        ))
        .with_state(state);
    // Inside the headers: a 408 carries them like any other answer.
    let router = router.layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ));
    // Brotli or gzip as the client asks (the wasm shrinks to about a third); never an event
    // stream (tower-http's default predicate), whose events must leave at once. Level 5: close
    // to the best ratio at a fraction of brotli's default (11) cost, paid on every request.
    let router = router.layer(CompressionLayer::new().quality(CompressionLevel::Precise(5)));
    let router = headers::apply(router, https);
    let router = if telemetry::enabled() {
        router.layer(telemetry::http_layer())
    } else {
        router
    };
    crate::logging::layer(router, proxies)
}

/// The Prometheus text format, or 404 where metrics are not served.
fn scrape(handle: Option<&PrometheusHandle>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match handle {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                handle.render(),
            )
                .into_response()
        }
        None => api::ApiError::RouteNotFound.into_response(),
    }
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    if let StoreKind::Redis { url } = &settings.store {
        match store::check_persistence(url).await {
            Ok(()) => {}
            Err(why) if settings.allow_volatile_redis => {
                tracing::warn!("SETTINGS: allow_volatile_redis: {why}");
            }
            Err(why) => anyhow::bail!("store: {why}"),
        }
    }
    // The embedded store's files are this process's from before it reads them until it exits.
    let _data_dir = match settings.store {
        StoreKind::Memory => Some(crate::manage::socket::hold(&settings.data_dir)?),
        StoreKind::Redis { .. } => None,
    };
    let clock = crate::clock::Clock::system();
    let store = store::open(
        &settings.store,
        &settings.redis_prefix,
        &settings.data_dir,
        &clock,
    )
    .await
    .map_err(|e| anyhow::anyhow!("store: {e}"))?;
    if let StoreKind::Redis { url } = &settings.store {
        let (url, prefix) = (url.clone(), settings.redis_prefix.clone());
        tokio::spawn(async move {
            match store::index_users(&url, &prefix).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("listed {n} user(s) made before the user sets existed"),
                Err(e) => tracing::warn!("could not list older users for the commands: {e}"),
            }
        });
    }
    let counter = limits::counter(&settings.store, &settings.redis_prefix, &clock)
        .await
        .map_err(|e| anyhow::anyhow!("store: {e}"))?;
    for warning in &settings.warnings {
        tracing::warn!("SETTINGS: {warning}");
    }
    let metrics = match settings.metrics {
        MetricsAt::Off => None,
        MetricsAt::Main | MetricsAt::Addr(_) => Some(telemetry::install()?),
    };
    let on_main = (settings.metrics == MetricsAt::Main)
        .then(|| metrics.clone())
        .flatten();
    let state = AppState::new(&settings, store.clone(), counter, on_main).await?;
    let shutdown = state.shutdown.clone();
    // The embedded store's users live in this process: management commands come in here.
    if settings.store == StoreKind::Memory {
        let manager = crate::manage::Manager::new(
            store.clone(),
            settings.apps.clone(),
            settings.audit_retention,
        );
        let listening =
            crate::manage::socket::listen(&settings.data_dir, Arc::new(manager), shutdown.clone())
                .await;
        // The bridge serves without it; the commands then refuse rather than edit its files.
        if let Err(e) = listening {
            tracing::warn!(
                "no admin socket ({e:#}): `qr-bridge users|passkeys|audit` cannot reach this bridge"
            );
        }
    }
    if !state.site.is_built() {
        tracing::warn!(
            "{} is missing: pages will render but not come alive; build the site with `cargo leptos build`",
            state.site.pkg().join(&state.site.script).display()
        );
    }

    let tls = (settings.tls.as_ref())
        .map(|source| crate::tls::start(source, &shutdown))
        .transpose()?;
    let listener = TcpListener::bind(settings.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.addr))?;
    let store_name = match &settings.store {
        StoreKind::Memory => "embedded (memory)".to_owned(),
        StoreKind::Redis { url } if store::cluster_nodes(url).is_some() => {
            "redis cluster".to_owned()
        }
        StoreKind::Redis { .. } => "redis".to_owned(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "QR Bridge listening on {scheme}://{} (public origin {}, store {store_name}, {} app(s))",
        listener.local_addr()?,
        settings.public_origin,
        settings.apps.iter().count()
    );
    tracing::info!("{}", Reach::of(&settings));
    if let Some(addr) = settings.redirect_addr {
        let plain = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("redirect_addr: cannot listen on {addr}: {e}"))?;
        tracing::info!(
            "redirecting http://{} to {}",
            plain.local_addr()?,
            settings.public_origin
        );
        let http01 = tls.as_ref().and_then(|t| t.http01.clone());
        let redirect = crate::tls::redirect::router(&settings.public_origin, http01);
        let redirect = crate::logging::layer(
            headers::apply(redirect, false),
            Arc::new(settings.proxies.clone()),
        );
        tokio::spawn(serve_on(
            plain,
            redirect,
            settings.connections,
            None,
            shutdown.clone(),
        ));
    }
    if let (MetricsAt::Addr(addr), Some(handle)) = (settings.metrics, metrics) {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {addr}: {e}"))?;
        tracing::info!(
            "metrics at http://{} (GET /metrics)",
            listener.local_addr()?
        );
        let router = Router::new().route(
            "/metrics",
            axum::routing::get(move || std::future::ready(scrape(Some(&handle)))),
        );
        let router = crate::logging::layer(
            headers::apply(router, false),
            Arc::new(settings.proxies.clone()),
        );
        tokio::spawn(serve_on(
            listener,
            router,
            settings.connections,
            None,
            shutdown.clone(),
        ));
    }
    let sender = crate::webhooks::Sender::new(
        store,
        settings.apps.clone(),
        settings.webhook_first_retry,
        settings.webhook_give_up_after,
    )?;
    let sending = tokio::spawn(sender.run(shutdown.clone()));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // First: nothing that follows (a log line included) may keep the bridge from stopping.
        stop.cancel();
        tracing::info!("shutting down: ending open streams");
    });
    let tls = tls.map(|t| t.tls.clone());
    serve_on(listener, app(state), settings.connections, tls, shutdown).await;
    // A webhook under way is sent and settled before the process ends: nothing twice.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, sending).await;

    tracing::info!("QR Bridge stopped");
    Ok(())
}

/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown`, then waits for the requests in flight (open
/// event streams end on the same signal). Each connection must finish its TLS handshake (when
/// `tls` is given) and send a request head within `header_timeout` (hyper's own timer for
/// HTTP/1.1, which also closes idle keep-alive connections), and at most `max_connections` are
/// open: the rest wait in the listen queue (`request_timeout` is the router's own layer, see
/// [`app`]). The router sees the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    limits: Connections,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // HTTP/2 only over TLS, chosen through ALPN. Each connection counts once against
    // `max_connections` however many streams it carries, so streams are kept few; pings find
    // peers that went away without closing.
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout)
        // Request bodies are a few KB of JSON: small windows and buffers bound what one
        // connection can make the bridge hold, whatever its number of streams.
        .initial_stream_window_size(64 * 1024)
        .initial_connection_window_size(256 * 1024)
        .max_send_buf_size(64 * 1024)
        .max_header_list_size(16 * 1024)
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(256));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let places = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let place = tokio::select! {
            () = shutdown.cancelled() => break,
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most often: wait for some to close rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        ));
        let watcher = graceful.watcher();
        let (http1, http2, tls) = (http1.clone(), http2.clone(), tls.clone());
        let router = router.clone();
        tokio::spawn(async move {
            let _place = place;
            let Some(tls) = tls else {
                let served = watcher.watch(http1.serve_connection(TokioIo::new(stream), service));
                return log_end(served.await);
            };
            match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Ok(Ok(Accepted::Challenge)) => tracing::debug!(%peer, "answered an ACME check"),
                Ok(Ok(Accepted::Http { stream, h2: true })) => {
                    let activity = Activity::default();
                    let tracked = activity.clone();
                    let service = TowerToHyperService::new(tower::service_fn(
                        move |mut request: axum::http::Request<hyper::body::Incoming>| {
                            let busy = tracked.begin();
                            request
                                .extensions_mut()
                                .insert(axum::extract::ConnectInfo(peer));
                            let answer = router.clone().oneshot(request);
                            async move { Ok::<_, Infallible>(Activity::hold(busy, answer.await?)) }
                        },
                    ));
                    let served =
                        watcher.watch(http2.serve_connection(TokioIo::new(stream), service));
                    // What header_timeout is to HTTP/1.1: no request (or no preface) for that
                    // long, and nothing in flight, closes the connection and frees its place.
                    tokio::select! {
                        end = served => log_end(end),
                        () = activity.idle_for(limits.header_timeout) => {
                            tracing::debug!(%peer, "closed an idle HTTP/2 connection");
                        }
                    }
                }
                Ok(Ok(Accepted::Http { stream, h2: false })) => log_end(
                    watcher
                        .watch(http1.serve_connection(TokioIo::new(stream), service))
                        .await,
                ),
            }
        });
    }
    drop(listener);
    // A client that never reads its response must not hold the shutdown forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
}

/// Streams at once on one HTTP/2 connection: a page's assets and an event stream, with room.
const H2_STREAMS: u32 = 16;

fn log_end(served: Result<(), hyper::Error>) {
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Who can use the bridge, said once at start: a phone needs HTTPS with a certificate it trusts
/// (browsers make an exception for `localhost` alone, which a phone cannot reach).
struct Reach<'a>(&'a Settings);

impl Reach<'_> {
    fn of(settings: &Settings) -> Reach<'_> {
        Reach(settings)
    }
}

impl std::fmt::Display for Reach<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.0;
        let origin = &settings.public_origin;
        let local = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(crate::apps::is_local_host))
            .unwrap_or(true);
        match &settings.tls {
            // A phone's localhost is the phone: HTTPS does not change that.
            Some(_) if local => write!(
                f,
                "open {origin} : on this computer only. For a phone, set public_origin to the \
                 name in the certificate, which the phone resolves to this machine"
            ),
            Some(crate::tls::Source::Files(files)) => write!(
                f,
                "open {origin} : phones can use it if they trust the certificate in {} \
                 (one from a public CA, or your own CA installed on the phone)",
                files.cert.display()
            ),
            Some(crate::tls::Source::Acme(acme)) => write!(
                f,
                "open {origin} : phones can use it once its certificate from {} is there \
                 (the first start orders it; DNS for {} must point here)",
                acme.directory,
                acme.domains.join(", ")
            ),
            None if origin.starts_with("https://") => write!(
                f,
                "open {origin} : phones can use it through your HTTPS proxy \
                 (the bridge itself speaks plain HTTP on {})",
                settings.addr
            ),
            None => write!(
                f,
                "open {origin} : on this computer only. A phone needs HTTPS with a certificate it \
                 trusts: set tls_cert and tls_key, or [acme] (README, \"Deploy\")"
            ),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = interrupt => {}, () = terminate => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(toml: &str) -> String {
        Reach::of(&Settings::from_toml(toml).unwrap()).to_string()
    }

    #[test]
    fn the_start_says_whether_a_phone_can_use_the_bridge() {
        let plain = reach("addr = \"127.0.0.1:3000\"");
        assert!(
            plain.starts_with("open http://localhost:3000 : on this computer only"),
            "{plain}"
        );
        let proxied = reach("public_origin = \"https://bridge.example.com\"");
        assert!(proxied.contains("through your HTTPS proxy"), "{proxied}");
        let files =
            "addr = \"127.0.0.1:443\"\ntls_cert = \"/etc/tls/c.pem\"\ntls_key = \"/etc/tls/k.pem\"";
        let local = reach(files);
        assert!(
            local.starts_with("open https://localhost : on this computer only"),
            "{local}"
        );
        let named = reach(&format!("{files}\npublic_origin = \"https://bridge.lan\""));
        assert!(
            named.starts_with("open https://bridge.lan : phones can use it if they trust")
                && named.contains("/etc/tls/c.pem"),
            "{named}"
        );
        let acme = reach("addr = \"0.0.0.0:8443\"\n[acme]\ndomains = [\"bridge.example.com\"]");
        assert!(
            acme.starts_with("open https://bridge.example.com:8443 : phones can use it once")
                && acme.contains("letsencrypt.org"),
            "{acme}"
        );
    }
}

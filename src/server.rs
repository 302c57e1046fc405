//! The HTTP server: one router for the API and the pages over shared state, served with graceful shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::limits;
use crate::settings::{Connections, Settings, StoreKind};
use crate::state::AppState;
use crate::store;
use crate::ui::{App, shell};
use crate::{api, headers};

async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, api::ApiError> {
    state.bridge.ready().await?;
    Ok("ready")
}

/// The whole site: `main` serves it, and the tests serve it on port 0.
pub fn app(state: AppState) -> Router {
    let request_timeout = state.request_timeout;
    let pages = generate_route_list(App);
    let options = state.leptos.clone();
    let sessions = state
        .web_sessions
        .clone()
        .layer(state.public_origin.starts_with("https://"));
    let router = Router::new()
        .merge(api::routes(state.bridge.apps()))
        .route(
            "/login/{app_id}/events",
            axum::routing::get(crate::ui::desk_events),
        )
        // Liveness, for the benchmark's HTTP ceiling too: touches no store.
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        // Readiness, for load balancers: fails while the store does not answer.
        .route("/readyz", axum::routing::get(readyz))
        .leptos_routes(&state, pages, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ui::server::guard_server_fns,
        ))
        .with_state(state);
    // Inside the headers: a 408 carries them like any other answer.
    let router = router.layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ));
    headers::apply(router).layer(TraceLayer::new_for_http())
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
    let clock = crate::clock::Clock::system();
    let store = store::open(
        &settings.store,
        &settings.redis_prefix,
        &settings.data_dir,
        &clock,
    )
    .await
    .map_err(|e| anyhow::anyhow!("store: {e}"))?;
    let counter = limits::counter(&settings.store, &settings.redis_prefix, &clock)
        .await
        .map_err(|e| anyhow::anyhow!("store: {e}"))?;
    for warning in &settings.warnings {
        tracing::warn!("SETTINGS: {warning}");
    }
    let state = AppState::new(&settings, store, counter).await?;
    let shutdown = state.shutdown.clone();
    // The script's name is the same whoever built it; the wasm's gains `_bg` outside cargo-leptos.
    let script = PathBuf::from(&*state.leptos.site_root)
        .join("pkg")
        .join(format!("{}.js", state.leptos.output_name));

    if !script.is_file() {
        tracing::warn!(
            "{} is missing: pages will render but not come alive; build the site with `cargo leptos build`",
            script.display()
        );
    }

    let listener = TcpListener::bind(settings.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.addr))?;
    let store_name = match &settings.store {
        StoreKind::Memory => "embedded (memory)".to_owned(),
        StoreKind::Redis { .. } => "redis".to_owned(),
    };
    tracing::info!(
        "QR Bridge listening on http://{} (public origin {}, store {store_name}, {} app(s))",
        listener.local_addr()?,
        settings.public_origin,
        settings.apps.iter().count()
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: ending open streams");
        stop.cancel();
    });
    serve_on(listener, app(state), settings.connections, shutdown).await;

    tracing::info!("QR Bridge stopped");
    Ok(())
}

/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown`, then waits for the requests in flight (open
/// event streams end on the same signal). Each connection must send a request head within
/// `header_timeout` (hyper's own timer, which also closes idle keep-alive connections), and at
/// most `max_connections` are open: the rest wait in the listen queue (`request_timeout` is the
/// router's own layer, see [`app`]). The router sees the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    limits: Connections,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    // HTTP/1.1 only, as before: its timer runs from the first byte a connection owes, so an idle
    // or slow connection is closed by hyper itself.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(place);
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

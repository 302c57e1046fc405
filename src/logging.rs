//! The log: human lines or JSON objects on stderr, at the level the settings or `RUST_LOG` ask, each request under its own id.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, Request};
use tower_http::request_id::RequestId;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::limits::TrustedProxies;

/// What the lines look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event: for a terminal or journald.
    #[default]
    Text,
    /// One JSON object per line, with the request's span fields: for a log pipeline.
    Json,
}

/// webauthn-rs traces whole ceremonies (signatures, client data) below info: whatever the level
/// asks, its crates log at info at most, so no passkey answer reaches a log.
const ALWAYS_QUIET: [&str; 3] = [
    "webauthn_rs_core=info",
    "webauthn_rs=info",
    "webauthn_rs_proto=info",
];

/// The filter: `RUST_LOG` when set (it wins, as everywhere in Rust), otherwise `level` (an
/// `EnvFilter` directive list such as `info` or `warn,qr_bridge=debug`).
pub fn filter(level: &str) -> anyhow::Result<EnvFilter> {
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(directives).map_err(|e| anyhow::anyhow!("RUST_LOG: {e}"))?
        }
        _ => EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("log_level: {e}"))?,
    };
    for quiet in ALWAYS_QUIET {
        filter = filter.add_directive(quiet.parse()?);
    }
    Ok(filter)
}

/// Whether `level` is a filter `EnvFilter` reads, whatever `RUST_LOG` says now.
pub fn check_level(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Installs the process's logger; a second call (tests, a command after another) is ignored.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // When stderr is gone (its reader died), the default reports that with `eprintln!`, which
        // panics: the task that was logging dies, and with it, once, the shutdown on SIGTERM.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// The longest request id taken from a client or proxy; longer ones are replaced by our own.
const MAX_REQUEST_ID: usize = 64;

/// A request id is kept only when a trusted proxy sent it (its id ties its log to ours; a
/// client's own could pose as another request's) and it is short and plain, so it can neither
/// forge log structure nor bloat every line; otherwise a fresh UUID names the request.
pub fn keep_proxy_request_id<B>(mut request: Request<B>, proxies: &TrustedProxies) -> Request<B> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    let from_proxy = peer.is_some_and(|ip| proxies.trusts(ip));
    let plain = from_proxy
        && request.headers().get(X_REQUEST_ID).is_some_and(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_REQUEST_ID
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if !plain {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

pub const X_REQUEST_ID: &str = "x-request-id";

/// Names each request (the caller's plain id, or a fresh UUID), logs it under that name, and
/// answers the name back in `x-request-id`, so a person reporting a problem can quote it.
pub fn layer(router: Router, proxies: Arc<TrustedProxies>) -> Router {
    let header = HeaderName::from_static(X_REQUEST_ID);
    let kept = move |request: Request<Body>| keep_proxy_request_id(request, &proxies);
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span::<Body>))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(kept))
}

/// The span every request's events sit in: its id, method and path. Never the query: the
/// pages' links are plain, but a caller's mistake must not put a secret in the log.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies() -> TrustedProxies {
        TrustedProxies {
            nets: vec!["10.0.0.0/8".parse().unwrap()],
            header: "x-forwarded-for".into(),
        }
    }

    fn kept_from(peer: [u8; 4], value: &HeaderValue) -> bool {
        let mut request = Request::builder()
            .header(X_REQUEST_ID, value)
            .body(())
            .unwrap();
        let peer = SocketAddr::from((peer, 40000));
        request.extensions_mut().insert(ConnectInfo(peer));
        keep_proxy_request_id(request, &proxies())
            .headers()
            .contains_key(X_REQUEST_ID)
    }

    fn is_plain(value: &HeaderValue) -> bool {
        kept_from([10, 0, 0, 1], value)
    }

    #[test]
    fn only_a_trusted_proxy_names_a_request() {
        let id = HeaderValue::from_static("nginx-7f3a");
        assert!(kept_from([10, 1, 2, 3], &id));
        assert!(
            !kept_from([203, 0, 113, 9], &id),
            "a client names no request"
        );
    }

    #[test]
    fn plain_request_ids_are_kept_and_others_replaced() {
        for kept in ["abc-123", "9f1c2e7a.4_b", &"a".repeat(64)] {
            assert!(is_plain(&HeaderValue::from_str(kept).unwrap()), "{kept}");
        }
        for dropped in ["", "a b", "x\"}{", "ünï", &"a".repeat(65)] {
            let Ok(value) = HeaderValue::from_str(dropped) else {
                continue;
            };
            assert!(!is_plain(&value), "{dropped:?}");
        }
    }

    #[test]
    fn the_level_setting_is_checked_and_webauthn_stays_quiet() {
        assert!(check_level("warn,qr_bridge=debug").is_ok());
        assert!(check_level("qr_bridge=loudly").is_err());
        let text = filter("trace").unwrap().to_string();
        assert!(text.contains("webauthn_rs_core=info"), "{text}");
    }
}

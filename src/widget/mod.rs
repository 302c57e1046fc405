//! The sign-in widget, `/widget/v1.js`: a dependency-free browser module any page loads from the bridge (see `v1.js`).

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::routing::get;

/// Compiled in: the widget is the bridge's own, versioned with it.
pub const SCRIPT: &str = include_str!("v1.js");

/// `/widget/v1.js`. A module script from another origin is fetched with CORS, so any origin may
/// read it (it is public); pages with `Cross-Origin-Embedder-Policy` may embed it. Kept an hour:
/// `v1` changes only compatibly.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        "/widget/v1.js",
        get(|| async {
            (
                [
                    (
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript; charset=utf-8"),
                    ),
                    (
                        CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=3600"),
                    ),
                    (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
                    (
                        HeaderName::from_static("cross-origin-resource-policy"),
                        HeaderValue::from_static("cross-origin"),
                    ),
                ],
                SCRIPT,
            )
        }),
    )
}

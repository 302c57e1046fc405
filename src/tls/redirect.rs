//! The plain-HTTP listener: it sends every request to the HTTPS origin, and answers ACME HTTP-01 checks.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use rustls_acme::ResolvesServerCertAcme;

#[derive(Clone)]
struct Target {
    origin: Arc<str>,
    acme: Option<Arc<ResolvesServerCertAcme>>,
}

/// Redirects to `origin` (the bridge's https public origin, never the request's `Host`, so this
/// cannot be made to send anyone elsewhere), keeping path and query.
pub fn router(origin: &str, acme: Option<Arc<ResolvesServerCertAcme>>) -> Router {
    Router::new()
        .route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(challenge),
        )
        .fallback(to_https)
        .with_state(Target {
            origin: origin.trim_end_matches('/').into(),
            acme,
        })
}

async fn to_https(State(target): State<Target>, uri: Uri) -> Redirect {
    let rest = uri.path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("{}{rest}", target.origin))
}

async fn challenge(State(target): State<Target>, Path(token): Path<String>, uri: Uri) -> Response {
    match target
        .acme
        .as_ref()
        .and_then(|acme| acme.get_http_01_key_auth(&token))
    {
        Some(key_authorization) => key_authorization.into_response(),
        // Not ours to answer: a plain request for such a path still goes to HTTPS.
        None if target.acme.is_none() => to_https(State(target), uri).await.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

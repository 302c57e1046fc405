//! What every page's server side shares: the browser's session, who the client is, one way to say a failure, and the guard in front of the server functions.

use std::net::IpAddr;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leptos::prelude::ServerFnError;
use tower_sessions::Session as WebSession;

use crate::bridge::BridgeError;
use crate::i18n::{Lang, Text, text};
use crate::problem::Problem;
use crate::state::AppState;

/// A failure the page can only report: the browser session or the request could not be read.
/// (In English: which language the request asked for may be what could not be read.)
pub fn internal(e: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %e, "page request failed");
    ServerFnError::new(text(Lang::En, Text::OursAdvice))
}

/// A refusal of the service, worded for people in `lang` from the one table (see `problem`).
pub fn refused(e: &BridgeError, lang: Lang) -> ServerFnError {
    let problem = Problem::of(e);
    if problem.is_ours() {
        tracing::error!(error = %e, "page request failed");
        // Its advice already says whose failure it was.
        return ServerFnError::new(text(lang, problem.advice));
    }
    ServerFnError::new(format!(
        "{}. {}",
        text(lang, problem.title),
        text(lang, problem.advice)
    ))
}

pub async fn web_session() -> Result<WebSession, ServerFnError> {
    leptos_axum::extract::<WebSession>().await.map_err(internal)
}

/// The client's address (behind trusted proxies) and the request headers.
pub async fn client(state: &AppState) -> Result<(IpAddr, HeaderMap), ServerFnError> {
    let headers: HeaderMap = leptos_axum::extract().await.map_err(internal)?;
    let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    Ok((state.proxies.client(peer, &headers), headers))
}

pub use crate::i18n::{LANG_COOKIE, from_headers as lang_of};

/// The language of the server function's request.
pub async fn lang() -> Lang {
    leptos_axum::extract::<HeaderMap>()
        .await
        .map(|headers| lang_of(&headers))
        .unwrap_or_default()
}

/// The language switch: a page link with `?lang=xx` remembers the choice for a year and comes
/// back to the same address without it (303), so the address stays shareable and the choice
/// holds on every page. A choice we do not have is ignored.
pub async fn remember_language(
    Extract(state): Extract<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri();
    let page = request.method() == axum::http::Method::GET
        && !uri.path().starts_with("/v1/")
        && !uri.path().starts_with("/api/");
    let query = uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let chosen = pairs
        .iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(v));
    let (true, Some(lang)) = (page, chosen) else {
        return next.run(request).await;
    };
    let rest: Vec<_> = pairs.iter().filter(|(k, _)| k != "lang").collect();
    let mut back = own_path(uri.path());
    if !rest.is_empty() {
        back.push('?');
        back.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(rest)
                .finish(),
        );
    }
    let cookie = cookie::Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .max_age(cookie::time::Duration::days(365))
        .same_site(cookie::SameSite::Lax)
        .secure(state.public_origin.starts_with("https://"))
        .http_only(true)
        .build();
    let mut response = (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, back)],
    )
        .into_response();
    if let Ok(value) = cookie.to_string().parse() {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, value);
    }
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// A path to send a browser back to on this site: `//evil.example/x` (or `/\\evil…`) would be
/// read as another site, so such a path comes back as the home page.
pub fn own_path(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// The largest server-function body: a passkey's answer is a few kilobytes.
const SERVER_FN_BODY_LIMIT: usize = 64 * 1024;

/// Server functions (`/api/…`) act with the browser's cookie, so only the bridge's own pages may
/// call them: a request a browser marks as coming from another origin is refused (a form on a
/// sibling subdomain carries a Lax cookie). Bodies are read here, bounded, so an oversized one is
/// a 413 rather than a failure inside the function.
pub async fn guard_server_fns(
    Extract(state): Extract<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let own = from_own_page(request.headers(), &state.public_origin);
    if !own {
        return (
            StatusCode::FORBIDDEN,
            "this action is only accepted from the bridge's own pages",
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, SERVER_FN_BODY_LIMIT).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Err(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than 64 KiB",
        )
            .into_response(),
    }
}

/// Whether a browser says the request comes from the bridge's own pages. `Sec-Fetch-Site` is the
/// browser's own verdict, whatever name the page was opened under (localhost, 127.0.0.1, an
/// alias behind a proxy); without it (older browsers) `Origin` must be the public origin; a
/// client that sends neither is no browser and carries nobody's cookie to abuse.
fn from_own_page(headers: &HeaderMap, public_origin: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("sec-fetch-site"), header("origin")) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => origin == public_origin,
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    /// An open redirect on the passkeys' own domain would lend it to phishing pages.
    #[test]
    fn the_language_switch_never_sends_a_browser_to_another_site() {
        assert_eq!(own_path("/bridge/abc"), "/bridge/abc");
        assert_eq!(own_path("//evil.example/x"), "/");
        assert_eq!(own_path("/\\evil.example/x"), "/");
        assert_eq!(own_path("evil"), "/");
    }

    #[test]
    fn only_the_bridges_own_pages_call_its_server_functions() {
        let own = "https://bridge.example";
        assert!(from_own_page(
            &headers(&[("sec-fetch-site", "same-origin")]),
            own
        ));
        assert!(
            !from_own_page(&headers(&[("sec-fetch-site", "same-site")]), own),
            "a sibling subdomain"
        );
        assert!(
            !from_own_page(
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", own)]),
                own
            ),
            "the browser's verdict wins over a header it copied"
        );
        assert!(
            from_own_page(&headers(&[("origin", own)]), own),
            "an older browser on our origin"
        );
        assert!(!from_own_page(
            &headers(&[("origin", "https://evil.example")]),
            own
        ));
        assert!(
            from_own_page(&headers(&[]), own),
            "no browser, no cookie to abuse"
        );
    }
}

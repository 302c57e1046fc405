//! The security headers every response carries, and the per-page Content-Security-Policy built around the render's nonce.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderName, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// For what is not a page (JSON, assets, redirects): nothing may run or frame it.
const NOT_A_PAGE: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// WebAuthn for the bridge's own pages only; nothing else a page could ask the device for.
const PERMISSIONS: &str = "publickey-credentials-get=(self), publickey-credentials-create=(self), \
     camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// The policy of a rendered page: scripts only with this render's nonce or from the bridge
/// itself (the hydration module imports `/pkg/…`), WebAuthn and wasm allowed, never framed.
/// `reload` is the dev server's live-reload port, when there is one.
pub fn page_policy(nonce: &str, reload: Option<u32>) -> String {
    let reload = reload
        .map(|port| format!(" ws://127.0.0.1:{port} ws://localhost:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; \
         frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// Sets the page's own headers from inside the render, where its nonce is known. Pages show
/// who is signing in: no cache keeps them.
pub fn set_page_headers(nonce: &str, reload: Option<u32>) {
    let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    if let Ok(policy) = HeaderValue::from_str(&page_policy(nonce, reload)) {
        response.insert_header(CONTENT_SECURITY_POLICY, policy);
    }
    response.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A year, the floor browsers' preload lists ask for. Without `includeSubDomains`: the bridge
/// speaks for its own host, not for the rest of its domain.
const HSTS: &str = "max-age=31536000";

/// The headers of every response; a page's own policy (set above) is kept. `https`: the bridge
/// is reached over HTTPS (its own or its proxy's), so browsers are told to never use plain HTTP.
pub fn apply(router: Router, https: bool) -> Router {
    let always = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let router = if https {
        router.layer(always(STRICT_TRANSPORT_SECURITY, HSTS))
    } else {
        router
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(NOT_A_PAGE),
        ))
        // Pages and API answers say `no-store` themselves; the rest (the site's assets, whose
        // names do not change with their content yet) may be kept but must be checked with the
        // bridge each time (a 304 costs no body).
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(always(X_FRAME_OPTIONS, "DENY"))
        .layer(always(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(always(REFERRER_POLICY, "no-referrer"))
        .layer(always(
            HeaderName::from_static("permissions-policy"),
            PERMISSIONS,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_policy_allows_its_nonce_and_nothing_framing_it() {
        let policy = page_policy("abc123", None);
        assert!(policy.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"));
        for part in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(part), "{part}");
        }
        assert!(!policy.contains("unsafe-inline"));
        assert!(page_policy("n", Some(3001)).contains("ws://127.0.0.1:3001"));
    }
}

//! What every response says about itself: a strict CSP with a fresh nonce on each page, no framing, no sniffing, no referrer, no caching of personal pages; and passkey answers from a framed page refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

both_stores!(
    every_page_and_error_page_carries_the_security_headers,
    an_answer_from_a_framed_page_is_refused_and_spends_no_challenge,
);

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name}", res.url()))
        .to_str()
        .unwrap()
}

/// The nonce of the page's policy, which its hydration script must carry.
fn nonce_of(policy: &str) -> String {
    policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {policy}"))
        .to_owned()
}

async fn every_page_and_error_page_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Two codes: each page below is a different browser, and the first to open a code claims it.
    let (s, t) = (app.init().await, app.init().await);
    let unknown = uuid::Uuid::new_v4();
    let mut nonces = Vec::new();
    for (path, status) in [
        ("/login/shop".to_owned(), 200),
        (format!("/bridge/{}", s.session_id), 200),
        (format!("/mobile-auth?session_id={}", t.session_id), 200),
        (format!("/bridge/{unknown}"), 404),
        ("/no/such/page".to_owned(), 404),
    ] {
        let res = app.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(header(&res, name), value, "{path}");
        }
        assert!(
            header(&res, "permissions-policy").contains("publickey-credentials-get=(self)"),
            "{path}"
        );
        let policy = header(&res, "content-security-policy").to_owned();
        for part in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(policy.contains(part), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        let nonce = nonce_of(&policy);
        let body = res.text().await.unwrap();
        assert!(
            body.contains(&format!("nonce=\"{nonce}\"")),
            "{path}: the hydration script carries the policy's nonce"
        );
        nonces.push(nonce);
    }
    let mut distinct = nonces.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        nonces.len(),
        "a fresh nonce on every response"
    );

    // What is not a page may not run anything or be framed either.
    for path in ["/healthz", "/.well-known/jwks.json", "/v1/nothing"] {
        let res = app.request(Method::GET, path).send().await.unwrap();
        assert!(
            header(&res, "content-security-policy").starts_with("default-src 'none'"),
            "{path}"
        );
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff", "{path}");
    }
}

/// The same answer, as if made inside a page another site framed.
fn as_if_framed(signed: &Value) -> Value {
    let mut framed = signed.clone();
    let field = &mut framed["response"]["clientDataJSON"];
    let mut client_data: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(field.as_str().unwrap()).unwrap()).unwrap();
    client_data["crossOrigin"] = Value::Bool(true);
    *field = Value::String(URL_SAFE_NO_PAD.encode(client_data.to_string()));
    framed
}

async fn an_answer_from_a_framed_page_is_refused_and_spends_no_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    let user = app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    let refused = app.verify(&s.session_id, &as_if_framed(&signed)).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "qr_invalid_response");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("framed"),
        "{}",
        refused.1
    );
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.1["data"]["status"],
        "pending"
    );
    assert_eq!(
        app.verify(&s.session_id, &signed).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.completion(&s).await.0, user);

    // A registration answer from a framed page likewise.
    let r = app.init_registration(None).await;
    let created = phone.create(BRIDGE_ORIGIN, &app.options(&r.session_id).await);
    let refused = app
        .verify_registration(&r.session_id, &as_if_framed(&created))
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "qr_invalid_response");
    assert_eq!(
        app.verify_registration(&r.session_id, &created).await.0,
        StatusCode::NO_CONTENT
    );
}

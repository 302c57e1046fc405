//! The cross-device API as the SDK uses it: init, status, context, cancel and deny, on both stores.

use std::time::{Duration, SystemTime};

use qr_bridge::secret;
use qr_bridge::session::{SessionId, State};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::*;

both_stores!(
    init_returns_the_contract_fields,
    the_stored_session_keeps_only_a_digest_of_the_polling_token,
    an_app_with_its_own_page_gets_a_mobile_auth_url,
    init_checks_key_and_origin,
    cors_answers_allowed_origins_only,
    status_follows_the_session,
    a_wrong_polling_token_looks_like_an_unknown_session_and_none_is_named,
    context_shows_the_app_and_message_and_marks_the_session_scanned,
    another_apps_key_cannot_see_or_touch_a_session,
    cancel_and_deny_are_idempotent_and_exclusive,
    expired_sessions_say_so,
);

async fn init_returns_the_contract_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = SystemTime::now();
    let res = app
        .shop_request(Method::POST, "/v1/auth/cross-device/init")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ok"], true);
    let data = &body["data"];
    let id = data["session_id"].as_str().unwrap();
    let parsed = SessionId::parse(id).expect("a canonical UUID");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(data["qr_url"], format!("{BRIDGE_ORIGIN}/bridge/{parsed}"));
    let token = data["polling_token"].as_str().unwrap();
    // 43 base64url characters after the prefix: 256 bits.
    assert!(token.starts_with("pt_") && token.len() >= 3 + 22, "{token}");
    assert!(!data["qr_url"].as_str().unwrap().contains(&token[3..]));
    let expires =
        humantime::parse_rfc3339(data["expires_at"].as_str().unwrap()).expect("ISO-8601 UTC");
    let ttl = expires.duration_since(before).unwrap();
    assert!(
        ttl > Duration::from_secs(295) && ttl <= Duration::from_secs(301),
        "{ttl:?}"
    );
    assert!(data["expires_at"].as_str().unwrap().ends_with('Z'));
    // Two sessions never share id or token.
    let other = app.init().await;
    assert_ne!(other.session_id, id);
    assert_ne!(other.polling_token, token);
}

async fn the_stored_session_keeps_only_a_digest_of_the_polling_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let started = app.init().await;
    let id = SessionId::parse(&started.session_id).unwrap();
    let stored = qr_bridge::store::Store::load(&*app.store, &id)
        .await
        .unwrap()
        .unwrap();
    let json = serde_json::to_string(&stored.session).unwrap();
    assert!(!json.contains(&started.polling_token));
    assert_eq!(
        stored.session.polling_token_sha256,
        secret::digest(&started.polling_token)
    );
}

async fn an_app_with_its_own_page_gets_a_mobile_auth_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = reply(
        app.request(Method::POST, "/v1/auth/cross-device/init")
            .bearer_auth(OWN_KEY)
            .header("Origin", OWN_ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["session_id"].as_str().unwrap();
    assert_eq!(
        body["data"]["qr_url"],
        format!("https://m.own.test/app/mobile-auth?session_id={id}")
    );
}

async fn init_checks_key_and_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = "/v1/auth/cross-device/init";
    // A backend with the secret key needs no Origin.
    let (status, _) = reply(app.request(Method::POST, path).bearer_auth(SHOP_SECRET)).await;
    assert_eq!(status, StatusCode::CREATED);
    let cases = [
        (
            app.request(Method::POST, path)
                .header("Origin", SHOP_ORIGIN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            app.request(Method::POST, path)
                .bearer_auth("cli_nope_nope_nope_nope")
                .header("Origin", SHOP_ORIGIN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            app.request(Method::POST, path)
                .header("Authorization", format!("Basic {SHOP_KEY}"))
                .header("Origin", SHOP_ORIGIN),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            app.request(Method::POST, path).bearer_auth(SHOP_KEY),
            StatusCode::FORBIDDEN,
            "qr_origin_not_allowed",
        ),
        (
            app.request(Method::POST, path)
                .bearer_auth(SHOP_KEY)
                .header("Origin", "https://evil.test"),
            StatusCode::FORBIDDEN,
            "qr_origin_not_allowed",
        ),
        (
            app.request(Method::POST, path)
                .bearer_auth(SHOP_KEY)
                .header("Origin", OWN_ORIGIN),
            StatusCode::FORBIDDEN,
            "qr_origin_not_allowed",
        ),
        (
            app.request(Method::POST, path)
                .bearer_auth(SHOP_SECRET)
                .header("Origin", "https://evil.test"),
            StatusCode::FORBIDDEN,
            "qr_origin_not_allowed",
        ),
    ];
    let calls = app.store_calls();
    for (req, status, code) in cases {
        assert_error(&reply(req).await, status, code);
    }
    assert_eq!(
        app.store_calls(),
        calls,
        "refused requests must not reach the store"
    );
}

async fn cors_answers_allowed_origins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let preflight = |origin: &'static str| {
        app.request(
            Method::OPTIONS,
            "/v1/auth/cross-device/status/7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f",
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "x-polling-token, x-app-id",
        )
        .send()
    };
    let ok = preflight(SHOP_ORIGIN).await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(ok.headers()["access-control-allow-origin"], SHOP_ORIGIN);
    // Older SDKs send X-App-Id: their preflights must pass.
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(
        allowed.contains("x-polling-token") && allowed.contains("x-app-id"),
        "{allowed}"
    );
    let with_app_id = app
        .shop_request(Method::POST, "/v1/auth/cross-device/init")
        .header("X-App-Id", "not-even-this-app")
        .json(&json!({}));
    assert_eq!(
        reply(with_app_id).await.0,
        StatusCode::CREATED,
        "and it is not read"
    );
    let refused = preflight("https://evil.test").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

async fn status_follows_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let token = Some(s.polling_token.as_str());
    let (status, body) = app.status(&s.session_id, token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ok": true, "data": {"status": "pending"}}));
    assert_eq!(app.context(&s.session_id).await.0, StatusCode::OK);
    let (_, body) = app.status(&s.session_id, token).await;
    assert_eq!(
        body,
        json!({"ok": true, "data": {"status": "pending", "scanned": true}})
    );
    assert_eq!(app.deny(&s.session_id).await.0, StatusCode::NO_CONTENT);
    assert_error(
        &app.status(&s.session_id, token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let s = app.init().await;
    assert_eq!(
        app.cancel(&s.session_id, &s.polling_token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.status(&s.session_id, Some(&s.polling_token)).await,
        StatusCode::GONE,
        "session_expired",
    );
}

async fn a_wrong_polling_token_looks_like_an_unknown_session_and_none_is_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let other = app.init().await;
    let unknown = app
        .status(&uuid::Uuid::new_v4().to_string(), Some(&s.polling_token))
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "qr_session_not_found");
    for token in [
        Some(""),
        Some("pt_wrong"),
        Some(other.polling_token.as_str()),
    ] {
        assert_eq!(
            app.status(&s.session_id, token).await,
            unknown,
            "token {token:?}"
        );
    }
    // No token at all names no session: a clear 400 the SDK maps, alike for a real and a made-up id.
    for id in [s.session_id.as_str(), &uuid::Uuid::new_v4().to_string()] {
        let missing = app.status(id, None).await;
        assert_error(
            &missing,
            StatusCode::BAD_REQUEST,
            "qr_polling_token_required",
        );
    }
    let stream = app
        .request(
            Method::GET,
            &format!("/v1/auth/cross-device/status/{}", s.session_id),
        )
        .header("Accept", "text/event-stream");
    assert_error(
        &reply(stream).await,
        StatusCode::BAD_REQUEST,
        "qr_polling_token_required",
    );
    // The same holds for cancel, and a refused cancel changes nothing.
    let refused = app.cancel(&s.session_id, &other.polling_token).await;
    assert_eq!(refused, unknown);
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.1["data"]["status"],
        "pending"
    );
}

async fn context_shows_the_app_and_message_and_marks_the_session_scanned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app
        .init_with(json!({"approval_context": "  Access to <orders> 📦  "}))
        .await;
    let (status, body) = app.context(&s.session_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["type"], "auth");
    assert_eq!(data["application_name"], "Shop <b>Test</b>");
    assert_eq!(data["approval_context"], "Access to <orders> 📦");
    assert!(data["options"]["challenge"].is_string(), "{body}");
    let id = SessionId::parse(&s.session_id).unwrap();
    let stored = qr_bridge::store::Store::load(&*app.store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.session.state_at(stored.now), State::Scanned);
    // A reload of the approval page is allowed; the message is optional.
    assert_eq!(app.context(&s.session_id).await.0, StatusCode::OK);
    let plain = app.init().await;
    let (_, body) = app.context(&plain.session_id).await;
    assert!(
        body["data"].get("approval_context").is_none(),
        "absent, not null: {body}"
    );
}

async fn another_apps_key_cannot_see_or_touch_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    for path in [format!("/v1/auth/cross-device/context/{}", s.session_id)] {
        let got = reply(
            app.request(Method::GET, &path)
                .bearer_auth(OWN_KEY)
                .header("Origin", OWN_ORIGIN),
        )
        .await;
        assert_error(&got, StatusCode::NOT_FOUND, "qr_session_not_found");
    }
    let path = format!("/v1/auth/cross-device/deny/{}", s.session_id);
    let got = reply(
        app.request(Method::POST, &path)
            .bearer_auth(OWN_KEY)
            .header("Origin", OWN_ORIGIN),
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "qr_session_not_found");
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.1["data"],
        json!({"status": "pending"})
    );
}

async fn cancel_and_deny_are_idempotent_and_exclusive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    app.context(&s.session_id).await;
    assert_eq!(
        app.deny(&s.session_id).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_eq!(
        app.deny(&s.session_id).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert_error(
        &app.cancel(&s.session_id, &s.polling_token).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
    assert_error(
        &app.context(&s.session_id).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );

    let s = app.init().await;
    assert_eq!(
        app.cancel(&s.session_id, &s.polling_token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.cancel(&s.session_id, &s.polling_token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.deny(&s.session_id).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
}

async fn expired_sessions_say_so(backend: Backend) {
    let app = TestApp::spawn_with(backend, "300ms").await;
    let s = app.init().await;
    app.context(&s.session_id).await;
    app.pass(Duration::from_millis(400)).await;
    let token = Some(s.polling_token.as_str());
    assert_error(
        &app.status(&s.session_id, token).await,
        StatusCode::GONE,
        "qr_expired",
    );
    assert_error(
        &app.context(&s.session_id).await,
        StatusCode::GONE,
        "qr_expired",
    );
    assert_error(
        &app.deny(&s.session_id).await,
        StatusCode::GONE,
        "qr_expired",
    );
    assert_error(
        &app.cancel(&s.session_id, &s.polling_token).await,
        StatusCode::GONE,
        "qr_expired",
    );
    // Even expired, a session does not answer to a wrong token.
    assert_error(
        &app.status(&s.session_id, Some("pt_wrong")).await,
        StatusCode::NOT_FOUND,
        "qr_session_not_found",
    );
}

//! Bad input gets a clear 4xx in the contract's envelope, and the store is never touched.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores!(
    malformed_session_ids_are_refused_before_the_store,
    bad_init_bodies_are_refused_before_the_store,
    unknown_routes_and_methods_answer_in_the_envelope
);

async fn malformed_session_ids_are_refused_before_the_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let calls = app.store_calls();
    for bad in [
        "nope",
        "7F0C2A4E-9B1D-4C3A-8E2F-5A6B7C8D9E0F",
        "7f0c2a4e9b1d4c3a8e2f5a6b7c8d9e0f",
        "%7B7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f%7D",
        "..%2F..%2Fetc",
    ] {
        let got = app.status(bad, Some(&s.polling_token)).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "validation_error");
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains("UUID"),
            "{}",
            got.1
        );
        assert_error(
            &app.context(bad).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        );
        assert_error(
            &app.deny(bad).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        );
        assert_error(
            &app.cancel(bad, &s.polling_token).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        );
    }
    assert_eq!(app.store_calls(), calls);
}

async fn bad_init_bodies_are_refused_before_the_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let init = || app.shop_request(Method::POST, "/v1/auth/cross-device/init");
    let cases = [
        (
            init().json(&json!({"approval_context": "x".repeat(201)})),
            StatusCode::BAD_REQUEST,
            "201 characters",
        ),
        (
            init().json(&json!({"approval_context": "é".repeat(201)})),
            StatusCode::BAD_REQUEST,
            "201 characters",
        ),
        (
            init().json(&json!({"approval_context": "line\nbreak"})),
            StatusCode::BAD_REQUEST,
            "control character",
        ),
        (
            init().json(&json!({"approval_context": "Pay \u{202E}001$"})),
            StatusCode::BAD_REQUEST,
            "bidirectional",
        ),
        (
            init().json(&json!({"approval_context": "Pay \u{2067}001$"})),
            StatusCode::BAD_REQUEST,
            "bidirectional",
        ),
        (
            init().json(&json!({"approval_context": 42})),
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            init()
                .header("Content-Type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            init().header("Content-Type", "text/plain").body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            init().body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            init().json(&json!({"approval_context": "ok", "padding": "x".repeat(17 * 1024)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "16 KiB",
        ),
    ];
    for (req, status, says) in cases {
        let got = reply(req).await;
        assert_error(&got, status, "validation_error");
        let message = got.1["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{message:?} should mention {says:?}"
        );
    }
    assert_eq!(app.store_calls(), 0, "no refused init may reach the store");
    // At the limit itself a message is accepted, and an empty body means no message.
    let exactly = "é".repeat(200);
    assert!(
        app.init_with(json!({"approval_context": exactly}))
            .await
            .session_id
            .len()
            == 36
    );
    let (status, _) = reply(init()).await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn unknown_routes_and_methods_answer_in_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(
        &reply(app.request(Method::GET, "/v1/nothing/here")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let got = reply(app.request(Method::DELETE, "/v1/auth/cross-device/init")).await;
    assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(app.store_calls(), 0);
}

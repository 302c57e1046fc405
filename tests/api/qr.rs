//! `GET /v1/auth/cross-device/qr/:id`: the session's QR code as SVG or PNG, for integrators who draw their own page.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores!(
    the_qr_image_is_the_qr_url_drawn_as_svg_or_png,
    the_qr_image_is_there_only_while_the_code_can_be_scanned,
    qr_images_are_counted_like_status_requests,
);

async fn image(
    app: &TestApp,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, String, Vec<u8>, String) {
    let mut req = app.request(Method::GET, path);
    if let Some(accept) = accept {
        req = req.header("Accept", accept);
    }
    let res = req.send().await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (kind, cache) = (header("content-type"), header("cache-control"));
    (
        res.status(),
        kind,
        res.bytes().await.unwrap().to_vec(),
        cache,
    )
}

async fn the_qr_image_is_the_qr_url_drawn_as_svg_or_png(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let path = format!("/v1/auth/cross-device/qr/{}", s.session_id);

    let (status, kind, svg, cache) = image(&app, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "image/svg+xml");
    assert_eq!(cache, "no-store");
    // Exactly the qr_url, drawn: nothing else is in it.
    let expected = qr_bridge::api::qr::svg(&s.qr_url, qr_bridge::api::qr::DEFAULT_SIZE);
    assert_eq!(String::from_utf8(svg).unwrap(), expected);
    let svg = String::from_utf8(image(&app, &format!("{path}?size=512"), None).await.2).unwrap();
    assert_eq!(svg, qr_bridge::api::qr::svg(&s.qr_url, 512));

    for (path, accept) in [
        (path.clone(), Some("image/png")),
        (format!("{path}.png"), None),
        (format!("{path}.png?size=300"), Some("image/svg+xml")),
    ] {
        let (status, kind, png, _) = image(&app, &path, accept).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(kind, "image/png", "{path}");
        let decoded = image::load_from_memory(&png).unwrap();
        assert!(
            decoded.width() >= 264 && decoded.width() == decoded.height(),
            "{path}"
        );
    }
    let (_, kind, _, _) = image(&app, &path, Some("image/svg+xml, image/png")).await;
    assert_eq!(kind, "image/svg+xml");

    for size in ["63", "1025", "big"] {
        let (status, _, body, _) = image(&app, &format!("{path}?size={size}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{size}");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "validation_error");
    }
    let (status, ..) = image(&app, "/v1/auth/cross-device/qr/not-a-uuid.png", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn the_qr_image_is_there_only_while_the_code_can_be_scanned(backend: Backend) {
    let app = TestApp::spawn_with(backend, "2s").await;
    let unknown = format!("/v1/auth/cross-device/qr/{}", uuid::Uuid::new_v4());
    assert_eq!(image(&app, &unknown, None).await.0, StatusCode::NOT_FOUND);
    let cancelled = app.init().await;
    app.cancel(&cancelled.session_id, &cancelled.polling_token)
        .await;
    let path = format!("/v1/auth/cross-device/qr/{}", cancelled.session_id);
    assert_eq!(image(&app, &path, None).await.0, StatusCode::CONFLICT);
    // Scanned is still scannable (a reload of the phone's page).
    let opened = app.init().await;
    app.context(&opened.session_id).await;
    let path = format!("/v1/auth/cross-device/qr/{}", opened.session_id);
    assert_eq!(image(&app, &path, None).await.0, StatusCode::OK);
    app.pass(std::time::Duration::from_millis(2100)).await;
    assert_eq!(image(&app, &path, None).await.0, StatusCode::GONE);
}

async fn qr_images_are_counted_like_status_requests(backend: Backend) {
    let limits = "[limits]\nstatus_per_client = \"3/1m\"";
    let app = TestApp::spawn_configured(backend, "5m", limits).await;
    let s = app.init().await;
    let path = format!("/v1/auth/cross-device/qr/{}", s.session_id);
    for _ in 0..3 {
        assert_eq!(image(&app, &path, None).await.0, StatusCode::OK);
    }
    let (status, _, body, _) = image(&app, &path, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error": {"code": "qr_rate_limited", "message": body["error"]["message"]}})
    );
}

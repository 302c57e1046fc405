//! Rate limits: 429 `qr_rate_limited` with `Retry-After` once a bucket is spent, per key and per address, across instances.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::both_stores;
use crate::helpers::*;

both_stores!(
    status_polls_are_limited_per_polling_token,
    inits_are_limited_per_key_and_per_client,
    phone_requests_are_limited_per_client,
    a_trusted_proxy_names_the_client,
);

/// A 429 in the contract's envelope, with a `Retry-After` inside the window; the store untouched.
async fn assert_limited(app: &TestApp, req: reqwest::RequestBuilder, window_secs: u64) {
    let calls = app.store_calls();
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window_secs).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["ok"].as_bool(), body["error"]["code"].as_str()),
        (Some(false), Some("qr_rate_limited"))
    );
    assert_eq!(
        app.store_calls(),
        calls,
        "a refused request does not reach the store"
    );
}

fn poll(app: &TestApp, id: &str, token: &str) -> reqwest::RequestBuilder {
    app.shop_request(Method::GET, &format!("/v1/auth/cross-device/status/{id}"))
        .header("X-Polling-Token", token)
}

async fn status_polls_are_limited_per_polling_token(backend: Backend) {
    let app =
        TestApp::spawn_configured(backend, "5m", "[limits]\nstatus_per_token = \"3/10s\"").await;
    let (s, other) = (app.init().await, app.init().await);
    for _ in 0..3 {
        assert_eq!(
            poll(&app, &s.session_id, &s.polling_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    assert_limited(&app, poll(&app, &s.session_id, &s.polling_token), 10).await;
    // Opening a stream counts the same.
    let stream = app
        .http
        .get(format!(
            "{}/v1/auth/cross-device/status/{}",
            app.base, s.session_id
        ))
        .header("X-Polling-Token", &s.polling_token);
    assert_limited(&app, stream, 10).await;
    assert_eq!(
        poll(&app, &other.session_id, &other.polling_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "per token"
    );
}

async fn inits_are_limited_per_key_and_per_client(backend: Backend) {
    let init = |app: &TestApp, key: &str, origin: &str| {
        app.request(Method::POST, "/v1/auth/cross-device/init")
            .bearer_auth(key)
            .header("Origin", origin)
    };
    // The key's budget counts the app's backend (secret key) starts.
    let backend_init = |app: &TestApp, secret: &str| {
        app.request(Method::POST, "/v1/auth/cross-device/init")
            .bearer_auth(secret)
    };
    let per_key =
        TestApp::spawn_configured(backend, "5m", "[limits]\ninit_per_key = \"2/10s\"").await;
    for _ in 0..2 {
        assert_eq!(
            backend_init(&per_key, SHOP_SECRET)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    assert_limited(&per_key, backend_init(&per_key, SHOP_SECRET), 10).await;
    assert_eq!(
        backend_init(&per_key, OWN_SECRET)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED,
        "another app's key"
    );

    let per_client =
        TestApp::spawn_configured(backend, "5m", "[limits]\ninit_per_client = \"3/10s\"").await;
    for (key, origin) in [
        (SHOP_KEY, SHOP_ORIGIN),
        (SHOP_KEY, SHOP_ORIGIN),
        (OWN_KEY, OWN_ORIGIN),
    ] {
        assert_eq!(
            init(&per_client, key, origin)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    assert_limited(&per_client, init(&per_client, OWN_KEY, OWN_ORIGIN), 10).await;
}

async fn phone_requests_are_limited_per_client(backend: Backend) {
    let app =
        TestApp::spawn_configured(backend, "5m", "[limits]\nphone_per_client = \"2/10s\"").await;
    let s = app.init().await;
    app.context(&s.session_id).await;
    app.context(&s.session_id).await;
    let path = format!("/v1/auth/cross-device/deny/{}", s.session_id);
    assert_limited(&app, app.shop_request(Method::POST, &path), 10).await;
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let from = |app: &TestApp, client: &str| {
        app.shop_request(Method::POST, "/v1/auth/cross-device/init")
            .header("X-Forwarded-For", client.to_owned())
    };
    let behind_proxy = TestApp::spawn_configured(
        backend,
        "5m",
        "trusted_proxies = [\"127.0.0.0/8\"]\n[limits]\ninit_per_client = \"1/10s\"",
    )
    .await;
    assert_eq!(
        from(&behind_proxy, "198.51.100.1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    assert_limited(&behind_proxy, from(&behind_proxy, "198.51.100.1"), 10).await;
    assert_eq!(
        from(&behind_proxy, "198.51.100.2")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED,
        "another client"
    );

    // Without trust the header is anyone's to forge, so it is ignored.
    let direct =
        TestApp::spawn_configured(backend, "5m", "[limits]\ninit_per_client = \"1/10s\"").await;
    assert_eq!(
        from(&direct, "198.51.100.1").send().await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_limited(&direct, from(&direct, "198.51.100.2"), 10).await;
}

#[tokio::test]
async fn limits_hold_across_instances_sharing_redis() {
    if crate::helpers::no_redis() {
        return;
    }
    let a = TestApp::spawn_configured(
        Backend::Redis,
        "5m",
        "[limits]\nstatus_per_token = \"3/10s\"",
    )
    .await;
    let b = a.sibling().await;
    let s = a.init().await;
    for app in [&a, &a, &b] {
        assert_eq!(
            poll(app, &s.session_id, &s.polling_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    assert_limited(&b, poll(&b, &s.session_id, &s.polling_token), 10).await;
    assert_limited(&a, poll(&a, &s.session_id, &s.polling_token), 10).await;
}

both_stores!(
    a_flood_from_one_ipv6_network_does_not_lock_out_another,
    mapped_peers_and_forwarded_ports_count_per_real_client,
);

/// A browser's session start from `client`, as the trusted proxy reports it.
fn start_from(app: &TestApp, client: &str) -> reqwest::RequestBuilder {
    app.shop_request(Method::POST, "/v1/auth/cross-device/init")
        .header("X-Forwarded-For", client.to_owned())
}

async fn a_flood_from_one_ipv6_network_does_not_lock_out_another(backend: Backend) {
    let app = TestApp::spawn_configured(
        backend,
        "5m",
        "trusted_proxies = [\"127.0.0.0/8\"]\n[limits]\ninit_per_client = \"5/10s\"\ninit_per_key = \"3/10s\"",
    )
    .await;
    // 50 addresses of one /64: one client, stopped after its five.
    let mut created = 0;
    for host in 1..=50 {
        let status = start_from(&app, &format!("2001:db8:bad:1::{host:x}"))
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(created, 5, "the whole /64 counts as one client");
    // The app's key budget (3) was not theirs to spend: people elsewhere still start.
    for client in [
        "2001:db8:600d:1::1",
        "198.51.100.20",
        "198.51.100.21",
        "198.51.100.22",
    ] {
        assert_eq!(
            start_from(&app, client).send().await.unwrap().status(),
            StatusCode::CREATED,
            "{client}"
        );
    }
    // The key budget is the backend's: its secret-key starts are what it counts.
    let backend_start = || {
        app.request(Method::POST, "/v1/auth/cross-device/init")
            .bearer_auth(SHOP_SECRET)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(backend_start().await.unwrap().status(), StatusCode::CREATED);
    }
    assert_eq!(
        backend_start().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        start_from(&app, "198.51.100.23")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED,
        "and spending it stops no browser"
    );
}

async fn mapped_peers_and_forwarded_ports_count_per_real_client(backend: Backend) {
    let app =
        TestApp::spawn_dual_stack_behind_proxy(backend, "[limits]\ninit_per_client = \"1/10s\"")
            .await;
    let first = start_from(&app, "198.51.100.1:51234").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let body: Value = first.json().await.unwrap();
    let id =
        qr_bridge::session::SessionId::parse(body["data"]["session_id"].as_str().unwrap()).unwrap();
    let stored = qr_bridge::store::Store::load(&*app.store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.session.requester.address.as_deref(),
        Some("198.51.100.1"),
        "the phone is shown the real client, not the proxy's mapped address"
    );
    assert_limited(&app, start_from(&app, "198.51.100.1:40000"), 10).await;
    assert_eq!(
        start_from(&app, "[2001:db8::5]:443")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED,
        "another client, port and brackets understood"
    );
    assert_eq!(
        start_from(&app, "198.51.100.2")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
}

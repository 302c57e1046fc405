//! A Redis outage that fails fast: with the store stopped (a Redis of the test's own), requests answer 503 at once, `/readyz` fails while `/healthz` stays up, and everything works again within a second of Redis returning.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::helpers::*;

async fn readyz(app: &TestApp) -> StatusCode {
    app.request(Method::GET, "/readyz")
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

#[tokio::test]
async fn with_redis_down_requests_fail_fast_and_recover_when_it_returns() {
    let mut redis_server = OwnRedis::start();
    let app = TestApp::spawn_on_redis(&redis_server.url()).await;
    let before = app.init().await;
    assert_eq!(readyz(&app).await, StatusCode::OK);

    redis_server.stop();
    let init = || {
        reply(
            app.shop_request(Method::POST, "/v1/auth/cross-device/init")
                .json(&serde_json::json!({})),
        )
    };
    for _ in 0..3 {
        let started = Instant::now();
        let got = init().await;
        assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered in {:?}, not after a stall",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let polled = app
        .status(&before.session_id, Some(&before.polling_token))
        .await;
    assert_error(
        &polled,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.request(Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the process itself is alive"
    );

    redis_server.start_again();
    let back = Instant::now();
    while readyz(&app).await != StatusCode::OK {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still not ready 5 s after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_in = back.elapsed();
    println!("ready again {recovered_in:?} after Redis answered");
    assert!(recovered_in < Duration::from_secs(1), "{recovered_in:?}");
    assert_eq!(init().await.0, StatusCode::CREATED);
    assert_eq!(
        app.status(&before.session_id, Some(&before.polling_token))
            .await
            .0,
        StatusCode::OK,
        "nothing was lost"
    );
}

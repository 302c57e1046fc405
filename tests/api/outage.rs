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

/// After `after` ms, pauses every write on the Redis at `url` for 600 ms (plain reads go on; our
/// scripts wait): round by round, the pause falls at another step of the answer.
fn pause_writes_soon(url: &str, after: u64) -> tokio::task::JoinHandle<()> {
    let client = redis::Client::open(url).unwrap();
    tokio::spawn(async move {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        tokio::time::sleep(Duration::from_millis(after)).await;
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(600)
            .arg("WRITE")
            .query_async(&mut conn)
            .await
            .unwrap();
    })
}

/// Until the pause is over and whatever waited behind it has landed.
async fn pause_over(pausing: tokio::task::JoinHandle<()>) {
    pausing.await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
}

/// What the desktop sees: `completed` or `pending`.
async fn desktop_sees(app: &TestApp, s: &qr_bridge::wire::Started) -> String {
    let (_, body) = app.status(&s.session_id, Some(&s.polling_token)).await;
    body["data"]["status"]
        .as_str()
        .unwrap_or("error")
        .to_owned()
}

/// Redis stalls writes across a phone's answer, round after round. Whatever the answer said, the
/// phone's final word (its answer, or, after a failure of ours, what the outcome endpoint or the
/// hosted page reports) matches the desktop's state, and a retry always gets through.
#[tokio::test]
async fn a_phone_never_contradicts_the_desktop_when_redis_stalls_its_answer() {
    use qr_bridge::ui::{ApprovalOptions, PhoneApprove};
    let redis_server = OwnRedis::start();
    let url = redis_server.url();
    let app = TestApp::spawn_on_redis(&url).await;
    let mut phone = crate::phone::Phone::new();
    app.register(&mut phone, None).await;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    const ROUNDS: u64 = 8;

    // Through the API, as an integrator's page does.
    for round in 0..ROUNDS {
        let s = app.init().await;
        let options = app.options(&s.session_id).await;
        let signed = phone.sign(BRIDGE_ORIGIN, &options);
        let pausing = pause_writes_soon(&url, round * 2);
        let answer = app.verify(&s.session_id, &signed).await;
        pause_over(pausing).await;
        let word = if answer.0 == StatusCode::NO_CONTENT {
            "completed".to_owned()
        } else {
            assert_error(
                &answer,
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
            );
            let (status, body) = reply(app.shop_request(
                Method::GET,
                &format!("/v1/auth/cross-device/outcome/{}", s.session_id),
            ))
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["data"]["status"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            word,
            desktop_sees(&app, &s).await,
            "the phone and the desktop agree"
        );
        *seen
            .entry(format!("api: {}, then {word}", answer.0.as_u16()))
            .or_default() += 1;
        if word == "pending" {
            let options = app.options(&s.session_id).await;
            let again = app
                .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
                .await;
            assert_eq!(
                again.0,
                StatusCode::NO_CONTENT,
                "a retry gets through: {}",
                again.1
            );
            assert_eq!(desktop_sees(&app, &s).await, "completed");
        }
    }

    // Through the hosted page's server functions, as the phone's browser does.
    for round in 0..ROUNDS {
        let browser = Client::browser();
        let s = app.init().await;
        let page = async |form: &[(&str, &str)], approve: bool| -> serde_json::Value {
            let (status, body) = if approve {
                app.server_fn::<PhoneApprove>(&browser, Some(BRIDGE_ORIGIN), form)
                    .await
            } else {
                app.server_fn::<ApprovalOptions>(&browser, Some(BRIDGE_ORIGIN), form)
                    .await
            };
            assert_eq!(status, StatusCode::OK, "{body}");
            serde_json::from_str(&body).unwrap()
        };
        let open = [("session_id", s.session_id.as_str()), ("create", "false")];
        let answer = |signed: &serde_json::Value| signed.to_string();
        let opened = page(&open, false).await;
        let options: serde_json::Value =
            serde_json::from_str(opened["Ready"]["options"].as_str().unwrap()).unwrap();
        let signed = answer(&phone.sign(BRIDGE_ORIGIN, &options));
        let pausing = pause_writes_soon(&url, round * 2);
        let outcome = page(
            &[("session_id", &s.session_id), ("credential", &signed)],
            true,
        )
        .await;
        pause_over(pausing).await;
        let desktop = desktop_sees(&app, &s).await;
        let approved = |v: &serde_json::Value| v.get("Approved").is_some();
        if approved(&outcome) {
            assert_eq!(desktop, "completed", "the page said approved");
        } else {
            // "Try again": what the person does next must end where the desktop is.
            assert!(outcome.get("Retry").is_some(), "{outcome}");
            let again = page(&open, false).await;
            let last = if let Some(ready) = again.get("Ready") {
                assert_eq!(desktop, "pending", "a fresh challenge only while open");
                let options: serde_json::Value =
                    serde_json::from_str(ready["options"].as_str().unwrap()).unwrap();
                let signed = answer(&phone.sign(BRIDGE_ORIGIN, &options));
                page(
                    &[("session_id", &s.session_id), ("credential", &signed)],
                    true,
                )
                .await
            } else {
                assert_eq!(again["Gone"]["title"], "Already approved", "{again}");
                assert_eq!(desktop, "completed");
                serde_json::json!({"Approved": {"passkey": null}})
            };
            assert!(approved(&last), "{last}");
        }
        assert_eq!(desktop_sees(&app, &s).await, "completed");
        *seen.entry(format!("page: {outcome}")).or_default() += 1;
    }
    println!("{seen:?}");
}

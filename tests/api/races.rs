//! Contended transitions on Redis, 1,000 rounds each, contenders released together: one winner, a clear loser, the winner's state.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use qr_bridge::session::SessionId;
use qr_bridge::store::Store;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Barrier;

use crate::helpers::*;

const ROUNDS: usize = 1000;
/// Rounds in flight at once: enough to keep both cores busy, few enough that each race stays tight.
const IN_FLIGHT: usize = 8;

/// Runs `a` and `b` released by one barrier, so neither starts before the other is ready.
async fn together<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: Future<Output = RA> + Send + 'static,
    B: Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let gate = Arc::new(Barrier::new(2));
    let (ga, gb) = (gate.clone(), gate);
    let ta = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    (ta.await.unwrap(), tb.await.unwrap())
}

/// The final state as the desktop sees it, by error code.
async fn final_code(app: &TestApp, id: &str, token: &str) -> String {
    let (_, body) = app.status(id, Some(token)).await;
    body["error"]["code"].as_str().unwrap_or("none").to_owned()
}

fn is_invalid_state(got: &(StatusCode, Value)) -> bool {
    got.0 == StatusCode::CONFLICT && got.1["error"]["code"] == "qr_invalid_state"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_against_cancel_has_exactly_one_winner() {
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    let outcomes: Vec<&str> = futures::stream::iter(0..ROUNDS)
        .map(|_| {
            let app = app.clone();
            async move {
                let s = app.init().await;
                let (a, b) = (app.clone(), app.clone());
                let (ida, idb, token) = (
                    s.session_id.clone(),
                    s.session_id.clone(),
                    s.polling_token.clone(),
                );
                let (denied, cancelled) = together(async move { a.deny(&ida).await }, async move {
                    b.cancel(&idb, &token).await
                })
                .await;
                let code = final_code(&app, &s.session_id, &s.polling_token).await;
                match (denied.0, cancelled.0) {
                    (StatusCode::NO_CONTENT, _) => {
                        assert!(is_invalid_state(&cancelled), "loser: {cancelled:?}");
                        assert_eq!(code, "forbidden", "denial won, so the session is denied");
                        "deny"
                    }
                    (_, StatusCode::NO_CONTENT) => {
                        assert!(is_invalid_state(&denied), "loser: {denied:?}");
                        assert_eq!(
                            code, "session_expired",
                            "cancel won, so the session is cancelled"
                        );
                        "cancel"
                    }
                    other => panic!("no winner: {other:?}"),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let denies = outcomes.iter().filter(|o| **o == "deny").count();
    println!("deny won {denies} of {ROUNDS}, cancel {}", ROUNDS - denies);
    assert_eq!(outcomes.len(), ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_denies_both_succeed_and_record_one_transition() {
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    futures::stream::iter(0..ROUNDS)
        .for_each_concurrent(IN_FLIGHT, |_| {
            let app = app.clone();
            async move {
                let s = app.init().await;
                let (a, b, ida, idb) = (
                    app.clone(),
                    app.clone(),
                    s.session_id.clone(),
                    s.session_id.clone(),
                );
                let (first, second) = together(async move { a.deny(&ida).await }, async move {
                    b.deny(&idb).await
                })
                .await;
                assert_eq!(first.0, StatusCode::NO_CONTENT, "{first:?}");
                assert_eq!(second.0, StatusCode::NO_CONTENT, "{second:?}");
                let id = SessionId::parse(&s.session_id).unwrap();
                let stored = app.store.load(&id).await.unwrap().unwrap();
                assert_eq!(stored.rev, 2, "created once, denied once");
                assert_eq!(
                    final_code(&app, &s.session_id, &s.polling_token).await,
                    "forbidden"
                );
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_against_expiry_has_exactly_one_winner() {
    let app = Arc::new(TestApp::spawn_with(Backend::Redis, "60ms").await);
    let outcomes: Vec<bool> = futures::stream::iter(0..ROUNDS)
        .map(|_| {
            let app = app.clone();
            async move {
                let s = app.init().await;
                // Fire the cancel within a few milliseconds either side of the moment of expiry.
                let expires = humantime::parse_rfc3339(&s.expires_at).unwrap();
                let aim = expires + Duration::from_micros(rand::random_range(0..8_000))
                    - Duration::from_millis(4);
                if let Ok(wait) = aim.duration_since(SystemTime::now()) {
                    tokio::time::sleep(wait).await;
                }
                let cancelled = app.cancel(&s.session_id, &s.polling_token).await;
                let code = final_code(&app, &s.session_id, &s.polling_token).await;
                if cancelled.0 == StatusCode::NO_CONTENT {
                    assert_eq!(
                        code, "session_expired",
                        "cancel won, so the session stays cancelled"
                    );
                    true
                } else {
                    assert_error(&cancelled, StatusCode::GONE, "qr_expired");
                    assert_eq!(code, "qr_expired", "expiry won, so the session is expired");
                    false
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let cancels = outcomes.iter().filter(|won| **won).count();
    println!(
        "cancel won {cancels} of {ROUNDS}, expiry {}",
        ROUNDS - cancels
    );
    // Both sides must have won sometimes, or the rounds did not race at the moment of expiry.
    assert!(
        cancels > 0 && cancels < ROUNDS,
        "cancel won {cancels} of {ROUNDS}"
    );
}

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
use crate::phone::Phone;
use crate::pin_bridge::AUTH;

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
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    let outcomes: Vec<&str> = futures::stream::iter(0..ROUNDS)
        .map(|_| {
            let app = app.clone();
            async move {
                let s = app.init().await;
                app.context(&s.session_id).await;
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
    // Each round had one winner (checked above); a side that never won means the two calls never
    // overlapped, and the rounds tested no race at all.
    assert!(
        denies > 0 && denies < ROUNDS,
        "the race was never contested: deny won {denies} of {ROUNDS}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_denies_both_succeed_and_record_one_transition() {
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    futures::stream::iter(0..ROUNDS)
        .for_each_concurrent(IN_FLIGHT, |_| {
            let app = app.clone();
            async move {
                let s = app.init().await;
                app.context(&s.session_id).await;
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
                assert_eq!(stored.rev, 3, "created, opened, denied once");
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
    if crate::helpers::no_redis() {
        return;
    }
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

/// Rounds split into lanes that run side by side; each lane has its own phones, since one phone's
/// counter must rise in the order the bridge sees its signatures.
async fn in_lanes<F, Fut, T>(app: &Arc<TestApp>, phones_per_lane: usize, round: F) -> Vec<T>
where
    F: Fn(Arc<TestApp>, Arc<Vec<std::sync::Mutex<Phone>>>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut lanes = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut phones = Vec::new();
        for _ in 0..phones_per_lane {
            let mut phone = Phone::new();
            app.register(&mut phone, None).await;
            phones.push(std::sync::Mutex::new(phone));
        }
        let (app, phones, round) = (app.clone(), Arc::new(phones), round.clone());
        lanes.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..ROUNDS / IN_FLIGHT {
                results.push(round(app.clone(), phones.clone()).await);
            }
            results
        }));
    }
    let mut all = Vec::new();
    for lane in lanes {
        all.extend(lane.await.unwrap());
    }
    all
}

fn sign(phones: &[std::sync::Mutex<Phone>], which: usize, options: &Value) -> Value {
    phones[which].lock().unwrap().sign(BRIDGE_ORIGIN, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_verifying_at_once_get_exactly_one_token() {
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    let outcomes = in_lanes(&app, 2, |app, phones| async move {
        let (s, options) = app.opened_sign_in().await;
        let (first, second) = (sign(&phones, 0, &options), sign(&phones, 1, &options));
        let (a, b, ida, idb) = (
            app.clone(),
            app.clone(),
            s.session_id.clone(),
            s.session_id.clone(),
        );
        let (ra, rb) = together(async move { a.verify(&ida, &first).await }, async move {
            b.verify(&idb, &second).await
        })
        .await;
        let (winner, loser) = match (ra.0, rb.0) {
            (StatusCode::NO_CONTENT, _) => (0, rb),
            (_, StatusCode::NO_CONTENT) => (1, ra),
            other => panic!("no winner: {other:?} {ra:?} {rb:?}"),
        };
        assert_eq!(loser.0, StatusCode::CONFLICT, "{loser:?}");
        assert!(
            ["qr_replay_detected", "qr_invalid_state"]
                .contains(&loser.1["error"]["code"].as_str().unwrap()),
            "{loser:?}"
        );
        let (user, token) = app.completion(&s).await;
        assert!(!token.is_empty() && user.starts_with("usr_"));
        (winner, user)
    })
    .await;
    let firsts = outcomes.iter().filter(|(w, _)| *w == 0).count();
    println!("first phone won {firsts} of {ROUNDS}");
    assert!(
        firsts > 0 && firsts < ROUNDS,
        "the race was never contested: the first phone won {firsts} of {ROUNDS}"
    );
}

/// How long one verify takes on this machine and build, so a contender can be started anywhere
/// inside that span rather than always before or after it.
async fn verify_time(app: &TestApp) -> Duration {
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    let started = std::time::Instant::now();
    assert_eq!(
        app.verify(&s.session_id, &signed).await.0,
        StatusCode::NO_CONTENT
    );
    started.elapsed()
}

/// A random moment in `[0, 2 × span)`.
fn somewhere_in(span: Duration) -> Duration {
    Duration::from_micros(rand::random_range(0..(2 * span.as_micros() as u64).max(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_cancel_never_leaves_a_completion_without_its_token() {
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    let span = verify_time(&app).await;
    let outcomes = in_lanes(&app, 1, move |app, phones| async move {
        let (s, options) = app.opened_sign_in().await;
        let signed = sign(&phones, 0, &options);
        let (a, b) = (app.clone(), app.clone());
        let (ida, idb, token) = (
            s.session_id.clone(),
            s.session_id.clone(),
            s.polling_token.clone(),
        );
        let delay = somewhere_in(span);
        let verify = async move { a.verify(&ida, &signed).await };
        let cancel = async move {
            tokio::time::sleep(delay).await;
            b.cancel(&idb, &token).await
        };
        let (verified, cancelled) = together(verify, cancel).await;
        match (verified.0, cancelled.0) {
            (StatusCode::NO_CONTENT, _) => {
                assert!(is_invalid_state(&cancelled), "loser: {cancelled:?}");
                app.completion(&s).await; // completed, with its token
                true
            }
            (_, StatusCode::NO_CONTENT) => {
                assert!(is_invalid_state(&verified), "loser: {verified:?}");
                assert_eq!(
                    final_code(&app, &s.session_id, &s.polling_token).await,
                    "session_expired"
                );
                false
            }
            other => panic!("no winner: {other:?}"),
        }
    })
    .await;
    let verifies = outcomes.iter().filter(|won| **won).count();
    println!(
        "verify won {verifies} of {ROUNDS}, cancel {} (cancel sent within 2 × {span:?})",
        ROUNDS - verifies
    );
    assert!(
        verifies > 0 && verifies < ROUNDS,
        "verify won {verifies} of {ROUNDS}: the rounds did not race"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_expiry_completes_with_a_token_or_expires() {
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn_with(Backend::Redis, "400ms").await);
    let span = verify_time(&app).await;
    let outcomes = in_lanes(&app, 1, move |app, phones| async move {
        let (s, options) = app.opened_sign_in().await;
        let signed = sign(&phones, 0, &options);
        // Send the verify so that expiry falls anywhere from before it starts to after it ends.
        let expires = humantime::parse_rfc3339(&s.expires_at).unwrap();
        let aim = expires + somewhere_in(span) - 2 * span;
        if let Ok(wait) = aim.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        let verified = app.verify(&s.session_id, &signed).await;
        if verified.0 == StatusCode::NO_CONTENT {
            app.completion(&s).await; // completed, with its token, even when read after expires_at
            true
        } else {
            assert_error(&verified, StatusCode::GONE, "qr_expired");
            assert_eq!(
                final_code(&app, &s.session_id, &s.polling_token).await,
                "qr_expired"
            );
            false
        }
    })
    .await;
    let completions = outcomes.iter().filter(|won| **won).count();
    println!(
        "verify won {completions} of {ROUNDS}, expiry {} (verify takes {span:?})",
        ROUNDS - completions
    );
    assert!(
        completions > 0 && completions < ROUNDS,
        "verify won {completions} of {ROUNDS}"
    );
}

/// Two backends register the same new external id at once: exactly one user comes out, the
/// other registration is refused, and the id names the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registrations_for_one_new_external_id_make_exactly_one_user() {
    if crate::helpers::no_redis() {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    let outcomes: Vec<usize> = futures::stream::iter(0..ROUNDS)
        .map(|round| {
            let app = app.clone();
            async move {
                let external = format!("race-{round}");
                let mut answers = Vec::new();
                for _ in 0..2 {
                    let s = app.init_registration(Some(&external)).await;
                    let created =
                        Phone::new().create(BRIDGE_ORIGIN, &app.options(&s.session_id).await);
                    answers.push((s, created));
                }
                let [(sa, ca), (sb, cb)] = <[_; 2]>::try_from(answers).unwrap();
                let (a, b, ida, idb) = (
                    app.clone(),
                    app.clone(),
                    sa.session_id.clone(),
                    sb.session_id.clone(),
                );
                let (ra, rb) = together(
                    async move { a.verify_registration(&ida, &ca).await },
                    async move { b.verify_registration(&idb, &cb).await },
                )
                .await;
                let (winner, loser, refused) = match (ra.0, rb.0) {
                    (StatusCode::NO_CONTENT, _) => (&sa, &sb, rb),
                    (_, StatusCode::NO_CONTENT) => (&sb, &sa, ra),
                    other => panic!("no winner: {other:?} {ra:?} {rb:?}"),
                };
                assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
                let user = app
                    .store
                    .find_user_by_external_id("shop", &external)
                    .await
                    .unwrap()
                    .expect("one user");
                assert_eq!(user.passkeys.len(), 1);
                assert_eq!(user.id.to_string(), app.completion(winner).await.0);
                let (_, body) = app
                    .status(&loser.session_id, Some(&loser.polling_token))
                    .await;
                assert_eq!(
                    body["data"]["status"], "pending",
                    "the loser's desktop still waits: {body}"
                );
                usize::from(std::ptr::eq(winner, &sb))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let second = outcomes.iter().sum::<usize>();
    println!("the second registration won {second} of {ROUNDS}");
    assert!(
        second > 0 && second < ROUNDS,
        "both contenders can win: {second}"
    );
}

/// `round` run `ROUNDS` times on one Redis-backed bridge, `IN_FLIGHT` at once; how many said yes.
async fn count_rounds<F, Fut>(round: F) -> usize
where
    F: Fn(Arc<TestApp>) -> Fut,
    Fut: Future<Output = bool>,
{
    let app = Arc::new(TestApp::spawn(Backend::Redis).await);
    futures::stream::iter(0..ROUNDS)
        .map(|_| round(app.clone()))
        .buffer_unordered(IN_FLIGHT)
        .filter(|yes| std::future::ready(*yes))
        .count()
        .await
}

/// A new auth pairing that has taken `failures` wrong PINs, and a wrong PIN for it.
async fn pairing_after(
    app: &TestApp,
    failures: usize,
) -> (crate::pin_bridge::Pairing, &'static str) {
    let p = app.auth_pairing().await;
    let wrong = if p.pin == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..failures {
        let got = app.offer_pin(AUTH, &p.id, wrong).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "pin_mismatch");
    }
    (p, wrong)
}

/// Two wrong PINs at once on a pairing that takes one more: both are counted, exactly one locks
/// it, and the other is told it was the last but one (never two at "1 more", never no lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wrong_pins_at_once_are_both_counted_and_one_locks() {
    if crate::helpers::no_redis() {
        return;
    }
    let first = count_rounds(|app| async move {
        let (p, wrong) = pairing_after(&app, 3).await;
        let (a, b, ia, ib) = (app.clone(), app.clone(), p.id.clone(), p.id.clone());
        let (ra, rb) = together(
            async move { a.offer_pin(AUTH, &ia, wrong).await },
            async move { b.offer_pin(AUTH, &ib, wrong).await },
        )
        .await;
        let locked = |r: &(StatusCode, Value)| r.1["error"]["code"] == "pin_locked";
        let counted = |r: &(StatusCode, Value)| {
            r.1["error"]["code"] == "pin_mismatch"
                && r.1["error"]["message"].as_str().unwrap().contains("1 more")
        };
        assert!(
            (locked(&ra) && counted(&rb)) || (counted(&ra) && locked(&rb)),
            "{ra:?} {rb:?}"
        );
        assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_locked");
        locked(&ra)
    })
    .await;
    println!("the first offer locked {first} of {ROUNDS}");
    assert!(
        first > 0 && first < ROUNDS,
        "either offer can lock: {first}"
    );
}

/// The right PIN against the fifth wrong one: the wrong one always locks (after the right one
/// opened the pairing, or before, when the right one is then refused). A lock is never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_pin_against_the_last_wrong_one_never_loses_the_lock() {
    if crate::helpers::no_redis() {
        return;
    }
    let opened = count_rounds(|app| async move {
        let (p, wrong) = pairing_after(&app, 4).await;
        let (a, b, ia, ib, pin) = (
            app.clone(),
            app.clone(),
            p.id.clone(),
            p.id.clone(),
            p.pin.clone(),
        );
        let (right, last) = together(
            async move { a.offer_pin(AUTH, &ia, &pin).await },
            async move { b.offer_pin(AUTH, &ib, wrong).await },
        )
        .await;
        assert_error(&last, StatusCode::FORBIDDEN, "pin_locked");
        if right.0 != StatusCode::OK {
            assert_error(&right, StatusCode::FORBIDDEN, "pin_locked");
        }
        assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_locked");
        right.0 == StatusCode::OK
    })
    .await;
    println!("the right PIN came first {opened} of {ROUNDS}");
    assert!(
        opened > 0 && opened < ROUNDS,
        "either can come first: {opened}"
    );
}

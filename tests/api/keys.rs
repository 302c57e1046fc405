//! Signing keys that rotate without downtime: tokens from before a rotation keep verifying until they expire, on every instance.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;
use qr_bridge::bridge::keys;
use qr_bridge::session::Timestamp;
use qr_bridge::token::{RETIRED_GRACE, Role, generate_pem};

both_stores!(a_token_from_before_a_rotation_verifies_until_its_key_retires);

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let (status, body) = reply(app.request(Method::GET, "/.well-known/jwks.json")).await;
    assert_eq!(status, StatusCode::OK);
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// `qr-bridge keys rotate`.
async fn rotate(app: &TestApp) {
    let pem = generate_pem().unwrap();
    let ttl = app.settings.token_ttl;
    keys::change(&*app.store, &app.settings, |ring, now| {
        ring.rotate(pem.clone(), now, ttl)
    })
    .await
    .unwrap();
}

/// Turns the clock for one retired key: as if it had been retired `ago` before now.
async fn retired_long_ago(app: &TestApp, kid: &str, ago: Duration) {
    keys::change(&*app.store, &app.settings, |ring, now| {
        let then = Timestamp::from_millis(now.as_millis() - ago.as_millis() as u64);
        for key in ring.keys.iter_mut().filter(|k| k.kid == kid) {
            key.role = Role::Retired { at: then };
        }
        Ok(())
    })
    .await
    .unwrap();
}

async fn a_token_from_before_a_rotation_verifies_until_its_key_retires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let before = app.sign_in(&mut phone).await.1;
    let published = jwks_kids(&app).await;
    assert_eq!(published.len(), 2, "current and next");
    assert_eq!(kid_of(&before), published[0]);

    rotate(&app).await;
    app.bridge.refresh_keys().await.unwrap();
    let after = jwks_kids(&app).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(
        after[0], published[1],
        "the next key, published all along, now signs"
    );
    assert!(after.contains(&published[0]), "the old key stays published");
    assert_eq!(
        app.validate(&before).await.0,
        StatusCode::OK,
        "an old token still verifies"
    );
    let fresh = app.sign_in(&mut phone).await.1;
    assert_eq!(kid_of(&fresh), published[1]);
    assert_eq!(app.validate(&fresh).await.0, StatusCode::OK);

    // A token lifetime (and the grace) later, the old key leaves the JWKS.
    let ttl = app.settings.token_ttl;
    retired_long_ago(
        &app,
        &published[0],
        ttl + RETIRED_GRACE - Duration::from_secs(1),
    )
    .await;
    app.bridge.refresh_keys().await.unwrap();
    assert!(
        jwks_kids(&app).await.contains(&published[0]),
        "not a moment before"
    );
    retired_long_ago(&app, &published[0], ttl + RETIRED_GRACE).await;
    app.bridge.refresh_keys().await.unwrap();
    let later = jwks_kids(&app).await;
    assert!(
        !later.contains(&published[0]),
        "gone after token_ttl: {later:?}"
    );
    assert_error(
        &app.validate(&before).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(app.validate(&fresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn two_instances_on_redis_sign_and_verify_with_the_same_keys() {
    if crate::helpers::no_redis() {
        return;
    }
    let a = TestApp::spawn(Backend::Redis).await;
    let b = a.sibling().await;
    assert_eq!(jwks_kids(&a).await, jwks_kids(&b).await);
    let mut phone = Phone::new();
    a.register(&mut phone, None).await;
    let from_a = a.sign_in(&mut phone).await.1;
    assert_eq!(b.validate(&from_a).await.0, StatusCode::OK);

    rotate(&a).await;
    // Each instance reads the ring again on its own timer; here, at once.
    b.bridge.refresh_keys().await.unwrap();
    let from_b = b.sign_in(&mut phone).await.1;
    assert_ne!(kid_of(&from_b), kid_of(&from_a));
    assert_eq!(
        a.validate(&from_b).await.0,
        StatusCode::OK,
        "A knew B's new key before the rotation"
    );
    a.bridge.refresh_keys().await.unwrap();
    assert_eq!(jwks_kids(&a).await, jwks_kids(&b).await);
    assert_eq!(a.validate(&from_a).await.0, StatusCode::OK);
    assert_eq!(b.validate(&from_a).await.0, StatusCode::OK);
}

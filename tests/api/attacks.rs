//! Each attack of issue 10 replayed on both stores: refused with a clear error, the victim's account unchanged.
//!
//! The attacker has what any visitor has: an app's publishable key, any `Origin` it likes, a
//! session id it saw, a software authenticator of its own.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;
use qr_bridge::session::UserId;
use qr_bridge::store::Store;

both_stores!(
    attack_1_a_browser_cannot_add_a_passkey_to_an_existing_account,
    attack_1_a_browser_names_only_new_accounts_and_only_where_the_app_allows,
    attack_2_sign_up_on_a_registration_session_makes_no_second_user,
    attack_2_two_registrations_for_one_new_external_id_make_one_user,
    attack_3_a_token_for_one_app_is_inactive_for_another,
    attack_3_a_revoked_or_expired_token_is_inactive,
    attack_4_registrations_at_once_keep_every_passkey,
    attack_4_a_cloned_passkey_cannot_sign_in_twice_at_one_count,
    attack_5_a_stranger_with_the_session_id_cannot_decline_or_answer_it,
);

/// The victim: Alice, registered by the shop's backend, and her phone.
async fn alice(app: &TestApp) -> (Phone, String) {
    let mut phone = Phone::new();
    let user = app.register(&mut phone, Some("alice@corp.test")).await;
    (phone, user)
}

/// What an account is made of: its passkeys' ids and its external id.
async fn account(app: &TestApp, user: &str) -> (Vec<Vec<u8>>, Option<String>) {
    let stored = app
        .store
        .load_user("shop", &UserId::new(user))
        .await
        .unwrap()
        .expect("the user exists");
    let ids = stored
        .user
        .passkeys
        .iter()
        .map(|p| p.passkey.cred_id().to_vec())
        .collect();
    (ids, stored.user.external_user_id)
}

async fn attack_1_a_browser_cannot_add_a_passkey_to_an_existing_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut alice_phone, alice) = alice(&app).await;
    let before = account(&app, &alice).await;

    // The SDK's startRegistration({externalUserId}) from the attacker's browser.
    let calls = app.store_calls();
    let refused = app.browser_init_registration(Some("alice@corp.test")).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let message = refused.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("secret key"),
        "says what to use instead: {message}"
    );
    assert_eq!(
        app.store_calls(),
        calls,
        "refused before any store key is touched"
    );

    // A forged Origin or no Origin changes nothing: without one, a publishable key is refused.
    let no_origin = reply(
        app.request(Method::POST, "/v1/auth/cross-device/init-registration")
            .bearer_auth(SHOP_KEY)
            .json(&json!({"external_user_id": "alice@corp.test"})),
    )
    .await;
    assert_error(&no_origin, StatusCode::FORBIDDEN, "qr_origin_not_allowed");

    // An anonymous registration works (open sign-up) but makes a new account, not Alice's, and
    // its creation options carry nothing of hers.
    let (status, body) = app.browser_init_registration(None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["session_id"].as_str().unwrap().to_owned();
    let options = app.options(&id).await;
    assert!(
        options["excludeCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    let mut attacker = Phone::new();
    let created = attacker.create(BRIDGE_ORIGIN, &options);
    assert_eq!(
        app.verify_registration(&id, &created).await.0,
        StatusCode::NO_CONTENT
    );
    assert_ne!(app.sign_in(&mut attacker).await.0, alice);

    assert_eq!(
        account(&app, &alice).await,
        before,
        "Alice's account is unchanged"
    );
    assert_eq!(app.sign_in(&mut alice_phone).await.0, alice);
}

async fn attack_1_a_browser_names_only_new_accounts_and_only_where_the_app_allows(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let club = |external: &str| {
        reply(
            app.request(Method::POST, "/v1/auth/cross-device/init-registration")
                .bearer_auth(CLUB_KEY)
                .header("Origin", CLUB_ORIGIN)
                .json(&json!({ "external_user_id": external })),
        )
    };
    // The club app opted in: a browser may name the account it creates...
    let (status, body) = club("carol").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["external_user_id"], "carol");
    let id = body["data"]["session_id"].as_str().unwrap().to_owned();
    let context = reply(
        app.request(Method::GET, &format!("/v1/auth/cross-device/context/{id}"))
            .bearer_auth(CLUB_KEY)
            .header("Origin", CLUB_ORIGIN),
    )
    .await;
    let mut carol_phone = Phone::new();
    let created = carol_phone.create(BRIDGE_ORIGIN, &context.1["data"]["options"]);
    let done = reply(
        app.request(Method::POST, "/v1/auth/cross-device/verify-registration")
            .bearer_auth(CLUB_KEY)
            .header("Origin", CLUB_ORIGIN)
            .json(&json!({"session_id": id, "credential": created})),
    )
    .await;
    assert_eq!(done.0, StatusCode::NO_CONTENT, "{}", done.1);
    let carol = app
        .store
        .find_user_by_external_id("club", "carol")
        .await
        .unwrap()
        .expect("carol's account");

    // ...but never one that exists, and it learns no more than that.
    let calls = app.store_calls();
    let refused = club("carol").await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert!(app.store_calls() <= calls + 1, "one lookup, no write");
    let after = app
        .store
        .find_user_by_external_id("club", "carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.passkeys.len(), carol.passkeys.len());

    // An app without open sign-up lets no browser register at all.
    let own = reply(
        app.request(Method::POST, "/v1/auth/cross-device/init-registration")
            .bearer_auth(OWN_KEY)
            .header("Origin", OWN_ORIGIN)
            .json(&json!({})),
    )
    .await;
    assert_error(&own, StatusCode::FORBIDDEN, "forbidden");
}

async fn attack_2_sign_up_on_a_registration_session_makes_no_second_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, alice) = alice(&app).await;
    let before = account(&app, &alice).await;

    // The shop's backend starts a registration for Bob; the attacker saw its QR code.
    let s = app.init_registration(Some("bob@corp.test")).await;
    let calls = app.store_calls();
    let refused = app.signup(&s.session_id).await;
    assert_error(&refused, StatusCode::CONFLICT, "qr_invalid_state");
    let id = qr_bridge::session::SessionId::parse(&s.session_id).unwrap();
    let stored = app.store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.rev, 1, "the session was not written");
    assert!(app.store_calls() <= calls + 2, "a read, no write");

    // The same on a registration for Alice.
    let s = app.init_registration(Some("alice@corp.test")).await;
    assert_error(
        &app.signup(&s.session_id).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
    assert_eq!(account(&app, &alice).await, before);
    assert!(
        app.store
            .find_user_by_external_id("shop", "bob@corp.test")
            .await
            .unwrap()
            .is_none(),
        "nobody claimed Bob's id"
    );
}

async fn attack_2_two_registrations_for_one_new_external_id_make_one_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (first, second) = (
        app.init_registration(Some("dave")).await,
        app.init_registration(Some("dave")).await,
    );
    let (mut a, mut b) = (Phone::new(), Phone::new());
    let created_a = a.create(BRIDGE_ORIGIN, &app.options(&first.session_id).await);
    let created_b = b.create(BRIDGE_ORIGIN, &app.options(&second.session_id).await);
    assert_eq!(
        app.verify_registration(&first.session_id, &created_a)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let refused = app
        .verify_registration(&second.session_id, &created_b)
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let dave = app
        .store
        .find_user_by_external_id("shop", "dave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dave.passkeys.len(), 1);
    assert_eq!(dave.id.to_string(), app.completion(&first).await.0);
    // The refused passkey signs in as nobody.
    let (s, options) = app.opened_sign_in().await;
    let got = app
        .verify(&s.session_id, &b.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "qr_credential_not_found");
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn introspect(app: &TestApp, secret: &str, token: &str) -> (StatusCode, Value) {
    reply(
        app.request(Method::POST, "/v1/sessions/introspect")
            .bearer_auth(secret)
            .form(&[("token", token)]),
    )
    .await
}

async fn attack_3_a_token_for_one_app_is_inactive_for_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut phone, alice) = alice(&app).await;
    let (_, token) = app.sign_in(&mut phone).await;

    let claims = claims_of(&token);
    assert_eq!(
        (claims["aud"].as_str(), claims["iss"].as_str()),
        (Some("shop"), Some(BRIDGE_ORIGIN))
    );

    // The other app's backend asks: inactive, and nothing about the token is told.
    assert_eq!(
        introspect(&app, OWN_SECRET, &token).await,
        (StatusCode::OK, json!({"active": false}))
    );
    // The shop's own backend: active, with whose token it is.
    let (status, body) = introspect(&app, SHOP_SECRET, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["active"],
            &body["aud"],
            &body["client_id"],
            &body["sub"],
            &body["external_user_id"]
        ),
        (
            &json!(true),
            &json!("shop"),
            &json!("shop"),
            &json!(alice),
            &json!("alice@corp.test")
        )
    );
    // JSON bodies work too; a publishable key (a browser) may not introspect.
    let json_body = reply(
        app.request(Method::POST, "/v1/sessions/introspect")
            .bearer_auth(OWN_SECRET)
            .json(&json!({ "token": token })),
    )
    .await;
    assert_eq!(json_body.1, json!({"active": false}));
    let browser = reply(
        app.shop_request(Method::POST, "/v1/sessions/introspect")
            .form(&[("token", token.as_str())]),
    )
    .await;
    assert_error(&browser, StatusCode::UNAUTHORIZED, "unauthorized");

    // validate, as the SDK calls it, names the app the token belongs to.
    let (status, body) = app.validate(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["app_id"], "shop");
}

async fn attack_3_a_revoked_or_expired_token_is_inactive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut phone, _) = alice(&app).await;
    let (_, token) = app.sign_in(&mut phone).await;

    // Another app's backend cannot revoke it.
    let revoke = |secret: &'static str, token: String| {
        reply(
            app.request(Method::POST, "/v1/sessions/revoke")
                .bearer_auth(secret)
                .form(&[("token", token)]),
        )
    };
    assert_eq!(revoke(OWN_SECRET, token.clone()).await.0, StatusCode::OK);
    assert_eq!(
        introspect(&app, SHOP_SECRET, &token).await.1["active"],
        true
    );
    // Its own backend can.
    assert_eq!(revoke(SHOP_SECRET, token.clone()).await.0, StatusCode::OK);
    assert_eq!(
        introspect(&app, SHOP_SECRET, &token).await.1,
        json!({"active": false})
    );
    assert_error(
        &app.validate(&token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // An expired token, signed with the deployment's own current key.
    let ring: qr_bridge::token::KeyRing = serde_json::from_str(key_ring_json()).unwrap();
    let current = ring.current().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(current.kid.clone());
    let mut claims = claims_of(&token);
    claims["iat"] = json!(1_000);
    claims["exp"] = json!(2_000);
    claims["jti"] = json!("another-session");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(current.pem.as_bytes()).unwrap();
    let expired = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        introspect(&app, SHOP_SECRET, &expired).await.1,
        json!({"active": false})
    );
    assert_error(
        &app.validate(&expired).await,
        StatusCode::UNAUTHORIZED,
        "session_expired",
    );
    assert_eq!(
        introspect(&app, SHOP_SECRET, "garbage").await.1,
        json!({"active": false})
    );
}

async fn attack_4_registrations_at_once_keep_every_passkey(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (_, alice) = alice(&app).await;
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        let mut pending = Vec::new();
        for _ in 0..2 {
            let s = app.init_registration(Some("alice@corp.test")).await;
            let created = Phone::new().create(BRIDGE_ORIGIN, &app.options(&s.session_id).await);
            pending.push((s.session_id, created));
        }
        let answers = pending.into_iter().map(|(id, created)| {
            let app = app.clone();
            tokio::spawn(async move { app.verify_registration(&id, &created).await.0 })
        });
        for answer in futures::future::join_all(answers).await {
            assert_eq!(answer.unwrap(), StatusCode::NO_CONTENT);
        }
    }
    assert_eq!(
        account(&app, &alice).await.0.len(),
        1 + 2 * ROUNDS,
        "no passkey lost"
    );
}

async fn attack_4_a_cloned_passkey_cannot_sign_in_twice_at_one_count(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (mut phone, alice) = alice(&app).await;
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        // Two copies of one authenticator sign at the same counter value.
        let mut clone = phone.clone_device();
        let (first, options_a) = app.opened_sign_in().await;
        let (second, options_b) = app.opened_sign_in().await;
        let answers = [
            (
                first.session_id.clone(),
                phone.sign(BRIDGE_ORIGIN, &options_a),
            ),
            (
                second.session_id.clone(),
                clone.sign(BRIDGE_ORIGIN, &options_b),
            ),
        ]
        .map(|(id, signed)| {
            let app = app.clone();
            tokio::spawn(async move { app.verify(&id, &signed).await })
        });
        let answers: Vec<_> = futures::future::join_all(answers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let won = answers
            .iter()
            .filter(|a| a.0 == StatusCode::NO_CONTENT)
            .count();
        assert_eq!(won, 1, "{answers:?}");
        let lost = answers
            .iter()
            .find(|a| a.0 != StatusCode::NO_CONTENT)
            .unwrap();
        assert_error(lost, StatusCode::CONFLICT, "qr_replay_detected");
    }
    assert_eq!(
        app.sign_in(&mut phone).await.0,
        alice,
        "the real phone goes on"
    );
}

/// A request from `ip`, as the trusted proxy in front of the bridge reports it.
fn from(app: &TestApp, ip: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.shop_request(method, path).header("X-Forwarded-For", ip)
}

const PHONE_IP: &str = "203.0.113.7";
const STRANGER_IP: &str = "198.51.100.9";

async fn attack_5_a_stranger_with_the_session_id_cannot_decline_or_answer_it(backend: Backend) {
    let app = TestApp::spawn_behind_proxy(backend).await;
    let (mut phone, alice) = alice(&app).await;
    let s = app.init().await;
    let path = |what: &str| format!("/v1/auth/cross-device/{what}/{}", s.session_id);

    // Nobody has opened it: nobody may decline it.
    let early = reply(from(&app, STRANGER_IP, Method::POST, &path("deny"))).await;
    assert_error(&early, StatusCode::FORBIDDEN, "forbidden");

    // Alice's phone opens it (the SDK's approve() on the shop's own page).
    let context = reply(from(&app, PHONE_IP, Method::GET, &path("context"))).await;
    assert_eq!(context.0, StatusCode::OK, "{}", context.1);

    // The stranger who saw the id can neither decline, reopen nor answer it.
    let deny = reply(from(&app, STRANGER_IP, Method::POST, &path("deny"))).await;
    assert_error(&deny, StatusCode::FORBIDDEN, "forbidden");
    let reopen = reply(from(&app, STRANGER_IP, Method::GET, &path("context"))).await;
    assert_error(&reopen, StatusCode::FORBIDDEN, "forbidden");
    let mut stranger = Phone::new();
    app.register(&mut stranger, None).await;
    let forged = stranger.sign(BRIDGE_ORIGIN, &context.1["data"]["options"]);
    let answer = reply(
        from(
            &app,
            STRANGER_IP,
            Method::POST,
            "/v1/auth/cross-device/verify",
        )
        .json(&json!({"session_id": s.session_id, "credential": forged})),
    )
    .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.1["data"],
        json!({"status": "pending", "scanned": true}),
        "the session is as Alice's phone left it"
    );

    // Alice's phone answers the challenge it was given (the stranger spent nothing of it), and
    // the desktop gets her.
    let signed = phone.sign(BRIDGE_ORIGIN, &context.1["data"]["options"]);
    let done = reply(
        from(&app, PHONE_IP, Method::POST, "/v1/auth/cross-device/verify")
            .json(&json!({"session_id": s.session_id, "credential": signed})),
    )
    .await;
    assert_eq!(done.0, StatusCode::NO_CONTENT, "{}", done.1);
    assert_eq!(app.completion(&s).await.0, alice);

    // Reloading the page is the same phone: it may reopen what it opened.
    let s = app.init().await;
    let path = |what: &str| format!("/v1/auth/cross-device/{what}/{}", s.session_id);
    for _ in 0..2 {
        let opened = reply(from(&app, PHONE_IP, Method::GET, &path("context"))).await;
        assert_eq!(opened.0, StatusCode::OK, "{}", opened.1);
    }
    let declined = reply(from(&app, PHONE_IP, Method::POST, &path("deny"))).await;
    assert_eq!(declined.0, StatusCode::NO_CONTENT, "{}", declined.1);
}

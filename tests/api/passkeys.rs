//! Real WebAuthn ceremonies through the API on both stores: create a passkey on the phone, sign in with it, trust the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{JWTClaims, RS256PublicKey, RSAPublicKeyLike};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

both_stores!(
    a_passkey_created_on_the_phone_signs_in_across_devices,
    tokens_verify_against_the_jwks_with_an_independent_library,
    validate_refuses_what_the_bridge_did_not_issue,
    a_second_passkey_joins_the_same_external_user,
    a_phone_without_a_passkey_may_create_one_when_the_app_allows_it,
    an_answer_is_accepted_once_and_only_for_its_own_challenge,
    answers_made_for_another_site_are_refused,
    an_unknown_credential_is_refused,
    a_missing_user_verification_is_refused,
    a_counter_that_went_backwards_is_refused,
    no_token_comes_out_of_a_cancelled_denied_or_expired_session,
);

async fn a_passkey_created_on_the_phone_signs_in_across_devices(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();

    let s = app.init_registration(Some(" ada@shop.test ")).await;
    assert_eq!(s.external_user_id.as_deref(), Some("ada@shop.test"));
    let (status, context) = app.context(&s.session_id).await;
    assert_eq!(status, StatusCode::OK, "{context}");
    assert_eq!(context["data"]["type"], "registration");
    let created = phone.create(BRIDGE_ORIGIN, &context["data"]["options"]);
    assert_eq!(
        app.verify_registration(&s.session_id, &created).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (user_id, _) = app.completion(&s).await;
    assert!(user_id.starts_with("usr_"), "{user_id}");

    let (s, options) = app.opened_sign_in().await;
    assert_eq!(
        options["allowCredentials"],
        json!([]),
        "usernameless: the phone finds its own passkey"
    );
    assert_eq!(options["userVerification"], "required");
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    assert!(
        signed.get("clientExtensionResults").is_none()
            && signed["response"]["userHandle"].is_string()
    );
    assert_eq!(
        app.verify(&s.session_id, &signed).await,
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (signed_in_as, token) = app.completion(&s).await;
    assert_eq!(signed_in_as, user_id);

    let (status, body) = app.validate(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"valid": true, "user_id": user_id, "external_user_id": "ada@shop.test", "tenant_id": "shop", "app_id": "shop"})
    );
}

async fn tokens_verify_against_the_jwks_with_an_independent_library(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    let user_id = app.register(&mut phone, None).await;
    let (_, token) = app.sign_in(&mut phone).await;

    let res = app
        .request(Method::GET, "/.well-known/jwks.json")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let jwks: Value = res.json().await.unwrap();
    assert!(
        jwks.get("ok").is_none(),
        "the JWKS is bare, not in an envelope"
    );
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    let part = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
    let public = RS256PublicKey::from_components(&part("n"), &part("e"))
        .unwrap()
        .with_key_id(key["kid"].as_str().unwrap());

    let claims: JWTClaims<Map<String, Value>> = public
        .verify_token(&token, None)
        .expect("signed by the JWKS key");
    assert_eq!(claims.subject.as_deref(), Some(user_id.as_str()));
    assert_eq!(claims.custom["user_id"], user_id.as_str());
    assert_eq!(
        (
            claims.custom["tenant_id"].as_str(),
            claims.custom["app_id"].as_str()
        ),
        (Some("shop"), Some("shop"))
    );
    assert!(
        claims.custom.get("external_user_id").is_none(),
        "left out, never null, when unknown"
    );
    let (iat, exp) = (
        claims.issued_at.unwrap().as_secs(),
        claims.expires_at.unwrap().as_secs(),
    );
    assert_eq!(exp - iat, 3600);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), key["kid"].as_str())
    );
}

async fn validate_refuses_what_the_bridge_did_not_issue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = qr_bridge::session::Timestamp::from_millis(0);
    let ring = qr_bridge::token::KeyRing::generate(now).unwrap();
    let foreign = qr_bridge::token::Tokens::new(
        BRIDGE_ORIGIN,
        std::time::Duration::from_secs(60),
        &ring,
        1,
        now,
    )
    .unwrap()
    .mint("usr_x", None, "shop", "s")
    .unwrap();
    assert_error(
        &app.validate(foreign.expose()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &app.validate("garbage").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &reply(app.request(Method::GET, "/v1/sessions/validate")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

async fn a_second_passkey_joins_the_same_external_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut first, mut second) = (Phone::new(), Phone::new());
    let user = app.register(&mut first, Some("grace")).await;
    // The second phone is offered creation options that exclude the first passkey.
    let s = app.init_registration(Some("grace")).await;
    let options = app.options(&s.session_id).await;
    assert_eq!(
        options["excludeCredentials"].as_array().map(Vec::len),
        Some(1),
        "{options}"
    );
    let created = second.create(BRIDGE_ORIGIN, &options);
    assert_eq!(
        app.verify_registration(&s.session_id, &created).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.completion(&s).await.0, user);
    for phone in [&mut first, &mut second] {
        let (s, options) = app.opened_sign_in().await;
        assert_eq!(
            app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
                .await
                .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.completion(&s).await.0, user);
    }
}

async fn a_phone_without_a_passkey_may_create_one_when_the_app_allows_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    let (s, options) = app.opened_sign_in().await;
    assert!(
        phone.try_sign(BRIDGE_ORIGIN, &options).is_none(),
        "nothing to sign with yet"
    );
    let (status, body) = app.signup(&s.session_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["type"], "registration");
    let created = phone.create(BRIDGE_ORIGIN, &body["data"]["options"]);
    assert_eq!(
        app.verify_registration(&s.session_id, &created).await.0,
        StatusCode::NO_CONTENT
    );
    let (user, _) = app.completion(&s).await;
    // And the new passkey signs in next time.
    assert_eq!(app.sign_in(&mut phone).await.0, user);

    // An app without open sign-up refuses, and its session is untouched.
    let started = reply(
        app.request(Method::POST, "/v1/auth/cross-device/init")
            .bearer_auth(OWN_KEY)
            .header("Origin", OWN_ORIGIN),
    )
    .await;
    let id = started.1["data"]["session_id"].as_str().unwrap();
    let refused = reply(
        app.request(Method::POST, &format!("/v1/auth/cross-device/signup/{id}"))
            .bearer_auth(OWN_KEY)
            .header("Origin", OWN_ORIGIN),
    )
    .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
}

async fn an_answer_is_accepted_once_and_only_for_its_own_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    let genuine = phone.sign(BRIDGE_ORIGIN, &options);
    // A refused answer spends the challenge: a second verify for it, even a genuine one, is a replay.
    let forged = phone.sign("https://phish.bridge.test", &options);
    assert_error(
        &app.verify(&s.session_id, &forged).await,
        StatusCode::BAD_REQUEST,
        "qr_invalid_response",
    );
    assert_error(
        &app.verify(&s.session_id, &genuine).await,
        StatusCode::CONFLICT,
        "qr_replay_detected",
    );

    // Replayed into another session, the old answer meets the wrong challenge.
    let (other, _) = app.opened_sign_in().await;
    assert_error(
        &app.verify(&other.session_id, &genuine).await,
        StatusCode::BAD_REQUEST,
        "challenge_mismatch",
    );

    // The person can retry: reopening the page gives a fresh challenge, answered once.
    let options = app.options(&s.session_id).await;
    let fresh = phone.sign(BRIDGE_ORIGIN, &options);
    assert_eq!(
        app.verify(&s.session_id, &fresh).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, token) = app.completion(&s).await;
    assert_error(
        &app.verify(&s.session_id, &fresh).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
    assert_eq!(
        app.completion(&s).await.1,
        token,
        "the replay changed nothing"
    );
}

async fn answers_made_for_another_site_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;

    // A page on another origin (under the same rp_id) that is not allowed to run the ceremony.
    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign("https://phish.bridge.test", &options);
    assert_error(
        &app.verify(&s.session_id, &signed).await,
        StatusCode::BAD_REQUEST,
        "qr_invalid_response",
    );

    // A phishing site with its own rp_id relaying our challenge and naming our credential.
    let options = app.options(&s.session_id).await;
    let ours = phone.sign(BRIDGE_ORIGIN, &options);

    let mut elsewhere = options.clone();
    elsewhere["rpId"] = json!("evil.test");
    elsewhere["allowCredentials"] = json!([{"type": "public-key", "id": ours["rawId"]}]);
    let relayed = phone.sign("https://evil.test", &elsewhere);
    assert_error(
        &app.verify(&s.session_id, &relayed).await,
        StatusCode::BAD_REQUEST,
        "qr_invalid_response",
    );

    let options = app.options(&s.session_id).await;
    assert_eq!(
        app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

async fn an_unknown_credential_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A passkey registered with another bridge (same rp_id) is unknown here.
    let elsewhere = TestApp::spawn(Backend::Memory).await;
    let mut stranger = Phone::new();
    elsewhere.register(&mut stranger, None).await;
    let (s, options) = app.opened_sign_in().await;
    let signed = stranger.sign(BRIDGE_ORIGIN, &options);
    assert_error(
        &app.verify(&s.session_id, &signed).await,
        StatusCode::NOT_FOUND,
        "qr_credential_not_found",
    );
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.1["data"]["status"],
        "pending"
    );
}

async fn a_missing_user_verification_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign_without_verification(BRIDGE_ORIGIN, &options);
    let got = app.verify(&s.session_id, &signed).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "qr_invalid_response");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("verify the user"),
        "{}",
        got.1
    );
}

async fn a_counter_that_went_backwards_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let mut clone = phone.clone_device();
    let (s, options) = app.opened_sign_in().await;
    assert_eq!(
        app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // The clone signs with a counter no higher than the one already seen.
    let (s, options) = app.opened_sign_in().await;
    assert_error(
        &app.verify(&s.session_id, &clone.sign(BRIDGE_ORIGIN, &options))
            .await,
        StatusCode::CONFLICT,
        "qr_replay_detected",
    );
    // The genuine phone, moving on, still works.
    let options = app.options(&s.session_id).await;
    assert_eq!(
        app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

async fn no_token_comes_out_of_a_cancelled_denied_or_expired_session(backend: Backend) {
    let app = TestApp::spawn_with(backend, "1s").await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;

    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    app.cancel(&s.session_id, &s.polling_token).await;
    assert_error(
        &app.verify(&s.session_id, &signed).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
    assert_error(
        &app.status(&s.session_id, Some(&s.polling_token)).await,
        StatusCode::GONE,
        "session_expired",
    );

    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    app.deny(&s.session_id).await;
    assert_error(
        &app.verify(&s.session_id, &signed).await,
        StatusCode::CONFLICT,
        "qr_invalid_state",
    );
    assert_error(
        &app.status(&s.session_id, Some(&s.polling_token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let (s, options) = app.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    app.pass(std::time::Duration::from_millis(1100)).await;
    assert_error(
        &app.verify(&s.session_id, &signed).await,
        StatusCode::GONE,
        "qr_expired",
    );
    assert_error(
        &app.status(&s.session_id, Some(&s.polling_token)).await,
        StatusCode::GONE,
        "qr_expired",
    );
}

//! The PIN Bridge API as the SDK's `client.bridge` calls it (`/v1/auth-bridge/…`, `/v1/enrollment-bridge/…`), with the software passkey, on both stores; and the attacks on its PIN.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

both_stores!(
    the_auth_bridge_signs_the_approving_device_in_and_tells_the_initiator_only_the_outcome,
    the_enrollment_bridge_adds_a_passkey_to_the_person_the_backend_named,
    only_the_backend_starts_an_enrollment,
    pin_guessing_locks_the_pairing_after_five_wrong_pins,
    pin_guessing_across_pairings_is_limited_per_client,
    a_pairing_is_unknown_to_every_other_route,
    a_stolen_ticket_for_another_entity_or_browser_is_refused,
    a_second_device_that_saw_the_pin_cannot_take_over,
    the_initiator_cancels_and_an_expired_pairing_says_so,
    the_initiator_waits_on_a_stream_without_credentials,
);

pub const AUTH: &str = "/v1/auth-bridge";
pub const ENROLL: &str = "/v1/enrollment-bridge";

/// What a pairing's init answered.
pub struct Pairing {
    pub id: String,
    pub pin: String,
    pub polling_token: String,
    pub ticket: Option<String>,
}

pub fn pairing((status, body): (StatusCode, Value)) -> Pairing {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let data = &body["data"];
    Pairing {
        id: data["session_id"].as_str().unwrap().to_owned(),
        pin: data["pin"].as_str().unwrap().to_owned(),
        polling_token: data["polling_token"].as_str().unwrap().to_owned(),
        ticket: data["ticket_id"].as_str().map(str::to_owned),
    }
}

/// The calls of the SDK's `client.bridge`, and the inits an integrator makes.
impl Client {
    /// An auth bridge started by the app's page (publishable key, allowed origin).
    pub async fn auth_pairing(&self) -> Pairing {
        let req = self.shop_request(Method::POST, &format!("{AUTH}/init"));
        pairing(reply(req.json(&json!({}))).await)
    }

    /// An enrollment bridge started by the app's backend (secret key, no Origin) for `entity`.
    pub async fn enrollment_pairing(&self, entity: &str, context_hash: Option<&str>) -> Pairing {
        let mut body = json!({ "entity_id": entity });
        if let Some(hash) = context_hash {
            body["context_hash"] = json!(hash);
        }
        let req = self
            .request(Method::POST, &format!("{ENROLL}/init"))
            .bearer_auth(SHOP_SECRET);
        pairing(reply(req.json(&body)).await)
    }

    pub async fn pin_context(&self, prefix: &str, id: &str) -> (StatusCode, Value) {
        reply(self.shop_request(Method::GET, &format!("{prefix}/context/{id}"))).await
    }

    pub fn pin_request(&self, prefix: &str, id: &str, pin: &str) -> RequestBuilder {
        self.shop_request(Method::POST, &format!("{prefix}/verify/{id}"))
            .json(&json!({ "pin": pin }))
    }

    pub async fn offer_pin(&self, prefix: &str, id: &str, pin: &str) -> (StatusCode, Value) {
        reply(self.pin_request(prefix, id, pin)).await
    }

    pub async fn pin_status(&self, prefix: &str, id: &str) -> (StatusCode, Value) {
        reply(self.shop_request(Method::GET, &format!("{prefix}/status/{id}"))).await
    }

    pub async fn pin_state(&self, prefix: &str, id: &str) -> String {
        let (status, body) = self.pin_status(prefix, id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["status"].as_str().unwrap().to_owned()
    }

    pub async fn complete_auth(&self, id: &str, credential: &Value) -> (StatusCode, Value) {
        let body = json!({ "session_id": id, "credential": credential });
        reply(
            self.shop_request(Method::POST, &format!("{AUTH}/complete"))
                .json(&body),
        )
        .await
    }

    pub async fn complete_enrollment(&self, body: Value) -> (StatusCode, Value) {
        reply(
            self.shop_request(Method::POST, &format!("{ENROLL}/complete"))
                .json(&body),
        )
        .await
    }
}

/// The PIN's options, after a right PIN.
async fn verified(app: &Client, prefix: &str, p: &Pairing, field: &str) -> Value {
    let (status, body) = app.offer_pin(prefix, &p.id, &p.pin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["session_id"], p.id.as_str());
    let options = body["data"][field].clone();
    assert_eq!(body["data"]["challenge"], options["challenge"], "{body}");
    options
}

fn wrong_pin(p: &Pairing) -> String {
    let digit = if p.pin.starts_with('0') { '1' } else { '0' };
    format!("{digit}{}", &p.pin[1..])
}

async fn the_auth_bridge_signs_the_approving_device_in_and_tells_the_initiator_only_the_outcome(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    let user = app.register(&mut phone, None).await;

    let p = app.auth_pairing().await;
    assert!(
        p.pin.len() == 6 && p.pin.chars().all(|c| c.is_ascii_digit()),
        "{}",
        p.pin
    );
    assert_eq!(p.ticket, None);
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pending");

    // E1: who asks, and no challenge before the PIN.
    let (status, body) = app.pin_context(AUTH, &p.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["type"], "auth");
    assert_eq!(body["data"]["application_name"], "Shop <b>Test</b>");
    assert_eq!(body["data"]["options"]["rpId"], "bridge.test");
    assert!(body["data"]["options"].get("challenge").is_none(), "{body}");
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pending");

    // E2, then the ceremony, then E4: the token is the approving device's.
    let options = verified(&app, AUTH, &p, "authentication_options").await;
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_verified");
    let (status, body) = app
        .complete_auth(&p.id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["data"]["session_token"].as_str().unwrap();
    let (status, valid) = app.validate(token).await;
    assert_eq!(status, StatusCode::OK, "{valid}");
    assert_eq!(valid["data"]["user_id"], user.as_str());
    assert_eq!(valid["data"]["app_id"], "shop");

    // The initiator sees `completed`, and neither token nor user, on any route.
    let (status, body) = app.pin_status(AUTH, &p.id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!({ "status": "completed" }));
    let cross = app.status(&p.id, Some(&p.polling_token)).await;
    assert_error(&cross, StatusCode::NOT_FOUND, "qr_session_not_found");

    // The answer cannot be replayed.
    let again = app
        .complete_auth(&p.id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert!(again.0.is_client_error(), "{again:?}");
}

async fn the_enrollment_bridge_adds_a_passkey_to_the_person_the_backend_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hash = "ab".repeat(32);
    let p = app.enrollment_pairing("emp-42", Some(&hash)).await;
    let ticket = p.ticket.clone().expect("a ticket for the approving device");
    assert!(ticket.starts_with("tkt_") && ticket.len() > 40, "{ticket}");

    let (status, body) = app.pin_context(ENROLL, &p.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["type"], "registration");
    let options = verified(&app, ENROLL, &p, "registration_options").await;
    assert_eq!(options["user"]["name"], "emp-42");

    let mut phone = Phone::new();
    let created = phone.create(BRIDGE_ORIGIN, &options);
    let (status, body) = app
        .complete_enrollment(json!({
            "session_id": p.id, "ticket_id": ticket, "entity_id": "emp-42",
            "context_hash": hash, "registration_response": created,
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["entity_id"], "emp-42");
    assert_eq!(data["credential_id"], created["id"]);
    let user = data["user_id"].as_str().unwrap().to_owned();
    let (_, valid) = app.validate(data["session_token"].as_str().unwrap()).await;
    assert_eq!(valid["data"]["external_user_id"], "emp-42");
    assert_eq!(app.pin_state(ENROLL, &p.id).await, "completed");

    // The passkey signs that person in, and a second enrollment adds to the same person.
    assert_eq!(app.sign_in(&mut phone).await.0, user);
    let second = app.enrollment_pairing("emp-42", None).await;
    let options = verified(&app, ENROLL, &second, "registration_options").await;
    let mut tablet = Phone::new();
    let (status, body) = app
        .complete_enrollment(json!({
            "session_id": second.id, "ticket_id": second.ticket.unwrap(), "entity_id": "emp-42",
            "context_hash": "cd".repeat(32), "registration_response": tablet.create(BRIDGE_ORIGIN, &options),
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["user_id"], user.as_str());
    assert_eq!(app.sign_in(&mut tablet).await.0, user);
}

/// Attack: a browser with the public key enrolls its own passkey into someone's account.
async fn only_the_backend_starts_an_enrollment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut victim = Phone::new();
    let user = app.register(&mut victim, Some("emp-7")).await;
    let calls = app.store_calls();
    let browser = app
        .shop_request(Method::POST, &format!("{ENROLL}/init"))
        .json(&json!({ "entity_id": "emp-7" }));
    assert_error(&reply(browser).await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.store_calls(),
        calls,
        "a refused init touches no store key"
    );
    // Without an entity the backend is refused too: an enrollment is for someone.
    let nobody = app
        .request(Method::POST, &format!("{ENROLL}/init"))
        .bearer_auth(SHOP_SECRET)
        .json(&json!({}));
    assert_error(&reply(nobody).await, StatusCode::FORBIDDEN, "forbidden");
    // An auth bridge names nobody: a sign-in tied to a person it cannot enforce is refused.
    let named = app
        .shop_request(Method::POST, &format!("{AUTH}/init"))
        .json(&json!({ "entity_id": "emp-7" }));
    assert_error(
        &reply(named).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );
    let bad_hash = app
        .request(Method::POST, &format!("{ENROLL}/init"))
        .bearer_auth(SHOP_SECRET)
        .json(&json!({ "entity_id": "emp-7", "context_hash": "xyz" }));
    assert_error(
        &reply(bad_hash).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );
    // The victim's account is as it was: its one passkey signs in.
    assert_eq!(app.sign_in(&mut victim).await.0, user);
}

/// Attack: guessing the PIN. Every wrong PIN is counted with the session; the fifth locks it for
/// good, and no challenge is ever handed out.
async fn pin_guessing_locks_the_pairing_after_five_wrong_pins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut victim = Phone::new();
    app.register(&mut victim, None).await;
    let p = app.auth_pairing().await;
    let wrong = wrong_pin(&p);
    for left in (1..=4).rev() {
        let got = app.offer_pin(AUTH, &p.id, &wrong).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "pin_mismatch");
        let message = got.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{left} more")), "{message}");
        assert!(!message.contains(&p.pin) && !message.contains(&wrong));
    }
    let locked = app.offer_pin(AUTH, &p.id, &wrong).await;
    assert_error(&locked, StatusCode::FORBIDDEN, "pin_locked");
    // Now not even the right PIN opens it, and everything says it is locked.
    let right = app.offer_pin(AUTH, &p.id, &p.pin).await;
    assert_error(&right, StatusCode::FORBIDDEN, "pin_locked");
    assert_error(
        &app.pin_context(AUTH, &p.id).await,
        StatusCode::FORBIDDEN,
        "pin_locked",
    );
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_locked");
    // No challenge was ever handed out: an answer has nothing to complete.
    let options = json!({"challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "rpId": "bridge.test",
        "allowCredentials": [], "userVerification": "required"});
    let forged = app
        .complete_auth(&p.id, &victim.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_error(&forged, StatusCode::FORBIDDEN, "pin_locked");
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_locked");
}

/// Attack: guessing across many pairings from one network, each below its own lock.
async fn pin_guessing_across_pairings_is_limited_per_client(backend: Backend) {
    let limits = "[limits]\ninit_per_client = \"1000/1m\"\npin_per_client = \"3/1m\"";
    let app = TestApp::spawn_configured(backend, "5m", limits).await;
    for _ in 0..3 {
        let p = app.auth_pairing().await;
        let got = app.offer_pin(AUTH, &p.id, &wrong_pin(&p)).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "pin_mismatch");
    }
    let fresh = app.auth_pairing().await;
    let refused = app.offer_pin(AUTH, &fresh.id, &fresh.pin).await;
    assert_error(
        &refused,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
    );
    assert_eq!(app.pin_state(AUTH, &fresh.id).await, "pending");
    // A malformed offer is refused before it is counted.
    let blank = app.offer_pin(AUTH, &fresh.id, " ").await;
    assert_error(&blank, StatusCode::BAD_REQUEST, "validation_error");
    // Once the window has passed (turned on the embedded store's clock; Redis's would take a
    // minute of waiting), the right PIN opens the pairing.
    if backend == Backend::Memory {
        app.pass(Duration::from_secs(61)).await;
        let (status, body) = app.offer_pin(AUTH, &fresh.id, &fresh.pin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Attack: going round the PIN through the cross-device routes (whose context hands out a
/// challenge with no PIN), or across the two bridges.
async fn a_pairing_is_unknown_to_every_other_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = app.auth_pairing().await;
    let unknown = |got: &(StatusCode, Value)| {
        assert_error(got, StatusCode::NOT_FOUND, "qr_session_not_found");
    };
    unknown(&app.context(&p.id).await);
    unknown(&app.signup(&p.id).await);
    unknown(&app.deny(&p.id).await);
    unknown(&app.cancel(&p.id, &p.polling_token).await);
    unknown(&app.status(&p.id, Some(&p.polling_token)).await);
    unknown(&reply(app.request(Method::GET, &format!("/v1/auth/cross-device/qr/{}", p.id))).await);
    let page = app
        .http
        .get(format!("{}/bridge/{}", app.base, p.id))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    // The enrollment bridge's routes do not know an auth pairing, nor the reverse.
    let other = app.pin_context(ENROLL, &p.id).await;
    assert_error(&other, StatusCode::NOT_FOUND, "session_not_found");
    let other = app.offer_pin(ENROLL, &p.id, &p.pin).await;
    assert_error(&other, StatusCode::NOT_FOUND, "session_not_found");
    // Nor do the bridges know a cross-device session.
    let cross = app.init().await;
    let got = app.offer_pin(AUTH, &cross.session_id, "123456").await;
    assert_error(&got, StatusCode::NOT_FOUND, "session_not_found");
    // The pairing is untouched by all of it.
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pending");
    verified(&app, AUTH, &p, "authentication_options").await;
}

/// Attack: an approving device with a ticket that is not this pairing's (another person's, or
/// bound to another browser) enrolls its passkey. Checked before the challenge is spent.
async fn a_stolen_ticket_for_another_entity_or_browser_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hash = "ab".repeat(32);
    let p = app.enrollment_pairing("emp-1", Some(&hash)).await;
    let ticket = p.ticket.clone().unwrap();
    let options = verified(&app, ENROLL, &p, "registration_options").await;
    let mut phone = Phone::new();
    let created = phone.create(BRIDGE_ORIGIN, &options);
    let body = |ticket: &str, entity: &str, hash: &str| {
        json!({ "session_id": p.id, "ticket_id": ticket, "entity_id": entity,
                "context_hash": hash, "registration_response": created })
    };
    let other = app.enrollment_pairing("emp-2", None).await.ticket.unwrap();
    for (t, e) in [
        (other.as_str(), "emp-1"),
        ("tkt_made_up", "emp-1"),
        (ticket.as_str(), "emp-2"),
    ] {
        let got = app.complete_enrollment(body(t, e, &hash)).await;
        assert_error(&got, StatusCode::NOT_FOUND, "ticket_not_found");
    }
    let got = app
        .complete_enrollment(body(&ticket, "emp-1", &"cd".repeat(32)))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "context_mismatch");
    assert_eq!(app.pin_state(ENROLL, &p.id).await, "pin_verified");
    let (status, done) = app.complete_enrollment(body(&ticket, "emp-1", &hash)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
}

/// Attack: someone who saw the PIN over a shoulder enters it on their own device after the
/// person did. The first device to prove the PIN holds the pairing.
async fn a_second_device_that_saw_the_pin_cannot_take_over(backend: Backend) {
    let app = TestApp::spawn_behind_proxy(backend).await;
    let p = app.auth_pairing().await;
    let from = |ip: &'static str| {
        app.pin_request(AUTH, &p.id, &p.pin)
            .header("X-Forwarded-For", ip)
    };
    let (status, body) = reply(from("198.51.100.7")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &reply(from("203.0.113.9")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // A wrong PIN from the watcher is refused the same way, and not counted against the person.
    let wrong = app
        .pin_request(AUTH, &p.id, &wrong_pin(&p))
        .header("X-Forwarded-For", "203.0.113.9");
    for _ in 0..6 {
        assert_error(
            &reply(wrong.try_clone().unwrap()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert_eq!(app.pin_state(AUTH, &p.id).await, "pin_verified");
    let (status, _) = reply(from("198.51.100.7")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn the_initiator_cancels_and_an_expired_pairing_says_so(backend: Backend) {
    let app = TestApp::spawn_with(backend, "2s").await;
    let p = app.auth_pairing().await;
    let cancel = |token: &str| {
        app.shop_request(Method::POST, &format!("{AUTH}/cancel/{}", p.id))
            .header("X-Polling-Token", token.to_owned())
    };
    assert_error(
        &reply(cancel("pt_wrong")).await,
        StatusCode::NOT_FOUND,
        "session_not_found",
    );
    assert_eq!(
        reply(cancel(&p.polling_token)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        reply(cancel(&p.polling_token)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.pin_state(AUTH, &p.id).await, "cancelled");
    let got = app.offer_pin(AUTH, &p.id, &p.pin).await;
    assert_error(&got, StatusCode::CONFLICT, "bridge_session_expired");

    let late = app.auth_pairing().await;
    app.pass(Duration::from_millis(2100)).await;
    assert_eq!(app.pin_state(AUTH, &late.id).await, "expired");
    let got = app.offer_pin(AUTH, &late.id, &late.pin).await;
    assert_error(&got, StatusCode::GONE, "bridge_session_expired");
    assert_error(
        &app.pin_context(AUTH, &late.id).await,
        StatusCode::GONE,
        "bridge_session_expired",
    );
}

/// The SDK's `EventSource` sends no header but `Accept`: the stream needs nothing else, and
/// carries `{status}` only, from `pending` to the end.
async fn the_initiator_waits_on_a_stream_without_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let p = app.auth_pairing().await;
    let res = app
        .http
        .get(format!("{}{AUTH}/status/{}", app.base, p.id))
        .header("Accept", "text/event-stream")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let options = verified(&app, AUTH, &p, "authentication_options").await;
    let (status, _) = app
        .complete_auth(&p.id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The stream ends on the final status; what it said is read whole.
    let text = tokio::time::timeout(Duration::from_secs(30), res.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let statuses: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    assert_eq!(
        statuses.first(),
        Some(&json!({ "status": "pending" })),
        "{text}"
    );
    assert_eq!(
        statuses.last(),
        Some(&json!({ "status": "completed" })),
        "{text}"
    );
    assert!(!text.contains("eyJ") && !text.contains("usr_"), "{text}");
}

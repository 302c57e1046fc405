//! `qr-bridge audit`: every sign-in, registration, refused passkey, decline and revocation is in the trail, with who, which app, which passkey, from where and when, on either store.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::qr_bridge;
use crate::helpers::{BRIDGE_ORIGIN, Client, SHOP_KEY, SHOP_ORIGIN, SHOP_SECRET, no_redis, reply};
use crate::manage::bridge;
use crate::phone::Phone;

/// The shop's API as a browser with user agent `agent` calls it.
fn as_device(base: &str, agent: &str) -> Client {
    let http = reqwest::Client::builder()
        .user_agent(agent)
        .build()
        .unwrap();
    Client::for_app(http, base, SHOP_KEY, SHOP_ORIGIN)
}

async fn every_decision_is_in_the_trail(on_redis: bool) {
    let b = bridge(on_redis);
    let desktop = as_device(&b.client.base, "QRB-Desktop/1.0");
    let handset = as_device(&b.client.base, "QRB-Phone/1.0");
    let mut phone = Phone::new();

    // A registration started by the desktop's backend and made on the phone.
    let registration = desktop.init_registration(Some("ada")).await;
    let options = handset.options(&registration.session_id).await;
    let created = phone.create(BRIDGE_ORIGIN, &options);
    let (status, body) = handset
        .verify_registration(&registration.session_id, &created)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (user, _) = desktop.completion(&registration).await;
    // A sign-in, then the same answer again (refused), a decline, and a token the shop revokes.
    let signing_in = desktop.init().await;
    let options = handset.options(&signing_in.session_id).await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    assert_eq!(
        handset.verify(&signing_in.session_id, &signed).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, refused) = handset.verify(&signing_in.session_id, &signed).await;
    let reason = refused["error"]["code"].as_str().unwrap().to_owned();
    let (_, token) = desktop.completion(&signing_in).await;
    let declining = desktop.init().await;
    handset.options(&declining.session_id).await;
    assert_eq!(
        handset.deny(&declining.session_id).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        handset.deny(&declining.session_id).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = reply(
        desktop
            .request(Method::POST, "/v1/sessions/revoke")
            .bearer_auth(SHOP_SECRET)
            .form(&[("token", token.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // An operator revokes the passkey, signs the user out, and removes them.
    let passkey = b.json(&["passkeys", "list", &user])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["passkeys", "revoke", &passkey]);
    b.json(&["users", "sign-out", &user]);
    b.json(&["users", "remove", &user]);

    let trail = b.json(&["audit", "--app", "shop"]);
    let events = trail.as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "registration",
            "sign_in",
            "passkey_refused",
            "declined",
            "token_revoked",
            "passkey_revoked",
            "signed_out",
            "user_removed"
        ],
        "one event per decision, in order (the repeated decline is not one): {trail:#}"
    );
    let of =
        |action: &str| -> &Value { &events[actions.iter().position(|a| *a == action).unwrap()] };
    for action in ["registration", "sign_in"] {
        let event = of(action);
        assert_eq!(event["user_id"], user.as_str(), "{event}");
        assert_eq!(event["passkey_id"], passkey.as_str(), "{event}");
        assert_eq!(event["desktop"]["user_agent"], "QRB-Desktop/1.0", "{event}");
        assert_eq!(event["phone"]["user_agent"], "QRB-Phone/1.0", "{event}");
        assert_eq!(event["desktop"]["address"], "127.0.0.1", "{event}");
        assert!(event["at"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    assert_eq!(of("sign_in")["session_id"], signing_in.session_id.as_str());
    assert_eq!(
        of("registration")["started_by"],
        "backend",
        "the desktop was the shop's server"
    );
    assert_eq!(of("sign_in")["started_by"], "browser");
    for action in ["passkey_revoked", "signed_out", "user_removed"] {
        let who = of(action)["operator"].as_str().unwrap_or_default();
        assert!(
            who.contains('@'),
            "{action} names its operator: {}",
            of(action)
        );
    }
    assert!(of("token_revoked")["token_id"].is_string());
    assert_eq!(of("passkey_refused")["reason"], reason.as_str());
    assert_eq!(of("declined")["session_id"], declining.session_id.as_str());
    assert_eq!(of("token_revoked")["user_id"], user.as_str());
    assert_eq!(of("passkey_revoked")["passkey_id"], passkey.as_str());
    assert!(
        events
            .iter()
            .all(|e| e["id"].as_str().unwrap().starts_with("evt_"))
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    // No secret is in the trail.
    let text = trail.to_string();
    for secret in [
        token.as_str(),
        SHOP_SECRET,
        signing_in.polling_token.as_str(),
    ] {
        assert!(!text.contains(secret));
    }

    // Filters: by user, by time, by app.
    let by_user = b.json(&["audit", "--user", &user]);
    // The refusal and the decline name no user: the phone never proved who it was.
    assert_eq!(by_user.as_array().unwrap().len(), 6, "{by_user:#}");
    assert_eq!(
        b.json(&["audit", "--since", "2099-01-01T00:00:00Z"]),
        Value::Array(vec![])
    );
    assert_eq!(
        b.json(&["audit", "--since", "1h"])
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(b.json(&["audit", "--app", "club"]), Value::Array(vec![]));
    let text = qr_bridge(&b.config, &["audit", "--user", &user]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("SignIn") && text.contains("QRB-Phone/1.0"),
        "{text}"
    );
    let bad = qr_bridge(&b.config, &["audit", "--since", "last tuesday"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));
}

#[tokio::test]
async fn every_decision_is_in_the_trail_of_the_embedded_store() {
    every_decision_is_in_the_trail(false).await;
}

#[tokio::test]
async fn every_decision_is_in_the_trail_on_redis() {
    if no_redis() {
        return;
    }
    every_decision_is_in_the_trail(true).await;
}

/// The publishable key is public: anyone may send answers for made-up or others' sessions. They
/// are counted, but they write nothing to the trail, so nobody can flood it.
#[tokio::test]
async fn answers_for_sessions_this_phone_never_opened_do_not_fill_the_trail() {
    let b = bridge(false);
    let mut phone = Phone::new();
    let (_, _) = b.person(&mut phone, "ada").await;
    let before = b.json(&["audit"]).as_array().unwrap().len();
    let (s, options) = b.client.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    for _ in 0..10 {
        let made_up = uuid::Uuid::new_v4().to_string();
        let (status, _) = b.client.verify(&made_up, &signed).await;
        assert!(status.is_client_error());
    }
    // Another phone (another network claim) answering a session this one opened.
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .unwrap();
    let other = Client::for_app(stranger, &b.client.base, SHOP_KEY, SHOP_ORIGIN);
    let (status, _) = other.verify(&s.session_id, &signed).await;
    assert!(status.is_client_error());
    assert_eq!(
        b.json(&["audit"]).as_array().unwrap().len(),
        before,
        "nothing written"
    );
}

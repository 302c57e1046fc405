//! Signals against a phished QR code, through the API: number matching, where the request comes from (network, GeoIP city), and "This wasn't me" after approving.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

both_stores!(
    number_matching_lets_the_passkey_answer_only_after_the_desktops_number,
    a_blind_approval_of_a_sent_link_is_declined_by_a_wrong_number,
    a_watcher_on_another_network_cannot_pick_the_number,
    a_bad_number_is_refused_before_the_store_is_read,
    number_matching_is_off_unless_the_app_asks_and_the_sdk_flow_is_unchanged,
    the_phone_is_told_whether_the_desktop_is_on_its_network,
    with_a_geoip_database_the_phone_is_told_the_desktops_city,
    this_wasnt_me_revokes_the_token_at_once,
    a_stranger_cannot_disown_someone_elses_sign_in,
);

const DESKTOP_IP: &str = "203.0.113.7";
/// On the desktop's network (its /24: one home or office).
const SAME_NETWORK_IP: &str = "203.0.113.80";
const OTHER_NETWORK_IP: &str = "198.51.100.9";

/// The harness's settings behind a proxy on loopback (so a request can say where it comes
/// from), with number matching on for the shop when `confirm`, and `extra` top-level keys.
async fn bridge(backend: Backend, confirm: bool, extra: &str) -> TestApp {
    let extra = extra.to_owned();
    TestApp::spawn_settings(backend, move |dir| {
        let top = format!("trusted_proxies = [\"127.0.0.0/8\"]\n{extra}\n{RELAXED_LIMITS}");
        let toml = settings_toml("5m", dir, &top);
        if confirm {
            toml.replacen(
                "hosted_login = true",
                "hosted_login = true\nconfirm_code = true",
                1,
            )
        } else {
            toml
        }
    })
    .await
}

/// A shop request from the client at `ip`.
fn from(app: &TestApp, ip: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.shop_request(method, path).header("X-Forwarded-For", ip)
}

async fn init_from(app: &TestApp, ip: &str) -> qr_bridge::wire::Started {
    let req = from(app, ip, Method::POST, "/v1/auth/cross-device/init").json(&json!({}));
    crate::kit::client::started(reply(req).await)
}

async fn context_from(app: &TestApp, ip: &str, id: &str) -> (StatusCode, Value) {
    let path = format!("/v1/auth/cross-device/context/{id}");
    reply(from(app, ip, Method::GET, &path)).await
}

async fn pick_from(app: &TestApp, ip: &str, id: &str, code: &str) -> (StatusCode, Value) {
    let path = format!("/v1/auth/cross-device/confirm/{id}");
    reply(from(app, ip, Method::POST, &path).json(&json!({ "code": code }))).await
}

async fn verify_from(app: &TestApp, ip: &str, id: &str, credential: &Value) -> (StatusCode, Value) {
    let req = from(app, ip, Method::POST, "/v1/auth/cross-device/verify")
        .json(&json!({ "session_id": id, "credential": credential }));
    reply(req).await
}

async fn disown_from(app: &TestApp, ip: &str, id: &str) -> (StatusCode, Value) {
    let path = format!("/v1/auth/cross-device/disown/{id}");
    reply(from(app, ip, Method::POST, &path)).await
}

/// A passkey for a new user of an app with number matching: its registration picks the number
/// the desktop (here, the backend's poll) is shown, as every session of the app must.
async fn register_matching(app: &TestApp, phone: &mut Phone) {
    let s = app.init_registration(None).await;
    let (_, context) = app.context(&s.session_id).await;
    let shown = desktop_number(app, &s).await.expect("a number to show");
    let path = format!("/v1/auth/cross-device/confirm/{}", s.session_id);
    let (status, body) = reply(
        app.shop_request(Method::POST, &path)
            .json(&json!({ "code": shown })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let created = phone.create(BRIDGE_ORIGIN, &context["data"]["options"]);
    let (status, body) = app.verify_registration(&s.session_id, &created).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

fn choices(context: &Value) -> Vec<String> {
    context["data"]["confirm_choices"]
        .as_array()
        .unwrap_or_else(|| panic!("no confirm_choices: {context}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// The number the desktop is shown (its poll), if any.
async fn desktop_number(app: &TestApp, s: &qr_bridge::wire::Started) -> Option<String> {
    let (status, body) = app.status(&s.session_id, Some(&s.polling_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["confirm_code"].as_str().map(str::to_owned)
}

async fn number_matching_lets_the_passkey_answer_only_after_the_desktops_number(backend: Backend) {
    let app = bridge(backend, true, "").await;
    let mut phone = Phone::new();
    register_matching(&app, &mut phone).await;

    let s = init_from(&app, DESKTOP_IP).await;
    assert_eq!(
        desktop_number(&app, &s).await,
        None,
        "nothing to show before a scan"
    );
    let (status, context) = context_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    assert_eq!(status, StatusCode::OK, "{context}");
    let offered = choices(&context);
    assert_eq!(offered.len(), 3, "{context}");
    assert!(
        offered
            .iter()
            .all(|c| c.len() == 2 && c.parse::<u8>().is_ok_and(|n| n >= 10))
    );
    let unique: std::collections::HashSet<_> = offered.iter().collect();
    assert_eq!(unique.len(), 3, "three different numbers: {offered:?}");
    let shown = desktop_number(&app, &s)
        .await
        .expect("the desktop shows the number");
    assert!(offered.contains(&shown), "{shown} among {offered:?}");

    // The passkey alone is not enough, and trying spends nothing.
    let signed = phone.sign(BRIDGE_ORIGIN, &context["data"]["options"]);
    let early = verify_from(&app, SAME_NETWORK_IP, &s.session_id, &signed).await;
    assert_error(&early, StatusCode::CONFLICT, "qr_number_required");

    let (status, body) = pick_from(&app, SAME_NETWORK_IP, &s.session_id, &shown).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        desktop_number(&app, &s).await,
        None,
        "picked: the desktop may stop showing it"
    );
    // The same answer as before: its challenge was kept.
    let (status, body) = verify_from(&app, SAME_NETWORK_IP, &s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (user, token) = app.completion(&s).await;
    let (status, valid) = app.validate(&token).await;
    assert_eq!(status, StatusCode::OK, "{valid}");
    assert_eq!(valid["data"]["user_id"], user.as_str());
}

/// The attack number matching is for: someone starts a sign-in as the victim and sends them the
/// link ("approve to keep your account"). The victim has no desktop showing a number; whatever
/// they tap, two times in three it is wrong, and that one wrong tap ends the request for good.
async fn a_blind_approval_of_a_sent_link_is_declined_by_a_wrong_number(backend: Backend) {
    let app = bridge(backend, true, "").await;
    let mut victim = Phone::new();
    register_matching(&app, &mut victim).await;

    let attacker = init_from(&app, OTHER_NETWORK_IP).await;
    let (_, context) = context_from(&app, DESKTOP_IP, &attacker.session_id).await;
    let shown = desktop_number(&app, &attacker).await.unwrap();
    let wrong = choices(&context).into_iter().find(|c| *c != shown).unwrap();
    let tapped = pick_from(&app, DESKTOP_IP, &attacker.session_id, &wrong).await;
    assert_error(&tapped, StatusCode::FORBIDDEN, "qr_number_mismatch");

    // Over: no second try, no passkey answer, and the attacker's desktop is told "declined".
    let again = pick_from(&app, DESKTOP_IP, &attacker.session_id, &shown).await;
    assert_error(&again, StatusCode::CONFLICT, "qr_invalid_state");
    let signed = victim.sign(BRIDGE_ORIGIN, &context["data"]["options"]);
    let answer = verify_from(&app, DESKTOP_IP, &attacker.session_id, &signed).await;
    assert_eq!(answer.0, StatusCode::CONFLICT, "{}", answer.1);
    let polled = app
        .status(&attacker.session_id, Some(&attacker.polling_token))
        .await;
    assert_error(&polled, StatusCode::FORBIDDEN, "forbidden");
    assert!(!polled.1.to_string().contains("session_token"));
}

/// Someone who saw the QR code over the person's shoulder opens it too: the phone that opened it
/// first holds it, so the watcher can neither pick (and decline it) nor learn anything new.
async fn a_watcher_on_another_network_cannot_pick_the_number(backend: Backend) {
    let app = bridge(backend, true, "").await;
    let s = init_from(&app, DESKTOP_IP).await;
    let (_, context) = context_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    let shown = desktop_number(&app, &s).await.unwrap();
    for code in choices(&context) {
        let got = pick_from(&app, OTHER_NETWORK_IP, &s.session_id, &code).await;
        assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        desktop_number(&app, &s).await,
        Some(shown.clone()),
        "unchanged"
    );
    let (status, body) = pick_from(&app, SAME_NETWORK_IP, &s.session_id, &shown).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn a_bad_number_is_refused_before_the_store_is_read(backend: Backend) {
    let app = bridge(backend, true, "").await;
    let s = init_from(&app, DESKTOP_IP).await;
    context_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    let shown = desktop_number(&app, &s).await.unwrap();
    let calls = app.store_calls();
    for code in ["7", "100", "ab", "0042", "", " 42", "09"] {
        let got = pick_from(&app, SAME_NETWORK_IP, &s.session_id, code).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "validation_error");
    }
    let path = format!("/v1/auth/cross-device/confirm/{}", s.session_id);
    let not_json =
        reply(from(&app, SAME_NETWORK_IP, Method::POST, &path).json(&json!({ "code": 42 }))).await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(app.store_calls(), calls, "nothing was read or written");
    assert_eq!(
        desktop_number(&app, &s).await,
        Some(shown),
        "still waiting for the number"
    );
}

/// Apps without `confirm_code` (the default) answer exactly as the SDK expects: no choices, no
/// number, a passkey completes at once; a pick is refused as out of place.
async fn number_matching_is_off_unless_the_app_asks_and_the_sdk_flow_is_unchanged(
    backend: Backend,
) {
    let app = bridge(backend, false, "").await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let s = init_from(&app, DESKTOP_IP).await;
    let (_, context) = context_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    assert!(
        context["data"].get("confirm_choices").is_none(),
        "{context}"
    );
    assert_eq!(desktop_number(&app, &s).await, None);
    let (_, polled) = app.status(&s.session_id, Some(&s.polling_token)).await;
    assert!(!polled.to_string().contains("confirm_code"), "{polled}");
    let pick = pick_from(&app, SAME_NETWORK_IP, &s.session_id, "42").await;
    assert_error(&pick, StatusCode::CONFLICT, "qr_invalid_state");
    let signed = phone.sign(BRIDGE_ORIGIN, &context["data"]["options"]);
    let (status, body) = verify_from(&app, SAME_NETWORK_IP, &s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.completion(&s).await;
}

/// The context says where the desktop is in words: its network, as this phone sees it, never
/// its address.
async fn the_phone_is_told_whether_the_desktop_is_on_its_network(backend: Backend) {
    let app = bridge(backend, false, "").await;
    for (phone_ip, network) in [
        (DESKTOP_IP, "same"),
        (SAME_NETWORK_IP, "same"),
        (OTHER_NETWORK_IP, "different"),
        ("2001:db8::5", "unknown"),
    ] {
        let s = init_from(&app, DESKTOP_IP).await;
        let (status, context) = context_from(&app, phone_ip, &s.session_id).await;
        assert_eq!(status, StatusCode::OK, "{context}");
        let where_from = &context["data"]["requested_from"];
        assert_eq!(where_from["network"], network, "{phone_ip}: {context}");
        assert!(
            where_from.get("city").is_none(),
            "no GeoIP database: {context}"
        );
        assert!(
            !context.to_string().contains(DESKTOP_IP),
            "no bare address: {context}"
        );
    }
    // A session the app's backend started knows the backend's address, not the person's: it
    // says nothing rather than "same network" (the backend and the phone here share loopback).
    let s = app.init_registration(None).await;
    let (_, context) = app.context(&s.session_id).await;
    assert_eq!(
        context["data"]["requested_from"]["network"], "unknown",
        "{context}"
    );
}

/// A GeoIP City file of the test's own, laid out as MaxMind's: the desktop's network is in Paris.
fn geoip_file(dir: &std::path::Path) -> std::path::PathBuf {
    #[derive(serde::Serialize)]
    struct Named {
        names: BTreeMap<&'static str, &'static str>,
    }
    #[derive(serde::Serialize)]
    struct City {
        city: Named,
        country: Named,
    }
    let mut writer = mmdb_writer::Writer::new("GeoLite2-City");
    let paris = City {
        city: Named {
            names: BTreeMap::from([("en", "Paris"), ("ja", "パリ")]),
        },
        country: Named {
            names: BTreeMap::from([("en", "France"), ("ja", "フランス")]),
        },
    };
    writer
        .insert("203.0.113.0/24".parse::<ipnet::IpNet>().unwrap(), &paris)
        .unwrap();
    let path = dir.join("city.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

async fn with_a_geoip_database_the_phone_is_told_the_desktops_city(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = geoip_file(dir.path());
    let app = bridge(
        backend,
        false,
        &format!("geoip_database = \"{}\"", db.display()),
    )
    .await;
    let s = init_from(&app, DESKTOP_IP).await;
    let (_, context) = context_from(&app, OTHER_NETWORK_IP, &s.session_id).await;
    let where_from = &context["data"]["requested_from"];
    assert_eq!(where_from["city"], "Paris", "{context}");
    assert_eq!(where_from["country"], "France", "{context}");
    assert_eq!(
        where_from["network"], "different",
        "both signals: {context}"
    );

    // A desktop the database does not know: the network alone, no made-up place.
    let s = init_from(&app, "192.0.2.1").await;
    let (_, context) = context_from(&app, OTHER_NETWORK_IP, &s.session_id).await;
    assert!(
        context["data"]["requested_from"].get("city").is_none(),
        "{context}"
    );

    // A file that is not a City database is refused at start, by its key.
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    let toml = settings_toml(
        "5m",
        dir.path(),
        &format!("geoip_database = \"{}\"", junk.display()),
    );
    let Err(refused) = qr_bridge::settings::Settings::from_toml(&toml) else {
        panic!("a file that is no City database was accepted");
    };
    assert!(refused.to_string().contains("geoip_database"), "{refused}");
}

/// Right after approving, the phone shows what it allowed and offers "This wasn't me": the token
/// the desktop received stops working at once, and stays stopped.
async fn this_wasnt_me_revokes_the_token_at_once(backend: Backend) {
    let app = bridge(backend, false, "").await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let s = init_from(&app, DESKTOP_IP).await;
    let (_, context) = context_from(&app, SAME_NETWORK_IP, &s.session_id).await;

    let too_early = disown_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    assert_error(&too_early, StatusCode::CONFLICT, "qr_invalid_state");

    let signed = phone.sign(BRIDGE_ORIGIN, &context["data"]["options"]);
    verify_from(&app, SAME_NETWORK_IP, &s.session_id, &signed).await;
    let (_, token) = app.completion(&s).await;
    assert_eq!(app.validate(&token).await.0, StatusCode::OK);

    let (status, body) = disown_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_error(
        &app.validate(&token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let introspected = reply(
        app.request(Method::POST, "/v1/sessions/introspect")
            .bearer_auth(SHOP_SECRET)
            .form(&[("token", token.as_str())]),
    )
    .await;
    assert_eq!(introspected.1, json!({ "active": false }));
    let (status, _) = disown_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a repeat is harmless");
}

/// Knowing a session id (it is in the QR code) must not let anyone sign its person out.
async fn a_stranger_cannot_disown_someone_elses_sign_in(backend: Backend) {
    let app = bridge(backend, false, "").await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let s = init_from(&app, DESKTOP_IP).await;
    let (_, context) = context_from(&app, SAME_NETWORK_IP, &s.session_id).await;
    let signed = phone.sign(BRIDGE_ORIGIN, &context["data"]["options"]);
    verify_from(&app, SAME_NETWORK_IP, &s.session_id, &signed).await;
    let (_, token) = app.completion(&s).await;

    let stranger = disown_from(&app, OTHER_NETWORK_IP, &s.session_id).await;
    assert_error(&stranger, StatusCode::FORBIDDEN, "forbidden");
    let made_up = disown_from(&app, SAME_NETWORK_IP, &uuid::Uuid::new_v4().to_string()).await;
    assert_error(&made_up, StatusCode::NOT_FOUND, "qr_session_not_found");
    let other_app = reply(
        app.request(
            Method::POST,
            &format!("/v1/auth/cross-device/disown/{}", s.session_id),
        )
        .bearer_auth(OWN_KEY)
        .header("Origin", OWN_ORIGIN)
        .header("X-Forwarded-For", SAME_NETWORK_IP),
    )
    .await;
    assert_error(&other_app, StatusCode::NOT_FOUND, "qr_session_not_found");
    let (status, valid) = app.validate(&token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the victim's sign-in still holds: {valid}"
    );
}

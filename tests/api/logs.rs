//! What the bridge writes to its log: never a secret, even at trace level with every dependency's log on.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{listening_on, serve_logged};
use crate::helpers::{
    BRIDGE_ORIGIN, Client, SHOP_SECRET, no_redis, redis_url, reply, settings_toml, store_lines,
};
use crate::phone::Phone;

/// Every string value in `value`, however deep (a credential's id, signature, client data…).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn a_whole_flow_at_trace_level_logs_no_secret() {
    a_whole_flow_logs_no_secret(false).await;
}

/// The Redis client traces the commands it sends at trace level: none may carry a secret.
#[tokio::test]
async fn a_whole_flow_on_redis_at_trace_level_logs_no_secret() {
    if no_redis() {
        return;
    }
    a_whole_flow_logs_no_secret(true).await;
}

async fn a_whole_flow_logs_no_secret(on_redis: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    let (store, _cleanup) = store_lines(on_redis.then(redis_url).as_deref());
    std::fs::write(&config, settings_toml("5m", dir.path(), &store)).unwrap();
    let (mut bridge, line, lines) =
        serve_logged(&config, &[("RUST_LOG", "trace,webauthn_rs_core=trace")]).expect("serves");
    let client = Client::new(&format!("http://{}", listening_on(&line)));

    // A registration started by the backend (secret key), a sign-in, a check, an introspection
    // and a revocation by the backend: every kind of secret the bridge handles passes through.
    let mut phone = Phone::new();
    let registration = client.init_registration(Some("ada")).await;
    let options = client.options(&registration.session_id).await;
    let created = phone.create(BRIDGE_ORIGIN, &options);
    let (status, body) = client
        .verify_registration(&registration.session_id, &created)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, first_token) = client.completion(&registration).await;
    let (s, options) = client.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    let (status, body) = client.verify(&s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, token) = client.completion(&s).await;
    assert_eq!(client.validate(&token).await.0, StatusCode::OK);

    // A sign-in through the hosted approval page, whose browser session cookie is a secret too;
    // the page then says which passkey it was.
    let (page_session, browser_cookie, approved) = approve_on_the_page(&client, &mut phone).await;
    // The passkey made when the test registered it (the page writes its day in its language).
    let made_at = approved["Approved"]["passkey"]["CreatedAt"]
        .as_u64()
        .unwrap_or_default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        made_at <= now_ms && now_ms - made_at < 3_600_000,
        "{approved}"
    );
    // Both PIN bridges: a wrong PIN (a sentinel no log could hold by chance), the right one, the
    // enrollment's ticket, and the tokens handed to the approving device.
    use crate::pin_bridge::{AUTH, ENROLL};
    let pairing = client.auth_pairing().await;
    let sentinel = "wrong-pin-4Zq8XkT2";
    let (status, _) = client.offer_pin(AUTH, &pairing.id, sentinel).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = client.offer_pin(AUTH, &pairing.id, &pairing.pin).await;
    let paired_answer = phone.sign(BRIDGE_ORIGIN, &body["data"]["authentication_options"]);
    let (_, body) = client.complete_auth(&pairing.id, &paired_answer).await;
    let paired_token = body["data"]["session_token"].as_str().unwrap().to_owned();
    let enrollment = client.enrollment_pairing("ada", None).await;
    let ticket = enrollment.ticket.clone().unwrap();
    let (_, body) = client
        .offer_pin(ENROLL, &enrollment.id, &enrollment.pin)
        .await;
    let made = Phone::new().create(BRIDGE_ORIGIN, &body["data"]["registration_options"]);
    let (status, body) = client
        .complete_enrollment(serde_json::json!({
            "session_id": enrollment.id, "ticket_id": ticket, "entity_id": "ada",
            "context_hash": "ab".repeat(32), "registration_response": made,
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let enrolled_token = body["data"]["session_token"].as_str().unwrap().to_owned();

    for path in ["/v1/sessions/introspect", "/v1/sessions/revoke"] {
        let (status, body) = reply(
            client
                .request(Method::POST, path)
                .bearer_auth(SHOP_SECRET)
                .form(&[("token", token.as_str())]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    bridge.kill().unwrap();
    bridge.wait().unwrap();
    let mut log = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(log.contains("TRACE"), "the log is at trace level");

    let mut secrets = vec![
        ("the secret key", SHOP_SECRET.to_owned()),
        ("a polling token", registration.polling_token.clone()),
        ("a polling token", s.polling_token.clone()),
        ("a session token", first_token),
        ("a session token", token),
        ("a polling token", page_session),
        ("a browser session cookie", browser_cookie),
        ("a wrong PIN", sentinel.to_owned()),
        ("an enrollment ticket", ticket),
        ("a pairing's polling token", pairing.polling_token.clone()),
        ("a session token", paired_token),
        ("a session token", enrolled_token),
    ];
    // The right PINs are six digits: looked for as a whole number, past each line's timestamp.
    for pin in [&pairing.pin, &enrollment.pin] {
        let leaked = log.lines().find(|l| {
            let rest = l.split_once(' ').map_or(*l, |(_, rest)| rest);
            rest.match_indices(pin.as_str()).any(|(at, _)| {
                let before = rest[..at].chars().last();
                let after = rest[at + pin.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_digit())
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
        });
        assert!(
            leaked.is_none(),
            "a PIN reached the log: {}",
            leaked.unwrap_or_default()
        );
    }
    // The passkey's answers: signatures, client data, authenticator data (long base64 strings;
    // short ones such as "public-key" are not secrets).
    let mut answers = Vec::new();
    strings(&created, &mut answers);
    strings(&signed, &mut answers);
    strings(&made, &mut answers);
    strings(&paired_answer, &mut answers);
    secrets.extend(
        answers
            .into_iter()
            .filter(|s| s.len() >= 40)
            .map(|s| ("a passkey answer", s)),
    );
    for (what, secret) in &secrets {
        // A token's signature alone would be a leak too: look for any 32 characters of it.
        let probe = &secret[secret.len().saturating_sub(32)..];
        let leaked = log.lines().find(|l| l.contains(probe));
        assert!(
            leaked.is_none(),
            "{what} reached the log ({} bytes of log at trace level), first in: {}",
            log.len(),
            leaked
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
}

/// Signs in through the hosted page's server functions as the phone's browser does: the
/// session's polling token, the browser's session cookie, and the page's outcome.
async fn approve_on_the_page(client: &Client, phone: &mut Phone) -> (String, String, Value) {
    use leptos::server_fn::ServerFn;
    use qr_bridge::ui::{ApprovalOptions, PhoneApprove};
    let s = client.init().await;
    let browser = Client::browser();
    let opened = browser
        .post(format!("{}{}", client.base, ApprovalOptions::PATH))
        .header("Origin", BRIDGE_ORIGIN)
        .form(&[("session_id", s.session_id.as_str()), ("create", "false")])
        .send()
        .await
        .unwrap();
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let opened: Value = opened.json().await.unwrap();
    let options: Value =
        serde_json::from_str(opened["Ready"]["options"].as_str().unwrap()).unwrap();
    let signed = phone.sign(BRIDGE_ORIGIN, &options).to_string();
    let form = [
        ("session_id", s.session_id.as_str()),
        ("credential", signed.as_str()),
    ];
    let (status, body) = client
        .server_fn::<PhoneApprove>(&browser, Some(BRIDGE_ORIGIN), &form)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        s.polling_token,
        cookie,
        serde_json::from_str(&body).unwrap(),
    )
}

/// Lines of the bridge's log until it has been quiet for a moment.
fn drain(lines: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        out.push(line);
    }
    out
}

#[tokio::test]
async fn json_lines_carry_each_requests_id_and_the_level_setting_holds() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    // The test is its own proxy: only a trusted proxy names requests (a client's own id is
    // replaced; see logging's unit tests).
    let extra = "log_format = \"json\"\nlog_level = \"warn,qr_bridge=info,tower_http=debug\"\n\
                 trusted_proxies = [\"127.0.0.1/32\"]";
    std::fs::write(&config, settings_toml("5m", dir.path(), extra)).unwrap();
    // No RUST_LOG: the setting decides.
    let (mut bridge, line, lines) = serve_logged(&config, &[("RUST_LOG", "")]).expect("serves");
    let start: Value = serde_json::from_str(&line).expect("the start line is JSON");
    assert_eq!(start["level"], "INFO", "{line}");
    let base = format!("http://{}", listening_on(&line));
    let http = reqwest::Client::new();
    let get = |id: Option<&'static str>| {
        let mut request = http.get(format!("{base}/healthz"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let id = response.headers()["x-request-id"].to_str().unwrap();
            id.to_owned()
        }
    };
    // A proxy's plain id is kept, so its log and ours line up.
    assert_eq!(get(Some("proxy-7f3a.1")).await, "proxy-7f3a.1");
    // None, or one that could forge log structure, gets a fresh UUID.
    let fresh = get(None).await;
    let replaced = get(Some("a\"}{\"level\":\"ERROR")).await;
    for id in [&fresh, &replaced] {
        assert!(uuid::Uuid::try_parse(id).is_ok(), "{id}");
    }
    assert_ne!(fresh, replaced);
    bridge.kill().unwrap();
    bridge.wait().unwrap();

    let log: Vec<Value> = drain(&lines)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for id in ["proxy-7f3a.1", fresh.as_str(), replaced.as_str()] {
        let of_request: Vec<&Value> = log
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect();
        assert!(!of_request.is_empty(), "no line of request {id}: {log:#?}");
        assert!(of_request.iter().all(|l| l["span"]["path"] == "/healthz"));
    }
    // warn for everyone else: hyper, the store and tower's own layers say nothing at info.
    for line in &log {
        let target = line["target"].as_str().unwrap_or_default();
        let quiet = matches!(line["level"].as_str(), Some("WARN" | "ERROR"));
        assert!(
            quiet || target.starts_with("qr_bridge") || target.starts_with("tower_http"),
            "{line}"
        );
    }
}

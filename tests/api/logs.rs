//! What the bridge writes to its log: never a secret, even at trace level with every dependency's log on.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{listening_on, serve_logged};
use crate::helpers::{BRIDGE_ORIGIN, Client, SHOP_SECRET, reply, settings_toml};
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
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, settings_toml("5m", dir.path(), "")).unwrap();
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
    ];
    // The passkey's answers: signatures, client data, authenticator data (long base64 strings;
    // short ones such as "public-key" are not secrets).
    let mut answers = Vec::new();
    strings(&created, &mut answers);
    strings(&signed, &mut answers);
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

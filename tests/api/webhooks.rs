//! Webhooks: a real receiver that refuses the first deliveries, a bridge restarted in between, and every event arrives signed, in order per session, once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::Value;

use crate::cli::{listening_on, qr_bridge, serve_logged};
use crate::helpers::{BRIDGE_ORIGIN, Client, no_redis, redis_url, settings_toml, store_lines};
use crate::https::Running;
use crate::phone::Phone;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    attempts: usize,
    refuse_first: usize,
    accepted: Vec<(HeaderMap, String)>,
    in_flight: HashSet<String>,
    overlapped: Vec<String>,
}

/// An HTTP server in this test that refuses the first `refuse_first` deliveries with a 503.
async fn receiver(refuse_first: usize) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        refuse_first,
        ..Seen::default()
    }));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = state.clone();
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let refuse = {
                    let mut s = seen.lock().unwrap();
                    s.attempts += 1;
                    if !s.in_flight.insert(id.clone()) {
                        s.overlapped.push(id.clone());
                    }
                    s.attempts <= s.refuse_first
                };
                // A moment in flight, so two senders of one id would overlap here.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut s = seen.lock().unwrap();
                s.in_flight.remove(&id);
                if refuse {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                s.accepted.push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// Stops a bridge as systemd does (SIGTERM) and waits for it.
fn terminate(mut running: Running) {
    let mut child = running.0.take().unwrap();
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the bridge stopped cleanly: {status}");
}

/// The Standard Webhooks check, written here from the spec (not with the crate that signs):
/// base64 of HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64 part.
fn signed_by(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    let mac = hmac_sha256::HMAC::mac(format!("{id}.{timestamp}.{body}").as_bytes(), &key);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    );
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

async fn every_event_arrives_signed_in_order_once(on_redis: bool) {
    let (addr, seen) = receiver(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    let (store, _cleanup) = store_lines(on_redis.then(redis_url).as_deref());
    let extra = format!("webhook_first_retry = \"200ms\"\n{store}");
    std::fs::write(&config, settings_toml("5m", dir.path(), &extra)).unwrap();
    let url = format!("http://{addr}/hooks");
    let made = qr_bridge(
        &config,
        &["apps", "webhook", "shop", "--url", &url, "--json"],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    let secret = made["webhook_secret"].as_str().unwrap().to_owned();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o007,
        0,
        "the settings now hold a secret: nothing for others"
    );
    assert_eq!(
        mode & 0o600,
        0o600,
        "the owner keeps reading and writing it"
    );

    let start = || {
        let (child, line, _) = serve_logged(&config, &[]).expect("serves");
        (
            Running(Some(child)),
            Client::new(&format!("http://{}", listening_on(&line))),
        )
    };
    let (first, c) = start();
    // On Redis a second instance shares the queue: no webhook may go out from both at once.
    let other = on_redis.then(start);

    let mut phone = Phone::new();
    let registration = c.init_registration(Some("ada")).await;
    let options = c.options(&registration.session_id).await;
    let created = phone.create(BRIDGE_ORIGIN, &options);
    assert_eq!(
        c.verify_registration(&registration.session_id, &created)
            .await
            .0,
        reqwest::StatusCode::NO_CONTENT
    );
    let (user, _) = c.completion(&registration).await;
    let (signing_in, options) = c.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    assert_eq!(
        c.verify(&signing_in.session_id, &signed).await.0,
        reqwest::StatusCode::NO_CONTENT
    );
    let declining = c.init().await;
    c.options(&declining.session_id).await;
    assert_eq!(
        c.deny(&declining.session_id).await.0,
        reqwest::StatusCode::NO_CONTENT
    );

    // The receiver is still refusing: the bridge restarts with everything queued.
    terminate(first);
    let (_again, _) = start();
    let passkey = qr_bridge(&config, &["passkeys", "list", &user, "--json"]);
    let passkey: Value = serde_json::from_slice(&passkey.stdout).unwrap();
    let passkey = passkey[0]["id"].as_str().unwrap().to_owned();
    let revoked = qr_bridge(&config, &["passkeys", "revoke", &passkey]);
    // Failed once under a full parallel run (2 cores) and never alone: say why, should it again.
    assert!(
        revoked.status.success(),
        "passkeys revoke: {}",
        String::from_utf8_lossy(&revoked.stderr)
    );

    // Waits for the five webhooks (the backoff, not a guessed time), then a little longer for
    // any duplicate.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().accepted.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "{} webhooks arrived",
            seen.lock().unwrap().accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(other);

    let seen = seen.lock().unwrap();
    assert!(seen.attempts >= 3 + 5, "the first three were refused");
    assert!(
        seen.overlapped.is_empty(),
        "sent twice at once: {:?}",
        seen.overlapped
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut ids = HashSet::new();
    let mut got: Vec<(String, Value)> = Vec::new();
    for (headers, body) in &seen.accepted {
        assert!(
            signed_by(&secret, headers, body),
            "a bad signature on {body}"
        );
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "{id} arrived twice");
        let at: u64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(now.abs_diff(at) < 60, "signed now, not when queued");
        assert_eq!(headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(body).unwrap();
        got.push((body["type"].as_str().unwrap().to_owned(), body));
    }
    let of_session = |id: &str| -> Vec<&str> {
        got.iter()
            .filter(|(_, b)| b["data"]["session_id"] == id)
            .map(|(kind, _)| kind.as_str())
            .collect()
    };
    assert_eq!(
        of_session(&registration.session_id),
        ["passkey.created", "session.completed"]
    );
    assert_eq!(of_session(&signing_in.session_id), ["session.completed"]);
    assert_eq!(of_session(&declining.session_id), ["session.denied"]);
    let revoked: Vec<&Value> = got
        .iter()
        .filter(|(k, _)| k == "passkey.revoked")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["passkey_id"], passkey.as_str());
    assert_eq!(revoked[0]["data"]["user_id"], user.as_str());
    for (_, body) in &got {
        assert_eq!(body["data"]["app_id"], "shop");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // The README's verification snippets accept a real webhook and refuse a changed one.
    let (headers, body) = &seen.accepted[0];
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| (h.to_string(), Value::from(headers[*h].to_str().unwrap())))
            .collect();
    for (program, snippet) in [("node", "verify.mjs"), ("python3", "verify.py")] {
        for (body, verifies) in [(body.clone(), true), (body.replace("shop", "shoq"), false)] {
            let input = serde_json::json!({"secret": secret, "headers": headers, "body": body});
            assert_eq!(
                run_snippet(program, snippet, &input.to_string()),
                verifies,
                "{snippet}"
            );
        }
    }
}

/// Runs `deploy/webhooks/<snippet>` with `input` on stdin: whether it verified.
fn run_snippet(program: &str, snippet: &str, input: &str) -> bool {
    use std::io::Write;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/webhooks")
        .join(snippet);
    let mut child = std::process::Command::new(program)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

#[tokio::test]
async fn every_event_arrives_signed_in_order_once_from_the_embedded_store() {
    every_event_arrives_signed_in_order_once(false).await;
}

#[tokio::test]
async fn every_event_arrives_signed_in_order_once_from_two_instances_on_redis() {
    if no_redis() {
        return;
    }
    every_event_arrives_signed_in_order_once(true).await;
}

#[test]
fn a_webhook_url_with_credentials_or_plain_http_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, settings_toml("5m", dir.path(), "")).unwrap();
    for url in [
        "http://hooks.example/in",
        "https://user:pw@hooks.example/in",
        "ftp://x",
    ] {
        let out = qr_bridge(&config, &["apps", "webhook", "shop", "--url", url]);
        assert!(!out.status.success(), "{url} was taken");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("webhook"), "nothing written");
}

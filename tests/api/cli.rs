//! The `qr-bridge` binary itself: apps add/list/remove on a settings file, and `serve` with its settings checks and overrides.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{BRIDGE_ORIGIN, Client};
use crate::phone::Phone;

pub const BIN: &str = env!("CARGO_BIN_EXE_qr-bridge");

const BASE: &str = r#"# my bridge
public_origin = "https://bridge.test"
store = "memory"
"#;

/// A settings file in `dir` that keeps its data (and signing key) there too.
fn base_config(dir: &Path) -> (std::path::PathBuf, String) {
    let text = format!("{BASE}data_dir = \"{}\"\n", dir.join("data").display());
    let path = dir.join("bridge.toml");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

pub fn qr_bridge(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("QR_BRIDGE_STORE")
        .output()
        .unwrap()
}

/// Starts `qr-bridge serve` and returns it with the address it reports, or its error output if it exits.
pub fn serve(config: &Path, env: &[(&str, &str)]) -> Result<(std::process::Child, String), String> {
    serve_logged(config, env).map(|(child, line, _)| (child, line))
}

/// [`serve`], with the rest of the bridge's log lines as they come.
pub fn serve_logged(
    config: &Path,
    env: &[(&str, &str)],
) -> Result<(std::process::Child, String, Receiver<String>), String> {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("QR_BRIDGE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread of its own, so a child that prints nothing cannot hold the deadline.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Once the test stopped listening, the rest is drained unread.
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening on") {
            return Ok((child, line, rx));
        }
    }
    seen.push_str("(no \"listening on\" within 20 s)\n");
    let _ = child.kill();
    let _ = child.wait();
    Err(seen)
}

/// The first of the bridge's next log lines that contains `text`, within `within`.
pub fn wait_for_line(lines: &Receiver<String>, text: &str, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// `host:port` from the server's "listening on http(s)://…" line (or any line naming a URL).
pub fn listening_on(line: &str) -> String {
    line.split("://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_passkey_survives_a_restart_of_the_embedded_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, crate::helpers::settings_toml("5m", dir.path(), "")).unwrap();
    let keys = dir.path().join("signing-keys.json");

    let (mut first, line) = serve(&config, &[]).expect("serves");
    assert!(
        keys.exists(),
        "the embedded bridge makes its signing keys on first start"
    );
    let client = Client::new(&format!("http://{}", listening_on(&line)));
    let mut phone = Phone::new();
    let user = client.register(&mut phone, Some("ada")).await;
    let (s, options) = client.opened_sign_in().await;
    assert_eq!(
        client
            .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        204
    );
    let (_, token_before) = client.completion(&s).await;
    // SIGKILL: nothing gets a chance to be flushed on the way out.
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, line) = serve(&config, &[]).expect("serves again");
    let client = Client::new(&format!("http://{}", listening_on(&line)));
    let (s, options) = client.opened_sign_in().await;
    assert_eq!(
        client
            .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        204
    );
    assert_eq!(
        client.completion(&s).await.0,
        user,
        "same passkey, same person"
    );
    let (status, body) = client.validate(&token_before).await;
    assert_eq!(
        (status.as_u16(), &body["data"]["user_id"]),
        (200, &serde_json::json!(user)),
        "same key: old tokens still verify"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

/// `(kid, role)` of every key, as `qr-bridge keys list --json` prints them.
fn key_roles(config: &Path) -> Vec<(String, String)> {
    let out = qr_bridge(config, &["keys", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().into(),
                k["role"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn kid_with(roles: &[(String, String)], role: &str) -> String {
    roles.iter().find(|(_, r)| r == role).unwrap().0.clone()
}

#[test]
fn keys_rotate_and_import_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = base_config(dir.path());
    assert!(key_roles(&config).is_empty(), "listing makes nothing");
    let rotate = || {
        let out = qr_bridge(&config, &["keys", "rotate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        key_roles(&config)
    };
    // The first rotation makes the ring (current and next), then rotates it.
    let first = rotate();
    assert_eq!(first.len(), 3, "current, next, retired: {first:?}");
    let rotated = rotate();
    assert_eq!(
        kid_with(&rotated, "current"),
        kid_with(&first, "next"),
        "the published next key signs"
    );
    assert!(rotated.contains(&(kid_with(&first, "current"), "retired".into())));
    assert_eq!(rotated.len(), 4);

    let pem_path = dir.path().join("old.pem");
    std::fs::write(&pem_path, qr_bridge::token::generate_pem().unwrap()).unwrap();
    let out = qr_bridge(&config, &["keys", "import", pem_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = key_roles(&config);
    assert_eq!(imported.iter().filter(|(_, r)| r == "retired").count(), 3);
    assert!(
        !first
            .iter()
            .any(|(kid, _)| *kid == kid_with(&imported, "current"))
    );
    let again = qr_bridge(&config, &["keys", "import", pem_path.to_str().unwrap()]);
    assert!(!again.status.success(), "a key is imported once");
    assert_eq!(key_roles(&config), imported);
}

#[tokio::test]
async fn apps_are_managed_from_the_command_line_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = base_config(dir.path());

    let out = qr_bridge(
        &config,
        &[
            "apps",
            "add",
            "Shop",
            "--origin",
            "https://Shop.test:443",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let (app_id, publishable, secret) = (
        keys["app_id"].as_str().unwrap(),
        keys["publishable_key"].as_str().unwrap(),
        keys["secret_key"].as_str().unwrap(),
    );
    assert!(
        app_id.starts_with("app_") && publishable.starts_with("cli_") && secret.starts_with("sk_")
    );

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# my bridge"), "comments survive the edit");
    assert!(!text.contains(secret), "only the secret key's hash is kept");
    assert!(text.contains(&qr_bridge::secret::digest(secret)));
    assert!(
        text.contains("\"https://shop.test\""),
        "origins are stored normalised"
    );

    let out = qr_bridge(
        &config,
        &[
            "apps",
            "add",
            "Mobile",
            "--origin",
            "https://m.test",
            "--qr-base-url",
            "https://m.test/auth",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = qr_bridge(&config, &["apps", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let mobile = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Mobile")
        .unwrap();
    assert_eq!(
        mobile["rp_id"], "m.test",
        "the rp_id defaults to the approval page's host"
    );

    // The server reads what the command wrote.
    let (mut child, line) = serve(&config, &[]).expect("serves");
    let addr = listening_on(&line);
    let http = reqwest::Client::new();
    let init = |key: &str, origin: Option<&str>| {
        let mut req = http
            .post(format!("http://{addr}/v1/auth/cross-device/init"))
            .bearer_auth(key);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        req.send()
    };
    assert_eq!(init(secret, None).await.unwrap().status(), 201);
    assert_eq!(
        init(publishable, Some("https://shop.test"))
            .await
            .unwrap()
            .status(),
        201
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let out = qr_bridge(&config, &["apps", "remove", app_id]);
    assert!(out.status.success());
    let list: Value =
        serde_json::from_slice(&qr_bridge(&config, &["apps", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let again = qr_bridge(&config, &["apps", "remove", app_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains(app_id));
}

#[test]
fn a_refused_app_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = base_config(dir.path());
    for args in [
        &["apps", "add", "Bad", "--origin", "https://shop.test/login"][..],
        &[
            "apps",
            "add",
            "Bad",
            "--origin",
            "https://shop.test",
            "--rp-id",
            "other.test",
        ][..],
        &["apps", "add", "Bad", "--qr-base-url", "https://m.test/?x=1"][..],
    ] {
        let out = qr_bridge(&config, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), base, "{args:?}");
    }
}

#[test]
fn a_bad_settings_file_stops_the_server_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    for (text, key) in [
        ("session_ttl = \"soon\"\n", "session_ttl"),
        ("store = \"mysql://x\"\n", "store"),
        ("public_origin = \"bridge.test\"\n", "public_origin"),
        ("listen = \"127.0.0.1:1\"\n", "listen"),
    ] {
        std::fs::write(&config, text).unwrap();
        let err = serve(&config, &[]).expect_err("must not start");
        assert!(err.contains(key), "{key}: {err}");
    }
    let missing = serve(&dir.path().join("absent.toml"), &[]).expect_err("must not start");
    assert!(missing.contains("not found"), "{missing}");
}

#[test]
fn the_environment_picks_the_store() {
    if crate::helpers::no_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = base_config(dir.path());
    // A Redis deployment makes its keys in Redis on first start: no key file to prepare.
    let redis = crate::helpers::redis_url();
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = crate::helpers::RedisCleanup(prefix.clone(), redis.clone());
    let env = [
        ("QR_BRIDGE_STORE", redis.as_str()),
        ("QR_BRIDGE_REDIS_PREFIX", prefix.as_str()),
        // The machine's shared Redis keeps nothing on disk.
        ("QR_BRIDGE_ALLOW_VOLATILE_REDIS", "true"),
    ];
    let (mut child, line) = serve(&config, &env).expect("serves on Redis");
    assert!(line.contains("store redis"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let version: Option<u64> = redis::cmd("HGET")
        .arg(format!("{prefix}:signing-keys"))
        .arg("version")
        .query(&mut conn)
        .unwrap();
    assert_eq!(version, Some(1), "the keys live in the store");
    let err =
        serve(&config, &[("QR_BRIDGE_STORE", "redis://127.0.0.1:1")]).expect_err("no Redis there");
    assert!(err.contains("store"), "{err}");
}

#[tokio::test]
async fn the_binary_serves_a_sign_in_on_a_redis_cluster() {
    let Some(cluster) = crate::kit::testing::cluster_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, crate::helpers::settings_toml("5m", dir.path(), "")).unwrap();
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    // Its nodes keep an append-only file: no allow_volatile_redis needed.
    let env = [
        ("QR_BRIDGE_STORE", cluster.as_str()),
        ("QR_BRIDGE_REDIS_PREFIX", prefix.as_str()),
    ];
    let (mut child, line) = serve(&config, &env).expect("serves on the cluster");
    assert!(line.contains("store redis cluster"), "{line}");
    let client = Client::new(&format!("http://{}", listening_on(&line)));
    let mut phone = Phone::new();
    let user = client.register(&mut phone, Some("ada")).await;
    let (s, options) = client.opened_sign_in().await;
    let verified = client
        .verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    assert_eq!(verified.0, 204, "{}", verified.1);
    assert_eq!(client.completion(&s).await.0, user);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Users and passkeys live only in Redis: a Redis that keeps nothing on disk would lose every
/// account on its restart, so `serve` refuses it and says what to set, without the URL's secrets.
#[test]
fn a_redis_that_keeps_nothing_on_disk_is_refused_at_start() {
    let redis = crate::helpers::OwnRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = base_config(dir.path());
    // A password in the URL, as deployments have: it must not reach the message.
    let plain = redis::Client::open(redis.url()).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("hunter2")
        .query(&mut plain.get_connection().unwrap())
        .unwrap();
    let url = redis.url().replace("redis://", "redis://:hunter2@");
    let on = |extra: &[(&'static str, &'static str)]| {
        let mut env = vec![("QR_BRIDGE_STORE", url.as_str())];
        env.extend_from_slice(extra);
        serve(&config, &env).map(|(mut child, line)| {
            child.kill().unwrap();
            child.wait().unwrap();
            line
        })
    };
    let line = on(&[]).expect("an append-only Redis is served");
    assert!(line.contains("store redis"), "{line}");

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut conn)
        .unwrap();
    let refused = on(&[]).expect_err("a Redis that keeps nothing is refused");
    assert!(
        refused.contains("appendonly yes"),
        "says what to set: {refused}"
    );
    assert!(refused.contains("allow_volatile_redis"), "{refused}");
    assert!(
        !refused.contains("hunter2"),
        "no password in the message: {refused}"
    );

    let line = on(&[("QR_BRIDGE_ALLOW_VOLATILE_REDIS", "true")]).expect("accepted for tests");
    assert!(line.contains("store redis"), "{line}");
}

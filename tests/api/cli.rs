//! The `qr-bridge` binary itself: apps add/list/remove on a settings file, and `serve` with its settings checks and overrides.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qr-bridge");

const BASE: &str = r#"# my bridge
public_origin = "https://bridge.test"
store = "memory"
"#;

fn qr_bridge(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("QR_BRIDGE_STORE")
        .output()
        .unwrap()
}

/// Starts `qr-bridge serve` and returns it with the address it reports, or its error output if it exits.
fn serve(config: &Path, env: &[(&str, &str)]) -> Result<(std::process::Child, String), String> {
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
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening on") {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, line));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(seen)
}

#[tokio::test]
async fn apps_are_managed_from_the_command_line_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, BASE).unwrap();

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
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
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
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, BASE).unwrap();
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
        assert_eq!(std::fs::read_to_string(&config).unwrap(), BASE, "{args:?}");
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
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, BASE).unwrap();
    let redis = crate::helpers::redis_url();
    let (mut child, line) =
        serve(&config, &[("QR_BRIDGE_STORE", redis.as_str())]).expect("serves on Redis");
    assert!(line.contains("store redis"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let err =
        serve(&config, &[("QR_BRIDGE_STORE", "redis://127.0.0.1:1")]).expect_err("no Redis there");
    assert!(err.contains("store"), "{err}");
}

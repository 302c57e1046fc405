//! `qr-bridge users` and `qr-bridge passkeys`, run as commands beside a running bridge on either store: listing, revoking, signing out, removing.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{listening_on, qr_bridge, serve_logged};
use crate::helpers::{
    BRIDGE_ORIGIN, Client, RedisCleanup, SHOP_SECRET, no_redis, redis_url, reply, settings_toml,
    store_lines,
};
use crate::https::Running;
use crate::phone::Phone;

/// A bridge process and the settings file the commands share with it.
pub struct Bridge {
    pub client: Client,
    pub config: std::path::PathBuf,
    _process: Running,
    _dir: tempfile::TempDir,
    _cleanup: Option<RedisCleanup>,
}

pub fn bridge(on_redis: bool) -> Bridge {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    let (store, cleanup) = store_lines(on_redis.then(redis_url).as_deref());
    std::fs::write(&config, settings_toml("5m", dir.path(), &store)).unwrap();
    let (child, line, _) = serve_logged(&config, &[]).expect("serves");
    Bridge {
        client: Client::new(&format!("http://{}", listening_on(&line))),
        config,
        _process: Running(Some(child)),
        _dir: dir,
        _cleanup: cleanup,
    }
}

impl Bridge {
    /// Runs a command against the bridge's settings; its JSON output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = qr_bridge(&self.config, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A person registered by the shop's backend, then signed in once: their user id and both
    /// tokens.
    pub async fn person(&self, phone: &mut Phone, name: &str) -> (String, Vec<String>) {
        let user = self.client.register(phone, Some(name)).await;
        let (_, first) = self.client.sign_in(phone).await;
        let (_, second) = self.client.sign_in(phone).await;
        (user, vec![first, second])
    }

    /// Whether the shop's backend still sees `token` as live, by both of its checks.
    async fn live(&self, token: &str) -> bool {
        let (validated, _) = self.client.validate(token).await;
        let (status, introspected) = reply(
            self.client
                .request(Method::POST, "/v1/sessions/introspect")
                .bearer_auth(SHOP_SECRET)
                .form(&[("token", token)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{introspected}");
        let active = introspected["active"] == true;
        assert_eq!(validated == StatusCode::OK, active, "both checks agree");
        active
    }
}

async fn a_lost_phone_is_cut_off_while_the_bridge_runs(on_redis: bool) {
    let b = bridge(on_redis);
    let (mut ada_phone, mut bob_phone) = (Phone::new(), Phone::new());
    let (ada, ada_tokens) = b.person(&mut ada_phone, "ada").await;
    let (bob, bob_tokens) = b.person(&mut bob_phone, "bob").await;

    let users = b.json(&["users", "list", "--app", "shop"]);
    let listed: Vec<&str> = (users.as_array().unwrap().iter())
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&ada.as_str()) && listed.contains(&bob.as_str()),
        "{users}"
    );
    let shown = b.json(&["users", "show", &ada]);
    assert_eq!(shown["external_user_id"], "ada", "{shown}");
    let passkeys = b.json(&["passkeys", "list", &ada]);
    assert_eq!(passkeys.as_array().unwrap().len(), 1, "{passkeys}");
    assert!(passkeys[0]["last_used_at"].is_string(), "{passkeys}");
    let passkey = passkeys[0]["id"].as_str().unwrap().to_owned();
    for token in ada_tokens.iter().chain(&bob_tokens) {
        assert!(b.live(token).await);
    }

    // Ada's phone is stolen: its passkey is revoked.
    let revoked = b.json(&["passkeys", "revoke", &passkey]);
    assert_eq!(revoked["user"]["id"], ada.as_str(), "{revoked}");
    for token in &ada_tokens {
        assert!(
            !b.live(token).await,
            "a token of the stolen phone still works"
        );
    }
    let (s, options) = b.client.opened_sign_in().await;
    let signed = ada_phone.sign(BRIDGE_ORIGIN, &options);
    let (status, body) = b.client.verify(&s.session_id, &signed).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "qr_credential_not_found", "{body}");
    assert_eq!(b.json(&["passkeys", "list", &ada]), Value::Array(vec![]));
    for token in &bob_tokens {
        assert!(b.live(token).await, "another person's tokens are untouched");
    }

    // Bob asks to be signed out everywhere, then leaves for good.
    b.json(&["users", "sign-out", &bob]);
    for token in &bob_tokens {
        assert!(!b.live(token).await);
    }
    b.json(&["users", "remove", &bob]);
    let out = qr_bridge(&b.config, &["users", "show", &bob]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("no user {bob}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, options) = b.client.opened_sign_in().await;
    let signed = bob_phone.sign(BRIDGE_ORIGIN, &options);
    let (status, _) = b.client.verify(&s.session_id, &signed).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a removed user cannot sign in"
    );
    // The external id is free again: the shop can register a new "bob".
    let (again, _) = b.person(&mut Phone::new(), "bob").await;
    assert_ne!(again, bob);
}

#[tokio::test]
async fn a_lost_phone_is_cut_off_on_the_embedded_store_through_the_admin_socket() {
    a_lost_phone_is_cut_off_while_the_bridge_runs(false).await;
}

#[tokio::test]
async fn a_lost_phone_is_cut_off_on_redis() {
    if no_redis() {
        return;
    }
    a_lost_phone_is_cut_off_while_the_bridge_runs(true).await;
}

#[tokio::test]
async fn unknown_users_and_passkeys_are_named_in_the_refusal() {
    let b = bridge(false);
    for (args, says) in [
        (
            vec!["users", "show", "usr_00000000000000000000000000000000"],
            "no user usr_0",
        ),
        (
            vec!["passkeys", "revoke", "not-a-passkey"],
            "no passkey not-a-passkey",
        ),
        (vec!["users", "list", "--app", "nope"], "no app nope"),
    ] {
        let out = qr_bridge(&b.config, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
}

/// The admin socket is the bridge's owner's only: nobody else on the machine can manage users.
#[tokio::test]
async fn the_admin_socket_is_private_to_the_bridges_user() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let b = bridge(false);
    let dir = b.config.parent().unwrap().join("admin");
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "nobody else may enter"
    );
    assert!(
        std::fs::metadata(dir.join("socket"))
            .unwrap()
            .file_type()
            .is_socket()
    );
}

/// The embedded store's files are one process's: a second bridge on the same data_dir refuses
/// to start, and a command that cannot reach the running bridge refuses to edit them under it.
#[tokio::test]
async fn nobody_edits_the_files_of_a_running_embedded_bridge() {
    let b = bridge(false);
    let second = crate::cli::serve(&b.config, &[]);
    let Err(output) = second else {
        panic!("a second bridge started on the same data_dir");
    };
    assert!(
        output.contains("a bridge is running on data_dir"),
        "{output}"
    );

    // A bridge whose socket is not there (starting, or draining): the lock alone says it runs.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, settings_toml("5m", dir.path(), "")).unwrap();
    let lock = std::fs::File::create(dir.path().join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let out = qr_bridge(&config, &["users", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("does not answer"),
        "{stderr}"
    );
    drop(lock);
    let out = qr_bridge(&config, &["users", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The release bridges a run starts on core 0, the bench app's desktop speaking to them, and Redis cleaned after each pair.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use qr_bridge::wire::Started;
use reqwest::Method;
use serde_json::Value;

use crate::kit::client::{Client, started};
use crate::kit::phone::Phone;
use crate::system::{SERVER_CORE, root};

/// The publishable key of the one app every bridge of a run serves.
pub const KEY: &str = "cli_bench_publishable_key_0001";

/// A release bridge process on core 0, with its own settings, data directory and key prefix.
pub struct Bridge {
    /// Both its address and its public origin, so the phone's passkeys are made for it.
    pub origin: String,
    child: Child,
    /// Under a profiler, which must be told to stop (SIGINT) to write its report.
    wrapped: bool,
    _dir: tempfile::TempDir,
}

impl Bridge {
    pub fn start(store: &str, prefix: &str) -> Bridge {
        Self::start_under(store, prefix, None)
    }

    /// `wrapper` runs the bridge under a profiler (e.g. `heaptrack`); figures taken from its
    /// process are then the profiler's, so only for finding causes, not for the table.
    /// Bridges on one Redis prefix share the signing keys the first of them made there.
    pub fn start_under(store: &str, prefix: &str, wrapper: Option<&str>) -> Bridge {
        let port = crate::kit::free_port();
        let dir = tempfile::tempdir().unwrap();
        let origin = format!("http://localhost:{port}");
        let config = format!(
            r#"
addr = "127.0.0.1:{port}"
public_origin = "{origin}"
store = "{store}"
redis_prefix = "{prefix}"
allow_volatile_redis = true
session_ttl = "30m"
data_dir = "{data}"
# The waiting-desktops pair holds as many streams as the open-file limit allows.
max_connections = 1000000

[limits]
status_per_token = "1000000000/1m"
status_per_client = "1000000000/1m"
init_per_key = "1000000000/1m"
init_per_client = "1000000000/1m"
phone_per_client = "1000000000/1m"
# Every waiting desktop of pair 4 comes from this one machine.
streams_per_client = 1000000000

[[apps]]
id = "bench"
name = "Bench"
publishable_key = "{KEY}"
secret_key_sha256 = "{zeros}"
allowed_origins = ["{origin}"]
rp_id = "localhost"
open_signup = true
"#,
            data = dir.path().join("data").display(),
            zeros = "0".repeat(64),
        );
        std::fs::write(dir.path().join("bridge.toml"), config).unwrap();
        let child = Command::new("taskset")
            .args(["-c", SERVER_CORE])
            .args(wrapper.map(|w| w.split_whitespace()).into_iter().flatten())
            .arg(root().join("target/release/qr-bridge"))
            .arg("--config")
            .arg(dir.path().join("bridge.toml"))
            .arg("serve")
            .current_dir(root())
            .env("LEPTOS_SITE_ROOT", root().join("target/site"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("target/release/qr-bridge (bench/run builds it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "bridge did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bridge {
            origin,
            child,
            wrapped: wrapper.is_some(),
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The bench app's SDK and approval page on this bridge, over a pool sized for the load.
    pub fn client(&self) -> Client {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        self.client_over(http)
    }

    /// The same over `http`, for a pair that needs its own cookies or connections.
    pub fn client_over(&self, http: reqwest::Client) -> Client {
        Client::for_app(http, &self.origin, KEY, &self.origin)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if self.wrapped {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A phone with one passkey for the bench app, registered as the SDK does it from a browser.
pub async fn registered_phone(client: &Client) -> Phone {
    let mut phone = Phone::new();
    let session = started(client.browser_init_registration(None).await);
    // The bridge is its own public origin: its approval page is where the passkey is made.
    client
        .register_phone(&mut phone, &client.base, &session.session_id)
        .await;
    phone
}

/// The session's status stream as the SDK opens it; yields each event's JSON.
pub async fn events(
    client: &Client,
    session: &Started,
) -> impl futures::Stream<Item = Value> + use<> {
    let path = format!("/v1/auth/cross-device/status/{}", session.session_id);
    let res = client
        .request(Method::GET, &path)
        .header("X-Polling-Token", &session.polling_token)
        // A desktop may wait far longer than any one request of the harness.
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    futures::stream::unfold(
        (res.bytes_stream(), String::new()),
        |(mut bytes, mut buffer)| async move {
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                        return Some((serde_json::from_str(data.trim()).unwrap(), (bytes, buffer)));
                    }
                    // A heartbeat: a comment, no data.
                    continue;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return None,
                }
            }
        },
    )
}

/// Deletes the keys a run left under `prefix` in Redis, so one pair's sessions do not weigh on
/// the next pair's figures.
pub fn clean(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_connection().unwrap();
    for pattern in [format!("{prefix}:*"), "qrbbench:*".to_owned()] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: () = redis::cmd("UNLINK").arg(chunk).query(&mut conn).unwrap();
        }
    }
}

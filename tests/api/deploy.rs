//! The shipped deployment files at work: two bridge binaries on one Redis behind a real nginx, with the repository's nginx settings, and the systemd unit.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::cli::{listening_on, serve_logged};
use crate::helpers::{
    BRIDGE_ORIGIN, Client, SHOP_KEY, SHOP_ORIGIN, no_redis, redis_url, settings_toml,
};
use crate::https::{Ca, Running, install};
use crate::kit::free_port;
use crate::kit::testing::tool;
use crate::phone::Phone;
use crate::streams::Events;

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// nginx in the foreground, stopped when the test ends.
struct Nginx {
    process: std::process::Child,
    addr: SocketAddr,
}

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: nginx's master then stops its workers, which a killed master
    /// would leave running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.process.id().to_string())
            .status();
        let _ = self.process.wait();
    }
}

impl Nginx {
    /// TLS with `dir`'s cert.pem for bridge.test, round-robin to `upstreams`, every location
    /// configured by the repository's `deploy/nginx/qr-bridge-proxy.conf` as shipped. It also
    /// names the instance that answered each request (`X-Upstream`), for the test alone.
    fn start(nginx: &Path, dir: &Path, upstreams: &[SocketAddr]) -> Nginx {
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("        server {a};\n"))
            .collect();
        let d = dir.display();
        let config = format!(
            "daemon off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/nginx-access.log;\n\
                 client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
                 upstream qr_bridge {{\n{servers}        keepalive 8;\n    }}\n\
                 server {{\n        listen 127.0.0.1:{port} ssl;\n        server_name bridge.test;\n\
                     ssl_certificate {d}/cert.pem;\n        ssl_certificate_key {d}/key.pem;\n\
                     add_header X-Upstream $upstream_addr always;\n\
                     location / {{\n            proxy_pass http://qr_bridge;\n            include {proxy};\n        }}\n    }}\n}}\n",
            proxy = repository("deploy/nginx/qr-bridge-proxy.conf").display(),
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let log = Stdio::from(std::fs::File::create(dir.join("nginx.out")).unwrap());
        let process = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let nginx = Nginx {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}{}",
                std::fs::read_to_string(dir.join("nginx.out")).unwrap_or_default(),
                std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

/// A client on `from` (a loopback address of its own, so nginx sees a client of that address)
/// speaking to bridge.test at nginx, trusting `root`.
fn client_from(from: [u8; 4], nginx: SocketAddr, root: &str) -> Client {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve("bridge.test", nginx)
        .local_address(IpAddr::from(from))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://bridge.test:{}", nginx.port());
    Client::for_app(http, &base, SHOP_KEY, SHOP_ORIGIN)
}

/// Which instance nginx passed `client`'s next request to.
async fn upstream_of(response: &reqwest::Response) -> String {
    response.headers()["x-upstream"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn two_instances_behind_nginx_complete_a_sign_in_across_them_and_count_the_real_clients() {
    if no_redis() {
        return;
    }
    let Some(nginx_bin) = tool("nginx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("QR Bridge test CA");
    install(dir.path(), &ca.issue(&["bridge.test"]));
    let config = dir.path().join("bridge.toml");
    // Only nginx (on loopback's first address) may name the client; browsers may start 3 sign-ins
    // a minute from one address, whichever instance they reach.
    let extra = "trusted_proxies = [\"127.0.0.1/32\"]\n[limits]\ninit_per_client = \"3/1m\"\n\
                 status_per_client = \"100000/1m\"\nphone_per_client = \"100000/1m\"\n\
                 status_per_token = \"100000/1m\"\ninit_per_key = \"100000/1m\"";
    std::fs::write(&config, settings_toml("5m", dir.path(), extra)).unwrap();
    let prefix = format!("qrb-nginx-{}", std::process::id());
    let url = redis_url();
    let env = [
        ("QR_BRIDGE_STORE", url.as_str()),
        ("QR_BRIDGE_REDIS_PREFIX", prefix.as_str()),
        ("QR_BRIDGE_ALLOW_VOLATILE_REDIS", "true"),
    ];
    let mut instances = Vec::new();
    let mut upstreams = Vec::new();
    for _ in 0..2 {
        let (child, line, _) = serve_logged(&config, &env).expect("an instance serves");
        instances.push(Running(Some(child)));
        upstreams.push(listening_on(&line).parse::<SocketAddr>().unwrap());
    }
    let nginx = Nginx::start(&nginx_bin, dir.path(), &upstreams);
    let root = ca.pem();
    let desktop = client_from([127, 0, 0, 2], nginx.addr, &root);
    let phone_client = client_from([127, 0, 0, 3], nginx.addr, &root);

    let mut phone = Phone::new();
    let user = phone_client.register(&mut phone, Some("ada")).await;

    // The desktop waits on a stream through nginx…
    let s = desktop.init().await;
    let mut events = Events::open(&desktop, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(events.status, StatusCode::OK);
    let streaming_on = events.headers["x-upstream"].to_str().unwrap().to_owned();
    // nginx names the request ($request_id, 32 hex digits) and the bridge keeps that name.
    let request_id = events.headers["x-request-id"].to_str().unwrap();
    assert!(
        request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{request_id}"
    );
    let first = events.next_within(Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.data["status"], "pending", "{:?}", first.data);

    // …while the phone approves through nginx on the other instance (nginx takes turns: one
    // request to the stream's instance, and the next goes to the other).
    let options = phone_client.options(&s.session_id).await;
    for _ in 0..2 {
        let response = phone_client
            .request(Method::GET, "/healthz")
            .send()
            .await
            .unwrap();
        if upstream_of(&response).await == streaming_on {
            break;
        }
    }
    let credential = phone.sign(BRIDGE_ORIGIN, &options);
    let response = phone_client
        .app_request(Method::POST, "/v1/auth/cross-device/verify")
        .json(&json!({ "session_id": s.session_id, "credential": credential }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let approved_on = upstream_of(&response).await;
    assert_ne!(
        approved_on, streaming_on,
        "the phone's approval lands on the instance that is not streaming"
    );
    // The change crosses instances through Redis, and nginx passes the event on at once.
    // (The phone's scan came through the stream before: it stays `pending`, now `scanned`.)
    let within = Instant::now() + Duration::from_secs(1);
    let done = loop {
        let left = within.saturating_duration_since(Instant::now());
        let event = events.next_within(left).await.unwrap();
        if event.data["status"] != "pending" {
            break event;
        }
        assert_eq!(event.data["scanned"], true, "{:?}", event.data);
    };
    assert_eq!(done.data["status"], "completed", "{:?}", done.data);
    assert_eq!(done.data["user_id"], json!(user));

    // Rate limits count the client nginx saw, on both instances together: the desktop's two
    // more starts (3 in all) pass, its fourth does not, whatever X-Forwarded-For it sends.
    let forged = |client: &Client| {
        client
            .app_request(Method::POST, "/v1/auth/cross-device/init")
            .header("X-Forwarded-For", "198.51.100.7")
            .json(&json!({}))
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = forged(&desktop).send().await.unwrap();
        seen.push((response.status(), upstream_of(&response).await));
    }
    assert_eq!(
        seen.iter().map(|(s, _)| s.as_u16()).collect::<Vec<_>>(),
        [201, 201, 429],
        "{seen:?}"
    );
    assert_ne!(seen[0].1, seen[1].1, "counted across both instances");
    // Another address is another client: nginx's own address is never the one counted.
    let neighbour = client_from([127, 0, 0, 4], nginx.addr, &root);
    let response = forged(&neighbour).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[test]
fn the_shipped_nginx_site_passes_nginx_own_check() {
    let Some(nginx) = tool("nginx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    install(
        dir.path(),
        &Ca::new("test CA").issue(&["bridge.example.com"]),
    );
    let d = dir.path().display();
    // The shipped file with this machine's paths for its certificate and the proxy settings.
    let site = std::fs::read_to_string(repository("deploy/nginx/qr-bridge.conf"))
        .unwrap()
        .replace(
            "/etc/letsencrypt/live/bridge.example.com/fullchain.pem",
            &format!("{d}/cert.pem"),
        )
        .replace(
            "/etc/letsencrypt/live/bridge.example.com/privkey.pem",
            &format!("{d}/key.pem"),
        )
        .replace(
            "/etc/nginx/snippets/qr-bridge-proxy.conf",
            &repository("deploy/nginx/qr-bridge-proxy.conf")
                .display()
                .to_string(),
        );
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let checked = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn the_shipped_systemd_unit_is_valid_and_hardened() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // As installed, with the binary where this build put it (verify checks that it exists).
    let unit = dir.path().join("qr-bridge.service");
    let text = std::fs::read_to_string(repository("deploy/systemd/qr-bridge.service"))
        .unwrap()
        .replace("/usr/local/bin/qr-bridge", crate::cli::BIN);
    std::fs::write(&unit, text).unwrap();
    let verified = Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // systemd's own exposure score, 0 (locked down) to 10: "OK" is below 2.0.
    let scored = Command::new(&analyze)
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stdout)
    );
}

//! The benchmark harness: QR Bridge measured against its own limits, each figure beside its pair, in one run.
//!
//! Run through `bench/run`, which builds the release site and binary first. The bridges run as
//! release processes pinned to core 0; the load (wrk, redis-benchmark, this harness's clients)
//! runs on core 1. Writes bench/results.json and bench/RESULTS.md, and prints the table.

// Shared with the API tests, which use all of it; the harness needs only part.
#[allow(dead_code)]
#[path = "../tests/api/phone.rs"]
mod phone;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use phone::Phone;

const KEY: &str = "cli_bench_publishable_key_0001";
const SERVER_CORE: &str = "0";
const LOAD_CORE: &str = "1";

struct Options {
    seconds: u64,
    rounds: usize,
    concurrency: usize,
    wakes: usize,
    /// `usize::MAX` ("max") stands for as many as the open-file limit allows.
    streams: Vec<usize>,
    /// The pairs to run (1 to 6); all by default.
    only: Vec<u8>,
    redis_url: String,
}

impl Options {
    fn from_args() -> Self {
        let mut o = Options {
            seconds: 5,
            rounds: 3,
            concurrency: 32,
            wakes: 1000,
            streams: vec![1_000, 10_000, usize::MAX],
            only: (1..=6).collect(),
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let value = args.get(i + 1).cloned().unwrap_or_default();
            match args[i].as_str() {
                "--seconds" => o.seconds = value.parse().expect("--seconds N"),
                "--rounds" => o.rounds = value.parse().expect("--rounds N"),
                "--concurrency" => o.concurrency = value.parse().expect("--concurrency N"),
                "--wakes" => o.wakes = value.parse().expect("--wakes N"),
                "--streams" => {
                    o.streams = value
                        .split(',')
                        .map(|n| match n {
                            "max" => usize::MAX,
                            n => n.parse().expect("--streams 1000,10000,max"),
                        })
                        .collect()
                }
                "--only" => {
                    o.only = value
                        .split(',')
                        .map(|n| n.parse().expect("--only 1,4"))
                        .collect()
                }
                other => panic!("unknown option {other}; bench/run --help lists them"),
            }
            i += 2;
        }
        o
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to completion and returns its standard output, failing loudly.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        f64::NAN
    } else {
        xs[xs.len() / 2]
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A release bridge process on core 0, with its own settings, data directory and key prefix.
struct Bridge {
    origin: String,
    child: Child,
    /// Under a profiler, which must be told to stop (SIGINT) to write its report.
    wrapped: bool,
    _dir: tempfile::TempDir,
}

impl Bridge {
    fn start(store: &str, prefix: &str) -> Bridge {
        Self::start_under(store, prefix, None)
    }

    /// `wrapper` runs the bridge under a profiler (e.g. `heaptrack`); figures taken from its
    /// process are then the profiler's, so only for finding causes, not for the table.
    /// Bridges on one Redis prefix share the signing keys the first of them made there.
    fn start_under(store: &str, prefix: &str, wrapper: Option<&str>) -> Bridge {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let origin = format!("http://localhost:{port}");
        let config = format!(
            r#"
addr = "127.0.0.1:{port}"
public_origin = "{origin}"
store = "{store}"
redis_prefix = "{prefix}"
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

    fn pid(&self) -> u32 {
        self.child.id()
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

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// User plus system CPU time of a process so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields[11] + fields[12];
    let per_second: u64 = run("getconf", &["CLK_TCK"]).trim().parse().unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// One load run's figures.
#[derive(Clone, Copy, Debug)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn ms(text: &str) -> f64 {
    let (number, unit): (String, String) =
        text.chars().partition(|c| c.is_ascii_digit() || *c == '.');
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit.as_str() {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

/// wrk on core 1: `rounds` runs of `seconds`, summarised by their medians.
fn wrk(
    url: &str,
    concurrency: usize,
    o: &Options,
    script: Option<&Path>,
    header: Option<&str>,
) -> Load {
    let mut runs = Vec::new();
    for _ in 0..o.rounds {
        let (c, d) = (concurrency.to_string(), format!("{}s", o.seconds));
        let mut args = vec![
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            "-c",
            &c,
            "-d",
            &d,
            "--latency",
        ];
        let script_arg;
        if let Some(s) = script {
            script_arg = s.display().to_string();
            args.extend(["-s", &script_arg]);
        }
        if let Some(h) = header {
            args.extend(["-H", h]);
        }
        args.push(url);
        let out = run("taskset", &args);
        let rps = out
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap();
        let pct = |p: &str| {
            out.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(p).map(|v| ms(v.trim())))
                .unwrap_or(f64::NAN)
        };
        let errors = out
            .lines()
            .any(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
        assert!(!errors, "wrk saw errors at {url}:\n{out}");
        runs.push(Load {
            rps,
            p50_ms: pct("50%"),
            p99_ms: pct("99%"),
        });
    }
    Load {
        rps: median(runs.iter().map(|r| r.rps).collect()),
        p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
    }
}

fn init_script(dir: &Path, origin: &str) -> PathBuf {
    let path = dir.join(format!("init-{}.lua", origin.rsplit(':').next().unwrap()));
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{{}}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {KEY}\"\nwrk.headers[\"Origin\"] = \"{origin}\"\n"
    );
    std::fs::write(&path, script).unwrap();
    path
}

fn load_json(l: Load) -> Value {
    json!({"requests_per_s": l.rps.round(), "p50_ms": l.p50_ms, "p99_ms": l.p99_ms})
}

/// Redis's own SET ... EX at the same concurrency, from redis-benchmark on core 1.
fn redis_set(o: &Options) -> Load {
    let mut runs = Vec::new();
    let c = o.concurrency.to_string();
    for _ in 0..o.rounds {
        let out = run(
            "taskset",
            &[
                "-c",
                LOAD_CORE,
                "redis-benchmark",
                "-c",
                &c,
                "-n",
                "200000",
                "-r",
                "1000000",
                "--csv",
                "SET",
                "qrbbench:__rand_int__",
                "value",
                "EX",
                "60",
            ],
        );
        let row = out
            .lines()
            .find(|l| l.starts_with("\"SET"))
            .expect("a SET row");
        let cells: Vec<f64> = row
            .split(',')
            .skip(1)
            .map(|v| v.trim_matches('"').parse().unwrap_or(f64::NAN))
            .collect();
        // rps, avg, min, p50, p95, p99, max
        runs.push(Load {
            rps: cells[0],
            p50_ms: cells[3],
            p99_ms: cells[5],
        });
    }
    Load {
        rps: median(runs.iter().map(|r| r.rps).collect()),
        p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Starts a session (sign-in or registration, by `path`) as the app's desktop; its `data`.
async fn start(client: &reqwest::Client, origin: &str, path: &str) -> Value {
    let body: Value = client
        .post(format!("{origin}{path}"))
        .bearer_auth(KEY)
        .header("Origin", origin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].clone()
}

async fn init(client: &reqwest::Client, origin: &str) -> (String, String) {
    let data = start(client, origin, "/v1/auth/cross-device/init").await;
    (
        data["session_id"].as_str().unwrap().into(),
        data["polling_token"].as_str().unwrap().into(),
    )
}

async fn options(client: &reqwest::Client, origin: &str, id: &str) -> Value {
    let body: Value = client
        .get(format!("{origin}/v1/auth/cross-device/context/{id}"))
        .bearer_auth(KEY)
        .header("Origin", origin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["options"].clone()
}

async fn post(
    client: &reqwest::Client,
    origin: &str,
    path: &str,
    body: Value,
) -> reqwest::StatusCode {
    client
        .post(format!("{origin}{path}"))
        .bearer_auth(KEY)
        .header("Origin", origin)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A registered phone: one passkey for the bench app.
async fn registered_phone(client: &reqwest::Client, origin: &str) -> Phone {
    let mut phone = Phone::new();
    let data = start(client, origin, "/v1/auth/cross-device/init-registration").await;
    let id = data["session_id"].as_str().unwrap().to_owned();
    let created = phone.create(origin, &options(client, origin, &id).await);
    let status = post(
        client,
        origin,
        "/v1/auth/cross-device/verify-registration",
        json!({"session_id": id, "credential": created}),
    )
    .await;
    assert_eq!(status, 204);
    phone
}

/// A stream as the SDK opens it; yields each event's JSON.
async fn open_stream(
    client: &reqwest::Client,
    origin: &str,
    id: &str,
    token: &str,
) -> impl futures::Stream<Item = Value> + use<> {
    let res = client
        .get(format!("{origin}/v1/auth/cross-device/status/{id}"))
        .header("X-Polling-Token", token)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes_stream();
    futures::stream::unfold(
        (bytes, String::new()),
        |(mut bytes, mut buffer)| async move {
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                        return Some((serde_json::from_str(data.trim()).unwrap(), (bytes, buffer)));
                    }
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

/// 3: from the phone's verify returning to the desktop's event, across two instances.
async fn wake(a: &Bridge, b: &Bridge, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let client = http();
    let mut phone = registered_phone(&client, &b.origin).await;
    let (mut from_return, mut from_send) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (id, token) = init(&client, &a.origin).await;
        let mut events = Box::pin(open_stream(&client, &a.origin, &id, &token).await);
        assert_eq!(events.next().await.unwrap()["status"], "pending");
        let signed = phone.sign(&b.origin, &options(&client, &b.origin, &id).await);
        assert_eq!(events.next().await.unwrap()["scanned"], true);
        let arrived = tokio::spawn(async move {
            while let Some(e) = events.next().await {
                if e["status"] == "completed" {
                    assert!(e["session_token"].is_string());
                    return Instant::now();
                }
            }
            panic!("stream ended without completion");
        });
        let sent = Instant::now();
        let status = post(
            &client,
            &b.origin,
            "/v1/auth/cross-device/verify",
            json!({"session_id": id, "credential": signed}),
        )
        .await;
        let returned = Instant::now();
        assert_eq!(status, 204);
        let arrived = arrived.await.unwrap();
        // The event may beat the verify's own response back: then this is negative.
        let since_sent = |t: Instant| t.duration_since(sent).as_secs_f64() * 1000.0;
        from_return.push(since_sent(arrived) - since_sent(returned));
        from_send.push(since_sent(arrived));
    }
    from_return.sort_by(|x, y| x.total_cmp(y));
    from_send.sort_by(|x, y| x.total_cmp(y));
    (from_return, from_send)
}

/// 3's pair: PUBLISH on one connection, the message on another.
async fn raw_pubsub(url: &str, rounds: usize) -> Vec<f64> {
    let client = redis::Client::open(url).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.subscribe("qrbbench:wake").await.unwrap();
    let mut messages = subscriber.on_message();
    let mut latencies = Vec::new();
    for i in 0..rounds {
        let sent = Instant::now();
        let _: i64 = redis::cmd("PUBLISH")
            .arg("qrbbench:wake")
            .arg(i)
            .query_async(&mut publisher)
            .await
            .unwrap();
        messages.next().await.unwrap();
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|x, y| x.total_cmp(y));
    latencies
}

/// 4: `n` desktops waiting on A; their memory, their heartbeats' CPU; then all approved on B.
async fn waiting(a: &Bridge, b: &Bridge, n: usize) -> Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let rss_before = rss_kib(a.pid());
    let opened = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut sessions = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (client, origin, opened, completed) = (
            client.clone(),
            a.origin.clone(),
            opened.clone(),
            completed.clone(),
        );
        let (id, token) = init(&client, &origin).await;
        sessions.push(id.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = Box::pin(open_stream(&client, &origin, &id, &token).await);
            events.next().await.expect("first event");
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while let Some(e) = events.next().await {
                if e["status"] == "completed" && e["session_token"].is_string() {
                    completed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    while opened.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = rss_kib(a.pid());
    // Every stream sends one heartbeat per 15 s: a 16 s idle window holds one each.
    let cpu_before = cpu_time(a.pid());
    tokio::time::sleep(Duration::from_secs(16)).await;
    let idle_cpu = cpu_time(a.pid()) - cpu_before;

    // Approve them all on B, one lane per phone so each phone's counter rises in order.
    let lanes = 32;
    let per_lane = sessions.len().div_ceil(lanes);
    let approving = Instant::now();
    let mut workers = Vec::new();
    for chunk in sessions.chunks(per_lane) {
        let (client, origin, chunk) = (http(), b.origin.clone(), chunk.to_vec());
        workers.push(tokio::spawn(async move {
            let mut phone = registered_phone(&client, &origin).await;
            for id in chunk {
                let signed = phone.sign(&origin, &options(&client, &origin, &id).await);
                let status = post(
                    &client,
                    &origin,
                    "/v1/auth/cross-device/verify",
                    json!({"session_id": id, "credential": signed}),
                )
                .await;
                assert_eq!(status, 204);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let approve_time = approving.elapsed();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    let got = completed.load(Ordering::Relaxed);
    let per_stream = (rss_open.saturating_sub(rss_before)) as f64 * 1024.0 / n as f64;
    json!({
        "streams": n,
        "opened_in_s": open_time.as_secs_f64(),
        "rss_before_kib": rss_before,
        "rss_open_kib": rss_open,
        "bytes_per_stream": per_stream.round(),
        "idle_cpu_ms_per_16s": idle_cpu.as_secs_f64() * 1000.0,
        "heartbeat_cpu_us_per_stream": idle_cpu.as_secs_f64() * 1e6 / n as f64,
        "approved_in_s": approve_time.as_secs_f64(),
        "tokens_received": got,
    })
}

/// 5: the assertion check alone, in process, against openssl's raw P-256 verify.
fn verify_cost() -> Value {
    use qr_bridge::passkey::{Ceremony, Passkeys};
    use qr_bridge::settings::Settings;
    let settings = Settings::from_toml(&format!(
        r#"
        public_origin = "http://localhost:3000"
        [[apps]]
        id = "bench"
        name = "Bench"
        publishable_key = "{KEY}"
        secret_key_sha256 = "{}"
        rp_id = "localhost"
        "#,
        "0".repeat(64)
    ))
    .unwrap();
    let app = settings.apps.get("bench").unwrap().clone();
    let passkeys = Passkeys::new(&settings.apps, &settings.public_origin).unwrap();
    let mut phone = Phone::new();
    let (options, ceremony) = passkeys
        .start_register(&app, uuid::Uuid::new_v4(), "bench", vec![], false)
        .unwrap();
    let Ceremony::Register { state, .. } = ceremony else {
        unreachable!()
    };
    let created = serde_json::from_value(phone.create("http://localhost:3000", &options)).unwrap();
    let passkey = passkeys.finish_register(&app, &state, &created).unwrap();
    let n = 2000;
    let prepared: Vec<_> = (0..n)
        .map(|_| {
            let (options, ceremony) = passkeys.start_sign_in(&app).unwrap();
            let Ceremony::SignIn(state) = ceremony else {
                unreachable!()
            };
            let answer =
                serde_json::from_value(phone.sign("http://localhost:3000", &options)).unwrap();
            (state, answer)
        })
        .collect();
    let started = Instant::now();
    for (state, answer) in prepared {
        passkeys
            .finish_sign_in(&app, state, &answer, &passkey)
            .unwrap();
    }
    let check_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let ring =
        qr_bridge::token::KeyRing::generate(qr_bridge::session::Timestamp::from_millis(0)).unwrap();
    let tokens = qr_bridge::token::Tokens::new(
        "http://localhost:3000",
        Duration::from_secs(3600),
        &ring,
        1,
        qr_bridge::session::Timestamp::from_millis(0),
    )
    .unwrap();
    let started = Instant::now();
    for _ in 0..200 {
        tokens.mint("usr_bench", None, "bench", "s").unwrap();
    }
    let mint_us = started.elapsed().as_secs_f64() * 1e6 / 200.0;
    let speed = |algorithm: &str, column: usize| -> f64 {
        let out = run(
            "taskset",
            &[
                "-c", LOAD_CORE, "openssl", "speed", "-seconds", "2", algorithm,
            ],
        );
        let row = out
            .lines()
            .rfind(|l| l.contains("bits"))
            .unwrap()
            .to_owned();
        let numbers: Vec<f64> = row
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        1e6 / numbers[numbers.len() - column]
    };
    let openssl_verify_us = speed("ecdsap256", 1);
    let openssl_rsa_sign_us = speed("rsa2048", 2);
    json!({
        "assertion_check_us": check_us,
        "openssl_p256_verify_us": openssl_verify_us,
        "token_mint_us": mint_us,
        "openssl_rsa2048_sign_us": openssl_rsa_sign_us,
    })
}

/// 6: the size of what the approval page loads.
fn page_weight() -> Value {
    let mut files = BTreeMap::new();
    for name in ["qr-bridge.wasm", "qr-bridge.js", "qr-bridge.css"] {
        let raw = std::fs::read(root().join("target/site/pkg").join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).unwrap();
        files.insert(
            name.to_owned(),
            json!({"bytes": raw.len(), "gzip_bytes": gz.finish().unwrap().len()}),
        );
    }
    json!(files)
}

/// Deletes the keys a run left under `prefix` in Redis.
fn clean(url: &str, prefix: &str) {
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

/// Every waiting desktop is an open socket on each side: as root, lift the limit to the
/// kernel's ceiling (`fs.nr_open`); otherwise to the hard limit. The bridges inherit it.
fn raise_file_limit() -> u64 {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(hard);
    if rlimit::Resource::NOFILE.set(ceiling, ceiling).is_err() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    rlimit::Resource::NOFILE.get().unwrap().0
}

fn f(x: f64) -> String {
    if x >= 100.0 {
        format!("{:.0}", x)
    } else {
        format!("{:.3}", x)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let o = Options::from_args();
    let started = Instant::now();
    let files = raise_file_limit();
    // `--all`: the harness itself is pinned to one core.
    let cores = run("nproc", &["--all"]).trim().to_owned();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    eprintln!("measuring Redis's intrinsic latency (3 s)…");
    let intrinsic = run(
        "taskset",
        &["-c", LOAD_CORE, "redis-cli", "--intrinsic-latency", "3"],
    );
    // "… (avg latency: 0.0820 microseconds / …" and "Max latency so far: 138 microseconds."
    let number_after = |label: &str| -> String {
        intrinsic
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(label)
                    .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("?").to_owned())
            })
            .unwrap_or_else(|| "?".into())
    };
    let intrinsic = format!(
        "avg {} µs, max {} µs",
        number_after("avg latency:"),
        number_after("Max latency so far:")
    );
    let date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .trim()
        .to_owned();

    let prefix = format!("qrbbench-{}", std::process::id());
    let memory = Bridge::start("memory", &prefix);
    let a = Bridge::start(&o.redis_url, &prefix);
    let b = Bridge::start(&o.redis_url, &prefix);
    let scripts = tempfile::tempdir().unwrap();
    let mut results = serde_json::Map::new();
    let c = o.concurrency;

    if o.only.contains(&1) || o.only.contains(&2) {
        eprintln!(
            "1 + 2: HTTP ceiling, init, Redis alone ({} × {} s each)…",
            o.rounds, o.seconds
        );
        let bare_memory = wrk(&format!("{}/healthz", memory.origin), c, &o, None, None);
        let init_memory = wrk(
            &format!("{}/v1/auth/cross-device/init", memory.origin),
            c,
            &o,
            Some(&init_script(scripts.path(), &memory.origin)),
            None,
        );
        let bare_redis = wrk(&format!("{}/healthz", a.origin), c, &o, None, None);
        let init_redis = wrk(
            &format!("{}/v1/auth/cross-device/init", a.origin),
            c,
            &o,
            Some(&init_script(scripts.path(), &a.origin)),
            None,
        );
        let set = redis_set(&o);
        results.insert("1_http_ceiling_vs_init".into(), json!({
            "concurrency": c,
            "memory": {"bare_route": load_json(bare_memory), "init": load_json(init_memory), "ratio": init_memory.rps / bare_memory.rps},
            "redis": {"bare_route": load_json(bare_redis), "init": load_json(init_redis), "ratio": init_redis.rps / bare_redis.rps},
        }));
        results.insert("2_init_vs_redis_alone".into(), json!({
            "concurrency": c, "init_redis": load_json(init_redis), "redis_set_ex": load_json(set), "ratio": init_redis.rps / set.rps,
        }));
        clean(&o.redis_url, &prefix);
    }

    if o.only.contains(&3) {
        eprintln!("3: wake latency over {} completions…", o.wakes);
        let (from_return, from_send) = wake(&a, &b, o.wakes).await;
        let raw = raw_pubsub(&o.redis_url, o.wakes).await;
        results.insert("3_wake_latency_vs_pubsub".into(), json!({
            "completions": o.wakes,
            "verify_return_to_event_ms": {"p50": percentile(&from_return, 0.5), "p99": percentile(&from_return, 0.99)},
            "verify_send_to_event_ms": {"p50": percentile(&from_send, 0.5), "p99": percentile(&from_send, 0.99)},
            "raw_publish_to_message_ms": {"p50": percentile(&raw, 0.5), "p99": percentile(&raw, 0.99)},
        }));
        clean(&o.redis_url, &prefix);
    }

    if o.only.contains(&4) {
        // Each side of every stream holds a socket: keep a thousand descriptors for the rest.
        let ceiling = (files as usize).saturating_sub(1000);
        let wrapper = std::env::var("BENCH_WRAP").ok();
        let mut steps = Vec::new();
        for &n in &o.streams {
            let n = n.min(ceiling);
            eprintln!("4: {n} waiting desktops…");
            // A fresh instance per step: memory freed by the step before would hide the cost.
            let waiter = Bridge::start_under(&o.redis_url, &prefix, wrapper.as_deref());
            steps.push(waiting(&waiter, &b, n).await);
            drop(waiter);
            clean(&o.redis_url, &prefix);
        }
        results.insert(
            "4_waiting_desktops".into(),
            json!({"file_limit": files, "steps": steps}),
        );
    }

    if o.only.contains(&5) {
        eprintln!("5: verify cost…");
        results.insert(
            "5_verify_cost".into(),
            tokio::task::spawn_blocking(verify_cost).await.unwrap(),
        );
    }

    if o.only.contains(&6) {
        eprintln!("6: the approval page…");
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let (id, _) = init(&client, &memory.origin).await;
        let page_url = format!("{}/bridge/{id}", memory.origin);
        let first = client.get(&page_url).send().await.unwrap();
        let cookie = first
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        assert_eq!(first.status(), 200);
        let render_alone = wrk(&page_url, 1, &o, None, Some(&format!("Cookie: {cookie}")));
        let render_loaded = wrk(&page_url, c, &o, None, Some(&format!("Cookie: {cookie}")));
        results.insert("6_approval_page".into(), json!({
            "render_alone": load_json(render_alone), "render_at_concurrency": load_json(render_loaded), "assets": page_weight(),
        }));
        clean(&o.redis_url, &prefix);
    }
    drop((memory, a, b));

    let elapsed = started.elapsed().as_secs();
    let report = json!({
        "date": date, "cores": cores, "cpu": cpu, "redis_intrinsic_latency": intrinsic, "harness_seconds": elapsed,
        "settings": {"seconds": o.seconds, "rounds": o.rounds, "concurrency": c, "wakes": o.wakes, "streams": o.streams.iter().map(|&n| if n == usize::MAX { json!("max") } else { json!(n) }).collect::<Vec<_>>()},
        "results": results,
    });
    let results_md = root().join("bench/RESULTS.md");
    let notes = std::fs::read_to_string(&results_md)
        .ok()
        .and_then(|old| old.find(NOTES).map(|at| old[at..].to_owned()));
    let table = markdown(&report);
    println!("{table}");
    // Only a whole run replaces the committed results; the notes written by hand stay.
    if o.only.len() == 6 {
        std::fs::write(
            root().join("bench/results.json"),
            serde_json::to_string_pretty(&report).unwrap(),
        )
        .unwrap();
        let notes = notes.unwrap_or_default();
        std::fs::write(results_md, format!("{table}\n{notes}")).unwrap();
    } else {
        eprintln!("a partial run (--only): bench/RESULTS.md and results.json left as they were");
    }
}

/// Where the hand-written analysis begins in bench/RESULTS.md; a new run keeps it.
const NOTES: &str = "## Notes";

/// The report as the README links it: one table per pair, ours beside its pair.
fn markdown(r: &Value) -> String {
    let x = &r["results"];
    let mut s = String::new();
    let w = |s: &mut String, line: String| s.push_str(&(line + "\n"));
    w(&mut s, "# QR Bridge benchmark results".into());
    w(&mut s, String::new());
    w(
        &mut s,
        format!(
            "Measured {} on {} cores ({}). Bridges pinned to core 0, load to core 1.",
            r["date"].as_str().unwrap(),
            r["cores"].as_str().unwrap(),
            r["cpu"].as_str().unwrap()
        ),
    );
    w(
        &mut s,
        format!(
            "Redis intrinsic latency (`redis-cli --intrinsic-latency 3`): {}. Harness run: {} s; medians of {} rounds of {} s at concurrency {}.",
            r["redis_intrinsic_latency"].as_str().unwrap(),
            r["harness_seconds"],
            r["settings"]["rounds"],
            r["settings"]["seconds"],
            r["settings"]["concurrency"]
        ),
    );
    w(&mut s, String::new());
    let row = |s: &mut String, name: &str, l: &Value| {
        s.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            f(l["requests_per_s"].as_f64().unwrap()),
            f(l["p50_ms"].as_f64().unwrap()),
            f(l["p99_ms"].as_f64().unwrap())
        ));
    };
    if !x["1_http_ceiling_vs_init"].is_null() {
        w(&mut s, "## 1. HTTP ceiling vs init".into());
        w(
            &mut s,
            "| | requests/s | p50 ms | p99 ms |\n|---|---|---|---|".into(),
        );
        let one = &x["1_http_ceiling_vs_init"];
        for store in ["memory", "redis"] {
            row(
                &mut s,
                &format!("`GET /healthz` ({store})"),
                &one[store]["bare_route"],
            );
            row(
                &mut s,
                &format!("`POST …/init` ({store})"),
                &one[store]["init"],
            );
        }
        w(
            &mut s,
            format!(
                "\nRatio init / bare route: memory {:.2}, Redis {:.2}.\n",
                one["memory"]["ratio"].as_f64().unwrap(),
                one["redis"]["ratio"].as_f64().unwrap()
            ),
        );
        w(&mut s, "## 2. Init with Redis vs Redis alone".into());
        w(
            &mut s,
            "| | requests/s | p50 ms | p99 ms |\n|---|---|---|---|".into(),
        );
        let two = &x["2_init_vs_redis_alone"];
        row(&mut s, "`POST …/init` (Redis store)", &two["init_redis"]);
        row(
            &mut s,
            "`redis-benchmark SET … EX 60`",
            &two["redis_set_ex"],
        );
        w(
            &mut s,
            format!(
                "\nRatio init / SET: {:.2}.\n",
                two["ratio"].as_f64().unwrap()
            ),
        );
    }
    if !x["3_wake_latency_vs_pubsub"].is_null() {
        w(
            &mut s,
            "## 3. Wake latency across two instances vs raw pub/sub".into(),
        );
        let three = &x["3_wake_latency_vs_pubsub"];
        w(
            &mut s,
            format!(
                "{} completions; stream on instance A, verify on instance B.\n",
                three["completions"]
            ),
        );
        w(&mut s, "| | p50 ms | p99 ms |\n|---|---|---|".into());
        for (name, key) in [
            (
                "verify response returned → event on A",
                "verify_return_to_event_ms",
            ),
            ("verify sent → event on A", "verify_send_to_event_ms"),
            (
                "raw `PUBLISH` → message on a 2nd connection",
                "raw_publish_to_message_ms",
            ),
        ] {
            w(
                &mut s,
                format!(
                    "| {name} | {} | {} |",
                    f(three[key]["p50"].as_f64().unwrap()),
                    f(three[key]["p99"].as_f64().unwrap())
                ),
            );
        }
    }
    if !x["4_waiting_desktops"].is_null() {
        w(
            &mut s,
            "\n## 4. Waiting desktops (SSE streams on one Redis-backed instance)".into(),
        );
        w(&mut s, "| streams | opened in s | RSS before → open (MiB) | bytes per stream | heartbeat CPU per stream per 15 s (µs) | approved in s | tokens received |\n|---|---|---|---|---|---|---|".into());
        for step in x["4_waiting_desktops"]["steps"].as_array().unwrap() {
            w(
                &mut s,
                format!(
                    "| {} | {:.1} | {:.0} → {:.0} | {} | {:.1} | {:.1} | {} / {} |",
                    step["streams"],
                    step["opened_in_s"].as_f64().unwrap(),
                    step["rss_before_kib"].as_f64().unwrap() / 1024.0,
                    step["rss_open_kib"].as_f64().unwrap() / 1024.0,
                    step["bytes_per_stream"],
                    step["heartbeat_cpu_us_per_stream"].as_f64().unwrap(),
                    step["approved_in_s"].as_f64().unwrap(),
                    step["tokens_received"],
                    step["streams"]
                ),
            );
        }
        w(
            &mut s,
            format!(
                "\nOpen-file limit: {}.\n",
                x["4_waiting_desktops"]["file_limit"]
            ),
        );
    }
    if !x["5_verify_cost"].is_null() {
        w(&mut s, "## 5. Verify cost vs raw P-256".into());
        let five = &x["5_verify_cost"];
        w(&mut s, "| | µs per operation |\n|---|---|".into());
        for (name, key) in [
            (
                "assertion check (`finish_discoverable_authentication`)",
                "assertion_check_us",
            ),
            (
                "raw P-256 ECDSA verify (`openssl speed ecdsap256`)",
                "openssl_p256_verify_us",
            ),
            ("session token mint (RS256)", "token_mint_us"),
            (
                "raw RSA-2048 sign (`openssl speed rsa2048`)",
                "openssl_rsa2048_sign_us",
            ),
        ] {
            w(
                &mut s,
                format!("| {name} | {:.1} |", five[key].as_f64().unwrap()),
            );
        }
    }
    if !x["6_approval_page"].is_null() {
        w(&mut s, "\n## 6. The approval page".into());
        let six = &x["6_approval_page"];
        w(
            &mut s,
            "| | requests/s | p50 ms | p99 ms |\n|---|---|---|---|".into(),
        );
        row(
            &mut s,
            "`GET /bridge/:id`, one at a time (render time)",
            &six["render_alone"],
        );
        row(
            &mut s,
            &format!(
                "`GET /bridge/:id`, concurrency {}",
                r["settings"]["concurrency"]
            ),
            &six["render_at_concurrency"],
        );
        w(
            &mut s,
            "\n| asset | bytes | gzip bytes |\n|---|---|---|".into(),
        );
        let mut total = (0, 0);
        for (name, sizes) in six["assets"].as_object().unwrap() {
            let (raw, gz) = (
                sizes["bytes"].as_u64().unwrap(),
                sizes["gzip_bytes"].as_u64().unwrap(),
            );
            total = (total.0 + raw, total.1 + gz);
            w(&mut s, format!("| `{name}` | {raw} | {gz} |"));
        }
        w(&mut s, format!("| total | {} | {} |", total.0, total.1));
    }
    s
}

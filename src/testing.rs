//! What the tests share: the Redis they run against, or one printed line saying they skip because none answers.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

/// `REDIS_URL` (default `redis://127.0.0.1:6379`) when a Redis answers there; else `None`, and
/// the tests that need one return early. `.ci/test` sets `QRB_REQUIRE_REDIS`, so that in CI a
/// missing Redis fails those tests instead of skipping them.
pub fn redis_url() -> Option<String> {
    static ANSWERING: OnceLock<Option<String>> = OnceLock::new();
    ANSWERING
        .get_or_init(|| {
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let answers = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if answers {
                return Some(url);
            }
            skip_unless_required(
                "QRB_REQUIRE_REDIS",
                &format!("no Redis answers at {url} (set REDIS_URL)"),
            );
            None
        })
        .clone()
}

/// The program `name` (pebble, nginx, redis-server) from `PATH` or `/usr/sbin`, or `None`: the
/// test that runs it then returns early, saying so. `.ci/test` sets `QRB_REQUIRE_TOOLS`, so that
/// in CI a missing program fails instead (`.ci/install` installs them).
#[allow(dead_code)] // Only the API tests start programs.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skip_unless_required(
            "QRB_REQUIRE_TOOLS",
            &format!("{name} is not installed (.ci/install installs it)"),
        );
    }
    found
}

/// A test is about to skip because `why`: in CI (`required` set) that is a failure instead;
/// elsewhere one line says so, straight to stderr past the test harness's capture.
fn skip_unless_required(required: &str, why: &str) {
    assert!(
        std::env::var_os(required).is_none(),
        "{required} is set, but {why}"
    );
    let _ = writeln!(std::io::stderr(), "note: skipping a test: {why}");
}

/// A Redis Cluster of three masters of this test process's own (`redis-server` and
/// `redis-cli --cluster create`, on free ports), as a `redis+cluster://` URL; `None` (the test
/// returns early) when those programs are missing, or when no Redis answers at all (the machine
/// has none). Started once per test process; each node stops when the process ends.
#[allow(dead_code)] // The store's contract and the API tests use it; other unit tests do not.
pub fn cluster_url() -> Option<String> {
    static CLUSTER: OnceLock<Option<String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            redis_url()?;
            let server = tool("redis-server")?;
            let cli = tool("redis-cli")?;
            Some(start_cluster(&server, &cli))
        })
        .clone()
}

#[allow(dead_code)]
fn start_cluster(server: &std::path::Path, cli: &std::path::Path) -> String {
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("qrb-cluster-{}", std::process::id()));
    // Each node also listens on its port + 10000 for the cluster bus.
    let ports: Vec<u16> = std::iter::repeat_with(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    })
    .filter(|p| *p < 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok())
    .take(3)
    .collect();
    for port in &ports {
        let node = dir.join(port.to_string());
        std::fs::create_dir_all(&node).expect("a folder for the node");
        // A shell watches this process and stops the node (and removes its files) when it ends.
        let script = format!(
            "\"$0\" --port {port} --bind 127.0.0.1 --dir '{node}' --cluster-enabled yes \
             --cluster-config-file nodes.conf --cluster-node-timeout 5000 --save '' \
             --appendonly yes --logfile '{node}/redis.log' & node=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; \
             kill $node; wait $node; rm -rf '{node}'",
            node = node.display(),
            parent = std::process::id(),
        );
        // Not waited for: it outlives the tests, and ends with their process.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(server)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for port in &ports {
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "cluster node {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new(cli)
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        created.status.success(),
        "redis-cli --cluster create: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    for port in &ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a URL");
        loop {
            let info: String = client
                .get_connection()
                .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                .unwrap_or_default();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cluster not ok: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    format!("redis+cluster://{}", nodes.join(","))
}

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
            assert!(
                std::env::var_os("QRB_REQUIRE_REDIS").is_none(),
                "QRB_REQUIRE_REDIS is set but no Redis answers at {url}"
            );
            // Straight to the stream, past the test harness's capture: one line per run.
            let _ = writeln!(
                std::io::stderr(),
                "note: skipping the tests that need Redis: none answers at {url} (set REDIS_URL)"
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
        assert!(
            std::env::var_os("QRB_REQUIRE_TOOLS").is_none(),
            "QRB_REQUIRE_TOOLS is set but {name} is not installed (.ci/install installs it)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "note: skipping a test that needs {name}: it is not installed (.ci/install installs it)"
        );
    }
    found
}

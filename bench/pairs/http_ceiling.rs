//! Pair 1: init against the bare HTTP route of the same bridge, on each store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bridge::{Bridge, KEY};
use crate::load::{Load, wrk};
use crate::options::Settings;

#[derive(Debug, Serialize, Deserialize)]
pub struct HttpCeiling {
    pub concurrency: usize,
    pub memory: OnStore,
    pub redis: OnStore,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OnStore {
    pub bare_route: Load,
    pub init: Load,
    /// Init's requests per second over the bare route's: what init's own work leaves of HTTP.
    pub ratio: f64,
}

/// `memory` runs on the embedded store, `redis` on Redis.
pub fn run(s: &Settings, memory: &Bridge, redis: &Bridge) -> HttpCeiling {
    let scripts = tempfile::tempdir().unwrap();
    HttpCeiling {
        concurrency: s.concurrency,
        memory: on(s, memory, scripts.path()),
        redis: on(s, redis, scripts.path()),
    }
}

fn on(s: &Settings, bridge: &Bridge, scripts: &Path) -> OnStore {
    let bare_route = wrk(
        &format!("{}/healthz", bridge.origin),
        s.concurrency,
        s,
        None,
        None,
    );
    let init = wrk(
        &format!("{}/v1/auth/cross-device/init", bridge.origin),
        s.concurrency,
        s,
        Some(&init_script(scripts, &bridge.origin)),
        None,
    );
    OnStore {
        ratio: init.rps / bare_route.rps,
        bare_route,
        init,
    }
}

/// wrk sends GETs unless a script says otherwise; init is the SDK's POST.
fn init_script(dir: &Path, origin: &str) -> PathBuf {
    let path = dir.join(format!("init-{}.lua", origin.rsplit(':').next().unwrap()));
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{{}}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {KEY}\"\nwrk.headers[\"Origin\"] = \"{origin}\"\n"
    );
    std::fs::write(&path, script).unwrap();
    path
}

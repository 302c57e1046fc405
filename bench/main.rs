//! The benchmark harness: QR Bridge measured against its own limits, each figure beside its pair, in one run.
//!
//! Run through `bench/run`, which builds the release site and binary first. The bridges run as
//! release processes pinned to core 0; the load (wrk, redis-benchmark, this harness's clients)
//! runs on core 1. Writes bench/results.json and bench/RESULTS.md, and prints the table.

mod bridge;
mod load;
mod options;
mod pairs;
mod results;
mod stats;
mod system;

#[allow(
    dead_code,
    reason = "shared with the API tests, which use all of it; the harness needs only part"
)]
#[path = "../tests/kit/mod.rs"]
mod kit;

use std::time::Instant;

use bridge::{Bridge, clean};
use options::Options;
use pairs::{approval_page, http_ceiling, init_vs_redis, verify_cost, waiting, wake};
use results::{Report, Results};
use system::Machine;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let o = Options::from_args();
    let (s, url) = (&o.settings, o.redis_url.as_str());
    let started = Instant::now();
    let file_limit = system::raise_file_limit();
    let machine = Machine::describe();

    let prefix = format!("qrbbench-{}", std::process::id());
    let memory = Bridge::start("memory", &prefix);
    let a = Bridge::start(url, &prefix);
    let b = Bridge::start(url, &prefix);
    let mut measured = Results::default();

    // Pair 2 reuses pair 1's init on Redis, so they run together.
    if o.runs(1) || o.runs(2) {
        eprintln!(
            "1 + 2: HTTP ceiling, init, Redis alone ({} × {} s each)…",
            s.rounds, s.seconds
        );
        let one = http_ceiling::run(s, &memory, &a);
        measured.init_vs_redis = Some(init_vs_redis::run(s, one.redis.init));
        measured.http_ceiling = Some(one);
        clean(url, &prefix);
    }
    if o.runs(3) {
        eprintln!("3: wake latency over {} completions…", s.wakes);
        measured.wake = Some(wake::run(&a, &b, url, s.wakes).await);
        clean(url, &prefix);
    }
    if o.runs(4) {
        measured.waiting = Some(waiting::run(&s.streams, file_limit, url, &prefix, &b).await);
    }
    if o.runs(5) {
        eprintln!("5: verify cost…");
        let cost = tokio::task::spawn_blocking(verify_cost::run).await.unwrap();
        measured.verify_cost = Some(cost);
    }
    if o.runs(6) {
        eprintln!("6: the approval page…");
        measured.approval_page = Some(approval_page::run(s, &memory).await);
        clean(url, &prefix);
    }
    drop((memory, a, b));
    // bench/run measures the pages first, when Chromium is installed.
    measured.page_load = results::PageLoad::read();

    let report = Report {
        machine,
        harness_seconds: started.elapsed().as_secs(),
        settings: s.clone(),
        results: measured,
    };
    results::write(&report, o.is_whole());
}

//! Pair 4: many desktops waiting on one Redis-backed instance — their memory, their heartbeats' CPU — then all approved on another.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::bridge::{Bridge, clean, events, registered_phone};
use crate::options::Streams;
use crate::system::{cpu_time, rss_kib};

#[derive(Debug, Serialize, Deserialize)]
pub struct WaitingDesktops {
    /// The open-file limit the run had, which bounds the `max` step.
    pub file_limit: u64,
    pub steps: Vec<Step>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Step {
    pub streams: usize,
    pub opened_in_s: f64,
    pub rss_before_kib: u64,
    pub rss_open_kib: u64,
    /// After every stream has closed: what the process gave back.
    #[serde(default)]
    pub rss_closed_kib: u64,
    /// Written whole.
    pub bytes_per_stream: f64,
    pub idle_cpu_ms_per_16s: f64,
    pub heartbeat_cpu_us_per_stream: f64,
    pub approved_in_s: f64,
    pub tokens_received: usize,
}

/// Each step waits on a fresh instance on `redis_url` under `prefix`; `approver` approves.
/// `BENCH_WRAP` runs those instances under a profiler.
pub async fn run(
    steps: &[Streams],
    file_limit: u64,
    redis_url: &str,
    prefix: &str,
    approver: &Bridge,
) -> WaitingDesktops {
    // Each side of every stream holds a socket: keep a thousand descriptors for the rest.
    let ceiling = (file_limit as usize).saturating_sub(1000);
    let wrapper = std::env::var("BENCH_WRAP").ok();
    let mut measured = Vec::new();
    for step in steps {
        let n = step.within(ceiling);
        eprintln!("4: {n} waiting desktops…");
        // A fresh instance per step: memory freed by the step before would hide the cost.
        let waiter = Bridge::start_under(redis_url, prefix, wrapper.as_deref());
        measured.push(waiting(&waiter, approver, n).await);
        drop(waiter);
        clean(redis_url, prefix);
    }
    WaitingDesktops {
        file_limit,
        steps: measured,
    }
}

/// `n` desktops waiting on `a`; then all approved on `b`.
async fn waiting(a: &Bridge, b: &Bridge, n: usize) -> Step {
    // No idle pool: every waiting desktop holds its own connection, as separate browsers do.
    let desktop = a.client_over(
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    );
    let rss_before = rss_kib(a.pid());
    let opened = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut sessions = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (desktop, opened, completed) = (desktop.clone(), opened.clone(), completed.clone());
        let session = desktop.init().await;
        sessions.push(session.session_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = Box::pin(events(&desktop, &session).await);
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
        let (approver, chunk) = (b.client(), chunk.to_vec());
        workers.push(tokio::spawn(async move {
            let mut phone = registered_phone(&approver).await;
            for id in chunk {
                let signed = phone.sign(&approver.base, &approver.options(&id).await);
                let (status, body) = approver.verify(&id, &signed).await;
                assert_eq!(status, 204, "{body}");
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
    drop(desktop);
    // Every stream has ended and its connection closed (no idle pool); the bridge notices the
    // close at once, and the allocator gets a few seconds to hand the memory back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_closed = rss_kib(a.pid());
    let per_stream = rss_open.saturating_sub(rss_before) as f64 * 1024.0 / n as f64;
    Step {
        streams: n,
        opened_in_s: open_time.as_secs_f64(),
        rss_before_kib: rss_before,
        rss_open_kib: rss_open,
        rss_closed_kib: rss_closed,
        bytes_per_stream: per_stream.round(),
        idle_cpu_ms_per_16s: idle_cpu.as_secs_f64() * 1000.0,
        heartbeat_cpu_us_per_stream: idle_cpu.as_secs_f64() * 1e6 / n as f64,
        approved_in_s: approve_time.as_secs_f64(),
        tokens_received: completed.load(Ordering::Relaxed),
    }
}

//! One run's report: its figures as bench/results.json keeps them, and the tables of bench/RESULTS.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::load::Load;
use crate::options::Settings;
use crate::pairs::approval_page::ApprovalPage;
use crate::pairs::http_ceiling::HttpCeiling;
use crate::pairs::init_vs_redis::InitVsRedis;
use crate::pairs::verify_cost::VerifyCost;
use crate::pairs::waiting::WaitingDesktops;
use crate::pairs::wake::WakeLatency;
use crate::stats::Percentiles;
use crate::system::{Machine, root};

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub machine: Machine,
    pub harness_seconds: u64,
    pub settings: Settings,
    pub results: Results,
}

/// The pairs a run measured; a partial run (`--only`) leaves the others out.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    #[serde(
        rename = "1_http_ceiling_vs_init",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_ceiling: Option<HttpCeiling>,
    #[serde(
        rename = "2_init_vs_redis_alone",
        skip_serializing_if = "Option::is_none"
    )]
    pub init_vs_redis: Option<InitVsRedis>,
    #[serde(
        rename = "3_wake_latency_vs_pubsub",
        skip_serializing_if = "Option::is_none"
    )]
    pub wake: Option<WakeLatency>,
    #[serde(rename = "4_waiting_desktops", skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingDesktops>,
    #[serde(rename = "5_verify_cost", skip_serializing_if = "Option::is_none")]
    pub verify_cost: Option<VerifyCost>,
    #[serde(rename = "6_approval_page", skip_serializing_if = "Option::is_none")]
    pub approval_page: Option<ApprovalPage>,
    /// Written by bench/page-load.mjs (bench/run runs it first); read back here.
    #[serde(
        rename = "7_pages_on_a_slow_phone",
        skip_serializing_if = "Option::is_none"
    )]
    pub page_load: Option<PageLoad>,
}

/// bench/page-load.json: the pages in Chromium under Lighthouse's mobile profile.
#[derive(Debug, Serialize, Deserialize)]
pub struct PageLoad {
    pub at: String,
    pub loads: usize,
    pub figures: BTreeMap<String, PageFigures>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PageFigures {
    pub paint_ms: f64,
    pub live_ms: f64,
    pub bytes: f64,
}

impl PageLoad {
    /// The figures page-load.mjs left, if it ran.
    pub fn read() -> Option<PageLoad> {
        let text = std::fs::read_to_string(root().join("bench/page-load.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Where the hand-written analysis begins in bench/RESULTS.md; a new run keeps it.
const NOTES: &str = "## Notes";

/// Prints the tables; a whole run also replaces results.json and RESULTS.md's tables.
pub fn write(report: &Report, whole: bool) {
    let results_md = root().join("bench/RESULTS.md");
    let table = markdown(report);
    println!("{table}");
    if !whole {
        eprintln!("a partial run (--only): bench/RESULTS.md and results.json left as they were");
        return;
    }
    // Through a `Value`, whose keys are sorted: a new run's diff then shows figures, not order.
    let json = serde_json::to_value(report).unwrap();
    std::fs::write(
        root().join("bench/results.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    let notes = std::fs::read_to_string(&results_md)
        .ok()
        .and_then(|old| old.find(NOTES).map(|at| old[at..].to_owned()))
        .unwrap_or_default();
    std::fs::write(results_md, format!("{table}\n{notes}")).unwrap();
}

/// The report as the README links it: one table per pair, ours beside its pair.
pub fn markdown(r: &Report) -> String {
    let (m, s, x) = (&r.machine, &r.settings, &r.results);
    let mut lines = vec![
        "# QR Bridge benchmark results".to_owned(),
        String::new(),
        format!(
            "Measured {} on {} cores ({}). Bridges pinned to core 0, load to core 1.",
            m.date, m.cores, m.cpu
        ),
        format!(
            "Redis intrinsic latency (`redis-cli --intrinsic-latency 3`): {}. Harness run: {} s; \
             medians of {} rounds of {} s at concurrency {}.",
            m.redis_intrinsic_latency, r.harness_seconds, s.rounds, s.seconds, s.concurrency
        ),
    ];
    let sections = [
        x.http_ceiling.as_ref().map(http_ceiling),
        x.init_vs_redis.as_ref().map(init_vs_redis),
        x.wake.as_ref().map(wake),
        x.waiting.as_ref().map(waiting),
        x.verify_cost.as_ref().map(verify_cost),
        x.approval_page
            .as_ref()
            .map(|p| approval_page(p, s.concurrency)),
        x.page_load.as_ref().map(page_load),
    ];
    for section in sections.into_iter().flatten() {
        lines.push(String::new());
        lines.extend(section);
    }
    lines.join("\n") + "\n"
}

fn http_ceiling(one: &HttpCeiling) -> Vec<String> {
    let mut lines = vec!["## 1. HTTP ceiling vs init".to_owned()];
    lines.extend(load_table(&[
        ("`GET /healthz` (memory)", &one.memory.bare_route),
        ("`POST …/init` (memory)", &one.memory.init),
        ("`GET /healthz` (redis)", &one.redis.bare_route),
        ("`POST …/init` (redis)", &one.redis.init),
    ]));
    lines.push(String::new());
    lines.push(format!(
        "Ratio init / bare route: memory {:.2}, Redis {:.2}.",
        one.memory.ratio, one.redis.ratio
    ));
    lines
}

fn init_vs_redis(two: &InitVsRedis) -> Vec<String> {
    let mut lines = vec!["## 2. Init with Redis vs Redis alone".to_owned()];
    lines.extend(load_table(&[
        ("`POST …/init` (Redis store)", &two.init_redis),
        ("`redis-benchmark SET … EX 60`", &two.redis_set_ex),
    ]));
    lines.push(String::new());
    lines.push(format!("Ratio init / SET: {:.2}.", two.ratio));
    lines
}

fn wake(three: &WakeLatency) -> Vec<String> {
    let mut lines = vec![
        "## 3. Wake latency across two instances vs raw pub/sub".to_owned(),
        format!(
            "{} completions; stream on instance A, verify on instance B.",
            three.completions
        ),
        String::new(),
        "| | p50 ms | p99 ms |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    let rows: [(&str, &Percentiles); 3] = [
        (
            "verify response returned → event on A",
            &three.verify_return_to_event_ms,
        ),
        ("verify sent → event on A", &three.verify_send_to_event_ms),
        (
            "raw `PUBLISH` → message on a 2nd connection",
            &three.raw_publish_to_message_ms,
        ),
    ];
    lines.extend(
        rows.iter()
            .map(|(name, p)| format!("| {name} | {} | {} |", figure(p.p50), figure(p.p99))),
    );
    lines
}

fn waiting(four: &WaitingDesktops) -> Vec<String> {
    let mut lines = vec![
        "## 4. Waiting desktops (SSE streams on one Redis-backed instance)".to_owned(),
        "| streams | opened in s | RSS before → open → closed (MiB) | bytes per stream | heartbeat CPU per \
         stream per 15 s (µs) | approved in s | tokens received |"
            .to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(four.steps.iter().map(|step| {
        format!(
            "| {} | {:.1} | {:.0} → {:.0} → {:.0} | {:.1} | {:.1} | {:.1} | {} / {} |",
            step.streams,
            step.opened_in_s,
            step.rss_before_kib as f64 / 1024.0,
            step.rss_open_kib as f64 / 1024.0,
            step.rss_closed_kib as f64 / 1024.0,
            step.bytes_per_stream,
            step.heartbeat_cpu_us_per_stream,
            step.approved_in_s,
            step.tokens_received,
            step.streams
        )
    }));
    lines.push(String::new());
    lines.push(format!("Open-file limit: {}.", four.file_limit));
    lines
}

fn verify_cost(five: &VerifyCost) -> Vec<String> {
    let mut lines = vec![
        "## 5. Verify cost vs raw P-256".to_owned(),
        "| | µs per operation |".to_owned(),
        "|---|---|".to_owned(),
    ];
    let rows = [
        (
            "assertion check (`finish_discoverable_authentication`)",
            five.assertion_check_us,
        ),
        (
            "raw P-256 ECDSA verify (`openssl speed ecdsap256`)",
            five.openssl_p256_verify_us,
        ),
        (
            "raw P-256 ECDSA verify in RustCrypto `p256` (what webauthn-rs 0.6 verifies with)",
            five.rustcrypto_p256_verify_us,
        ),
        ("session token mint (RS256)", five.token_mint_us),
        (
            "raw RSA-2048 sign (`openssl speed rsa2048`)",
            five.openssl_rsa2048_sign_us,
        ),
    ];
    lines.extend(
        rows.iter()
            .map(|(name, us)| format!("| {name} | {us:.1} |")),
    );
    lines
}

fn approval_page(six: &ApprovalPage, concurrency: usize) -> Vec<String> {
    let mut lines = vec!["## 6. The approval page".to_owned()];
    lines.extend(load_table(&[
        (
            "`GET /bridge/:id`, one at a time (render time)",
            &six.render_alone,
        ),
        (
            &format!("`GET /bridge/:id`, concurrency {concurrency}"),
            &six.render_at_concurrency,
        ),
    ]));
    lines.push(String::new());
    lines.push(
        "| what the phone loads | bytes | on the wire (`Accept-Encoding: br, gzip`) | cached as |"
            .to_owned(),
    );
    lines.push("|---|---|---|---|".to_owned());
    let mut total = (0, 0);
    for (name, asset) in &six.assets {
        total = (total.0 + asset.bytes, total.1 + asset.wire_bytes);
        lines.push(format!(
            "| `{name}` | {} | {} ({}) | `{}` |",
            asset.bytes, asset.wire_bytes, asset.encoding, asset.cache
        ));
    }
    lines.push(format!("| total | {} | {} | |", total.0, total.1));
    lines
}

fn page_load(seven: &PageLoad) -> Vec<String> {
    let mut lines = vec![
        "## 7. The pages on a slow phone: first paint vs live".to_owned(),
        format!(
            "`node bench/page-load.mjs`, {} UTC: Chromium under Lighthouse's mobile profile (4x CPU, \
             150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up, cache disabled), median of {} cold \
             loads of a fresh session each. Live: `body[data-hydrated]`, set when the page's \
             islands have hydrated. Goal for the phone page: live within 1.5 s and 1.5x its first \
             paint, at most 150 KB.",
            seven.at.get(..16).unwrap_or(&seven.at).replace('T', " "),
            seven.loads
        ),
        String::new(),
        "| page | first paint ms | live ms | live / paint | KB on the wire |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    // The phone first: it is the page the goal is for.
    let order = ["phone", "desktop"];
    let mut figures: Vec<_> = seven.figures.iter().collect();
    figures.sort_by_key(|(name, _)| order.iter().position(|o| o == name).unwrap_or(order.len()));
    lines.extend(figures.into_iter().map(|(name, f)| {
        format!(
            "| {name} | {:.0} | {:.0} | {:.2} | {:.0} |",
            f.paint_ms,
            f.live_ms,
            f.live_ms / f.paint_ms,
            f.bytes / 1024.0
        )
    }));
    lines
}

fn load_table(rows: &[(&str, &Load)]) -> Vec<String> {
    let mut lines = vec![
        "| | requests/s | p50 ms | p99 ms |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    lines.extend(rows.iter().map(|(name, l)| {
        format!(
            "| {name} | {} | {} | {} |",
            figure(l.rps),
            figure(l.p50_ms),
            figure(l.p99_ms)
        )
    }));
    lines
}

/// Large figures whole, small ones to the microsecond (in ms).
fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

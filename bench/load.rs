//! Load from core 1: wrk against a bridge, redis-benchmark against Redis, each summarised by its rounds' medians.

use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

use crate::options::Settings;
use crate::stats::median;
use crate::system::{LOAD_CORE, run};

/// One load's figures.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Load {
    /// Written whole; ratios are taken from the exact figure before it is.
    #[serde(rename = "requests_per_s", serialize_with = "whole")]
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn whole<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(x.round())
}

impl Load {
    fn median_of(runs: &[Load]) -> Load {
        Load {
            rps: median(runs.iter().map(|r| r.rps).collect()),
            p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
            p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
        }
    }
}

/// wrk's latencies ("870.00us", "1.38ms", "2.01s") in milliseconds.
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

/// wrk at `url`: `rounds` runs of `seconds`. Any error or non-2xx answer fails the run, since
/// the figures would then measure refusals.
pub fn wrk(
    url: &str,
    concurrency: usize,
    s: &Settings,
    script: Option<&Path>,
    header: Option<&str>,
) -> Load {
    let (c, d) = (concurrency.to_string(), format!("{}s", s.seconds));
    let script = script.map(|p| p.display().to_string());
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
    if let Some(script) = &script {
        args.extend(["-s", script.as_str()]);
    }
    if let Some(h) = header {
        args.extend(["-H", h]);
    }
    args.push(url);
    let runs: Vec<Load> = (0..s.rounds)
        .map(|_| {
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
            Load {
                rps,
                p50_ms: pct("50%"),
                p99_ms: pct("99%"),
            }
        })
        .collect();
    Load::median_of(&runs)
}

/// Redis's own SET ... EX at the settings' concurrency, from redis-benchmark.
pub fn redis_set(s: &Settings) -> Load {
    let c = s.concurrency.to_string();
    let runs: Vec<Load> = (0..s.rounds)
        .map(|_| {
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
            // rps, avg, min, p50, p95, p99, max
            let cells: Vec<f64> = row
                .split(',')
                .skip(1)
                .map(|v| v.trim_matches('"').parse().unwrap_or(f64::NAN))
                .collect();
            Load {
                rps: cells[0],
                p50_ms: cells[3],
                p99_ms: cells[5],
            }
        })
        .collect();
    Load::median_of(&runs)
}

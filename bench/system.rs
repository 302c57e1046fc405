//! The machine under the harness: its tools, its processes' memory and CPU time, its limits and what it is.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The bridges run here and the load on the other core, so neither steals the other's time.
pub const SERVER_CORE: &str = "0";
pub const LOAD_CORE: &str = "1";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to completion and returns its standard output, failing loudly.
pub fn run(program: &str, args: &[&str]) -> String {
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

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// User plus system CPU time of a process so far.
pub fn cpu_time(pid: u32) -> Duration {
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

/// Every waiting desktop is an open socket on each side: as root, lift the limit to the
/// kernel's ceiling (`fs.nr_open`); otherwise to the hard limit. The bridges inherit it.
pub fn raise_file_limit() -> u64 {
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

/// What the figures were measured on and when.
#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    pub date: String,
    pub cores: String,
    pub cpu: String,
    /// Redis's own floor on this machine, against which the Redis figures read.
    pub redis_intrinsic_latency: String,
}

impl Machine {
    /// Takes three seconds: Redis's intrinsic latency is measured, not looked up.
    pub fn describe() -> Machine {
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
        let redis_intrinsic_latency = format!(
            "avg {} µs, max {} µs",
            number_after("avg latency:"),
            number_after("Max latency so far:")
        );
        let date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
            .trim()
            .to_owned();
        Machine {
            date,
            cores,
            cpu,
            redis_intrinsic_latency,
        }
    }
}

//! The `qr-bridge` binary: parse the command line and run it (logging starts once the settings are read).

use clap::Parser;

/// jemalloc rather than glibc's malloc. With 3,500 event streams open and then closed (bench pair
/// 4), glibc held 99 MiB and kept 89 once they had closed, its per-thread arenas holding the freed
/// pages; mimalloc gave them back but took a third more per stream (33 KB); jemalloc took the
/// least (19 KB) and went back to 26 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's `malloc_conf`, read when it starts: a background thread hands freed pages back a
/// second after they were freed, rather than when the next allocation happens to look.
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: Conf =
    Conf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string for jemalloc to read: `const char *malloc_conf`.
#[repr(transparent)]
struct Conf(*const std::ffi::c_char);

// SAFETY: it points to a string literal, which is never written.
unsafe impl Sync for Conf {}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = qr_bridge::cli::Cli::parse();
    match qr_bridge::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qr-bridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

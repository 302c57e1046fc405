//! The `qr-bridge` binary: parse the command line, set up logging, run.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // When stderr is gone (its reader died), the default reports that with `eprintln!`, which
        // panics: the task that was logging dies, and with it, once, the shutdown on SIGTERM.
        .log_internal_errors(false)
        .init();
    let cli = qr_bridge::cli::Cli::parse();
    match qr_bridge::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qr-bridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

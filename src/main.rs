//! The `qr-bridge` binary: parse the command line, set up logging, run.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // webauthn-rs traces whole ceremonies (signatures, client data) below info: whatever
    // RUST_LOG asks, its crates log at info at most, so no passkey answer reaches a log.
    for quiet in [
        "webauthn_rs_core=info",
        "webauthn_rs=info",
        "webauthn_rs_proto=info",
    ] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
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

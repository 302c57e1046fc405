//! The `qr-bridge` binary: parse the command line and run it (logging starts once the settings are read).

use clap::Parser;

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

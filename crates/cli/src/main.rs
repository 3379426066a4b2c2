//! `forge`: the command line. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod detect;
mod local;
mod preview;

#[derive(Parser)]
#[command(
    name = "forge",
    version,
    about = "Run repositories in Daytona sandboxes and verify their previews"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded Daytona-compatible backend on 127.0.0.1 and print the URL and key.
    Local(local::Args),
    /// Detect the framework, package manager and commands of a repository folder.
    Detect(detect::Args),
    /// Clone (or upload) a repository into a sandbox, install, start and verify its preview.
    Preview(preview::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => local::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Preview(args) => preview::run(args),
    }
}

/// Runs a subcommand's future on a multi-threaded runtime.
pub(crate) fn block_on(
    name: &str,
    fut: impl std::future::Future<Output = std::process::ExitCode>,
) -> std::process::ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("forge {name}: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

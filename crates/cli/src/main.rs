//! `forge`: the command line. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod detect;
mod local;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => local::run(args),
        Command::Detect(args) => detect::run(args),
    }
}

//! `forge`: the command line, as a library. [`run`] takes the arguments and a cancellation
//! token and returns the exit code; the `forge` binary (main.rs) and the npm package's `forge`
//! bin (through the addon's `runCli`) both call it, so the two are the same program. Neither
//! exits the process from in here, and neither installs signal handlers here: the caller turns
//! SIGINT / SIGTERM into `cancel`.
//!
//! Exit codes: 0 done, 1 failed, 2 bad arguments, 130 interrupted before the work was done.
//! With `--json`, every command prints one JSON object on stdout: `{"ok":true,...}` on success
//! and `{"ok":false,"error":{"code","message",...}}` on failure (see [`output`]).

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod backend;
mod detect;
mod local;
mod output;
mod preview;
mod sandboxes;

pub use output::{EXIT_CANCELLED, EXIT_FAILURE, EXIT_USAGE};

#[derive(Parser)]
#[command(
    name = "forge",
    version,
    about = "Run repositories in Daytona sandboxes and verify their previews",
    after_help = "Backend: Daytona when DAYTONA_API_KEY is set (DAYTONA_API_URL, DAYTONA_TARGET \
                  as for the SDKs; a running `forge local` prints both), else the embedded \
                  backend in $FORGE_HOME.\n\
                  --json: one JSON object on stdout, {\"ok\":true,...} or \
                  {\"ok\":false,\"error\":{\"code\",\"message\",...}}.\n\
                  Exit codes: 0 done, 1 failed, 2 bad arguments, 130 interrupted (Ctrl-C / \
                  SIGTERM: what runs in the sandbox is killed and the sandbox deleted unless \
                  --keep)."
)]
struct Cli {
    /// Print one JSON object on stdout ({"ok":true,...} or {"ok":false,"error":{...}}) instead
    /// of text.
    #[arg(long, global = true)]
    json: bool,
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
    /// List the sandboxes of the backend.
    List(sandboxes::ListArgs),
    /// Print the output of a sandbox's dev server (or another session command); -f follows it.
    Logs(sandboxes::LogsArgs),
    /// Delete sandboxes.
    Rm(sandboxes::RmArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Local(_) => "local",
            Command::Detect(_) => "detect",
            Command::Preview(_) => "preview",
            Command::List(_) => "list",
            Command::Logs(_) => "logs",
            Command::Rm(_) => "rm",
        }
    }
}

/// Runs `forge` with `args` (without the program name) until done or `cancel`led; returns the
/// exit code.
pub async fn run(args: Vec<String>, cancel: CancellationToken) -> i32 {
    let json = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(std::iter::once("forge".to_owned()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => return output::usage_error(&e, json),
    };
    let name = cli.command.name();
    let json = cli.json;
    let outcome = match cli.command {
        Command::Local(a) => local::run(a, json, cancel).await,
        Command::Detect(a) => detect::run(&a, json),
        Command::Preview(a) => preview::run(a, json, cancel).await,
        Command::List(a) => sandboxes::list(a, json, cancel).await,
        Command::Logs(a) => sandboxes::logs(a, json, cancel).await,
        Command::Rm(a) => sandboxes::rm(a, json, cancel).await,
    };
    match outcome {
        Ok(()) => 0,
        Err(f) => f.report(name, json),
    }
}

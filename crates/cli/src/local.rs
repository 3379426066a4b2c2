//! `forge local [--port N] [--home DIR] [--key K] [--json]`: runs the embedded backend in the
//! foreground until SIGINT / SIGTERM, then shuts it down cleanly (every sandbox process is
//! killed; records and files are kept for the next start).
//!
//! It prints what a shell needs to point the Daytona SDKs at it:
//!
//! ```text
//! export DAYTONA_API_URL=http://127.0.0.1:PORT/api
//! export DAYTONA_API_KEY=forge_...
//! ```
//!
//! or, with `--json`, one line `{"apiUrl":…,"apiKey":…,"toolboxUrl":…,"home":…,"pid":…}` that
//! a test can read before it starts talking to the backend.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 or absent: a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Folder holding sandboxes and their records (default: $FORGE_HOME, else the user's data dir).
    #[arg(long)]
    home: Option<PathBuf>,
    /// API key clients must send (default: a random one).
    #[arg(long)]
    key: Option<String>,
    /// Print one JSON line instead of shell exports.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    crate::block_on("local", serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let env = forge_local::LocalConfig::from_env();
    let config = forge_local::LocalConfig {
        home: args.home.or(env.home.clone()),
        api_key: args.key.or(env.api_key.clone()),
        bind: Some(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            args.port.unwrap_or(0),
        ))),
        ..env
    };
    let backend = match forge_local::LocalBackend::start(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("forge local: {e} ({})", e.code());
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        let line = serde_json::json!({
            "apiUrl": backend.api_url(),
            "apiKey": backend.api_key(),
            "toolboxUrl": backend.toolbox_url(),
            "home": backend.home(),
            "pid": std::process::id(),
            "isolation": backend.isolation(),
        });
        writeln!(out, "{line}")
    } else {
        writeln!(
            out,
            "export DAYTONA_API_URL={}\nexport DAYTONA_API_KEY={}",
            backend.api_url(),
            backend.api_key()
        )
    };
    let _ = out.flush();
    drop(out);
    if printed.is_err() {
        backend.shutdown().await;
        return ExitCode::FAILURE;
    }
    let iso = backend.isolation();
    if iso.level == "container" {
        eprintln!(
            "forge local: sandboxes are containers: {}; network: {}; limits: {}",
            iso.user, iso.network, iso.limits
        );
    } else {
        eprintln!(
            "forge local: WARNING: sandboxes are NOT isolated here ({}): their code runs as \
             this machine's user with its files and network. Set FORGE_ISOLATION=required to \
             refuse to start instead.",
            iso.reason
                .as_deref()
                .unwrap_or("no containers on this machine")
        );
    }
    if !args.json {
        eprintln!(
            "forge local: serving on {} (home {}); Ctrl-C to stop (sandboxes keep running: \
             FORGE_STOP_SANDBOXES_ON_EXIT=1 stops them)",
            backend.addr(),
            backend.home().display()
        );
    }
    wait_for_signal().await;
    backend.shutdown().await;
    ExitCode::SUCCESS
}

/// Returns on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! `forge local [--port N] [--home DIR] [--key-file FILE] [--json]`: runs the embedded backend in the
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
//! or, with `--json`, one line `{"ok":true,"apiUrl":…,"apiKey":…,"toolboxUrl":…,"home":…,"pid":…}`
//! that a test can read before it starts talking to the backend. SIGINT / SIGTERM (the
//! caller's cancellation) is how it is meant to stop: exit code 0.
//!
//! The API key comes from `FORGE_LOCAL_KEY` or `--key-file` (its first line), else a random
//! one is made. `--key K` still works but warns: a command line is visible to every user of
//! the machine (`ps`, `/proc/<pid>/cmdline`).
//!
//! Off Linux the embedded backend is not built: `forge local` fails with
//! `DAYTONA_LOCAL_UNSUPPORTED`, saying to run it on Linux.

use crate::output::Failure;
#[cfg(target_os = "linux")]
use crate::output::{say, success};
#[cfg(target_os = "linux")]
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 or absent: a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Folder holding sandboxes and their records (default: $FORGE_HOME, else the user's data dir).
    #[arg(long)]
    home: Option<PathBuf>,
    /// File whose first line is the API key clients must send (default: $FORGE_LOCAL_KEY, else
    /// a random one).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The API key itself (deprecated: every user of this machine sees it in `ps`; use
    /// FORGE_LOCAL_KEY or --key-file).
    #[arg(long, hide = true)]
    key: Option<String>,
}

#[cfg(not(target_os = "linux"))]
#[allow(clippy::unused_async)]
pub async fn run(_args: Args, _json: bool, _cancel: CancellationToken) -> Result<(), Failure> {
    Err(crate::backend::unsupported())
}

/// The key: `--key-file`, else `--key` (with a warning), else `FORGE_LOCAL_KEY` (in `env`).
#[cfg(target_os = "linux")]
fn key_of(args: &Args, env: Option<String>) -> Result<Option<String>, String> {
    if let Some(file) = &args.key_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read --key-file {}: {e}", file.display()))?;
        let key = text.lines().next().unwrap_or("").trim().to_string();
        if key.is_empty() {
            return Err(format!("--key-file {} holds no key", file.display()));
        }
        return Ok(Some(key));
    }
    if let Some(k) = &args.key {
        say(
            "forge local: WARNING: --key puts the API key on the command line, where every user \
             of this machine can read it (ps); use FORGE_LOCAL_KEY or --key-file instead",
        );
        return Ok(Some(k.clone()));
    }
    Ok(env)
}

#[cfg(target_os = "linux")]
pub async fn run(args: Args, json: bool, cancel: CancellationToken) -> Result<(), Failure> {
    let env = forge_local::LocalConfig::from_env();
    let api_key = key_of(&args, env.api_key.clone()).map_err(Failure::usage)?;
    let config = forge_local::LocalConfig {
        home: args.home.or(env.home.clone()),
        api_key,
        bind: Some(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            args.port.unwrap_or(0),
        ))),
        ..env
    };
    let backend = forge_local::LocalBackend::start(config)
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    success(
        json,
        serde_json::json!({
            "apiUrl": backend.api_url(),
            "apiKey": backend.api_key(),
            "toolboxUrl": backend.toolbox_url(),
            "home": backend.home(),
            "pid": std::process::id(),
            "isolation": backend.isolation(),
        }),
        &format!(
            "export DAYTONA_API_URL={}\nexport DAYTONA_API_KEY={}\n",
            backend.api_url(),
            backend.api_key()
        ),
    );
    let iso = backend.isolation();
    if iso.level == "container" {
        say(&format!(
            "forge local: sandboxes are containers: {}; network: {}; limits: {}",
            iso.user, iso.network, iso.limits
        ));
    } else {
        say(&format!(
            "forge local: WARNING: sandboxes are NOT isolated here ({}): their code runs as \
             this machine's user with its files and network. Set FORGE_ISOLATION=required to \
             refuse to start instead.",
            iso.reason
                .as_deref()
                .unwrap_or("no containers on this machine")
        ));
    }
    if !json {
        say(&format!(
            "forge local: serving on {} (home {}); Ctrl-C to stop (sandboxes keep running: \
             FORGE_STOP_SANDBOXES_ON_EXIT=1 stops them)",
            backend.addr(),
            backend.home().display()
        ));
    }
    cancel.cancelled().await;
    backend.shutdown().await;
    Ok(())
}

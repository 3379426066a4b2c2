//! Which backend a command talks to: Daytona (or any Daytona-compatible API, such as a running
//! `forge local`) when `DAYTONA_API_KEY` is set, else the embedded backend started in this
//! process over `$FORGE_HOME` (its sandboxes and their records outlive the process, so a later
//! `forge list` / `logs` / `rm` finds what `forge preview --keep` left).

use crate::output::{say, Failure};
use forge_daytona::{Client, DaytonaConfig};

/// The embedded backend: Linux only (its sandboxes are namespace containers).
#[cfg(target_os = "linux")]
pub type Embedded = forge_local::LocalBackend;

/// Elsewhere no embedded backend can exist: a command that needs one fails with
/// [`unsupported`] before it would start it.
#[cfg(not(target_os = "linux"))]
pub enum Embedded {}

#[cfg(not(target_os = "linux"))]
impl Embedded {
    pub fn home(&self) -> &std::path::Path {
        match *self {}
    }
    #[allow(clippy::unused_async)]
    pub async fn shutdown(self) {
        match self {}
    }
}

/// `DAYTONA_LOCAL_UNSUPPORTED`: the embedded backend is not built for this platform; the
/// message says to run `forge local` on Linux (or to set DAYTONA_API_KEY).
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub fn unsupported() -> Failure {
    Failure::new(
        forge_wire::platform::LOCAL_UNSUPPORTED_CODE,
        forge_wire::platform::local_unsupported(std::env::consts::OS, std::env::consts::ARCH),
    )
}

pub struct Backend {
    pub client: Client,
    /// The embedded backend, when this process runs it (stopped by [`Backend::close`]).
    pub embedded: Option<Embedded>,
}

/// What the embedded backend is started for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A preview: the backend as `forge local` runs it.
    Preview,
    /// A look at (or removal of) existing sandboxes: no spare sandbox folders made ahead.
    Inspect,
}

impl Backend {
    /// Opens the backend; says which on stderr unless `quiet`.
    pub async fn open(purpose: Purpose, quiet: bool) -> Result<Backend, Failure> {
        if std::env::var_os("DAYTONA_API_KEY").is_some() {
            let client = Client::new(DaytonaConfig::from_env())?;
            if !quiet {
                say(&format!(
                    "backend: Daytona API at {} (DAYTONA_API_KEY is set)",
                    client.api_url()
                ));
            }
            return Ok(Backend {
                client,
                embedded: None,
            });
        }
        Self::open_embedded(purpose, quiet).await
    }

    #[cfg(not(target_os = "linux"))]
    #[allow(clippy::unused_async)]
    async fn open_embedded(_purpose: Purpose, _quiet: bool) -> Result<Backend, Failure> {
        Err(unsupported())
    }

    /// Starts the embedded backend in this process.
    #[cfg(target_os = "linux")]
    async fn open_embedded(purpose: Purpose, quiet: bool) -> Result<Backend, Failure> {
        let mut config = forge_local::LocalConfig::from_env();
        if purpose == Purpose::Inspect {
            config.spare_sandboxes = 0;
        }
        let backend = forge_local::LocalBackend::start(config)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let config = DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url());
        let client = Client::new(config)?;
        if !quiet && purpose == Purpose::Preview {
            say(&format!(
                "backend: embedded local backend at {} (home {}; set DAYTONA_API_KEY to use Daytona)",
                backend.api_url(),
                backend.home().display()
            ));
        }
        Ok(Backend {
            client,
            embedded: Some(backend),
        })
    }

    /// Stops the embedded backend, if any (its sandboxes keep running unless
    /// `FORGE_STOP_SANDBOXES_ON_EXIT=1`).
    pub async fn close(self) {
        if let Some(b) = self.embedded {
            b.shutdown().await;
        }
    }
}

//! Which backend a command talks to: Daytona (or any Daytona-compatible API, such as a running
//! `forge local`) when `DAYTONA_API_KEY` is set, else the embedded backend started in this
//! process over `$FORGE_HOME` (its sandboxes and their records outlive the process, so a later
//! `forge list` / `logs` / `rm` finds what `forge preview --keep` left).

use crate::output::{say, Failure};
use forge_daytona::{Client, DaytonaConfig};

pub struct Backend {
    pub client: Client,
    /// The embedded backend, when this process runs it (stopped by [`Backend::close`]).
    pub embedded: Option<forge_local::LocalBackend>,
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

//! The embedded local backend of this process: one per process, started on first use by a
//! `new Daytona({ backend: 'local' })` client, stopped when the process exits.

use crate::error::Failure;
use tokio::sync::OnceCell;

static BACKEND: OnceCell<forge_local::LocalBackend> = OnceCell::const_new();

/// Starts the backend if needed; returns its API URL and key.
pub(crate) async fn ensure_started() -> Result<(String, String), Failure> {
    let b = BACKEND
        .get_or_try_init(|| async {
            forge_local::LocalBackend::start(forge_local::LocalConfig::default())
                .await
                .map_err(|e| Failure::new("DAYTONA_LOCAL_BACKEND", e.to_string()))
        })
        .await?;
    Ok((b.api_url(), b.api_key().to_owned()))
}

//! The embedded Daytona-compatible backend (being built). Public API contract used by the
//! client tests, the CLI and the binding:
//!
//! ```ignore
//! let backend = forge_local::LocalBackend::start(forge_local::LocalConfig::default()).await?;
//! backend.api_url();   // "http://127.0.0.1:PORT/api"
//! backend.api_key();   // the key every request must carry
//! backend.shutdown().await;
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to start the backend.
#[derive(Clone, Debug, Default)]
pub struct LocalConfig {
    /// Where sandboxes and their records live. `None`: `$FORGE_HOME`, else the user's data dir.
    pub home: Option<PathBuf>,
    /// The API key every request must carry. `None`: a random one is generated.
    pub api_key: Option<String>,
    /// Address to bind. `None`: 127.0.0.1 on a free port.
    pub bind: Option<SocketAddr>,
}

/// A running backend.
pub struct LocalBackend {
    addr: SocketAddr,
    api_key: String,
}

impl LocalBackend {
    /// Starts the server and returns once it accepts connections.
    pub async fn start(_config: LocalConfig) -> std::io::Result<LocalBackend> {
        unimplemented!("forge-local is being built")
    }
    /// The control-plane base URL, `/api` included, as `DAYTONA_API_URL` wants it.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }
    /// The API key requests must carry.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Stops the server and kills every sandbox process.
    pub async fn shutdown(self) {}
}

//! The embedded Daytona-compatible backend: a control plane under `/api` and a toolbox under
//! `/toolbox/{id}/…`, on 127.0.0.1, speaking the Daytona wire so that both our client and the
//! official `@daytonaio/sdk` work against it unchanged.
//!
//! ```ignore
//! let backend = forge_local::LocalBackend::start(forge_local::LocalConfig::default()).await?;
//! backend.api_url();   // "http://127.0.0.1:PORT/api"
//! backend.api_key();   // the key every request must carry
//! backend.shutdown().await;
//! ```
//!
//! A sandbox is a folder under the home (`$FORGE_HOME`, else the user's data dir) whose
//! `root/` is the sandbox's `/`; commands run with this machine's tools (no images are pulled).

mod api;
mod auth;
mod confine;
mod error;
mod isolation;
mod ports;
mod preview;
mod procs;
mod spares;
mod store;
mod toolbox;
mod util;

pub use error::LocalError;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// How to start the backend.
#[derive(Clone, Default)]
pub struct LocalConfig {
    /// Where sandboxes and their records live. `None`: `$FORGE_HOME`, else the user's data dir
    /// (`$XDG_DATA_HOME/forge`, else `~/.local/share/forge`).
    pub home: Option<PathBuf>,
    /// The API key every request must carry. `None`: a random one is generated.
    pub api_key: Option<String>,
    /// Address to bind. `None`: 127.0.0.1 on a free port. A non-loopback address is refused
    /// (`LOCAL_NOT_LOOPBACK`) unless `FORGE_ALLOW_REMOTE=1`, and then warned about on stderr.
    pub bind: Option<SocketAddr>,
}

impl std::fmt::Debug for LocalConfig {
    /// The key is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("home", &self.home)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("bind", &self.bind)
            .finish()
    }
}

/// Shared state of a running backend.
pub(crate) struct AppState {
    pub api_key: String,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub store: store::Store,
    pub groups: procs::Groups,
    pub sessions: toolbox::sessions::Sessions,
    pub previews: preview::Previews,
    /// `<home>/libforgeports.so`, preloaded into every sandbox command (see `ports`); `None`
    /// when it could not be built or written, and sandboxes then share this machine's ports.
    pub ports_shim: Option<PathBuf>,
    /// Commands (execute, code-run, session commands) running at once, all sandboxes.
    pub commands: Arc<tokio::sync::Semaphore>,
}

pub(crate) type Shared = Arc<AppState>;

/// A running backend.
pub struct LocalBackend {
    addr: SocketAddr,
    api_key: String,
    home: PathBuf,
    state: Shared,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalBackend {
    /// No key in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("addr", &self.addr)
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// The home folder when none is configured: `$FORGE_HOME`, `$XDG_DATA_HOME/forge`,
/// `$HOME/.local/share/forge`.
pub fn default_home() -> Result<PathBuf, LocalError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(h) = var("FORGE_HOME") {
        return Ok(h);
    }
    if let Some(x) = var("XDG_DATA_HOME") {
        return Ok(x.join("forge"));
    }
    var("HOME")
        .map(|h| h.join(".local/share/forge"))
        .ok_or(LocalError::NoHome)
}

impl LocalBackend {
    /// Starts the server and returns once it accepts connections. Sandbox records found in
    /// the home are loaded again (their processes are gone; their files are kept).
    pub async fn start(config: LocalConfig) -> Result<LocalBackend, LocalError> {
        let home = match config.home {
            Some(h) => h,
            None => default_home()?,
        };
        let bind = config
            .bind
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        if !bind.ip().is_loopback() {
            if !auth::remote_allowed() {
                return Err(LocalError::NotLoopback(bind));
            }
            eprintln!(
                "forge-local: WARNING: listening on {bind} (FORGE_ALLOW_REMOTE=1): other machines \
                 can reach this backend; every request still needs the API key, and commands run \
                 as this user on this machine"
            );
        }
        tokio::fs::create_dir_all(&home)
            .await
            .map_err(|source| LocalError::Home {
                path: home.clone(),
                source,
            })?;
        let home = tokio::fs::canonicalize(&home)
            .await
            .map_err(|source| LocalError::Home {
                path: home.clone(),
                source,
            })?;
        let store = store::Store::open(&home).await?;
        // Processes and session state left by a backend that died without shutting down
        // (kill -9, crash) belong to no one now: kill them and drop the stale state.
        let previous: Vec<String> = store
            .all()
            .await
            .into_iter()
            .map(|r| r.sandbox.id)
            .collect();
        let orphans = procs::Groups::default();
        for id in &previous {
            orphans.kill_sandbox(id, true).await;
            let _ = tokio::fs::remove_dir_all(store.state_dir(id).join("sessions")).await;
            let _ = tokio::fs::remove_dir_all(store.uploads_dir(id)).await;
        }
        // Sandbox commands in a private mount view when bwrap is here (`FORGE_ISOLATION=off`
        // turns it off); decided once, for this home.
        isolation::enable(&home).await;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| LocalError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalError::Bind { addr: bind, source })?;
        let api_key = config
            .api_key
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| format!("forge_{}", util::random_token(40)));
        let state: Shared = Arc::new(AppState {
            api_key: api_key.clone(),
            base_url: format!("http://{addr}"),
            store,
            groups: procs::Groups::default(),
            sessions: toolbox::sessions::Sessions::default(),
            previews: preview::Previews::default(),
            ports_shim: ports::install(&home).await,
            commands: Arc::new(tokio::sync::Semaphore::new(procs::max_commands())),
        });
        let app = router(state.clone());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(util::nodelay(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("local backend server failed: {e}");
            }
        });
        Ok(LocalBackend {
            addr,
            api_key,
            home,
            state,
            stop,
            server,
        })
    }

    /// The control-plane base URL, `/api` included, as `DAYTONA_API_URL` wants it.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The toolbox base URL (`toolboxProxyUrl` of every sandbox).
    pub fn toolbox_url(&self) -> String {
        format!("http://{}/toolbox", self.addr)
    }

    /// The API key requests must carry.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The home folder in use (canonical).
    pub fn home(&self) -> &std::path::Path {
        &self.home
    }

    /// Stops the server and kills every sandbox process (records and files are kept).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.state.previews.close_all().await;
        let ids: Vec<String> = self
            .state
            .store
            .all()
            .await
            .into_iter()
            .map(|r| r.sandbox.id)
            .collect();
        for id in &ids {
            self.state.sessions.drop_sandbox(id).await;
            self.state.groups.kill_sandbox(id, true).await;
        }
        // Open WebSockets or long requests must not hold shutdown forever.
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

impl Drop for LocalBackend {
    /// A backend dropped without [`LocalBackend::shutdown`] still stops serving and kills the
    /// processes it started (without waiting for them).
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.state.groups.kill_all_now();
    }
}

fn router(state: Shared) -> axum::Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    // Auth runs inside the error renderer, so a 401 gets the surface's error shape.
    let api = api::router(state.clone())
        .layer(from_fn_with_state(state.clone(), auth::require_key))
        .layer(from_fn(error::render_api));
    let toolbox = toolbox::router(state.clone())
        .layer(from_fn_with_state(state, auth::require_key))
        .layer(from_fn(error::render_toolbox));
    axum::Router::new()
        .nest("/api", api)
        .nest("/toolbox/{sandbox_id}", toolbox)
}

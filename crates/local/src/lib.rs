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
//! A sandbox is a container (see [`container`]) whose `/` is a folder under the home
//! (`$FORGE_HOME`, else the user's data dir) with this machine's toolchain mounted read-only;
//! no images are pulled.

mod api;
mod auth;
mod build_cache;
mod confine;
pub mod container;
mod deps_cache;
mod error;
mod events;
pub mod glob;
mod lifecycle;
mod listing;
mod object_storage;
mod objects;
mod ports;
mod preview;
mod procs;
mod signed;
mod snapshots;
mod spares;
mod store;
mod toolbox;
mod util;
mod volumes;

pub use container::{Isolation, Policy};
pub use error::LocalError;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// How to start the backend: every setting it has, read once ([`LocalConfig::from_env`]
/// reads them from `FORGE_*` variables; `Default` is the built-in defaults alone).
#[derive(Clone)]
pub struct LocalConfig {
    /// Where sandboxes and their records live. `None`: `$FORGE_HOME`, else the user's data dir
    /// (`$XDG_DATA_HOME/forge`, else `~/.local/share/forge`).
    pub home: Option<PathBuf>,
    /// `FORGE_LOCAL_KEY`: the API key every request must carry. `None`: a random one is
    /// generated. (Read from the environment or a file, never a command line: `ps` shows
    /// those to every user of the machine.)
    pub api_key: Option<String>,
    /// Address to bind. `None`: 127.0.0.1 on a free port. A non-loopback address is refused
    /// (`LOCAL_NOT_LOOPBACK`) unless `allow_remote`, and then warned about on stderr.
    pub bind: Option<SocketAddr>,
    /// `FORGE_ALLOW_REMOTE=1`: a non-loopback bind is allowed (and address-literal `Host`s).
    pub allow_remote: bool,
    /// `FORGE_ISOLATION`: `required` refuses to start where sandboxes cannot be containers;
    /// `off` runs them unconfined; otherwise containers where the machine allows them.
    pub isolation: Policy,
    /// `FORGE_SANDBOX_HOST_PORTS` (comma-separated): ports of this machine's loopback that
    /// sandboxes may reach as `127.0.0.1:<port>` (a local git server or registry). None by
    /// default: a sandbox reaches the internet, never this machine.
    pub host_ports: Vec<u16>,
    /// `FORGE_EGRESS_HOSTS` (`name:port=ip:port`, comma-separated): where the proxies of a
    /// sandbox's `domainAllowList` connect for that name and port instead of the address this
    /// machine's resolver gives (a local mirror; the tests' servers on 127.0.0.1). Only a
    /// listed name is ever looked up here; a sandbox cannot add to it.
    pub egress_hosts: std::collections::HashMap<(String, u16), SocketAddr>,
    /// `FORGE_SANDBOX_NETWORK`: the user-mode network tool (`slirp4netns`), or `none` for
    /// sandboxes with a loopback only. Default: the first one on the PATH.
    pub network: Option<String>,
    /// `FORGE_CGROUP_ROOT`: a delegated cgroup v2 folder to make sandbox cgroups in (for a
    /// backend not running as root).
    pub cgroup_root: Option<PathBuf>,
    /// `FORGE_SANDBOX_UID`: the uid (and gid) sandbox processes have on this machine when the
    /// backend runs as root. Default 1000001000, a uid no one else uses.
    pub sandbox_uid: u32,
    /// `FORGE_STOP_SANDBOXES_ON_EXIT=1`: stop every sandbox's container when the backend
    /// shuts down or is dropped. Off by default: sandboxes outlive the backend process (a
    /// `next dev` restart keeps its previews) and a backend started again finds them.
    pub stop_sandboxes_on_exit: bool,
    /// `FORGE_MAX_SANDBOXES`: most sandboxes one home holds (default 1000).
    pub max_sandboxes: usize,
    /// `FORGE_MAX_CONCURRENT_COMMANDS`: commands running at once, all sandboxes (256).
    pub max_commands: usize,
    /// `FORGE_SPARE_SANDBOXES`: most sandbox folders made ahead of time (128; 0: none).
    pub spare_sandboxes: usize,
    /// `FORGE_SESSION_LOG_LIMIT`: bytes kept of one session command's log (64 MiB).
    pub session_log_limit: u64,
    /// How long a minute of the sandboxes' timers (auto-stop, -pause, -archive, -delete) is:
    /// 60 s. Tests shorten it to see the timers act.
    pub lifecycle_minute: std::time::Duration,
    /// `FORGE_DEPENDENCY_CACHE=off`: no dependency cache (`POST
    /// /api/forge/sandboxes/{id}/dependencies` answers `skipped`). On by default.
    pub dependency_cache: bool,
    /// `FORGE_DEPENDENCY_CACHE_MAX_BYTES`: bytes of installed `node_modules` the cache keeps
    /// (least recently used evicted first; 8 GiB).
    pub dependency_cache_max_bytes: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            home: None,
            api_key: None,
            bind: None,
            allow_remote: false,
            isolation: Policy::Auto,
            host_ports: Vec::new(),
            egress_hosts: std::collections::HashMap::new(),
            network: None,
            cgroup_root: None,
            sandbox_uid: 1_000_001_000,
            stop_sandboxes_on_exit: false,
            max_sandboxes: 1000,
            max_commands: 256,
            spare_sandboxes: 128,
            session_log_limit: 64 * 1024 * 1024,
            lifecycle_minute: std::time::Duration::from_mins(1),
            dependency_cache: true,
            dependency_cache_max_bytes: 8 * 1024 * 1024 * 1024,
        }
    }
}

impl LocalConfig {
    /// The defaults, with every `FORGE_*` setting of the environment applied (unparsable
    /// values are ignored with a warning).
    pub fn from_env() -> LocalConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        fn parse<T: std::str::FromStr>(k: &str, v: Option<String>, or: T) -> T {
            match v {
                None => or,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    tracing::warn!("ignoring {k}={v}: not a number");
                    or
                }),
            }
        }
        let d = LocalConfig::default();
        LocalConfig {
            home: var("FORGE_HOME").map(PathBuf::from),
            api_key: var("FORGE_LOCAL_KEY").map(|k| k.trim().to_string()),
            allow_remote: var("FORGE_ALLOW_REMOTE").is_some_and(|v| v == "1"),
            isolation: Policy::parse(var("FORGE_ISOLATION").as_deref()),
            host_ports: var("FORGE_SANDBOX_HOST_PORTS")
                .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect())
                .unwrap_or_default(),
            egress_hosts: var("FORGE_EGRESS_HOSTS")
                .map(|v| parse_egress_hosts(&v))
                .unwrap_or_default(),
            network: var("FORGE_SANDBOX_NETWORK"),
            cgroup_root: var("FORGE_CGROUP_ROOT").map(PathBuf::from),
            sandbox_uid: parse("FORGE_SANDBOX_UID", var("FORGE_SANDBOX_UID"), d.sandbox_uid),
            stop_sandboxes_on_exit: var("FORGE_STOP_SANDBOXES_ON_EXIT").is_some_and(|v| v == "1"),
            max_sandboxes: parse(
                "FORGE_MAX_SANDBOXES",
                var("FORGE_MAX_SANDBOXES"),
                d.max_sandboxes,
            ),
            max_commands: parse(
                "FORGE_MAX_CONCURRENT_COMMANDS",
                var("FORGE_MAX_CONCURRENT_COMMANDS"),
                d.max_commands,
            )
            .max(1),
            spare_sandboxes: parse(
                "FORGE_SPARE_SANDBOXES",
                var("FORGE_SPARE_SANDBOXES"),
                d.spare_sandboxes,
            ),
            session_log_limit: parse(
                "FORGE_SESSION_LOG_LIMIT",
                var("FORGE_SESSION_LOG_LIMIT"),
                d.session_log_limit,
            )
            .max(1024),
            dependency_cache: !var("FORGE_DEPENDENCY_CACHE").is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            }),
            dependency_cache_max_bytes: parse(
                "FORGE_DEPENDENCY_CACHE_MAX_BYTES",
                var("FORGE_DEPENDENCY_CACHE_MAX_BYTES"),
                d.dependency_cache_max_bytes,
            ),
            ..d
        }
    }
}

/// `FORGE_EGRESS_HOSTS`: `name:port=ip:port` entries; a malformed one is ignored with a
/// warning.
fn parse_egress_hosts(v: &str) -> std::collections::HashMap<(String, u16), SocketAddr> {
    let mut out = std::collections::HashMap::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('=').and_then(|(from, to)| {
            let (name, port) = from.rsplit_once(':')?;
            let name = container::domains::normalise(name)?;
            Some(((name, port.parse().ok()?), to.trim().parse().ok()?))
        });
        match parsed {
            Some((k, v)) => {
                out.insert(k, v);
            }
            None => {
                tracing::warn!(
                    "ignoring FORGE_EGRESS_HOSTS entry {entry:?}: not name:port=ip:port"
                );
            }
        }
    }
    out
}

impl std::fmt::Debug for LocalConfig {
    /// The key is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("home", &self.home)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("bind", &self.bind)
            .field("isolation", &self.isolation)
            .field("host_ports", &self.host_ports)
            .field("stop_sandboxes_on_exit", &self.stop_sandboxes_on_exit)
            .finish_non_exhaustive()
    }
}

/// Shared state of a running backend.
pub(crate) struct AppState {
    pub api_key: String,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub config: LocalConfig,
    pub store: store::Store,
    pub runtime: container::Runtime,
    pub sessions: toolbox::process_sessions::Sessions,
    pub previews: preview::Previews,
    /// Sandbox events for the SDKs (Socket.IO).
    pub events: events::Events,
    pub snapshots: objects::Objects<forge_wire::Snapshot>,
    pub volumes: objects::Objects<forge_wire::Volume>,
    /// Commands (execute, code-run, session commands) running at once, all sandboxes.
    pub commands: Arc<tokio::sync::Semaphore>,
    /// Installed `node_modules` trees, for second previews.
    pub deps: deps_cache::Cache,
    /// Declarative images' build contexts (the S3 endpoint under `/s3`).
    pub storage: object_storage::Storage,
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
        let home = match config.home.clone() {
            Some(h) => h,
            None => default_home()?,
        };
        let bind = config
            .bind
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        if !bind.ip().is_loopback() {
            if !config.allow_remote {
                return Err(LocalError::NotLoopback(bind));
            }
            eprintln!(
                "forge-local: WARNING: listening on {bind} (FORGE_ALLOW_REMOTE=1): other machines \
                 can reach this backend; every request still needs the API key"
            );
        }
        util::raise_fd_limit();
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
        // The backend's folder is its own: nothing of another user reaches records or keys.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700));
        }
        let runtime = container::Runtime::new(container::Settings {
            home: home.clone(),
            policy: config.isolation,
            host_ports: config.host_ports.clone(),
            sandbox_uid: config.sandbox_uid,
            network: config.network.clone(),
            cgroup_root: config.cgroup_root.clone(),
            egress_hosts: container::egress::Hosts(
                config
                    .egress_hosts
                    .iter()
                    .map(|((n, p), a)| ((n.clone(), *p), *a))
                    .collect(),
            ),
        })
        .await?;
        let isolation = runtime.isolation.clone();
        if isolation.level != "container" {
            tracing::warn!(
                "sandboxes are NOT isolated here: {} (set FORGE_ISOLATION=required to refuse instead)",
                isolation.reason.as_deref().unwrap_or("unknown reason")
            );
        }
        let store = store::Store::open(&home, &runtime, &config).await?;
        // Containers a backend before this one left running are found again; the traces of
        // those that are gone (their state, their uploads in flight) are dropped.
        let previous: Vec<String> = store
            .all()
            .await
            .into_iter()
            .map(|r| r.sandbox.id)
            .collect();
        runtime.adopt(&previous);
        // A running sandbox with a domain list resolved nothing while no backend served it
        // (it fails closed): its resolver and proxies are served again.
        for rec in store.all().await {
            let list = api::domains_of(&rec.sandbox);
            if list.is_empty() || rec.sandbox.network_block_all {
                continue;
            }
            if let Err(e) = runtime.set_domains(&rec.sandbox.id, &list).await {
                tracing::warn!(
                    "sandbox {}: its domainAllowList is not served again: {}",
                    rec.sandbox.id,
                    e.message
                );
            }
        }
        for id in &previous {
            if runtime.running(id).is_none() {
                let _ = tokio::fs::remove_dir_all(store.state_dir(id).join("sessions")).await;
            }
            let _ = tokio::fs::remove_dir_all(store.uploads_dir(id)).await;
        }
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| LocalError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalError::Bind { addr: bind, source })?;
        let api_key = config
            .api_key
            .clone()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| format!("forge_{}", util::random_token(40)));
        let (events_layer, events) = events::Events::new(api_key.clone());
        let home_err = |source| LocalError::Home {
            path: home.clone(),
            source,
        };
        let snapshots = objects::Objects::open(home.join("snapshots")).map_err(home_err)?;
        let volumes = objects::Objects::open(home.join("volumes")).map_err(home_err)?;
        let deps = deps_cache::Cache::open(
            &home,
            config.dependency_cache,
            config.dependency_cache_max_bytes,
        )
        .map_err(home_err)?;
        let storage = object_storage::Storage::open(&home).map_err(home_err)?;
        let state: Shared = Arc::new(AppState {
            api_key: api_key.clone(),
            base_url: format!("http://{addr}"),
            commands: Arc::new(tokio::sync::Semaphore::new(config.max_commands)),
            config,
            store,
            runtime,
            sessions: toolbox::process_sessions::Sessions::default(),
            previews: preview::Previews::default(),
            events,
            snapshots,
            volumes,
            deps,
            storage,
        });
        state.sessions.restore(&state).await;
        tokio::spawn(lifecycle::run(
            Arc::downgrade(&state),
            state.config.lifecycle_minute,
        ));
        state.previews.restore(&state).await;
        let app = router(state.clone()).layer(events_layer);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            util::serve(listener, app, shutdown).await;
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

    /// How this backend's sandboxes are isolated (also in each sandbox's JSON).
    pub fn isolation(&self) -> &Isolation {
        &self.state.runtime.isolation
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

    /// Stops the server. Sandboxes keep running (a backend started again on the same home
    /// finds them) unless the config says `stop_sandboxes_on_exit`.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.state.previews.close_all().await;
        if self.state.config.stop_sandboxes_on_exit {
            self.state.runtime.stop_all().await;
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
    /// A backend dropped without [`LocalBackend::shutdown`] still stops serving, and kills its
    /// sandboxes' containers (without waiting) when the config says `stop_sandboxes_on_exit`.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if self.state.config.stop_sandboxes_on_exit {
            self.state.runtime.kill_all_now();
        }
    }
}

fn router(state: Shared) -> axum::Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    // Auth runs inside the error renderer, so a 401 gets the surface's error shape.
    let api = api::router(state.clone())
        .layer(from_fn_with_state(state.clone(), auth::require_key))
        .layer(from_fn(error::render_api));
    let toolbox = toolbox::router(state.clone())
        .layer(from_fn_with_state(state.clone(), auth::require_key))
        .layer(from_fn(error::render_toolbox));
    axum::Router::new()
        .nest("/api", api)
        // Signed with credentials from push access, not the API key (see object_storage).
        .nest("/s3", object_storage::s3_router(state))
        .nest("/toolbox/{sandbox_id}", toolbox)
}

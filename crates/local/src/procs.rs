//! Sandbox commands: the environment they get, the limit on how many run at once, and the
//! one thread that starts every process the backend itself starts (each sandbox's runtime).
//! The commands themselves are started by the sandbox's init (`container::process`).

use crate::container::{Runtime, INNER_ID, WORK_DIR};
use forge_wire::StringMap;

/// The PATH of a command in a container (Debian's default, as in Daytona's images).
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything a command needs to know about its sandbox.
#[derive(Clone)]
pub struct ProcEnv {
    pub sandbox_id: String,
    /// The sandbox's folder on this machine (`<home>/sandboxes/<id>`).
    pub dir: std::path::PathBuf,
    /// The sandbox env (`env` of the create request).
    pub env: StringMap,
}

/// A command's whole environment, `KEY=VALUE`: a container's own (`PATH`, `HOME=/home/daytona`,
/// `USER=daytona`, `SHELL`, the locale and proxy settings of this machine, the
/// `DAYTONA_SANDBOX_*` markers), or for an unconfined sandbox this machine's environment
/// filtered by [`inherited`] with `HOME` in the sandbox; then the sandbox env, then `extra`.
pub fn command_env(rt: &Runtime, penv: &ProcEnv, cwd: &str, extra: &StringMap) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let root = penv.dir.join("root");
    let home = rt.command_path(&root, WORK_DIR);
    if rt.confined() {
        env.push(("PATH".into(), CONTAINER_PATH.into()));
        for (k, v) in std::env::vars() {
            if passed_to_containers(&k, &v) {
                env.push((k, v));
            }
        }
        env.push(("SHELL".into(), "/bin/bash".into()));
    } else {
        for (k, v) in std::env::vars() {
            if inherited(&k) {
                env.push((k, v));
            }
        }
        // The sandbox's own config and caches (git --global, npm, ...), not this user's.
        for (var, sub) in [
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_DATA_HOME", ".local/share"),
        ] {
            env.push((var.into(), format!("{home}/{sub}")));
        }
    }
    if !env.iter().any(|(k, _)| k == "LANG") {
        env.push(("LANG".into(), "C.UTF-8".into()));
    }
    env.push(("HOME".into(), home));
    env.push(("USER".into(), "daytona".into()));
    env.push(("LOGNAME".into(), "daytona".into()));
    env.push(("PWD".into(), cwd.to_string()));
    env.push(("DAYTONA_SANDBOX_ID".into(), penv.sandbox_id.clone()));
    env.push(("DAYTONA_SANDBOX_USER".into(), "daytona".into()));
    env.push(("DAYTONA_SANDBOX_UID".into(), INNER_ID.to_string()));
    for (k, v) in penv.env.iter().chain(extra.iter()) {
        if valid_var(k, v) {
            env.push((k.clone(), v.clone()));
        }
    }
    // Later entries win; each name once.
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.reverse();
    out
}

/// A variable of the sandbox env or a request that can be set at all.
pub fn valid_var(k: &str, v: &str) -> bool {
    !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0')
}

/// Variables of this machine a container gets: the locale, the time zone, the proxy settings
/// and the CA bundles that go with them (a sandbox needs the same way out as this machine: a
/// proxy that re-signs TLS is only trusted through its CA). Nothing secret; a path only when
/// it is under `/etc` or `/usr`, which containers see as this machine has them.
fn passed_to_containers(name: &str, value: &str) -> bool {
    const CA_BUNDLES: [&str; 6] = [
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "REQUESTS_CA_BUNDLE",
    ];
    if CA_BUNDLES.contains(&name) {
        return (value.starts_with("/etc/") || value.starts_with("/usr/")) && !value.contains("..");
    }
    const EXACT: [&str; 9] = [
        "LANG",
        "LANGUAGE",
        "TZ",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
    ];
    EXACT.contains(&name) || name.starts_with("LC_")
}

/// The first executable `program` in `path`, as `execvp` would find it. `None` for a name
/// with a `/` or a PATH with a relative entry, which depends on the cwd.
pub(crate) fn which(program: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dirs: Vec<_> = std::env::split_paths(path).collect();
    if program.is_empty() || program.contains('/') || dirs.iter().any(|d| !d.is_absolute()) {
        return None;
    }
    dirs.into_iter().map(|dir| dir.join(program)).find(|f| {
        std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Whether a variable of the backend's own environment is passed on to the commands of an
/// unconfined sandbox.
///
/// They get this machine's environment (PATH, locale, CA bundles, proxies, tool roots) so
/// that its tools work, minus: the backend's own settings (`DAYTONA_*`, `FORGE_*`), what a
/// parent `npm` / `cargo` run leaks and would change how tools behave inside the sandbox
/// (`npm_*`, `INIT_CWD`, `NODE_ENV`, `NODE_OPTIONS`, `CARGO_*` but `CARGO_HOME`), and anything
/// named like a secret (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*API_KEY*`, ...). A sandbox that
/// needs such a value gets it explicitly through its `env` or a request's `envs`.
pub fn inherited(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const PREFIXES: [&str; 4] = ["DAYTONA_", "FORGE_", "NPM_", "CARGO_"];
    const EXACT: [&str; 7] = [
        "INIT_CWD",
        "NODE_ENV",
        "NODE_OPTIONS",
        "PWD",
        "OLDPWD",
        "LD_PRELOAD",
        "HOME",
    ];
    const SECRETS: [&str; 9] = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ];
    if upper == "CARGO_HOME" {
        return true;
    }
    !(PREFIXES.iter().any(|p| upper.starts_with(p))
        || EXACT.contains(&upper.as_str())
        || SECRETS.iter().any(|s| upper.contains(s)))
}

/// Most commands running at once: `FORGE_MAX_CONCURRENT_COMMANDS`, default 256.
pub fn max_commands() -> usize {
    std::env::var("FORGE_MAX_CONCURRENT_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(256)
}

/// A slot for one more running command, or 429 when all are taken.
pub fn command_slot(
    slots: &std::sync::Arc<tokio::sync::Semaphore>,
) -> Result<tokio::sync::OwnedSemaphorePermit, crate::error::Failure> {
    slots.clone().try_acquire_owned().map_err(|_| {
        crate::error::Failure::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many commands running at once (limit {}): retry later",
                max_commands()
            ),
        )
    })
}

/// Spawns `cmd` on the spawner thread (see [`Spawner`]).
pub async fn spawn(cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    Spawner::get().spawn(cmd).await
}

/// How much lower sandbox processes run than the backend (`nice` steps).
const SANDBOX_NICENESS: i32 = 5;

/// One thread that starts every process the backend starts (each sandbox's runtime), at a
/// lower CPU priority than the backend.
///
/// Why: starting a process holds the calling thread until the child has exec'd (vfork),
/// and on the runtime's two workers that held up every other request; and sandbox processes
/// (dev servers, installs) competed with the API on equal terms. A child inherits its parent
/// thread's nice value, so sandboxes started here (and everything they start) run
/// `SANDBOX_NICENESS` steps lower.
struct Spawner {
    jobs: std::sync::mpsc::Sender<SpawnJob>,
}

/// A command, the runtime it belongs to (tokio reaps children through the runtime that
/// spawned them), and where the child goes.
type SpawnJob = (
    tokio::process::Command,
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<std::io::Result<tokio::process::Child>>,
);

impl Spawner {
    fn get() -> &'static Spawner {
        static SPAWNER: std::sync::OnceLock<Spawner> = std::sync::OnceLock::new();
        SPAWNER.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
            let started = std::thread::Builder::new()
                .name("forge-spawner".into())
                .spawn(move || {
                    // SAFETY: setpriority(2) on this thread (tid 0 = the caller); no memory.
                    unsafe {
                        libc::setpriority(libc::PRIO_PROCESS, 0, SANDBOX_NICENESS);
                    }
                    for (mut cmd, runtime, reply) in rx {
                        // Nobody waits for it any more (the start was cancelled, or its runtime
                        // is shutting down): not started. tokio's spawn can fail after the fork
                        // when the runtime is shutting down, dropping a child it never reports.
                        if reply.is_closed() {
                            continue;
                        }
                        let _entered = runtime.enter();
                        // Given up meanwhile: the child is dropped, which closes its pipes; a
                        // sandbox's runtime ends its sandbox when nobody reads its start.
                        let _ = reply.send(cmd.spawn());
                    }
                });
            if let Err(e) = started {
                tracing::warn!("cannot start the spawner thread: {e}");
            }
            Spawner { jobs: tx }
        })
    }

    async fn spawn(&self, cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        if self.jobs.send((cmd, runtime, reply)).is_err() {
            return Err(std::io::Error::other("the spawner thread is gone"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")))
    }
}

#[cfg(test)]
mod tests {
    use super::{inherited, which};
    use std::ffi::OsStr;

    #[test]
    fn which_finds_like_execvp_or_leaves_it_to_std() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let not_exec = dir.path().join("data");
        std::fs::write(&not_exec, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent-dir".as_ref(), dir.path()]).unwrap();
        assert_eq!(which("tool", &path), Some(tool));
        assert_eq!(which("data", &path), None);
        assert_eq!(which("missing", &path), None);
        assert_eq!(which("./tool", &path), None);
        let relative = std::env::join_paths([dir.path(), "bin".as_ref()]).unwrap();
        assert_eq!(which("tool", &relative), None);
        assert_eq!(which("tool", OsStr::new("")), None);
    }

    #[test]
    fn secrets_and_tool_leaks_are_not_inherited() {
        for name in [
            "DAYTONA_API_KEY",
            "FORGE_HOME",
            "GITHUB_TOKEN",
            "aws_secret_access_key",
            "npm_config_prefix",
            "NPM_TOKEN",
            "NODE_ENV",
            "CARGO_TARGET_DIR",
            "OPENAI_API_KEY",
            "LD_PRELOAD",
        ] {
            assert!(!inherited(name), "{name}");
        }
        for name in [
            "PATH",
            "LANG",
            "SSL_CERT_FILE",
            "PYENV_ROOT",
            "CARGO_HOME",
            "https_proxy",
        ] {
            assert!(inherited(name), "{name}");
        }
    }
}

//! Sandbox processes: how they are spawned (own process group, sandbox env) and how they are
//! killed (by group, and by a `/proc` sweep for anything that left its group).
//!
//! Every process started for a sandbox carries `DAYTONA_SANDBOX_ID=<id>` in its environment.
//! Stop and delete kill the recorded process groups, then sweep `/proc/*/environ` for that
//! marker, which also catches processes that called `setsid` to leave their group.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The environment marker naming a process's sandbox.
pub const SANDBOX_ENV: &str = "DAYTONA_SANDBOX_ID";

/// Everything a spawned process needs to know about its sandbox.
#[derive(Clone)]
pub struct ProcEnv {
    pub sandbox_id: String,
    /// Host path of `/home/daytona` (the process's `HOME`).
    pub home: std::path::PathBuf,
    /// The sandbox env (`env` of the create request).
    pub env: forge_wire::StringMap,
    /// The port shim, when available (see `crate::ports`).
    pub ports: Option<PortsEnv>,
}

/// What a sandbox command needs for its own port numbers: the shim to preload and the
/// backend-private folder where it publishes `P → real port`.
#[derive(Clone)]
pub struct PortsEnv {
    pub shim: std::path::PathBuf,
    pub dir: std::path::PathBuf,
}

/// Builds a command for a sandbox: its own process group, the host env filtered by
/// [`inherited`], then `HOME` (and XDG dirs) in the sandbox, the marker, the sandbox env and
/// `extra`. When the backend isolates commands (see `crate::isolation`) the program is
/// bwrap, with the sandbox's program as the first argument after `--`: arguments the caller
/// adds go to that program.
pub fn command(
    program: &str,
    penv: &ProcEnv,
    cwd: &Path,
    extra: &forge_wire::StringMap,
) -> tokio::process::Command {
    // Resolved here against the PATH the command will see: std can then spawn with
    // `posix_spawn` (vfork-like) instead of `fork`, which copies the backend's page tables and
    // costs ~2 ms of CPU per command when many sandboxes run at once. std falls back to fork
    // when the env sets PATH and the program is a bare name. argv[0] stays the bare name.
    let path = extra
        .get("PATH")
        .or_else(|| penv.env.get("PATH"))
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"));
    let resolved = path.as_deref().and_then(|p| which(program, p));
    // A bare name that no PATH entry holds: spawned directly, so it fails to spawn as before
    // (rather than as bwrap's exit 1). Otherwise bwrap `execvp`s it on the same PATH.
    let findable = resolved.is_some()
        || program.contains('/')
        || path
            .as_deref()
            .is_some_and(|p| std::env::split_paths(p).any(|d| !d.is_absolute()));
    let preload = preload_value(penv, extra);
    let shim = penv.ports.as_ref().map(|p| p.shim.as_path());
    let view = findable
        .then(|| crate::isolation::wrapper(&penv.home, cwd, shim, preload.as_ref()))
        .flatten();
    let wrapped = view.is_some();
    let mut cmd = match (view, resolved) {
        (Some((bwrap, options)), _) => {
            let mut c = tokio::process::Command::new(bwrap);
            c.args(options).arg(program);
            c
        }
        (None, Some(full)) => {
            let mut c = tokio::process::Command::new(full);
            c.arg0(program);
            c
        }
        (None, None) => tokio::process::Command::new(program),
    };
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        if inherited(&k.to_string_lossy()) {
            cmd.env(k, v);
        }
    }
    // The sandbox's own config and caches (git --global, npm, ...), not this user's.
    for (var, sub) in [
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_DATA_HOME", ".local/share"),
    ] {
        cmd.env(var, penv.home.join(sub));
    }
    cmd.env("HOME", &penv.home)
        .env("PWD", cwd)
        .env(SANDBOX_ENV, &penv.sandbox_id);
    for (k, v) in penv.env.iter().chain(extra.iter()) {
        if valid_var(k, v) {
            cmd.env(k, v);
        }
    }
    if let Some(ports) = &penv.ports {
        cmd.env("FORGE_PORTS_DIR", &ports.dir);
    }
    match preload {
        // Given to the command through bwrap's `--setenv`, not loaded into bwrap itself.
        Some(_) if wrapped => cmd.env_remove("LD_PRELOAD"),
        Some(value) => cmd.env("LD_PRELOAD", value),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    cmd.current_dir(cwd)
        .process_group(0)
        .stdin(std::process::Stdio::null());
    cmd
}

/// A variable of the sandbox env or a request that can be set at all.
fn valid_var(k: &str, v: &str) -> bool {
    !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0')
}

/// `LD_PRELOAD` for a sandbox command: the port shim first (so a sandbox env cannot point it
/// elsewhere), then a preload of the sandbox's own (request `envs`, else sandbox `env`, else
/// this machine's); an empty one is dropped.
fn preload_value(penv: &ProcEnv, extra: &forge_wire::StringMap) -> Option<std::ffi::OsString> {
    let mut own = std::env::var("LD_PRELOAD").ok();
    for (k, v) in penv.env.iter().chain(extra.iter()) {
        if k == "LD_PRELOAD" && valid_var(k, v) {
            own = Some(v.clone());
        }
    }
    let own = own.filter(|p| !p.trim().is_empty());
    let Some(ports) = &penv.ports else {
        return own.map(Into::into);
    };
    let mut value = ports.shim.as_os_str().to_os_string();
    if let Some(other) = own {
        value.push(" ");
        value.push(other);
    }
    Some(value)
}

/// The first executable `program` in `path`, as `execvp` would find it. `None` (let std
/// search) for a name with a `/` or a PATH with a relative entry, which depends on the cwd.
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

/// Whether a variable of the backend's own environment is passed on to sandbox commands.
///
/// Commands get this machine's environment (PATH, locale, CA bundles, proxies, tool roots) so
/// that its tools work, minus: the backend's own settings (`DAYTONA_*`, `FORGE_*`), what a
/// parent `npm` / `cargo` run leaks and would change how tools behave inside the sandbox
/// (`npm_*`, `INIT_CWD`, `NODE_ENV`, `NODE_OPTIONS`, `CARGO_*` but `CARGO_HOME`), and anything
/// named like a secret (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*API_KEY*`, ...). A sandbox that
/// needs such a value gets it explicitly through its `env` or a request's `envs`.
pub fn inherited(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const PREFIXES: [&str; 4] = ["DAYTONA_", "FORGE_", "NPM_", "CARGO_"];
    const EXACT: [&str; 5] = ["INIT_CWD", "NODE_ENV", "NODE_OPTIONS", "PWD", "OLDPWD"];
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

/// Spawns `cmd` on the spawner thread (see [`Spawner`]).
pub async fn spawn(cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    Spawner::get().spawn(cmd).await
}

/// How much lower sandbox processes run than the backend (`nice` steps).
const SANDBOX_NICENESS: i32 = 5;

/// One thread that starts every sandbox process, at a lower CPU priority than the backend.
///
/// Why: starting a process holds the calling thread until the child has exec'd (vfork;
/// longer through bwrap), up to a millisecond, and on the runtime's two workers that held up
/// every other request (with 100 creates each followed by a command, an instrumented run
/// showed the create handler's p50 at 9 ms, 3–8 ms once spawns left the workers); and
/// sandbox processes (dev servers, installs) competed with the API on equal terms. A child
/// inherits its parent thread's nice value, so commands started here run
/// `SANDBOX_NICENESS` steps lower. (The lower priority alone made no difference beyond this
/// machine's noise to 100 creates each followed by a command: nice 19 against 5, two sets of four
/// or five runs each.)
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
                        let _entered = runtime.enter();
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

/// Process groups started per sandbox, so that stop/delete can kill them all.
#[derive(Default)]
pub struct Groups {
    by_sandbox: Mutex<HashMap<String, HashSet<i32>>>,
    /// Sandboxes made by this backend that have not started a process yet: stopping or
    /// deleting one needs no `/proc` sweep (a read of every process's environment).
    untouched: Mutex<HashSet<String>>,
}

impl Groups {
    /// Notes a new sandbox, which has no process yet.
    pub fn add_untouched(&self, sandbox: &str) {
        if let Ok(mut s) = self.untouched.lock() {
            s.insert(sandbox.to_string());
        }
    }

    /// Forgets that a sandbox never ran a process (it has, or it is deleted).
    pub fn forget(&self, sandbox: &str) {
        if let Ok(mut s) = self.untouched.lock() {
            s.remove(sandbox);
        }
    }

    /// Records the group led by `pid` (we spawn with `process_group(0)`, so pgid = pid).
    pub fn add(&self, sandbox: &str, pgid: i32) {
        self.forget(sandbox);
        if let Ok(mut m) = self.by_sandbox.lock() {
            m.entry(sandbox.to_string()).or_default().insert(pgid);
        }
    }

    /// Forgets a group once nothing is left in it.
    pub fn release_if_empty(&self, sandbox: &str, pgid: i32) {
        if !group_alive(pgid) {
            self.release(sandbox, pgid);
        }
    }

    /// Forgets a group (gone, or just killed).
    fn release(&self, sandbox: &str, pgid: i32) {
        if let Ok(mut m) = self.by_sandbox.lock() {
            if let Some(set) = m.get_mut(sandbox) {
                set.remove(&pgid);
            }
        }
    }

    /// Kills every process of a sandbox: SIGTERM first unless `force`, then SIGKILL for what
    /// is left; returns once nothing carrying the sandbox marker is alive (bounded wait).
    /// True when nothing is left (a survivor could still write into the sandbox's folder).
    pub async fn kill_sandbox(&self, sandbox: &str, force: bool) -> bool {
        let untouched = self
            .untouched
            .lock()
            .map(|s| s.contains(sandbox))
            .unwrap_or(false);
        if untouched {
            return true;
        }
        let groups: Vec<i32> = self
            .by_sandbox
            .lock()
            .map(|mut m| m.remove(sandbox).unwrap_or_default().into_iter().collect())
            .unwrap_or_default();
        let sandbox = sandbox.to_string();
        tokio::task::spawn_blocking(move || {
            if !force {
                for g in &groups {
                    kill_group(*g, libc::SIGTERM);
                }
                for pid in marked_pids(&sandbox) {
                    signal(pid, libc::SIGTERM);
                }
                wait_until(Duration::from_secs(2), || {
                    groups.iter().all(|g| !group_alive(*g)) && marked_pids(&sandbox).is_empty()
                });
            }
            for _ in 0..5 {
                for g in &groups {
                    kill_group(*g, libc::SIGKILL);
                }
                for pid in marked_pids(&sandbox) {
                    signal(pid, libc::SIGKILL);
                }
                if wait_until(Duration::from_millis(500), || {
                    marked_pids(&sandbox).is_empty()
                }) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }
}

impl Groups {
    /// Kills everything at once, without waiting (for `Drop`, where nothing can be awaited):
    /// SIGKILL to every recorded group and to every process marked with a known sandbox.
    pub fn kill_all_now(&self) {
        let all: Vec<(String, Vec<i32>)> = self
            .by_sandbox
            .lock()
            .map(|mut m| {
                m.drain()
                    .map(|(k, v)| (k, v.into_iter().collect()))
                    .collect()
            })
            .unwrap_or_default();
        for (sandbox, groups) in all {
            for g in groups {
                kill_group(g, libc::SIGKILL);
            }
            for pid in marked_pids(&sandbox) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// Kills a sandbox's process group when dropped before [`GroupGuard::disarm`]: a request
/// whose client went away (an aborted `git clone`) stops its work instead of running on.
pub struct GroupGuard<'a> {
    groups: &'a Groups,
    sandbox: &'a str,
    pgid: i32,
    armed: bool,
}

impl<'a> GroupGuard<'a> {
    /// Records the group led by `pgid` for `sandbox` and guards it.
    pub fn new(groups: &'a Groups, sandbox: &'a str, pgid: i32) -> Self {
        groups.add(sandbox, pgid);
        GroupGuard {
            groups,
            sandbox,
            pgid,
            armed: true,
        }
    }

    /// The work ended on its own: forget the group once it is empty.
    pub fn disarm(mut self) {
        self.armed = false;
        self.groups.release_if_empty(self.sandbox, self.pgid);
    }
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, libc::SIGKILL);
            self.groups.release(self.sandbox, self.pgid);
        }
    }
}

/// Sends `sig` to the whole group.
pub fn kill_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

fn signal(pid: i32, sig: i32) {
    if pid > 1 && pid != std::process::id() as i32 {
        // SAFETY: plain kill(2) on a pid.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// True while any process of the group exists (zombies included until reaped).
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Live (non-zombie) processes whose environment carries `DAYTONA_SANDBOX_ID=<sandbox>`.
pub fn marked_pids(sandbox: &str) -> Vec<i32> {
    let needle = format!("{SANDBOX_ENV}={sandbox}");
    pids_where(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
}

/// Processes marked with a sandbox other than `sandbox`.
pub fn pids_of_other_sandboxes(sandbox: &str) -> Vec<i32> {
    let prefix = format!("{SANDBOX_ENV}=");
    let mine = format!("{prefix}{sandbox}");
    pids_where(|env| {
        env.split(|b| *b == 0)
            .any(|kv| kv.starts_with(prefix.as_bytes()) && kv != mine.as_bytes())
    })
}

/// Processes (not this one) whose `/proc/<pid>/environ` passes `test`.
fn pids_where(test: impl Fn(&[u8]) -> bool) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| test(&env))
                .unwrap_or(false)
        })
        .collect()
}

/// The exit code as the daemon reports it: the code, or 128 + signal when killed.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::{command, inherited, which, PortsEnv, ProcEnv};
    use std::ffi::OsStr;

    #[test]
    fn commands_preload_the_port_shim_first_and_keep_a_preload_of_their_own() {
        let env_of = |ports: Option<PortsEnv>, extra: &[(&str, &str)]| {
            let penv = ProcEnv {
                sandbox_id: "sbx".into(),
                home: "/h".into(),
                env: [("LD_PRELOAD".to_string(), "/lib/sandbox.so".to_string())]
                    .into_iter()
                    .collect(),
                ports,
            };
            let extra = extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let cmd = command("true", &penv, std::path::Path::new("/"), &extra);
            let get = |k: &str| {
                cmd.as_std()
                    .get_envs()
                    .find(|(n, _)| *n == k)
                    .and_then(|(_, v)| v)
                    .map(|v| v.to_string_lossy().into_owned())
            };
            (get("LD_PRELOAD"), get("FORGE_PORTS_DIR"))
        };
        let ports = PortsEnv {
            shim: "/home/forge/libforgeports.so".into(),
            dir: "/home/forge/sandboxes/sbx/ports".into(),
        };
        assert_eq!(
            env_of(Some(ports.clone()), &[]),
            (
                Some("/home/forge/libforgeports.so /lib/sandbox.so".into()),
                Some("/home/forge/sandboxes/sbx/ports".into())
            )
        );
        // A request cannot point the ports folder elsewhere; an empty preload is dropped.
        assert_eq!(
            env_of(
                Some(ports),
                &[("FORGE_PORTS_DIR", "/elsewhere"), ("LD_PRELOAD", " ")]
            ),
            (
                Some("/home/forge/libforgeports.so".into()),
                Some("/home/forge/sandboxes/sbx/ports".into())
            )
        );
        // Without the shim nothing is added.
        assert_eq!(env_of(None, &[]), (Some("/lib/sandbox.so".into()), None));
    }

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
        // A relative PATH entry depends on the cwd: std's own search decides.
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

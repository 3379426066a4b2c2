//! Each sandbox is a container: its own user, mount, pid, network, ipc, uts and cgroup
//! namespaces around a long-lived init, one cgroup with its limits, and a user-mode network,
//! made from the Linux primitives a container runtime uses, without Docker, a daemon or (where
//! the kernel allows unprivileged user namespaces) root. The runtime itself is a small C
//! program, `runtime/forge-sandbox.c`, built with this crate and written into the backend's
//! home at start; this module decides how it is run, starts and stops each sandbox's
//! container, and talks to its init (`ctl`).
//!
//! What a sandbox looks like from inside, whatever the image asked for: `/` is its own folder
//! with this machine's toolchain read-only (`layout`), it is `daytona` (uid 1000) in
//! `/home/daytona`, it sees only its own processes, and it has every port to itself. Where a
//! piece is missing on this machine (no user namespaces, no cgroups, no network tool) the
//! backend says so at start, each sandbox's JSON says which isolation it got
//! ([`Isolation`]), and `FORGE_ISOLATION=required` refuses to start instead.
//!
//! Containers outlive the backend process (as Daytona's sandboxes outlive an API restart):
//! each init's pid and start time are written to `<sandbox>/run/init`, and a backend started
//! again on the same home finds them there ([`Runtime::adopt`]).

pub mod cgroup;
pub mod ctl;
pub mod domains;
pub mod egress;
pub mod layout;
pub mod net;
pub mod process;
pub mod usage;

pub use layout::{Layout, INNER_ID, WORK_DIR};

use crate::error::{Failure, LocalError};
use cgroup::{Cgroups, Limits};
use ctl::{op, Ctl};
use net::Network;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// The runtime program, built by `build.rs` (empty where it could not be built).
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/forge-sandbox"));

/// How long a container may take to start (a slow disk, a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub use forge_wire::Isolation;

/// What the backend's configuration asks of isolation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Containers where the machine allows them, else unconfined (and said so).
    #[default]
    Auto,
    /// Containers or no backend at all.
    Required,
    /// Unconfined sandboxes (processes of this machine's user).
    Off,
}

impl Policy {
    /// A `FORGE_ISOLATION` value: `required`, `off` (`0`, `false`, `no`), else `auto`.
    pub fn parse(value: Option<&str>) -> Policy {
        match value
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "required" => Policy::Required,
            "off" | "0" | "false" | "no" => Policy::Off,
            _ => Policy::Auto,
        }
    }
}

/// What the runtime needs to be set up for one backend home.
pub struct Settings {
    pub home: PathBuf,
    pub policy: Policy,
    /// Host loopback ports sandboxes may reach (relayed into each one).
    pub host_ports: Vec<u16>,
    /// The host uid/gid sandbox processes run as when the backend runs as root.
    pub sandbox_uid: u32,
    /// The network tool to use (`none`: loopback only); `None`: the first one found.
    pub network: Option<String>,
    /// A delegated cgroup (v2) to make sandboxes' cgroups in.
    pub cgroup_root: Option<PathBuf>,
    /// Where a `domainAllowList`'s proxies connect for given (name, port) instead of this
    /// machine's resolver (tests, local mirrors).
    pub egress_hosts: egress::Hosts,
}

/// How to start one sandbox's container.
#[derive(Clone, Debug)]
pub struct Start {
    pub limits: Limits,
    /// Host folders mounted read-write at sandbox paths (volumes): `(volume folder, the
    /// folder mounted: the volume folder or its subpath, sandbox path)`.
    pub mounts: Vec<(PathBuf, PathBuf, String)>,
    /// Whether it reaches the network (false: `networkBlockAll`, a loopback only).
    pub network: bool,
    /// `networkAllowList`: the only addresses it reaches (empty: all).
    pub allow: Vec<(std::net::Ipv4Addr, u8)>,
    /// `domainAllowList`: the only names it reaches, through the backend's resolver and
    /// proxies (empty: no list). With a list, its network tool is never attached.
    pub domains: Vec<domains::Pattern>,
}

impl Start {
    /// Whether the network tool is attached (the sandbox routes out by itself).
    pub fn attached(&self) -> bool {
        self.network && self.domains.is_empty()
    }
}

/// A sandbox whose container runs.
pub struct Running {
    /// The init's pid on this machine, and its start time (the pair names it for good).
    pub pid: i32,
    pub start: u64,
    pub ctl: Ctl,
    netlink: Mutex<Option<OwnedFd>>,
    /// The `domainAllowList` resolver and proxies serving it, if it has a list.
    egress: Mutex<Option<egress::Filter>>,
}

/// A container whose start has not finished, once its init is known. Dropped armed it kills
/// that init (by pid and start time: never a container started since for the same sandbox):
/// a start that fails, is cancelled (its request or task dropped, the backend's runtime
/// shutting down) or ends after the backend began taking its sandboxes down leaves no
/// container behind. Before the init is known nothing needs killing here: the runtime lets the
/// init run only once the backend has read its pid (SIGUSR1 from `launch`), and ends the
/// sandbox itself when that go-ahead does not come.
/// [`Starting::done`] once the container is in the running map, where `stop` and
/// `kill_all_now` find it.
struct Starting {
    /// The init's pid and start time, from the monitor's `pid` line.
    init: Option<(i32, u64)>,
    armed: bool,
}

impl Starting {
    fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = self.init.and_then(|(pid, start)| init_pidfd(pid, start)) {
            sigkill(&fd);
        }
    }
}

/// A sandbox's starts and stops one at a time (`lock`), and whether a stop came after its
/// last create or start (`stopped`): a start that read the sandbox as started before a stop
/// reaches the lock after it, and must not bring the container back. `turn` is the API's:
/// one lifecycle change (start, stop, pause, delete) at a time, its record and its container
/// changed together (see [`Runtime::turn`]).
#[derive(Default)]
struct Gate {
    lock: tokio::sync::Mutex<()>,
    turn: Arc<tokio::sync::Mutex<()>>,
    stopped: AtomicBool,
}

/// Starts, finds and stops the containers of one backend home.
pub struct Runtime {
    program: PathBuf,
    namespaces: bool,
    layout: Arc<Layout>,
    pub cgroups: Cgroups,
    pub network: Network,
    /// uid/gid of the sandbox user on this machine.
    pub uid: u32,
    pub gid: u32,
    host_ports: Vec<u16>,
    egress_hosts: Arc<egress::Hosts>,
    pub isolation: Isolation,
    sandboxes: PathBuf,
    /// Disk measurements of sandboxes' folders.
    pub disk: Arc<usage::Disk>,
    running: Mutex<HashMap<String, Arc<Running>>>,
    /// Each sandbox's gate (never removed: a start task still queued for a deleted sandbox
    /// must find its stop).
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    /// The backend is taking its sandboxes down (`stop_all`, `kill_all_now`): a start that
    /// ends now kills what it started.
    closing: std::sync::atomic::AtomicBool,
}

/// A short stable tag of a home folder (names its cgroups).
fn tag_of(home: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    home.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Writes the runtime program into `<home>/bin` under a name made of its content (so a
/// running copy is never overwritten) and returns its path.
fn install_program(home: &Path) -> std::io::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::PermissionsExt;
    if PROGRAM.is_empty() {
        return Err(std::io::Error::other(
            "this build has no sandbox runtime (it was built without a C compiler, or not for Linux)",
        ));
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    PROGRAM.hash(&mut h);
    let dir = home.join("bin");
    std::fs::create_dir_all(&dir)?;
    let name = format!("forge-sandbox-{:016x}", h.finish());
    let path = dir.join(&name);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == PROGRAM.len() as u64) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, PROGRAM)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
    std::fs::rename(&tmp, &path)?;
    // Older versions, left by earlier builds.
    for e in std::fs::read_dir(&dir)?.flatten() {
        let n = e.file_name();
        if n != name.as_str() && n.to_string_lossy().starts_with("forge-sandbox-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(path)
}

/// uid and gid of sandbox users on this machine (the last runtime set up in this process;
/// every runtime of one process has the same).
static SANDBOX_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// uid and gid of sandbox users on this machine, as file owners show them.
pub fn sandbox_ids() -> (u32, u32) {
    let v = SANDBOX_IDS.load(std::sync::atomic::Ordering::Relaxed);
    ((v >> 32) as u32, v as u32)
}

/// This process's effective uid and gid.
fn ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

impl Runtime {
    /// Sets up the runtime for a home: installs the program, writes the sandbox's `/etc`
    /// files, finds the cgroups and the network tool, and tries a container once (unless
    /// the policy is `Off`). With `Required`, a machine that cannot give containers is an
    /// error; otherwise sandboxes run unconfined and the reason is kept.
    pub async fn new(settings: Settings) -> Result<Runtime, LocalError> {
        let home = settings.home.clone();
        let unusable = |reason: String| LocalError::Isolation { reason };
        let program = {
            let home = home.clone();
            tokio::task::spawn_blocking(move || install_program(&home))
                .await
                .map_err(|e| unusable(e.to_string()))?
                .map_err(|e| unusable(format!("cannot install the sandbox runtime: {e}")))?
        };
        let path = std::env::var_os("PATH");
        let network = Network::detect(path.as_deref(), settings.network.as_deref());
        let etc = home.join("runtime").join("etc");
        // Without a network tool the resolver is still named: a sandbox with a domain list
        // gets the backend's there (one without reaches nothing either way).
        let nameservers = if network.nameservers.is_empty() {
            vec![egress::ADDRESS.to_string()]
        } else {
            network.nameservers.clone()
        };
        layout::write_etc(&etc, &nameservers)
            .map_err(|e| unusable(format!("cannot write {}: {e}", etc.display())))?;
        let layout = Arc::new(Layout::for_this_machine(&etc));
        let cgroups = {
            let tag = tag_of(&home);
            let delegated = settings.cgroup_root.clone();
            tokio::task::spawn_blocking(move || Cgroups::detect(&tag, delegated))
                .await
                .unwrap_or_else(|e| Cgroups::Unavailable(e.to_string()))
        };
        let (euid, egid) = ids();
        let (uid, gid) = if euid == 0 {
            (settings.sandbox_uid, settings.sandbox_uid)
        } else {
            (euid, egid)
        };
        SANDBOX_IDS.store(
            (u64::from(uid) << 32) | u64::from(gid),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut rt = Runtime {
            program,
            namespaces: settings.policy != Policy::Off,
            layout,
            cgroups,
            network,
            uid,
            gid,
            host_ports: settings.host_ports,
            egress_hosts: Arc::new(settings.egress_hosts),
            isolation: Isolation {
                level: String::new(),
                user: String::new(),
                network: String::new(),
                limits: String::new(),
                reason: None,
            },
            sandboxes: home.join("sandboxes"),
            disk: Arc::default(),
            running: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
        };
        if home.to_string_lossy().contains([':', ' ', '\n']) {
            rt.namespaces = false;
            rt.isolation.reason = Some(format!(
                "the home folder {} contains a colon, space or newline",
                home.display()
            ));
        } else if rt.namespaces {
            if let Err(reason) = rt.probe(&home).await {
                rt.namespaces = false;
                rt.isolation.reason = Some(reason);
            }
        } else {
            rt.isolation.reason = Some("FORGE_ISOLATION=off".into());
        }
        if !rt.namespaces && settings.policy == Policy::Required {
            return Err(unusable(rt.isolation.reason.clone().unwrap_or_default()));
        }
        if !rt.namespaces {
            // Unconfined: the sandbox's processes are this machine's user.
            (rt.uid, rt.gid) = (euid, egid);
            SANDBOX_IDS.store(
                (u64::from(euid) << 32) | u64::from(egid),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        rt.isolation = rt.describe();
        Ok(rt)
    }

    fn describe(&self) -> Isolation {
        let who = if self.uid == ids().0 {
            "this machine's user".to_string()
        } else {
            format!("uid {}", self.uid)
        };
        if self.namespaces {
            Isolation {
                level: "container".into(),
                user: format!("daytona (uid {INNER_ID}), {who} outside"),
                network: match &self.network.argv {
                    Some(_) => format!("own namespace, {}", self.network.name),
                    None => format!("own namespace, {}", self.network.name),
                },
                limits: self.cgroups.describe(),
                reason: self.isolation.reason.clone(),
            }
        } else {
            Isolation {
                level: "none".into(),
                user: who,
                network: "this machine's".into(),
                limits: self.cgroups.describe(),
                reason: self.isolation.reason.clone(),
            }
        }
    }

    /// The file system layout of every sandbox here.
    pub fn layout(&self) -> Arc<Layout> {
        self.layout.clone()
    }

    /// Whether sandboxes are containers here.
    pub fn confined(&self) -> bool {
        self.namespaces
    }

    /// Starts one container in a scratch folder and stops it again.
    async fn probe(&self, home: &Path) -> Result<(), String> {
        let dir = home.join("runtime").join("probe");
        let _ = std::fs::remove_dir_all(&dir);
        let skeleton = self.layout.skeleton();
        let (uid, gid) = (self.uid, self.gid);
        let made = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || make_skeleton(&dir, &skeleton, uid, gid))
                .await
                .map_err(|e| e.to_string())?
        };
        made.map_err(|e| format!("cannot make the probe sandbox: {e}"))?;
        let probe = Start {
            limits: Limits {
                cpu: 1,
                memory_gib: 1,
                disk_gib: 1,
            },
            mounts: Vec::new(),
            network: true,
            allow: Vec::new(),
            domains: Vec::new(),
        };
        let started = self.launch(&dir, "probe", None, &probe).await;
        let result = match started {
            Ok((running, _starting)) => {
                let ping = running.ctl.request(op::PING, &[], &[]).await;
                kill_init(running.pid, running.start).await;
                ping.map(drop)
                    .map_err(|e| format!("the probe sandbox did not answer: {e}"))
            }
            Err(e) => Err(e),
        };
        let _ = tokio::task::spawn_blocking(move || crate::spares::force_remove(&dir)).await;
        result
    }

    /// The sandbox's folder.
    fn dir(&self, id: &str) -> PathBuf {
        self.sandboxes.join(id)
    }

    /// The running container of a sandbox, if there is one.
    pub fn running(&self, id: &str) -> Option<Arc<Running>> {
        self.running.lock().ok()?.get(id).cloned()
    }

    /// The backend is taking its sandboxes down: starts that end now are undone.
    pub fn closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The sandbox's gate: its starts and stops one at a time, and whether it was stopped.
    fn gate(&self, id: &str) -> Arc<Gate> {
        let mut gates = self
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates.entry(id.to_string()).or_default().clone()
    }

    /// The sandbox's lifecycle turn, held by a start, stop, pause or delete from reading its
    /// record to writing it back. Without it a start and a stop sent at the same moment could
    /// interleave as: the stop ends the container, the start reads the record (still
    /// `started`: nothing to change) and starts the container again, the stop writes
    /// `stopped`: a running container the API calls stopped. The container's own
    /// start/stop `lock` cannot do this: the start's container work runs after its request is
    /// answered, while the turn covers only the record and the order of the changes.
    pub async fn turn(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.gate(id).turn.clone().lock_owned().await
    }

    /// The sandbox is meant to run again (a create or a start): its container may be started.
    /// Called before the start's request is answered, so that a stop that comes after it
    /// wins over it.
    pub fn may_start(&self, id: &str) {
        self.gate(id).stopped.store(false, Ordering::SeqCst);
    }

    /// A stop came after the sandbox's last create or start.
    pub fn was_stopped(&self, id: &str) -> bool {
        self.gate(id).stopped.load(Ordering::SeqCst)
    }

    /// The sandbox's container, started if it is not running (one start at a time per
    /// sandbox; concurrent callers wait for it). Refused when a stop came after the last
    /// create or start: a command, preview or start task that read the sandbox as started
    /// just before a stop does not bring its container back.
    pub async fn ensure(&self, id: &str, start: &Start) -> Result<Arc<Running>, Failure> {
        let limits = start.limits;
        if let Some(r) = self.running(id) {
            return Ok(r);
        }
        let gate = self.gate(id);
        let _held = gate.lock.lock().await;
        if let Some(r) = self.running(id) {
            return Ok(r);
        }
        if gate.stopped.load(Ordering::SeqCst) {
            return Err(Failure::conflict(format!(
                "sandbox {id} was stopped: start it before using it"
            )));
        }
        let cgroups = if self.cgroups.available() {
            let (cg, id2) = (self.cgroups.clone(), id.to_string());
            tokio::task::spawn_blocking(move || cg.create(&id2, limits))
                .await
                .map_err(|e| Failure::internal(e.to_string()))?
                .map_err(|e| {
                    Failure::internal(format!("cannot create the sandbox's cgroup: {e}"))
                })?
        } else {
            Vec::new()
        };
        // Volumes' mount points are folders of the sandbox's root, made here.
        let root = self.dir(id).join("root");
        for (volume, host, at) in &start.mounts {
            let point = root.join(at.trim_start_matches('/'));
            // Neither side may pass through a link: a link a sandbox put in a shared volume
            // (under the `subpath`) or in its own folder (above the mount point) would carry
            // the bind mount out to any folder of this machine.
            // Named as the sandbox sees them (a host path never leaves the backend).
            let shown = |base: &Path, link: PathBuf, prefix: &str| {
                let rel = link.strip_prefix(base).unwrap_or(Path::new("")).display();
                format!("{prefix}{rel}")
            };
            let link = first_link(volume, host)
                .map(|l| format!("{} of the volume", shown(volume, l, "")))
                .or_else(|| first_link(&root, &point).map(|l| shown(&root, l, "/")));
            if let Some(link) = link {
                return Err(Failure::bad_request(format!(
                    "cannot mount a volume at {at}: {link} is a symbolic link"
                )));
            }
            // A volume's subpath made here is the sandbox user's, as if it had made it. Made
            // name by name from descriptors: a link swapped in meanwhile is refused, never
            // followed (the runtime's mount checks again, on what it opens).
            let sub = host.strip_prefix(volume).unwrap_or(Path::new(""));
            let made = make_beneath(volume, sub).and_then(|made| {
                make_beneath(&root, Path::new(at.trim_start_matches('/')))?;
                Ok(made)
            });
            match made {
                Ok(made) => {
                    for d in made {
                        let _ = self.give_fd(d.as_fd());
                    }
                }
                Err(e) => {
                    return Err(Failure::bad_request(format!(
                        "cannot mount a volume at {at}: {e}"
                    )))
                }
            }
        }
        let (running, starting) = self
            .launch(&self.dir(id), id, Some(&cgroups), start)
            .await
            .map_err(|e| Failure::internal(format!("cannot start sandbox {id}: {e}")))?;
        // Before anything runs in it (commands wait on this start): fail closed.
        let narrowed = if start.attached() && !start.allow.is_empty() {
            self.route_only(running.pid, &start.allow).await
        } else if start.network && !start.domains.is_empty() {
            self.filter_domains(&running, &start.domains).await
        } else {
            Ok(())
        };
        if let Err(e) = narrowed {
            drop(starting);
            let _ = kill_init(running.pid, running.start).await;
            return Err(e);
        }
        let record = format!("{} {}\n", running.pid, running.start);
        let _ = std::fs::write(self.dir(id).join("run").join("init"), record);
        let mut map = self
            .running
            .lock()
            .map_err(|_| Failure::internal("the sandbox table is poisoned"))?;
        // Checked under the lock `kill_all_now` drains: either the container is in the map it
        // drains, or the start sees the backend closing and kills it (`starting`'s drop).
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Failure::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("sandbox {id} was not started: the backend is shutting down"),
            ));
        }
        map.insert(id.to_string(), running.clone());
        starting.done();
        Ok(running)
    }

    /// Runs `forge-sandbox start` for the sandbox folder `dir` and waits for `ready`.
    async fn launch(
        &self,
        dir: &Path,
        name: &str,
        cgroups: Option<&[PathBuf]>,
        start: &Start,
    ) -> Result<(Arc<Running>, Starting), String> {
        let sock = dir.join("run").join("ctl.sock");
        let listener =
            ctl::listen(&sock).map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
        let mut args: Vec<String> = vec![
            "start".into(),
            "--root".into(),
            dir.join("root").to_string_lossy().into_owned(),
            "--uid".into(),
            self.uid.to_string(),
            "--gid".into(),
            self.gid.to_string(),
            "--hostname".into(),
            name.chars().take(12).collect(),
            "--workdir".into(),
            WORK_DIR.into(),
            "--ctl-fd".into(),
            "0".into(),
            "--namespaces".into(),
            if self.namespaces { "1" } else { "0" }.into(),
        ];
        if self.namespaces {
            for m in self.layout.mount_args() {
                args.extend(["--mount".into(), m]);
            }
            // The volume and its subpath apart: the runtime opens the subpath beneath the
            // volume without following links and mounts what it opened.
            for (volume, host, at) in &start.mounts {
                let sub = host.strip_prefix(volume).unwrap_or(Path::new(""));
                args.extend([
                    "--mount".into(),
                    format!("vol:{}:{}:{at}", volume.display(), sub.display()),
                ]);
            }
            for p in &self.host_ports {
                args.extend(["--forward".into(), p.to_string()]);
            }
            args.extend(self.network.args());
            args.extend([
                "--network".into(),
                if start.attached() { "1" } else { "0" }.into(),
            ]);
        }
        for c in cgroups.unwrap_or_default() {
            args.extend(["--cgroup".into(), c.to_string_lossy().into_owned()]);
        }
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::from(OwnedFd::from(listener)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = crate::procs::spawn(cmd)
            .await
            .map_err(|e| format!("cannot run the sandbox runtime: {e}"))?;
        let mut starting = Starting {
            init: None,
            armed: true,
        };
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let monitor = child.id().map(u32::cast_signed);
        let init = &mut starting.init;
        let read = async {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("pid") => {
                        let pid = words.next().and_then(|w| w.parse().ok());
                        let start = words.next().and_then(|w| w.parse().ok());
                        *init = pid.zip(start);
                        // The init is known (the guard can end it): the runtime may let it
                        // run. Without this go-ahead the runtime ends the sandbox itself.
                        if let (Some(monitor), Some(_)) = (monitor, *init) {
                            // SAFETY: kill(2) on our child, not reaped while `child` is held.
                            unsafe {
                                libc::kill(monitor, libc::SIGUSR1);
                            }
                        }
                    }
                    Some("ready") => return init.ok_or_else(|| "no init pid".to_string()),
                    Some("error") => return Err(line["error ".len()..].to_string()),
                    _ => {}
                }
            }
            Err("the sandbox runtime exited before the sandbox was ready".to_string())
        };
        let (pid, start) = match tokio::time::timeout(START_TIMEOUT, read).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                let _ = child.kill().await;
                return Err(e);
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err("the sandbox did not start in time".into());
            }
        };
        // The monitor lives as long as the container; reaped when it ends.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let running = Arc::new(Running {
            pid,
            start,
            ctl: Ctl::new(sock),
            netlink: Mutex::new(None),
            egress: Mutex::new(None),
        });
        Ok((running, starting))
    }

    /// Finds the containers a backend before this one left running (their init still alive,
    /// with the same start time) for the sandboxes in `ids`; removes the traces of the others.
    pub fn adopt(&self, ids: &[String]) {
        for id in ids {
            let file = self.dir(id).join("run").join("init");
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let mut words = text.split_whitespace();
            let pid: Option<i32> = words.next().and_then(|w| w.parse().ok());
            let start: Option<u64> = words.next().and_then(|w| w.parse().ok());
            match pid.zip(start) {
                Some((pid, start)) if start_time(pid) == Some(start) => {
                    if let Ok(mut map) = self.running.lock() {
                        map.insert(
                            id.clone(),
                            Arc::new(Running {
                                pid,
                                start,
                                ctl: Ctl::new(self.dir(id).join("run").join("ctl.sock")),
                                netlink: Mutex::new(None),
                                egress: Mutex::new(None),
                            }),
                        );
                    }
                }
                _ => {
                    let _ = std::fs::remove_file(&file);
                    self.cgroups.kill_all(id);
                    self.cgroups.remove(id);
                }
            }
        }
        let known: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.cgroups.sweep(&|name| known.contains(name));
    }

    /// Stops a sandbox's container: SIGTERM to everything in it and up to 2 s to go (unless
    /// `force`), then the init is killed, which kills every process of the sandbox; returns
    /// once they are all gone (true) or after a bounded wait (false).
    pub async fn stop(&self, id: &str, force: bool) -> bool {
        // After any start in progress (a stop right after a create comes while the container
        // is launching): without this the stop found nothing to stop yet, killed the cgroup
        // under the init being started, and the start recorded that dead init (the next
        // commands failed with "connection refused") or failed and marked a later start as
        // errored.
        let gate = self.gate(id);
        let _held = gate.lock.lock().await;
        // Under the lock: a start that waits for it finds the stop and does not launch.
        gate.stopped.store(true, Ordering::SeqCst);
        let running = self.running.lock().ok().and_then(|mut m| m.remove(id));
        let Some(running) = running else {
            // Not started by this backend: maybe left by one before it.
            let leftover = !self.cgroups.members(id).is_empty();
            if leftover {
                self.cgroups.kill_all(id);
            }
            return self.wait_cgroup_empty(id).await;
        };
        if !force {
            let all = |sig: i32| {
                let ctl = running.ctl.clone();
                async move {
                    ctl.request(op::SIGNAL_ALL, &sig.to_le_bytes(), &[])
                        .await
                        .map_or(0, |a| a.value)
                }
            };
            if all(libc::SIGTERM).await > 0 {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                while tokio::time::Instant::now() < deadline && all(0).await > 0 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
        if !self.namespaces {
            // Unconfined: the init is not a namespace's init, so its processes are not killed
            // with it; they are its descendants (it is their subreaper).
            let _ = running
                .ctl
                .request(op::SIGNAL_ALL, &libc::SIGKILL.to_le_bytes(), &[])
                .await;
        }
        let dead = kill_init(running.pid, running.start).await;
        let _ = std::fs::remove_file(self.dir(id).join("run").join("init"));
        self.cgroups.kill_all(id);
        let empty = self.wait_cgroup_empty(id).await;
        dead && empty
    }

    /// Waits (bounded) until the sandbox's cgroup has no process, then removes it.
    async fn wait_cgroup_empty(&self, id: &str) -> bool {
        if !self.cgroups.available() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if self.cgroups.members(id).is_empty() {
                self.cgroups.remove(id);
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.cgroups.kill_all(id);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every running container (for a backend asked to take its sandboxes down).
    pub async fn stop_all(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let ids: Vec<String> = self
            .running
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.stop(&id, true).await;
        }
    }

    /// What the sandbox uses now (its cgroup's figures while it runs, its folder's size).
    pub async fn usage(&self, id: &str) -> forge_wire::SandboxUsage {
        let root = self.dir(id).join("root");
        let (cg, disk, id) = (self.cgroups.clone(), self.disk.clone(), id.to_string());
        let (disk_bytes, memory_bytes, processes, cpu_us, oom_kills) =
            tokio::task::spawn_blocking(move || {
                (
                    disk.bytes(&id, &root),
                    cg.memory_bytes(&id),
                    cg.processes(&id),
                    cg.cpu_usage_us(&id),
                    cg.oom_kills(&id),
                )
            })
            .await
            .unwrap_or((0, None, None, None, 0));
        forge_wire::SandboxUsage {
            disk_bytes,
            memory_bytes,
            processes,
            cpu_seconds: cpu_us.map(|us| us as f64 / 1e6),
            oom_kills,
        }
    }

    /// Freezes (`true`) or thaws every process of a running sandbox (its cgroup's freezer):
    /// pause and resume.
    pub async fn freeze(&self, id: &str, frozen: bool) -> Result<(), Failure> {
        if !self.cgroups.available() {
            return Err(Failure::bad_request(
                "pause needs cgroups, which this backend does not have here",
            ));
        }
        let (cg, id2) = (self.cgroups.clone(), id.to_string());
        tokio::task::spawn_blocking(move || cg.freeze(&id2, frozen))
            .await
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(|e| Failure::internal(format!("cannot freeze the sandbox: {e}")))
    }

    /// Detaches (`false`) or attaches again a running sandbox's network (its monitor stops or
    /// starts the network tool). A sandbox not running gets it at its next start.
    pub fn set_network(&self, id: &str, on: bool) -> Result<(), Failure> {
        let Some(running) = self.running(id) else {
            return Ok(());
        };
        let Some(monitor) = parent_of(running.pid) else {
            return Ok(());
        };
        // One queued real-time signal carrying the wanted state: a detach and an attach sent
        // in a row reach the monitor in that order (see the runtime's signal loop).
        let value = libc::sigval {
            sival_ptr: usize::from(on) as *mut libc::c_void,
        };
        // SAFETY: sigqueue(3) to the container's monitor (the init's parent, a process of ours).
        let sent = unsafe { libc::sigqueue(monitor, libc::SIGRTMIN(), value) };
        if sent != 0 {
            return Err(Failure::internal(format!(
                "cannot reach the sandbox's monitor: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Applies a `networkAllowList` to a running sandbox (empty: lifts it); a sandbox not
    /// running gets it at its next start. Waits for the network tool to have configured the
    /// sandbox's device (just attached again after `networkBlockAll`).
    pub async fn set_allow_list(
        &self,
        id: &str,
        allow: &[(std::net::Ipv4Addr, u8)],
    ) -> Result<(), Failure> {
        match self.running(id) {
            Some(r) => self.route_only(r.pid, allow).await,
            None => Ok(()),
        }
    }

    /// Puts a `domainAllowList` on a running sandbox whose network tool is detached, replaces
    /// it, or (empty) takes it off (the resolver's address leaves its loopback, so the network
    /// tool's resolver answers again once attached). A sandbox not running gets it at its next
    /// start.
    pub async fn set_domains(&self, id: &str, list: &[domains::Pattern]) -> Result<(), Failure> {
        let Some(running) = self.running(id) else {
            return Ok(());
        };
        if list.is_empty() {
            drop(running.egress.lock().ok().and_then(|mut f| f.take()));
            let pid = running.pid;
            let ip = ip_program()?;
            let cmd = format!("address del {}/32 dev lo\n", egress::ADDRESS);
            // Already gone (never put there) is fine.
            let _ = tokio::task::spawn_blocking(move || {
                ip_in_netns(&ip, pid, &["-batch", "-"], Some(&cmd))
            })
            .await;
            return Ok(());
        }
        self.filter_domains(&running, list).await
    }

    /// Serves `list` in the sandbox's network namespace: the resolver's address on its
    /// loopback device, then the resolver's and proxies' sockets made there (see `egress`).
    async fn filter_domains(
        &self,
        running: &Running,
        list: &[domains::Pattern],
    ) -> Result<(), Failure> {
        if !self.namespaces {
            return Err(Failure::bad_request(
                "domainAllowList needs sandboxes in their own network namespace (containers), which this backend does not have here",
            ));
        }
        let ip = ip_program()?;
        let pid = running.pid;
        let cmd = format!("address replace {}/32 dev lo\n", egress::ADDRESS);
        let sockets = tokio::task::spawn_blocking(move || {
            ip_in_netns(&ip, pid, &["-batch", "-"], Some(&cmd))?;
            egress::sockets_in(pid, &ip)
        });
        let cannot = |e: String| Failure::internal(format!("cannot apply domainAllowList: {e}"));
        // The old filter first: its sockets hold the ports.
        drop(running.egress.lock().ok().and_then(|mut f| f.take()));
        let sockets = sockets
            .await
            .map_err(|e| cannot(e.to_string()))?
            .map_err(cannot)?;
        let filter = egress::serve(sockets, list.to_vec(), &self.egress_hosts)
            .map_err(|e| cannot(e.to_string()))?;
        if let Ok(mut f) = running.egress.lock() {
            *f = Some(filter);
        }
        Ok(())
    }

    /// Whether sandboxes are containers here (their own user, mount and network namespaces).
    pub fn contained(&self) -> bool {
        self.namespaces
    }

    /// Whether sandboxes have their own network namespace here (a list can be enforced).
    pub fn confines_network(&self) -> bool {
        self.namespaces
    }

    /// Routes only `allow` (all when empty) out of the network namespace of init `pid`, with
    /// iproute2's `ip` joined to the sandbox's namespaces. The sandbox's user has no
    /// capability there, so it cannot change them back.
    async fn route_only(
        &self,
        pid: i32,
        allow: &[(std::net::Ipv4Addr, u8)],
    ) -> Result<(), Failure> {
        let ip = ip_program()?;
        if !self.namespaces {
            return Err(Failure::bad_request(
                "networkAllowList needs sandboxes in their own network namespace (containers), which this backend does not have here",
            ));
        }
        let commands = net::allow_commands(allow);
        tokio::task::spawn_blocking(move || in_netns_route(&ip, pid, &commands))
            .await
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(|e| Failure::internal(format!("cannot apply networkAllowList: {e}")))
    }

    /// SIGKILL to every running container's init, without waiting (for `Drop`).
    pub fn kill_all_now(&self) {
        // Before the map is drained: a start that finishes after this kills its own container
        // instead of adding it (see `ensure`).
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let all: Vec<(String, Arc<Running>)> = self
            .running
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default();
        for (id, r) in all {
            if let Some(fd) = init_pidfd(r.pid, r.start) {
                sigkill(&fd);
            }
            // Unconfined, the init's descendants do not die with it: its cgroup does.
            self.cgroups.kill_all(&id);
        }
    }

    /// A connection to `port` of the sandbox's own network (its loopback), or `None` when
    /// nothing of the sandbox listens there (or it does not run).
    pub async fn connect(&self, id: &str, port: u16) -> Option<tokio::net::TcpStream> {
        let running = self.running(id)?;
        let answer = running
            .ctl
            .request(op::CONNECT, &port.to_le_bytes(), &[])
            .await
            .ok()?;
        if answer.errno != 0 {
            return None;
        }
        let fd = answer.fds.into_iter().next()?;
        // Only a socket: an answer from inside the sandbox is not trusted further than that.
        let std = socket_stream(fd)?;
        let stream = tokio::net::TcpStream::from_std(std).ok()?;
        if answer.value == 0 {
            // Connecting (a full accept queue): wait a little for it.
            tokio::time::timeout(Duration::from_secs(5), stream.writable())
                .await
                .ok()?
                .ok()?;
            if stream.take_error().ok()?.is_some() {
                return None;
            }
        }
        Some(stream)
    }

    /// The TCP ports the sandbox's processes listen on (its own network namespace).
    pub async fn listening(&self, id: &str) -> Vec<u16> {
        let Some(running) = self.running(id) else {
            return Vec::new();
        };
        let cached = running
            .netlink
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|f| f.try_clone().ok()));
        let fd = if let Some(fd) = cached {
            fd
        } else {
            let Ok(answer) = running.ctl.request(op::NETLINK, &[], &[]).await else {
                return Vec::new();
            };
            let Some(fd) = answer.fds.into_iter().next() else {
                return Vec::new();
            };
            if let (Ok(mut g), Ok(copy)) = (running.netlink.lock(), fd.try_clone()) {
                *g = Some(copy);
            }
            fd
        };
        tokio::task::spawn_blocking(move || crate::ports::listening_ports(&fd))
            .await
            .unwrap_or_default()
    }

    /// A path as a command of this sandbox sees it (`dir` is the sandbox's folder).
    pub fn command_path(&self, root: &Path, shown: &str) -> String {
        if self.namespaces {
            shown.to_string()
        } else {
            root.join(shown.trim_start_matches('/'))
                .to_string_lossy()
                .into_owned()
        }
    }

    /// Makes a new sandbox folder's entries at `dir` (see [`Layout::skeleton`]).
    pub fn make_skeleton(&self, dir: &Path) -> std::io::Result<()> {
        make_skeleton(dir, &self.layout.skeleton(), self.uid, self.gid)
    }

    /// Gives a file or folder made by the backend in a sandbox to the sandbox's user.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        if self.uid == ids().0 {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
    }

    /// [`Runtime::give`] of a place opened by the file routes (an `O_PATH` descriptor: no
    /// name is looked up again).
    pub fn give_fd(&self, fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
        if self.uid == ids().0 {
            return Ok(());
        }
        rustix::fs::chownat(
            fd,
            c"",
            Some(rustix::fs::Uid::from_raw(self.uid)),
            Some(rustix::fs::Gid::from_raw(self.gid)),
            rustix::fs::AtFlags::EMPTY_PATH | rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(Into::into)
    }
}

/// A socket's descriptor as a std TCP stream (refused for anything but a socket).
fn socket_stream(fd: OwnedFd) -> Option<std::net::TcpStream> {
    // SAFETY: fstat into a zeroed stat on a descriptor we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) } != 0
        || (st.st_mode & libc::S_IFMT) != libc::S_IFSOCK
    {
        return None;
    }
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true).ok()?;
    Some(std)
}

/// Makes `entries` under `dir`, parents first, owned as each says.
pub fn make_skeleton(
    dir: &Path,
    entries: &[layout::Entry],
    uid: u32,
    gid: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let (euid, _) = ids();
    for e in entries {
        let path = dir.join(e.path());
        match e {
            layout::Entry::Dir { mode, owner, .. } => {
                match std::fs::create_dir(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))?;
                if *owner == layout::Owner::Sandbox && uid != euid {
                    std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
                }
            }
            layout::Entry::Link { target, .. } => match std::os::unix::fs::symlink(target, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            },
        }
    }
    Ok(())
}

/// A process's parent (field 4 of `/proc/<pid>/stat`).
fn parent_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A process's start time (field 22 of `/proc/<pid>/stat`), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A pidfd of `pid` while it is the process that started at `start` (a pid reused since gets
/// none), so that a signal sent through it can only reach that process.
fn init_pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) on a pid; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor from pidfd_open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after the pidfd is taken: it names the process that had the pid then.
    (start_time(pid) == Some(start)).then_some(fd)
}

/// SIGKILL through a pidfd (nothing happens to a process that is gone).
fn sigkill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal(2) on a pidfd we own.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Kills a container's init (which takes every process of its pid namespace with it) and
/// waits until it is gone. Only the process with that start time is signalled: a pid reused
/// since is left alone.
async fn kill_init(pid: i32, start: u64) -> bool {
    let Some(fd) = init_pidfd(pid, start) else {
        return true;
    };
    sigkill(&fd);
    // The pidfd becomes readable when the init has exited, which for a namespace's init is
    // after every process of its namespace was killed and reaped.
    tokio::task::spawn_blocking(move || {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own, 10 s at most.
        unsafe { libc::poll(&raw mut p, 1, 10_000) > 0 }
    })
    .await
    .unwrap_or(false)
}

/// Runs `ip` inside the network namespace of init `pid` (through its user namespace when this
/// process is not root): waits (5 s at most) until the network tool has routed the device,
/// then runs `commands` as one `ip -batch`.
fn in_netns_route(ip: &Path, pid: i32, commands: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let routed = ip_in_netns(
            ip,
            pid,
            &["-4", "route", "show", "dev", net::DEVICE, "scope", "global"],
            None,
        );
        if routed.is_ok_and(|r| !r.trim().is_empty()) {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err("the sandbox's network was not configured within 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ip_in_netns(ip, pid, &["-4", "-batch", "-"], Some(commands)).map(|_| ())
}

/// iproute2's `ip` on this machine.
fn ip_program() -> Result<PathBuf, Failure> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Failure::bad_request(
                "network allow lists need iproute2's `ip` on this machine (apt-get install iproute2)",
            )
        })
}

/// Runs `ip args` (with `input` on its stdin) inside the network namespace of init `pid`
/// (through its user namespace when this process is not root); its stdout, or its stderr as
/// the error.
fn ip_in_netns(ip: &Path, pid: i32, args: &[&str], input: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("the sandbox's {ns} namespace: {e}"))
    };
    let (user, netns) = (open("user")?, open("net")?);
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = std::process::Command::new(ip);
    cmd.args(args)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (u, n) = (user.as_raw_fd(), netns.as_raw_fd());
    // SAFETY: only setns(2) between fork and exec (async-signal-safe), on descriptors
    // that stay open in the parent until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            if !root && libc::setns(u, libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setns(n, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("ip: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("ip: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Makes the missing folders of `rel` under `base`, each name made and opened from the
/// descriptor of the folder before it (`mkdirat`, then `O_PATH | O_NOFOLLOW | O_DIRECTORY`),
/// so a name that is a link (or becomes one) is refused, never followed. Answers descriptors
/// of the folders it made.
fn make_beneath(base: &Path, rel: &Path) -> std::io::Result<Vec<OwnedFd>> {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(base, flags, Mode::empty())?;
    let mut made = Vec::new();
    for part in rel.components() {
        let name = match part {
            std::path::Component::Normal(name) => name,
            std::path::Component::RootDir | std::path::Component::CurDir => continue,
            _ => return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
        };
        let created = match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        dir = openat(&dir, name, flags, Mode::empty()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a folder (a symbolic link?): {e}",
                    name.to_string_lossy()
                ),
            )
        })?;
        if created {
            made.push(dir.try_clone()?);
        }
    }
    Ok(made)
}

/// The first folder on the way from `base` down to `path` (both included below `base`) that
/// is a symbolic link; `None` when there is none (missing folders are made later, as folders).
fn first_link(base: &Path, path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(base).ok()?;
    let mut at = base.to_path_buf();
    for part in rest.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

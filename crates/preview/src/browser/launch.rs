//! The browser process: found, started with a throwaway profile, kept warm for the next check
//! and killed when it is no longer needed.
//!
//! One browser per process, shared by concurrent checks (each in its own browser context, so
//! no cookie or storage passes from one preview to the next). While the browser is warm the
//! next check's context and blank page are opened ahead of time, right after a check ends
//! (a [`Tab`]): opening them is a dozen protocol round trips and a renderer process, time a
//! check would otherwise spend before it starts loading. A used context is disposed of after
//! the check, off its path; none is ever used twice. The browser, its CDP
//! connection's task and its idle timer live on a small runtime of their own ([`home`]): a
//! caller's runtime may end (a test's, a short-lived CLI command's) while another caller
//! still uses the browser. It is killed after
//! [`IDLE`] without a check, by [`shutdown`], when a check finds it broken, and with the
//! process that started it: Chromium gets `PR_SET_PDEATHSIG` (SIGKILL) and runs in its own
//! process group, which is what is killed, helpers included. Its profile is a temporary
//! folder named after this process's pid; folders of processes that are gone (killed before
//! they could clean up) are removed at the next launch.

use super::cdp::{Browser, CdpError};
use super::page::Tab;
use super::BrowserOptions;
use crate::PreviewError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Executables tried on `PATH`, in order.
const EXECUTABLES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
];
/// How long a browser stays warm after its last check.
pub const IDLE: Duration = Duration::from_mins(1);
/// How long Chromium may take to open its DevTools port.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Profile folders are `<tmp>/forge-chromium-<pid>-<random>`.
const PROFILE_PREFIX: &str = "forge-chromium-";

/// Chromium's switches: headless (the new headless mode, the real browser), a throwaway
/// profile, DevTools on a free port, and nothing that phones home or waits for a person.
const SWITCHES: &[&str] = &[
    "--headless=new",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--mute-audio",
    "about:blank",
];

/// Where the browser is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Local(PathBuf),
    Remote(String),
}

/// The warm browser.
struct Warm {
    source: Source,
    browser: Arc<Browser>,
    handler: tokio::task::JoinHandle<()>,
    process: Option<Process>,
    users: Arc<AtomicUsize>,
    last_used: Arc<std::sync::Mutex<Instant>>,
    /// The next check's tab, opened ahead of time.
    spare: Spare,
}

/// A tab opened ahead of time, for whichever check comes next.
type Spare = Arc<std::sync::Mutex<Option<Tab>>>;

impl Warm {
    fn alive(&mut self) -> bool {
        !self.handler.is_finished()
            && self
                .process
                .as_mut()
                .is_none_or(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    async fn close(mut self) {
        self.handler.abort();
        if let Some(p) = self.process.take() {
            p.kill().await;
        }
    }
}

/// The runtime the browser lives on: one thread for the process's life. Chromium is started
/// from it, so its parent-death signal fires when the process ends, not when some caller's
/// worker thread does.
/// `None` if the system would not give it a thread (then there is no browser check).
fn home() -> Option<&'static tokio::runtime::Handle> {
    static HOME: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    HOME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("forge-browser".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .ok()?;
        Some(handle)
    })
    .as_ref()
}

/// Runs `f` on [`home`] and waits for it from any runtime.
async fn at_home<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    home()?.spawn(f).await.ok()
}

/// The warm browsers: in practice one (the local Chromium), one per remote endpoint too.
fn pool() -> &'static Mutex<Vec<Warm>> {
    static POOL: OnceLock<Mutex<Vec<Warm>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(Vec::new()))
}

/// Takes the browser `which` out of the pool and closes it.
async fn close_where(pool: &mut Vec<Warm>, which: impl Fn(&mut Warm) -> bool) {
    let mut i = 0;
    while i < pool.len() {
        if which(&mut pool[i]) {
            at_home(pool.swap_remove(i).close()).await;
        } else {
            i += 1;
        }
    }
}

/// The browser for one check. Dropping it marks the browser idle.
pub(crate) struct Lease {
    browser: Arc<Browser>,
    pub warm: bool,
    users: Arc<AtomicUsize>,
    last_used: Arc<std::sync::Mutex<Instant>>,
    spare: Spare,
}

impl Lease {
    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// A fresh tab for the check: the one opened ahead of time, else a new one.
    pub async fn tab(&self) -> Result<Tab, CdpError> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match spare {
            Some(tab) => Ok(tab),
            None => Tab::open(&self.browser).await,
        }
    }

    /// The check is done with `tab`: its context is disposed of, and the next check's tab
    /// opened, in the background.
    pub fn done_with(&self, tab: Tab) {
        let (browser, spare) = (self.browser.clone(), self.spare.clone());
        let Some(home) = home() else { return };
        home.spawn(async move {
            tab.close(&browser).await;
            let empty = spare
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_none();
            if !empty {
                return;
            }
            let Ok(next) = Tab::open(&browser).await else {
                return;
            };
            // Another check's end may have filled the slot meanwhile.
            let extra = spare
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .replace(next);
            if let Some(extra) = extra {
                extra.close(&browser).await;
            }
        });
    }

    /// The check failed in the browser: if the browser is gone (crashed, killed), drop it
    /// now rather than hand it to the next check.
    pub async fn discard_if_dead(self) {
        let mut pool = pool().lock().await;
        close_where(&mut pool, |w| {
            Arc::ptr_eq(&w.browser, &self.browser) && !w.alive()
        })
        .await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        if self.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(home) = home() {
                home.spawn(async {
                    tokio::time::sleep(IDLE).await;
                    close_if_idle().await;
                });
            }
        }
    }
}

/// Closes the warm browsers no check used for [`IDLE`].
async fn close_if_idle() {
    let mut pool = pool().lock().await;
    close_where(&mut pool, |w| {
        w.users.load(Ordering::SeqCst) == 0
            && w.last_used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .elapsed()
                >= IDLE
    })
    .await;
}

/// Closes the warm browsers now (a local one's process is killed, a remote one is only
/// disconnected). The next check starts a new one.
pub async fn shutdown() {
    let mut pool = pool().lock().await;
    close_where(&mut pool, |_| true).await;
}

/// The browser for a check: the warm one when it is the one asked for and still alive, else
/// a new one. `Ok(Err(why))` when there is none to be had (the check is skipped).
pub(crate) async fn lease(opts: &BrowserOptions) -> Result<Result<Lease, String>, PreviewError> {
    let source = match (&opts.ws_endpoint, &opts.executable_path) {
        (Some(ws), _) => Source::Remote(ws.clone()),
        (None, Some(path)) => {
            let p = PathBuf::from(path);
            if !is_executable(&p) {
                return Err(forge_daytona::Error::InvalidArgument(format!(
                    "browser.executablePath: no executable at {path}"
                ))
                .into());
            }
            Source::Local(p)
        }
        (None, None) => match find_on_path() {
            Some(p) => Source::Local(p),
            None => return Ok(Err("no browser".into())),
        },
    };
    let mut pool = pool().lock().await;
    // A browser that died (killed, crashed) is dropped; checks still using it fail on their
    // own.
    close_where(&mut pool, |w| !w.alive()).await;
    if let Some(w) = pool.iter().find(|w| w.source == source) {
        return Ok(Ok(lend(w, true)));
    }
    let warm = match at_home(start(source)).await {
        Some(Ok(w)) => w,
        Some(Err(why)) => return Ok(Err(why)),
        None => return Ok(Err("the browser's start was interrupted".into())),
    };
    pool.push(warm);
    Ok(Ok(lend(&pool[pool.len() - 1], false)))
}

fn lend(w: &Warm, warm: bool) -> Lease {
    w.users.fetch_add(1, Ordering::SeqCst);
    Lease {
        browser: w.browser.clone(),
        warm,
        users: w.users.clone(),
        last_used: w.last_used.clone(),
        spare: w.spare.clone(),
    }
}

/// Starts (or connects to) the browser and its CDP connection's handler task.
async fn start(source: Source) -> Result<Warm, String> {
    let (process, ws) = match &source {
        Source::Local(exe) => {
            let p = Process::start(exe).await?;
            let ws = p.ws.clone();
            (Some(p), ws)
        }
        Source::Remote(ws) => (None, ws.clone()),
    };
    let connected = tokio::time::timeout(LAUNCH_TIMEOUT, Browser::connect(&ws))
        .await
        .unwrap_or_else(|_| {
            Err(CdpError::Connect(format!(
                "no answer within {} s",
                LAUNCH_TIMEOUT.as_secs()
            )))
        });
    let (browser, handler) = match connected {
        Ok(c) => c,
        Err(e) => {
            if let Some(p) = process {
                p.kill().await;
            }
            return Err(match source {
                // The endpoint may carry a hosted browser's key: not repeated.
                Source::Remote(_) => format!("the browser at wsEndpoint could not be reached: {e}"),
                Source::Local(_) => format!("could not connect to the browser: {e}"),
            });
        }
    };
    Ok(Warm {
        source,
        browser: Arc::new(browser),
        handler,
        process,
        users: Arc::new(AtomicUsize::new(0)),
        last_used: Arc::new(std::sync::Mutex::new(Instant::now())),
        spare: Spare::default(),
    })
}

/// A Chromium process this process started.
struct Process {
    child: tokio::process::Child,
    /// Its process group (its pid): killed whole, renderers and helpers included.
    group: Option<i32>,
    ws: String,
    profile: tempfile::TempDir,
}

impl Process {
    async fn start(exe: &Path) -> Result<Process, String> {
        remove_staleprofiles();
        let profile = tempfile::Builder::new()
            .prefix(&format!("{PROFILE_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("no temporary profile folder for the browser: {e}"))?;
        let stderr = std::fs::File::create(profile.path().join("stderr.log"))
            .map_err(|e| format!("no temporary profile folder for the browser: {e}"))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(SWITCHES)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        if running_as_root() {
            // Chromium refuses to start its sandbox as root ("Running as root without
            // --no-sandbox is not supported"); elsewhere its sandbox stays on.
            cmd.arg("--no-sandbox");
        }
        // Linux only: macOS has no parent-death signal; there `kill_on_drop` and the process
        // group are the cleanup.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        #[cfg(target_os = "linux")]
        unsafe {
            cmd.pre_exec(|| {
                // Killed with the thread that started it (a runtime worker: the process's
                // lifetime), so that a process that exits without cleaning up leaves no
                // browser behind.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        let mut p = Process {
            child,
            group,
            ws: String::new(),
            profile,
        };
        match p.await_devtools().await {
            Ok(ws) => {
                p.ws = ws;
                Ok(p)
            }
            Err(why) => {
                p.kill().await;
                Err(why)
            }
        }
    }

    /// Waits for Chromium to write `DevToolsActivePort` (its port and browser path) into the
    /// profile: the WebSocket URL without parsing its stderr.
    async fn await_devtools(&mut self) -> Result<String, String> {
        let file = self.profile.path().join("DevToolsActivePort");
        let until = Instant::now() + LAUNCH_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    return Ok(format!("ws://127.0.0.1:{}{}", port.trim(), path.trim()));
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the browser exited at start ({status}){}",
                    self.stderr_tail()
                ));
            }
            if Instant::now() >= until {
                return Err(format!(
                    "the browser did not open its DevTools port within {} s{}",
                    LAUNCH_TIMEOUT.as_secs(),
                    self.stderr_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stderr_tail(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("stderr.log"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_owned)
            })
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default()
    }

    async fn kill(mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    fn kill_group(&mut self) {
        if let Some(g) = self.group.take() {
            // SAFETY: plain syscall on our own child's process group.
            #[cfg(unix)]
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
            // Windows: no process group; `kill_on_drop` ends the browser itself.
            #[cfg(not(unix))]
            let _ = g;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Dropped without `kill` (its runtime went away): the group goes all the same.
        self.kill_group();
    }
}

#[cfg(not(unix))]
fn running_as_root() -> bool {
    false
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first of [`EXECUTABLES`] on `PATH`.
fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    EXECUTABLES.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

/// Removes profile folders left by processes that are gone.
fn remove_staleprofiles() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PROFILE_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

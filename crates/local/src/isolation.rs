//! Private mount views for sandbox commands, with bubblewrap (`bwrap`) when this machine has it.
//!
//! Without it every sandbox command sees this machine's whole file system as this user does.
//! With it, each command runs as
//! `bwrap --dev-bind / / --tmpfs <home> --bind <sandbox> <sandbox> --ro-bind <shim> <shim>
//! --cap-drop CAP_SYS_ADMIN --chdir <cwd> -- <program> <args>`:
//! the same machine (tools, network, `/proc`, devices), but the backend's home is an empty
//! tmpfs in which only the command's own sandbox folder (its root, state and ports folders)
//! and the port shim are mounted again. Other sandboxes' folders, their records, the spare
//! sandboxes and anything else the backend keeps in its home are not there. `CAP_SYS_ADMIN`
//! is dropped so that a command running as root cannot simply unmount the tmpfs.
//!
//! No PID namespace (`--unshare-pid`): its init would kill background children (`nohup
//! server &`) when the command exits, and the backend finds and kills sandbox processes
//! through this machine's `/proc`. No `--die-with-parent` either: its parent-death signal
//! follows the spawning *thread*, and tokio's blocking threads come and go. bwrap stays in
//! the command's process group, so killing the group kills both, and it exits with the
//! command's status (128 + signal when the command was killed), as the daemon reports it.
//!
//! Decided once per backend start ([`enable`]): `FORGE_ISOLATION=off` (or `0`, `false`,
//! `no`) turns it off; otherwise `bwrap` must be on the backend's PATH and run a probe.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// bwrap per backend home (canonical path), for homes where isolation is on.
static VIEWS: Mutex<Option<HashMap<PathBuf, PathBuf>>> = Mutex::new(None);

/// Whether `FORGE_ISOLATION` asks for no isolation.
fn disabled_by_env() -> bool {
    std::env::var("FORGE_ISOLATION").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}

/// Decides, for the backend on `home`, whether its sandbox commands run in a private mount
/// view, and records it. Returns the bwrap in use, if any. A bwrap that is found but fails
/// its probe (no namespaces allowed here) is logged and not used.
pub async fn enable(home: &Path) -> Option<PathBuf> {
    let chosen = if disabled_by_env() {
        None
    } else {
        let home = home.to_path_buf();
        tokio::task::spawn_blocking(move || probe(&home))
            .await
            .ok()
            .flatten()
    };
    if let Ok(mut views) = VIEWS.lock() {
        let views = views.get_or_insert_with(HashMap::new);
        match &chosen {
            Some(bwrap) => views.insert(home.to_path_buf(), bwrap.clone()),
            None => views.remove(home),
        };
    }
    chosen
}

/// bwrap on the PATH, if it can build a view of `home` here.
fn probe(home: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let bwrap = crate::procs::which("bwrap", &path)?;
    let status = std::process::Command::new(&bwrap)
        .args(["--dev-bind", "/", "/", "--tmpfs"])
        .arg(home)
        .args(["--cap-drop", "CAP_SYS_ADMIN", "--", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Some(bwrap),
        _ => {
            tracing::warn!(
                "bwrap is on PATH but cannot create a mount namespace here: sandbox commands \
                 run without a private mount view"
            );
            None
        }
    }
}

/// The bwrap to wrap a command with and the options before `--`, for a sandbox command whose
/// `HOME` is `work_home` (`<home>/sandboxes/<id>/root/home/daytona`). `None` when isolation
/// is off for that backend. `preload` is passed with `--setenv` so that bwrap itself (which
/// runs outside the view) loads no preloaded library.
pub fn wrapper(
    work_home: &Path,
    cwd: &Path,
    shim: Option<&Path>,
    preload: Option<&OsString>,
) -> Option<(PathBuf, Vec<OsString>)> {
    let sandbox = sandbox_dir(work_home)?;
    let home = sandbox.parent()?.parent()?;
    let bwrap = VIEWS.lock().ok()?.as_ref()?.get(home)?.clone();
    Some((bwrap, options(home, &sandbox, cwd, shim, preload)))
}

/// `<home>/sandboxes/<id>` from the sandbox's `HOME` folder.
fn sandbox_dir(work_home: &Path) -> Option<PathBuf> {
    let inner = Path::new("root").join(crate::store::WORK_DIR.trim_start_matches('/'));
    let mut dir = work_home.to_path_buf();
    if !dir.ends_with(&inner) {
        return None;
    }
    for _ in inner.components() {
        dir.pop();
    }
    Some(dir)
}

/// bwrap's options (everything before `--`).
fn options(
    home: &Path,
    sandbox: &Path,
    cwd: &Path,
    shim: Option<&Path>,
    preload: Option<&OsString>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--dev-bind", "/", "/", "--tmpfs"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(home.into());
    args.extend(["--bind".into(), sandbox.into(), sandbox.into()]);
    if let Some(shim) = shim.filter(|s| s.starts_with(home)) {
        args.extend(["--ro-bind".into(), shim.into(), shim.into()]);
    }
    args.extend(["--cap-drop".into(), "CAP_SYS_ADMIN".into()]);
    args.extend(["--chdir".into(), cwd.into()]);
    if let Some(preload) = preload {
        args.extend(["--setenv".into(), "LD_PRELOAD".into(), preload.clone()]);
    }
    args.push("--".into());
    args
}

#[cfg(test)]
mod tests {
    use super::{options, sandbox_dir};
    use std::path::Path;

    #[test]
    fn the_view_hides_the_home_but_the_sandbox_and_the_shim() {
        let work = Path::new("/h/sandboxes/s1/root/home/daytona");
        let sbx = sandbox_dir(work).unwrap();
        assert_eq!(sbx, Path::new("/h/sandboxes/s1"));
        assert_eq!(sandbox_dir(Path::new("/h/sandboxes/s1/root")), None);
        let args = options(
            Path::new("/h"),
            &sbx,
            work,
            Some(Path::new("/h/libforgeports.so")),
            Some(&"/h/libforgeports.so /x.so".into()),
        );
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args.join(" "),
            "--dev-bind / / --tmpfs /h --bind /h/sandboxes/s1 /h/sandboxes/s1 \
             --ro-bind /h/libforgeports.so /h/libforgeports.so --cap-drop CAP_SYS_ADMIN \
             --chdir /h/sandboxes/s1/root/home/daytona \
             --setenv LD_PRELOAD /h/libforgeports.so /x.so --"
        );
    }
}

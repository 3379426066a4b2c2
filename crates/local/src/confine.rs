//! Path confinement: every path a client names is mapped into the sandbox root.
//!
//! A path is first made absolute inside the sandbox (relative paths resolve against
//! `/home/daytona`), then walked component by component from the root: `..` never climbs above
//! the root, and every symlink met on the way is read and followed the way `chroot` would
//! (an absolute target restarts at the sandbox root, a relative one continues from the link's
//! folder). The result is a host path that cannot lie outside the root whatever the links say.
//!
//! Limits: this is a user-space walk, so a process inside the sandbox racing to swap a folder
//! for a symlink between the walk and the use could still win (files are opened with
//! `O_NOFOLLOW` on the last component to narrow that). Commands run by the sandbox are not
//! confined at all: they run on this machine as this user (see the README).

use crate::error::Failure;
use crate::store::WORK_DIR;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

/// How many symlinks one resolution may follow (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A sandbox root on the host.
#[derive(Clone, Debug)]
pub struct Root {
    host: PathBuf,
}

/// A path resolved inside a sandbox: where it is on the host, and how to show it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The host path (inside the root).
    pub host: PathBuf,
    /// The same place as the sandbox sees it, e.g. `/home/daytona/a.txt`.
    pub shown: String,
}

impl Root {
    pub fn new(host: PathBuf) -> Root {
        Root { host }
    }

    /// The host folder of the sandbox's `/`.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// Resolves `input`, following a symlink in the last component too.
    pub fn resolve(&self, input: &str) -> Result<Resolved, Failure> {
        self.walk(input, true)
    }

    /// Resolves `input` but leaves a symlink in the last component as it is (delete, move,
    /// lstat operate on the link itself, which is inside the root).
    pub fn resolve_nofollow(&self, input: &str) -> Result<Resolved, Failure> {
        self.walk(input, false)
    }

    /// The sandbox view of a host path inside the root (`/` for the root itself).
    pub fn shown(&self, host: &Path) -> String {
        match host.strip_prefix(&self.host) {
            Ok(rest) if rest.as_os_str().is_empty() => "/".to_string(),
            Ok(rest) => format!("/{}", rest.to_string_lossy()),
            Err(_) => "/".to_string(),
        }
    }

    fn walk(&self, input: &str, follow_last: bool) -> Result<Resolved, Failure> {
        if input.contains('\0') {
            return Err(
                Failure::bad_request("path contains a NUL byte").with_code("INVALID_FILE_PATH")
            );
        }
        let input = if input.is_empty() { "." } else { input };
        let mut pending: VecDeque<OsString> = VecDeque::new();
        if !input.starts_with('/') {
            push_components(&mut pending, Path::new(WORK_DIR));
        }
        push_components(&mut pending, Path::new(input));

        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0usize;
        while let Some(part) = pending.pop_front() {
            if part == OsStr::new("..") {
                resolved.pop();
                continue;
            }
            let is_last = pending.is_empty();
            let mut candidate = self.host.clone();
            candidate.extend(resolved.iter());
            candidate.push(&part);
            let is_link = std::fs::symlink_metadata(&candidate)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if !is_link || (is_last && !follow_last) {
                resolved.push(part);
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Failure::bad_request(format!(
                    "too many levels of symbolic links: {input}"
                ))
                .with_code("INVALID_FILE_PATH"));
            }
            let target = std::fs::read_link(&candidate).map_err(|e| Failure::from_io(&e, input))?;
            if target.has_root() {
                resolved.clear();
            }
            let mut expanded = VecDeque::new();
            push_components(&mut expanded, &target);
            expanded.extend(pending.drain(..));
            pending = expanded;
        }
        let mut host = self.host.clone();
        host.extend(resolved.iter());
        let shown = self.shown(&host);
        Ok(Resolved { host, shown })
    }
}

/// Appends the normal and `..` components of `path` (root and `.` dropped).
fn push_components(out: &mut VecDeque<OsString>, path: &Path) {
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push_back(s.to_os_string()),
            Component::ParentDir => out.push_back(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("home/daytona")).unwrap();
        (dir, Root::new(root))
    }

    #[test]
    fn relative_paths_resolve_against_the_work_dir() {
        let (_d, root) = setup();
        let r = root.resolve("a/b.txt").unwrap();
        assert_eq!(r.shown, "/home/daytona/a/b.txt");
        assert!(r.host.starts_with(root.host()));
    }

    #[test]
    fn dotdot_never_climbs_above_the_root() {
        let (_d, root) = setup();
        let r = root.resolve("../../../../../etc/passwd").unwrap();
        assert_eq!(r.shown, "/etc/passwd");
        assert!(r.host.starts_with(root.host()));
    }

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::os::unix::fs::symlink("/etc", home.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../..", home.join("up")).unwrap();
        let r = root.resolve("evil/passwd").unwrap();
        assert_eq!(r.shown, "/etc/passwd");
        let r = root.resolve("up/etc/passwd").unwrap();
        assert_eq!(r.shown, "/etc/passwd");
        let r = root.resolve_nofollow("evil").unwrap();
        assert_eq!(r.shown, "/home/daytona/evil");
    }

    #[test]
    fn symlink_loops_stop() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::os::unix::fs::symlink("loop", home.join("loop")).unwrap();
        assert!(root.resolve("loop").is_err());
    }
}

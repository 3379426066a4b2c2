//! Path confinement: every path a client names is mapped to where the sandbox's own
//! processes find it.
//!
//! A path is first made absolute inside the sandbox (relative paths resolve against
//! `/home/daytona`), then walked component by component: `..` never climbs above `/`, and
//! every symlink met on the way is read and followed the way the kernel does inside the
//! container (an absolute target restarts at the sandbox's `/`, a relative one continues from
//! the link's folder). Each step is looked up where the container's mount table
//! (`container::Layout`) puts it: the sandbox's own folder, or a host folder mounted
//! read-only (`/usr`, `/etc`), so `/home/daytona/x` and `/usr/bin/node` are the same files for
//! a file route as for a command. Read-only places refuse writes; `/proc`, `/sys` and `/dev`
//! (the sandbox's own kernel file systems) are not served.
//!
//! Limits: this is a user-space walk, so a process inside the sandbox racing to swap a folder
//! for a symlink between the walk and the use could still win (files are opened with
//! `O_NOFOLLOW` on the last component to narrow that).

use crate::container::layout::{absolute, Layout, Source};
use crate::error::Failure;
use axum::http::StatusCode;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// How many symlinks one resolution may follow (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A sandbox root on the host, and the mount table over it.
#[derive(Clone, Debug)]
pub struct Root {
    host: PathBuf,
    layout: Arc<Layout>,
}

/// A path resolved inside a sandbox: where it is on the host, and how to show it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The host path.
    pub host: PathBuf,
    /// The same place as the sandbox sees it, e.g. `/home/daytona/a.txt`.
    pub shown: String,
    /// Under a read-only mount (`/usr`, `/etc`).
    pub read_only: bool,
}

impl Resolved {
    /// The sandbox path of a host path found under this one (walking a folder).
    pub fn shown_of(&self, host: &Path) -> String {
        match host.strip_prefix(&self.host) {
            Ok(rest) if rest.as_os_str().is_empty() => self.shown.clone(),
            Ok(rest) => format!(
                "{}/{}",
                self.shown.trim_end_matches('/'),
                rest.to_string_lossy()
            ),
            Err(_) => self.shown.clone(),
        }
    }

    /// Refuses a change to a read-only place, as the kernel would (`EROFS`).
    pub fn writable(&self) -> Result<&Resolved, Failure> {
        if self.read_only {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                format!("read-only file system: {}", self.shown),
            )
            .with_code("FILE_ACCESS_DENIED"));
        }
        Ok(self)
    }
}

impl Root {
    pub fn new(host: PathBuf, layout: Arc<Layout>) -> Root {
        Root { host, layout }
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
    /// lstat operate on the link itself).
    pub fn resolve_nofollow(&self, input: &str) -> Result<Resolved, Failure> {
        self.walk(input, false)
    }

    /// Where a normalised sandbox path is on the host, and whether it is read-only.
    fn place(&self, logical: &str) -> Result<(PathBuf, bool), Failure> {
        match self.layout.source_of(logical) {
            Source::Root => Ok((self.host.join(logical.trim_start_matches('/')), false)),
            Source::ReadOnly(layers, rest) => {
                let found = layers
                    .iter()
                    .map(|l| l.join(&rest))
                    .find(|p| std::fs::symlink_metadata(p).is_ok());
                let host = found.unwrap_or_else(|| layers[0].join(&rest));
                Ok((host, true))
            }
            Source::Special(kind) => Err(Failure::bad_request(format!(
                "{logical} is on the sandbox's own {kind} file system, which the file API does not serve"
            ))
            .with_code("INVALID_FILE_PATH")),
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
        push_components(&mut pending, Path::new(&absolute(input)));

        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0usize;
        while let Some(part) = pending.pop_front() {
            if part == OsStr::new("..") {
                resolved.pop();
                continue;
            }
            let is_last = pending.is_empty();
            let mut logical = PathBuf::from("/");
            logical.extend(resolved.iter());
            logical.push(&part);
            let (candidate, _) = self.place(&logical.to_string_lossy())?;
            let is_link =
                std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
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
        let mut logical = PathBuf::from("/");
        logical.extend(resolved.iter());
        let shown = logical.to_string_lossy().into_owned();
        let (host, read_only) = self.place(&shown)?;
        Ok(Resolved {
            host,
            shown,
            read_only,
        })
    }
}

/// Whether the sandbox's user may read a file of this machine (its read-only mounts): their
/// owners are not the sandbox's user, so the permission bits for others decide, as inside.
pub fn others_may_read(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o004 != 0
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
        let layout = Layout::for_this_machine(&dir.path().join("etc-top"));
        (dir, Root::new(root, Arc::new(layout)))
    }

    #[test]
    fn relative_paths_resolve_against_the_work_dir() {
        let (_d, root) = setup();
        let r = root.resolve("a/b.txt").unwrap();
        assert_eq!(r.shown, "/home/daytona/a/b.txt");
        assert!(r.host.starts_with(root.host()));
        assert!(!r.read_only);
    }

    #[test]
    fn dotdot_never_climbs_above_the_root() {
        let (_d, root) = setup();
        let r = root.resolve("../../../../../tmp/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
        assert!(r.host.starts_with(root.host()));
    }

    #[test]
    fn the_toolchain_is_the_machines_and_read_only() {
        let (_d, root) = setup();
        let r = root.resolve("/usr/bin/env").unwrap();
        assert_eq!(r.host, Path::new("/usr/bin/env"));
        assert!(r.read_only);
        assert!(r.writable().is_err());
        // /etc: the machine's, with the sandbox's own files on top.
        let r = root.resolve("../../etc/os-release").unwrap();
        assert!(r.host.starts_with("/etc") || r.host.starts_with("/usr"));
        assert!(root.resolve("/proc/1/environ").is_err());
        assert!(root.resolve("/dev/null").is_err());
    }

    #[test]
    fn symlinks_are_followed_as_inside_the_sandbox() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::fs::create_dir_all(root.host().join("tmp")).unwrap();
        std::os::unix::fs::symlink("/tmp", home.join("t")).unwrap();
        std::os::unix::fs::symlink("../../../../..", home.join("up")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", home.join("bin")).unwrap();
        let r = root.resolve("t/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
        assert_eq!(r.host, root.host().join("tmp/x"));
        let r = root.resolve("up/tmp/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
        let r = root.resolve("bin/env").unwrap();
        assert_eq!(r.host, Path::new("/usr/bin/env"));
        let r = root.resolve_nofollow("t").unwrap();
        assert_eq!(r.shown, "/home/daytona/t");
    }

    #[test]
    fn symlink_loops_stop() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::os::unix::fs::symlink("loop", home.join("loop")).unwrap();
        assert!(root.resolve("loop").is_err());
    }
}

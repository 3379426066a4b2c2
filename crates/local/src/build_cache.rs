//! The dev servers' own build caches (Vite's pre-bundled dependencies in `node_modules/.vite`,
//! Next.js' webpack cache in `.next/cache`), kept with the dependency cache's entry of the
//! same key, so that a second preview of a project also skips the dev server's first
//! compile of its dependencies.
//!
//! Each tool checks its cache itself before using any of it: Vite compares the lockfile and
//! config hash in `deps/_metadata.json` and optimizes again on a mismatch; webpack checks its
//! cache version (Next's path, version and compile-relevant config) and each module's
//! snapshot (files under `node_modules` by their package's version, the project's files by
//! their modification times, which the pipeline's clone step makes the commit's). So a cache
//! restored into a project whose sources changed is only a cache miss, never a stale build.
//!
//! - **Kept** when the sandbox is deleted (its processes stopped, so the files are
//!   settled): the project of its last dependency-cache request and that request's key
//!   (recorded in the sandbox's private state folder), when that entry is still in the
//!   cache. Each cache folder is opened from the project's descriptor one name at a
//!   time, never through a link, and copied by the dependency cache's walk (links kept as
//!   links, never followed; FIFOs, sockets and devices skipped) into
//!   `entries/<key>/build/<name>`, replacing the previous one.
//! - **Restored** with `node_modules`: copies owned by the sandbox's user, writable (the dev
//!   server writes into them), never hard links to the cache's files.
//!
//! A cache is only ever given back under the key it was kept under, which covers the
//! repository (the scope): a sandbox of one repository cannot plant a build cache that a
//! sandbox of another receives.

use crate::confine::Root;
use crate::deps_cache::{self, Cache, Count, Owner};
use crate::Shared;
use rustix::fs::Mode;
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// A build cache: its name in the entry and its folder, relative to the project, one name at
/// a time.
pub(crate) struct BuildCache {
    pub name: &'static str,
    pub path: &'static [&'static str],
}

/// The build caches kept, per tool. Only folders the tool validates itself before use.
pub(crate) const BUILD_CACHES: &[BuildCache] = &[
    // Vite: `deps/_metadata.json` holds the lockfile and config hashes it checks.
    BuildCache {
        name: "vite",
        path: &["node_modules", ".vite"],
    },
    // Next.js (webpack): versioned by Next's path, version and config; snapshots per module.
    BuildCache {
        name: "next",
        path: &[".next", "cache"],
    },
];

/// The sandbox's last dependency-cache request, in its private state folder.
const RECORD: &str = "build-cache.json";

/// Whether `name`, at the top of `node_modules`, is a build cache (never stored with the
/// dependencies: it is the dev server's, writable, and kept on its own).
pub(crate) fn in_node_modules(name: &OsStr) -> bool {
    BUILD_CACHES
        .iter()
        .any(|b| b.path.len() == 2 && b.path[0] == "node_modules" && name == b.path[1])
}

/// What is recorded of the sandbox's last dependency-cache request: its project and key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    path: String,
    key: String,
}

/// Records the project and key whose build caches are kept when the sandbox is deleted. The
/// key is the one computed at the request (the project's files may change since: a dev
/// server writes its own `package.json` into `.next`), and is the backend's own record.
pub(crate) fn remember(state_dir: &Path, path: &str, key: &str) {
    let record = Record {
        path: path.to_owned(),
        key: key.to_owned(),
    };
    if let Ok(bytes) = serde_json::to_vec(&record) {
        let _ = std::fs::create_dir_all(state_dir);
        let _ = std::fs::write(state_dir.join(RECORD), bytes);
    }
}

/// Opens the folder `path` under `project`, one name at a time, never through a link; with
/// `make`, missing folders are made (given to the sandbox's user) and the last one must not
/// exist yet.
fn open_path(
    project: BorrowedFd<'_>,
    path: &[&str],
    make: Option<Owner>,
) -> std::io::Result<OwnedFd> {
    let mut dir: Option<OwnedFd> = None;
    for (i, name) in path.iter().enumerate() {
        let name = OsStr::new(name);
        let at = dir.as_ref().map_or(project, AsFd::as_fd);
        let last = i + 1 == path.len();
        let next = match (deps_cache::open_dir(at, name), make) {
            (Ok(_), Some(_)) if last => return Err(Errno::EXIST.into()),
            (Ok(fd), _) => fd,
            (Err(Errno::NOENT), Some(owner)) => {
                rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o755))?;
                let fd = deps_cache::open_dir(at, name)?;
                owner.give(fd.as_fd())?;
                fd
            }
            (Err(e), _) => return Err(e.into()),
        };
        dir = Some(next);
    }
    dir.ok_or_else(|| std::io::Error::other("empty path"))
}

/// Puts the entry's build caches into the project (after its `node_modules`): the names of
/// those restored. One that cannot be restored is removed again and skipped.
pub(crate) fn restore(entry: &Path, project: BorrowedFd<'_>, owner: Owner) -> Vec<String> {
    let owner = Owner {
        link: false,
        ..owner
    };
    let mut restored = Vec::new();
    for b in BUILD_CACHES {
        let src = entry.join("build").join(b.name);
        if !src.is_dir() {
            continue;
        }
        let Ok(dst) = open_path(project, b.path, Some(owner)) else {
            continue;
        };
        let mut count = Count::default();
        if deps_cache::restore_tree(&src, dst.as_fd(), owner, &mut count).is_ok() {
            restored.push(b.path.join("/"));
        } else if let Ok(parent) = open_path(project, &b.path[..b.path.len() - 1], None) {
            let last = OsStr::new(b.path[b.path.len() - 1]);
            let _ =
                crate::spares::force_remove(&crate::confine::proc_path(parent.as_fd(), Some(last)));
        }
    }
    restored
}

/// Keeps the build caches of a sandbox being deleted (see the module's doc); called once its
/// processes are stopped. Best effort: the delete goes on whatever happens here.
pub(crate) async fn keep(state: &Shared, id: &str) {
    if !state.deps.enabled {
        return;
    }
    let Ok(bytes) = std::fs::read(state.store.state_dir(id).join(RECORD)) else {
        return;
    };
    let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
        return;
    };
    let root = Root::new(
        state.store.sandbox_dir(id).join("root"),
        state.runtime.layout(),
    );
    let shared = state.clone();
    let _ = tokio::task::spawn_blocking(move || keep_blocking(&shared.deps, &root, &record)).await;
}

fn keep_blocking(cache: &Cache, root: &Root, record: &Record) {
    let key = &record.key;
    // A key is a sha256 in hex: never a path of its own.
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return;
    }
    let Ok(project) = deps_cache::open_project(root, &record.path) else {
        return;
    };
    let entry = cache.entries().join(key);
    for b in BUILD_CACHES {
        let Ok(src) = open_path(project.as_fd(), b.path, None) else {
            continue;
        };
        let tmp = cache
            .tmp()
            .join(format!("build-{}", crate::util::random_token(8)));
        let mut count = Count::default();
        let built = std::fs::create_dir(&tmp).is_ok()
            && deps_cache::store_tree(src.as_fd(), &tmp, cache.max_bytes, &mut count, 0).is_ok()
            && std::fs::write(
                tmp.with_extension("json"),
                serde_json::json!({ "bytes": count.bytes }).to_string(),
            )
            .is_ok();
        let _writing = cache.write();
        let dir = entry.join("build");
        // The entry may have been evicted meanwhile: nothing to keep the cache with.
        if built && entry.join("tree").is_dir() && std::fs::create_dir_all(&dir).is_ok() {
            let old = cache
                .tmp()
                .join(format!("replaced.{}", crate::util::random_token(8)));
            let _ = std::fs::rename(dir.join(b.name), &old);
            let _ = crate::spares::force_remove(&old);
            if std::fs::rename(&tmp, dir.join(b.name)).is_ok() {
                let _ = std::fs::rename(
                    tmp.with_extension("json"),
                    dir.join(format!("{}.json", b.name)),
                );
            }
        }
        let _ = crate::spares::force_remove(&tmp);
        let _ = std::fs::remove_file(tmp.with_extension("json"));
    }
    let _writing = cache.write();
    deps_cache::evict(cache, key);
}

/// Bytes of an entry's build caches (for the cache's cap).
pub(crate) fn bytes_of(entry: &Path) -> u64 {
    BUILD_CACHES
        .iter()
        .filter_map(|b| std::fs::read(entry.join("build").join(format!("{}.json", b.name))).ok())
        .filter_map(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .filter_map(|v| v["bytes"].as_u64())
        .sum()
}

//! The dependency cache: installed `node_modules` trees kept under the backend's home, keyed by
//! what determines them, so that a second preview of the same project skips its install
//! (`POST /api/forge/sandboxes/{id}/dependencies`, an extension of this backend).
//!
//! - **Key**: sha256 over the scope (the repository, as the client names it), the package
//!   manager, the install command and env, this machine's `node` (the sandbox's toolchain),
//!   OS and architecture, and every lockfile, `package.json` and package-manager config
//!   (`.npmrc`, `.yarnrc*`, `pnpm-workspace.yaml`, `.pnpmfile.cjs`) under the project,
//!   `node_modules` and `.git` left out.
//! - **Store** (asked right after the pipeline's own install): the sandbox's
//!   `<path>/node_modules` is copied into `<home>/dependency-cache/tmp/…` by a descriptor walk
//!   that never follows a link (each name opened `O_NOFOLLOW` from its folder's descriptor;
//!   symlinks kept as symlinks, FIFOs, sockets and devices skipped), files made read-only
//!   (0444, 0555 when executable) and owned by the backend's user, then renamed into
//!   `entries/<key>` in one step. The cache is capped (`FORGE_DEPENDENCY_CACHE_MAX_BYTES`):
//!   least recently used entries are evicted.
//! - **Restore** (asked before the install): `node_modules` is made in the project (refused
//!   when one exists), its folders given to the sandbox's user, and each file hard-linked to the
//!   cache's root-owned read-only file where that is safe (the backend runs as root and the
//!   sandbox's user is another uid: the sandbox cannot write, chmod or chown them), copied
//!   otherwise. Every name is made relative to a descriptor of the folder this walk made.

use crate::confine::Root;
use crate::error::Failure;
use crate::store::not_found;
use crate::util::JsonBody;
use crate::Shared;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use axum::{Json, Router};
use forge_wire::{
    DependencyCacheAction as Action, DependencyCacheOutcome as Outcome, DependencyCacheRequest,
    DependencyCacheResponse,
};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Instant, SystemTime};

/// Lockfiles: one of them at the project's top is required (else nothing is cached).
const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
];
/// With the lockfiles, the files under the project that decide what an install puts in
/// `node_modules`.
const MANIFESTS: &[&str] = &[
    "package.json",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    "pnpm-workspace.yaml",
    ".pnpmfile.cjs",
];
/// Most entries of the project looked at for the key (past it: not cached).
const MAX_PROJECT_ENTRIES: usize = 200_000;
/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most entries of one `node_modules` stored.
const MAX_TREE_ENTRIES: u64 = 2_000_000;
/// Deepest folder nesting stored.
const MAX_DEPTH: usize = 128;
/// Changes when what a key covers changes.
const KEY_VERSION: &str = "forge-dependency-cache-1";

/// The cache of one backend home.
pub struct Cache {
    dir: PathBuf,
    pub(crate) enabled: bool,
    pub(crate) max_bytes: u64,
    /// Restores read entries; a store's rename and evictions write.
    lock: RwLock<()>,
}

impl Cache {
    /// `<home>/dependency-cache` (made, mode 0700; builds a previous backend left emptied).
    pub fn open(home: &Path, enabled: bool, max_bytes: u64) -> std::io::Result<Cache> {
        let dir = home.join("dependency-cache");
        std::fs::create_dir_all(dir.join("entries"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join("tmp");
        if tmp.exists() {
            crate::spares::force_remove(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Cache {
            dir,
            enabled,
            max_bytes,
            lock: RwLock::new(()),
        })
    }

    pub(crate) fn entries(&self) -> PathBuf {
        self.dir.join("entries")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.lock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub fn routes() -> Router<Shared> {
    Router::new().route("/forge/sandboxes/{id}/dependencies", post(dependencies))
}

/// Who restored files belong to, and whether files may be links to the cache's.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Files made in the sandbox are chowned to the sandbox's user (not the backend's).
    pub(crate) give: bool,
    /// Hard links are safe: the cache's files are root's and the sandbox's user is not root.
    pub(crate) link: bool,
}

impl Owner {
    pub(crate) fn give(&self, fd: BorrowedFd<'_>) -> std::io::Result<()> {
        if !self.give {
            return Ok(());
        }
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(self.uid)),
            Some(rustix::fs::Gid::from_raw(self.gid)),
        )
        .map_err(Into::into)
    }
}

/// `POST /api/forge/sandboxes/{id}/dependencies {action, path, manager, command, env, scope}`.
async fn dependencies(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    JsonBody(req): JsonBody<DependencyCacheRequest>,
) -> Result<Json<DependencyCacheResponse>, Failure> {
    let t = Instant::now();
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let action = req
        .action
        .ok_or_else(|| Failure::bad_request("action must be `restore` or `store`"))?;
    if !["npm", "pnpm", "yarn", "bun"].contains(&req.manager.as_str()) {
        return Err(Failure::bad_request(format!(
            "manager must be npm, pnpm, yarn or bun, not `{}`",
            req.manager
        )));
    }
    if req.command.trim().is_empty() || req.path.trim().is_empty() {
        return Err(Failure::bad_request("path and command are required"));
    }
    if !state.deps.enabled {
        return Ok(Json(skipped(
            None,
            "the dependency cache is off (FORGE_DEPENDENCY_CACHE=off)",
        )));
    }
    let root = Root::new(
        state.store.sandbox_dir(&rec.sandbox.id).join("root"),
        state.runtime.layout(),
    );
    let euid = rustix::process::geteuid().as_raw();
    let owner = Owner {
        uid: state.runtime.uid,
        gid: state.runtime.gid,
        give: state.runtime.uid != euid,
        link: state.runtime.confined() && euid == 0 && state.runtime.uid != 0,
    };
    let shared = state.clone();
    let path = req.path.clone();
    let mut answer = tokio::task::spawn_blocking(move || match action {
        Action::Restore => restore(&shared.deps, &root, &req, owner),
        Action::Store => store(&shared.deps, &root, &req),
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))??;
    // Its build caches are kept under this key when the sandbox is deleted.
    if let Some(key) = &answer.key {
        crate::build_cache::remember(&state.store.state_dir(&rec.sandbox.id), &path, key);
    }
    answer.elapsed_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(Json(answer))
}

fn skipped(key: Option<String>, reason: impl Into<String>) -> DependencyCacheResponse {
    DependencyCacheResponse {
        outcome: Outcome::Skipped,
        key,
        reason: Some(reason.into()),
        entries: 0,
        bytes: 0,
        linked: false,
        elapsed_ms: 0,
        build_caches: Vec::new(),
    }
}

fn io_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::internal(format!("dependency cache: {what}: {e}"))
}

/// The project folder, pinned and readable (a folder of the sandbox's own, not `/usr`).
pub(crate) fn open_project(root: &Root, path: &str) -> Result<OwnedFd, Failure> {
    let r = root.resolve(path)?;
    if !r.is_dir() {
        return Err(Failure::bad_request(format!("{} is not a folder", r.shown)));
    }
    r.writable()?;
    rustix::fs::openat(
        r.fd()?,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Failure::from_io(&e.into(), &r.shown))
}

/// Opens `name` in `dir` as a folder, never through a link.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `name` in `dir` for reading when it is a regular file (never through a link, never
/// blocking on a FIFO), with its stat.
fn open_file(dir: BorrowedFd<'_>, name: &OsStr) -> Option<(std::fs::File, rustix::fs::Stat)> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (crate::confine::file_type(&st) == FileType::RegularFile).then(|| (fd.into(), st))
}

/// Length-prefixed fields into a digest (no two inputs hash alike by shifting a boundary).
fn field(ctx: &mut ring::digest::Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_le_bytes());
    ctx.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What identifies the sandbox's `node` (this machine's, under its read-only `/usr`).
fn node_identity(root: &Root) -> String {
    for p in ["/usr/local/bin/node", "/usr/bin/node"] {
        if let Ok(r) = root.resolve(p) {
            if let Ok(st) = r.stat() {
                return format!(
                    "{p}:{}:{}:{}:{}",
                    st.st_dev, st.st_ino, st.st_size, st.st_mtime
                );
            }
        }
    }
    "no node".into()
}

/// The key of the project's install, or why it is not cached.
pub(crate) fn key_of(
    root: &Root,
    project: BorrowedFd<'_>,
    req: &DependencyCacheRequest,
) -> Result<Result<String, String>, Failure> {
    let mut files: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut stack: Vec<(Vec<u8>, OwnedFd)> = vec![(
        Vec::new(),
        rustix::io::dup(project).map_err(|e| io_failure("project", e))?,
    )];
    let mut seen = 0usize;
    while let Some((rel, dir)) = stack.pop() {
        let Ok(list) = rustix::fs::Dir::read_from(&dir) else {
            continue;
        };
        for e in list {
            let Ok(e) = e else { break };
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            seen += 1;
            if seen > MAX_PROJECT_ENTRIES {
                return Ok(Err(format!(
                    "more than {MAX_PROJECT_ENTRIES} entries in the project"
                )));
            }
            let mut path = rel.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            match crate::confine::file_type(&st) {
                FileType::Directory if name == "node_modules" && !rel.is_empty() => {
                    return Ok(Err(format!(
                        "{} exists: installs with nested node_modules (workspaces) are not cached",
                        String::from_utf8_lossy(&path)
                    )));
                }
                FileType::Directory if name == "node_modules" => {}
                FileType::Directory if name == ".git" => {}
                FileType::Directory => {
                    if let Ok(d) = open_dir(dir.as_fd(), name) {
                        stack.push((path, d));
                    }
                }
                FileType::RegularFile if LOCKFILES.iter().chain(MANIFESTS).any(|k| name == *k) => {
                    let Some((mut f, st)) = open_file(dir.as_fd(), name) else {
                        continue;
                    };
                    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > MAX_KEY_FILE_BYTES {
                        return Ok(Err(format!(
                            "{} is larger than {MAX_KEY_FILE_BYTES} bytes",
                            String::from_utf8_lossy(&path)
                        )));
                    }
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut f, &mut bytes)
                        .map_err(|e| io_failure("reading the project", e))?;
                    files.push((path, bytes));
                }
                _ => {}
            }
        }
    }
    if !files.iter().any(|(p, _)| p == b"package.json") {
        return Ok(Err("the project has no package.json".into()));
    }
    // Without a lockfile the registry decides what an install gets, not the project.
    if !files
        .iter()
        .any(|(p, _)| LOCKFILES.iter().any(|l| p == l.as_bytes()))
    {
        return Ok(Err("the project has no lockfile".into()));
    }
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    field(&mut ctx, KEY_VERSION.as_bytes());
    field(
        &mut ctx,
        req.scope.as_deref().unwrap_or_default().as_bytes(),
    );
    field(&mut ctx, req.manager.as_bytes());
    field(&mut ctx, req.command.trim().as_bytes());
    for (k, v) in &req.env {
        field(&mut ctx, k.as_bytes());
        field(&mut ctx, v.as_bytes());
    }
    field(&mut ctx, node_identity(root).as_bytes());
    field(&mut ctx, std::env::consts::OS.as_bytes());
    field(&mut ctx, std::env::consts::ARCH.as_bytes());
    for (p, bytes) in &files {
        field(&mut ctx, p);
        field(&mut ctx, bytes);
    }
    Ok(Ok(hex(ctx.finish().as_ref())))
}

/// Counts of a copy.
#[derive(Default)]
pub(crate) struct Count {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    pub(crate) linked: bool,
}

/// Why a store stopped short.
pub(crate) enum Short {
    /// Past a limit: not cached (the reason).
    Skip(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for Short {
    fn from(e: std::io::Error) -> Short {
        Short::Io(e)
    }
}

/// Marks an entry used now (its `meta.json`'s modification time orders evictions).
fn touch(entry: &Path) {
    if let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(entry.join("meta.json"))
    {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn restore(
    cache: &Cache,
    root: &Root,
    req: &DependencyCacheRequest,
    owner: Owner,
) -> Result<DependencyCacheResponse, Failure> {
    let project = open_project(root, &req.path)?;
    let key = match key_of(root, project.as_fd(), req)? {
        Ok(k) => k,
        Err(reason) => return Ok(skipped(None, reason)),
    };
    let _reading = cache.read();
    let entry = cache.entries().join(&key);
    if !entry.join("tree").is_dir() {
        return Ok(skipped(Some(key), "not in the cache"));
    }
    match rustix::fs::statat(&project, "node_modules", AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => {}
        Ok(_) => {
            return Ok(skipped(
                Some(key),
                "node_modules already exists in the project",
            ))
        }
        Err(e) => return Err(io_failure("node_modules", e)),
    }
    rustix::fs::mkdirat(&project, "node_modules", Mode::from_raw_mode(0o755))
        .map_err(|e| io_failure("making node_modules", e))?;
    let mut count = Count::default();
    let done = open_dir(project.as_fd(), OsStr::new("node_modules"))
        .map_err(std::io::Error::from)
        .and_then(|nm| {
            owner.give(nm.as_fd())?;
            restore_tree(&entry.join("tree"), nm.as_fd(), owner, &mut count)
        });
    if let Err(e) = done {
        // What was made is removed again (the pipeline installs as usual).
        let _ = std::fs::remove_dir_all(crate::confine::proc_path(
            project.as_fd(),
            Some(OsStr::new("node_modules")),
        ));
        return Err(io_failure("restoring node_modules", e));
    }
    let build_caches = crate::build_cache::restore(&entry, project.as_fd(), owner);
    touch(&entry);
    Ok(DependencyCacheResponse {
        outcome: Outcome::Restored,
        key: Some(key),
        reason: None,
        entries: count.entries,
        bytes: count.bytes,
        linked: count.linked,
        elapsed_ms: 0,
        build_caches,
    })
}

/// Fills the sandbox folder `dst` (a descriptor of a folder the restore made) with the cache's
/// tree `src` (the backend's own files).
pub(crate) fn restore_tree(
    src: &Path,
    dst: BorrowedFd<'_>,
    owner: Owner,
    count: &mut Count,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let name = e.file_name();
        let ft = e.file_type()?;
        count.entries += 1;
        if ft.is_dir() {
            rustix::fs::mkdirat(dst, &name, Mode::from_raw_mode(0o755))?;
            let d = open_dir(dst, &name)?;
            owner.give(d.as_fd())?;
            restore_tree(&e.path(), d.as_fd(), owner, count)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            rustix::fs::symlinkat(&target, dst, &name)?;
            if owner.give {
                rustix::fs::chownat(
                    dst,
                    &name,
                    Some(rustix::fs::Uid::from_raw(owner.uid)),
                    Some(rustix::fs::Gid::from_raw(owner.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
        } else if ft.is_file() {
            let from = e.path();
            let meta = e.metadata()?;
            count.bytes += meta.len();
            if owner.link {
                match rustix::fs::linkat(rustix::fs::CWD, &from, dst, &name, AtFlags::empty()) {
                    Ok(()) => {
                        count.linked = true;
                        continue;
                    }
                    // Another file system, or too many links to one file: a copy.
                    Err(Errno::XDEV | Errno::MLINK | Errno::PERM) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut input = std::fs::File::open(&from)?;
            let fd = rustix::fs::openat(
                dst,
                &name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut out = std::fs::File::from(fd);
            std::io::copy(&mut input, &mut out)?;
            owner.give(out.as_fd())?;
            let mode = if meta.permissions().mode() & 0o111 == 0 {
                0o644
            } else {
                0o755
            };
            rustix::fs::fchmod(&out, Mode::from_raw_mode(mode))?;
        }
    }
    Ok(())
}

fn store(
    cache: &Cache,
    root: &Root,
    req: &DependencyCacheRequest,
) -> Result<DependencyCacheResponse, Failure> {
    let project = open_project(root, &req.path)?;
    let key = match key_of(root, project.as_fd(), req)? {
        Ok(k) => k,
        Err(reason) => return Ok(skipped(None, reason)),
    };
    let entry = cache.entries().join(&key);
    if entry.join("tree").is_dir() {
        touch(&entry);
        let mut a = skipped(Some(key), "already in the cache");
        a.outcome = Outcome::Stored;
        return Ok(a);
    }
    let nm = match open_dir(project.as_fd(), OsStr::new("node_modules")) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(skipped(Some(key), "no node_modules after the install")),
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return Ok(skipped(Some(key), "node_modules is not a folder"))
        }
        Err(e) => return Err(io_failure("node_modules", e)),
    };
    let tmp = cache
        .tmp()
        .join(format!("{key}.{}", crate::util::random_token(8)));
    let tree = tmp.join("tree");
    let mut count = Count::default();
    let built = std::fs::create_dir_all(&tree)
        .map_err(Short::Io)
        .and_then(|()| store_tree(nm.as_fd(), &tree, cache.max_bytes, &mut count, 0));
    let built = built.and_then(|()| {
        let meta = serde_json::json!({
            "key": key,
            "entries": count.entries,
            "bytes": count.bytes,
            "manager": req.manager,
            "command": req.command,
        });
        std::fs::write(tmp.join("meta.json"), meta.to_string())?;
        Ok(())
    });
    match built {
        Ok(()) => {}
        Err(Short::Skip(reason)) => {
            let _ = crate::spares::force_remove(&tmp);
            return Ok(skipped(Some(key), reason));
        }
        Err(Short::Io(e)) => {
            let _ = crate::spares::force_remove(&tmp);
            return Err(io_failure("storing node_modules", e));
        }
    }
    {
        let _writing = cache.write();
        if std::fs::rename(&tmp, &entry).is_err() {
            // Stored meanwhile by another sandbox of the same key.
            let _ = crate::spares::force_remove(&tmp);
        }
        evict(cache, &key);
    }
    Ok(DependencyCacheResponse {
        outcome: Outcome::Stored,
        key: Some(key),
        reason: None,
        entries: count.entries,
        bytes: count.bytes,
        linked: false,
        elapsed_ms: 0,
        build_caches: Vec::new(),
    })
}

/// Copies the sandbox's folder `src` into the cache folder `dst`: links kept as links (never
/// followed), regular files made read-only, anything else skipped.
pub(crate) fn store_tree(
    src: BorrowedFd<'_>,
    dst: &Path,
    max_bytes: u64,
    count: &mut Count,
    depth: usize,
) -> Result<(), Short> {
    if depth > MAX_DEPTH {
        return Err(Short::Skip(format!(
            "node_modules nests deeper than {MAX_DEPTH} folders"
        )));
    }
    let list = rustix::fs::Dir::read_from(src).map_err(std::io::Error::from)?;
    for e in list {
        let e = e.map_err(std::io::Error::from)?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." || (depth == 0 && crate::build_cache::in_node_modules(name))
        {
            continue;
        }
        let Ok(st) = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        count.entries += 1;
        if count.entries > MAX_TREE_ENTRIES {
            return Err(Short::Skip(format!(
                "node_modules has more than {MAX_TREE_ENTRIES} entries"
            )));
        }
        let to = dst.join(name);
        match crate::confine::file_type(&st) {
            FileType::Directory => {
                let Ok(d) = open_dir(src, name) else { continue };
                std::fs::create_dir(&to)?;
                store_tree(d.as_fd(), &to, max_bytes, count, depth + 1)?;
            }
            FileType::RegularFile => {
                let Some((mut input, fst)) = open_file(src, name) else {
                    continue;
                };
                count.bytes += u64::try_from(fst.st_size).unwrap_or(u64::MAX);
                if count.bytes > max_bytes {
                    return Err(Short::Skip(format!(
                        "node_modules is larger than the cache's cap ({max_bytes} bytes)"
                    )));
                }
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&to)?;
                std::io::copy(&mut input, &mut out)?;
                let mode = if fst.st_mode & 0o111 == 0 {
                    0o444
                } else {
                    0o555
                };
                out.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            FileType::Symlink => {
                let Ok(target) = rustix::fs::readlinkat(src, name, Vec::new()) else {
                    continue;
                };
                std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), &to)?;
            }
            // FIFOs, sockets, devices: not dependencies.
            _ => count.entries -= 1,
        }
    }
    Ok(())
}

/// Evicts the least recently used entries (not `keep`) until the cache fits its cap.
pub(crate) fn evict(cache: &Cache, keep: &str) {
    let Ok(list) = std::fs::read_dir(cache.entries()) else {
        return;
    };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = list
        .flatten()
        .filter_map(|e| {
            let meta = e.path().join("meta.json");
            let used = std::fs::metadata(&meta).and_then(|m| m.modified()).ok()?;
            let bytes = std::fs::read(&meta)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["bytes"].as_u64())
                .unwrap_or(0)
                + crate::build_cache::bytes_of(&e.path());
            Some((used, bytes, e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, bytes, path) in entries {
        if total <= cache.max_bytes {
            break;
        }
        if path.file_name() == Some(OsStr::new(keep)) {
            continue;
        }
        let gone = cache
            .tmp()
            .join(format!("evicted.{}", crate::util::random_token(8)));
        if std::fs::rename(&path, &gone).is_ok() {
            let _ = crate::spares::force_remove(&gone);
            total = total.saturating_sub(bytes);
        }
    }
}

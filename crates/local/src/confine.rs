//! Path confinement: every path a client names is mapped to where the sandbox's own
//! processes find it, and *pinned by descriptors* so that a sandbox racing the backend cannot
//! redirect it.
//!
//! A path is first made absolute inside the sandbox (relative paths resolve against
//! `/home/daytona`), then walked component by component from a descriptor of the sandbox's
//! root: each component is opened with `openat(O_PATH | O_NOFOLLOW)` relative to the folder
//! descriptor before it, so what was checked is what is used. `..` pops the walk's own stack of
//! folder descriptors (it never asks the kernel, so it never climbs above `/`), and a symlink is
//! read from its own descriptor (`readlinkat`) and followed the way the kernel does inside the
//! container (an absolute target restarts at the sandbox's `/`, a relative one continues from
//! the link's folder). Each step is looked up where the container's mount table
//! (`container::Layout`) puts it: the sandbox's own folder, or host folders mounted read-only
//! (`/usr`, `/etc` with the sandbox's own files stacked on top), so `/home/daytona/x` and
//! `/usr/bin/node` are the same files for a file route as for a command. Read-only places
//! refuse writes; `/proc`, `/sys` and `/dev` (the sandbox's own kernel file systems) are not
//! served.
//!
//! `openat2(RESOLVE_IN_ROOT)` alone cannot do this walk: the sandbox's `/usr` and `/etc` are
//! not under its root folder on this machine (they are mounts inside the container), so the
//! walk has to switch descriptors at the mount table's entries itself.
//!
//! Routes then operate on what the walk opened ([`Resolved`]): `*at()` calls on the pinned
//! parent folder with the last name (`renameat`, `unlinkat`, `mkdirat`), files opened with
//! `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` (same inode as walked, a regular file:
//! a FIFO or a device named like a file is refused with [`not_regular`] and never blocks a
//! thread). Where a std call needs a path, it gets `/proc/self/fd/N[/name]` ([`proc_path`]):
//! the kernel resolves that magic link to the very folder the walk pinned, with no name of the
//! sandbox's in between but the last one (and those calls do not follow a last symlink).

use crate::container::layout::{absolute, Layout, Source};
use crate::error::Failure;
use axum::http::StatusCode;
use rustix::fs::{FileType, Mode, OFlags, Stat};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// How many symlinks one resolution may follow (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Most steps (components looked up, folders made) one resolution may take: bounds the work
/// a path of many links, or a sandbox deleting folders as fast as they are made, can cause.
const MAX_STEPS: usize = 16_384;

/// Flags of every lookup of the walk: a handle on the name itself, never its target.
const LOOKUP: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// A sandbox root on the host, and the mount table over it.
#[derive(Clone, Debug)]
pub struct Root {
    host: PathBuf,
    layout: Arc<Layout>,
    volumes: Vec<Volume>,
}

/// A volume mounted read-write into the sandbox: its data folder on this machine (the
/// backend's own), the folder inside it that is mounted (`subpath`, the volume's content:
/// walked without following links), and where the sandbox sees it.
#[derive(Clone, Debug)]
pub struct Volume {
    pub data: PathBuf,
    pub subpath: Option<String>,
    /// Absolute, normalised (see [`absolute`]).
    pub at: String,
}

impl Volume {
    /// The mounted folder, pinned: the data folder, then each `subpath` component looked up
    /// from it as a folder and never a link (`..` refused), so content of the volume cannot
    /// point the mount elsewhere.
    fn open(&self) -> std::io::Result<Dir> {
        let mut fd = rustix::fs::open(
            &self.data,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for part in self.subpath.iter().flat_map(|s| s.split('/')) {
            match part {
                "" | "." => {}
                ".." => return Err(std::io::ErrorKind::InvalidInput.into()),
                name => {
                    fd = rustix::fs::openat(&fd, name, LOOKUP | OFlags::DIRECTORY, Mode::empty())?;
                }
            }
        }
        Ok(Dir::one(fd))
    }
}

/// A folder of the walk: one descriptor, or several for stacked read-only layers (the first
/// one's entries win, as in an overlay).
#[derive(Clone, Debug)]
pub struct Dir {
    layers: Vec<Arc<OwnedFd>>,
}

impl Dir {
    fn one(fd: OwnedFd) -> Dir {
        Dir {
            layers: vec![Arc::new(fd)],
        }
    }

    /// Opens host folders (the read-only mounts' sources: trusted, not the sandbox's).
    fn open_host(paths: &[&Path]) -> std::io::Result<Dir> {
        let mut layers = Vec::new();
        for p in paths {
            match rustix::fs::open(
                *p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => layers.push(Arc::new(fd)),
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if layers.is_empty() {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        Ok(Dir { layers })
    }

    /// `name` in this folder, not followed: the layer it was found in, its handle and stat.
    fn lookup(&self, name: &OsStr) -> std::io::Result<Option<(Arc<OwnedFd>, OwnedFd, Stat)>> {
        for layer in &self.layers {
            match rustix::fs::openat(layer, name, LOOKUP, Mode::empty()) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd)?;
                    return Ok(Some((layer.clone(), fd, st)));
                }
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// The folder `name` of every layer that has one (`found` is the first layer's).
    fn child(&self, name: &OsStr, found: OwnedFd) -> Dir {
        let mut layers = vec![Arc::new(found)];
        if self.layers.len() > 1 {
            let mut seen_first = false;
            for layer in &self.layers {
                let flags = LOOKUP | OFlags::DIRECTORY;
                if let Ok(fd) = rustix::fs::openat(layer, name, flags, Mode::empty()) {
                    if seen_first {
                        layers.push(Arc::new(fd));
                    }
                    seen_first = true;
                }
            }
        }
        Dir { layers }
    }
}

/// A last component that is not a folder: the folder descriptor holding it, its name, and
/// its handle and stat when it exists.
type Leaf = (Arc<OwnedFd>, OsString, Option<(OwnedFd, Stat)>);

/// A folder of the walk's stack: its name (in its parent) and whether it is read-only.
struct Level {
    name: OsString,
    dir: Dir,
    stat: Stat,
    read_only: bool,
}

/// A path resolved inside a sandbox, pinned: the folder holding its last name (opened), the
/// name, and the place itself when it exists (opened `O_PATH`, not followed when it is a
/// symlink that was not to be followed).
#[derive(Debug)]
pub struct Resolved {
    /// The same place as the sandbox sees it, e.g. `/home/daytona/a.txt`.
    pub shown: String,
    /// Under a read-only mount (`/usr`, `/etc`).
    pub read_only: bool,
    /// The folder descriptor holding `name` (the layer it was found in), unless this is `/`
    /// or a mount point.
    at: Option<(Arc<OwnedFd>, OsString)>,
    /// The place itself, when it exists.
    node: Option<Node>,
}

/// An existing place: its handle (`O_PATH`), its stat, and, for a folder, all its layers.
#[derive(Debug)]
struct Node {
    fd: Arc<OwnedFd>,
    stat: Stat,
    dir: Option<Dir>,
}

/// What the walk does about missing folders.
#[derive(Clone, Copy, PartialEq)]
enum Create {
    /// Nothing: a missing folder on the way is "not found".
    Nothing,
    /// Every missing folder but the last component (which is left to the caller).
    Parents,
    /// Every missing folder, the last component too.
    All,
}

/// The kind of a file type, in words, for errors.
fn kind_of(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

/// The typed error for a place that is neither a regular file nor a folder (a FIFO, a socket,
/// a device): the file API never opens those for reading or writing, so none of them can
/// block a backend thread.
pub fn not_regular(shown: &str, ft: FileType) -> Failure {
    Failure::bad_request(format!(
        "{shown} is {}: the file API reads and writes regular files only",
        kind_of(ft)
    ))
    .with_code("NOT_A_REGULAR_FILE")
}

/// `/proc/self/fd/N`: a path the kernel resolves to exactly the open descriptor `fd` (for the
/// std calls that take paths), and `/proc/self/fd/N/name` for a name in that folder.
pub fn proc_path(fd: BorrowedFd<'_>, name: Option<&OsStr>) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if let Some(n) = name {
        p.push(n);
    }
    p
}

/// Modification time of a stat.
#[allow(clippy::unnecessary_cast)] // the field's type differs between architectures
pub fn modified(st: &Stat) -> std::time::SystemTime {
    let secs = st.st_mtime as i64;
    let nanos = st.st_mtime_nsec as u32;
    if secs >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    }
}

/// The file type of a stat.
pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode as _)
}

impl Resolved {
    /// Refuses a change to a read-only place, as the kernel would (`EROFS`).
    pub fn writable(&self) -> Result<&Resolved, Failure> {
        if self.read_only {
            return Err(read_only(&self.shown));
        }
        Ok(self)
    }

    /// Its stat (of the link itself for an unfollowed symlink); "not found" when missing.
    pub fn stat(&self) -> Result<&Stat, Failure> {
        self.node
            .as_ref()
            .map(|n| &n.stat)
            .ok_or_else(|| self.not_found())
    }

    /// Its type, when it exists.
    pub fn file_type(&self) -> Option<FileType> {
        self.node.as_ref().map(|n| file_type(&n.stat))
    }

    /// True for an existing folder.
    pub fn is_dir(&self) -> bool {
        self.file_type() == Some(FileType::Directory)
    }

    /// The last component's name (`/` for the root).
    pub fn name(&self) -> String {
        match &self.at {
            Some((_, n)) => n.to_string_lossy().into_owned(),
            None => self
                .shown
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or("/")
                .to_string(),
        }
    }

    fn not_found(&self) -> Failure {
        Failure::from_io(&std::io::ErrorKind::NotFound.into(), &self.shown)
    }

    /// The folder holding the last name, and the name (`None` for `/` and mount points,
    /// which cannot be created, moved or deleted).
    pub fn at(&self) -> Result<(BorrowedFd<'_>, &OsStr), Failure> {
        self.at
            .as_ref()
            .map(|(fd, n)| (fd.as_fd(), n.as_os_str()))
            .ok_or_else(|| {
                Failure::bad_request(format!("{} cannot be changed", self.shown))
                    .with_code("FILE_ACCESS_DENIED")
            })
    }

    /// The place's own handle (`O_PATH`).
    pub fn fd(&self) -> Result<BorrowedFd<'_>, Failure> {
        self.node
            .as_ref()
            .map(|n| n.fd.as_fd())
            .ok_or_else(|| self.not_found())
    }

    /// The folder (all its layers), when this is one.
    pub fn dir(&self) -> Result<&Dir, Failure> {
        match &self.node {
            Some(Node { dir: Some(d), .. }) => Ok(d),
            Some(_) => Err(Failure::bad_request(format!(
                "{} is not a directory",
                self.shown
            ))),
            None => Err(self.not_found()),
        }
    }

    /// `/proc/self/fd/N` of the place itself (a std call on it reaches that inode).
    pub fn proc_path(&self) -> Result<PathBuf, Failure> {
        Ok(proc_path(self.fd()?, None))
    }

    /// The sandbox's user may read it: this machine's files (read-only mounts) are not the
    /// sandbox user's, so their permission bits for others decide, as inside.
    pub fn readable(&self) -> Result<(), Failure> {
        let st = self.stat()?;
        if self.read_only && st.st_mode & 0o004 == 0 {
            return Err(Failure::from_io(
                &std::io::ErrorKind::PermissionDenied.into(),
                &self.shown,
            ));
        }
        Ok(())
    }

    /// Opens the regular file for reading: refused when it is anything else (a folder, a
    /// FIFO, a device, a socket), when the sandbox's user may not read it, or when the name
    /// no longer holds the inode that was walked to. Never blocks (`O_NONBLOCK`).
    pub fn open_read(&self) -> Result<std::fs::File, Failure> {
        self.open_regular(OFlags::RDONLY)
    }

    /// Opens the regular file for writing, truncated (same checks as [`Self::open_read`]).
    pub fn open_truncate(&self) -> Result<std::fs::File, Failure> {
        self.writable()?;
        self.open_regular(OFlags::WRONLY | OFlags::TRUNC)
    }

    fn open_regular(&self, how: OFlags) -> Result<std::fs::File, Failure> {
        let st = *self.stat()?;
        let ft = file_type(&st);
        if ft == FileType::Directory {
            return Err(Failure::bad_request(format!(
                "path points to a directory: {}",
                self.shown
            ))
            .with_code("INVALID_FILE_PATH"));
        }
        if ft != FileType::RegularFile {
            return Err(not_regular(&self.shown, ft));
        }
        self.readable()?;
        let (dir, name) = self.at()?;
        let flags = how | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
            // A symlink where the file was: swapped since the walk.
            rustix::io::Errno::LOOP => changed(&self.shown),
            e => Failure::from_io(&e.into(), &self.shown),
        })?;
        let now = rustix::fs::fstat(&fd).map_err(|e| Failure::from_io(&e.into(), &self.shown))?;
        if now.st_ino != st.st_ino || now.st_dev != st.st_dev {
            return Err(changed(&self.shown));
        }
        let file = std::fs::File::from(fd);
        // Regular files never block; the flag only guarded the open.
        let _ = set_blocking(&file);
        Ok(file)
    }

    /// Creates the last name as a new file (never following or replacing anything there).
    pub fn create_new(&self, mode: u32) -> Result<std::fs::File, Failure> {
        self.writable()?;
        let (dir, name) = self.at()?;
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode as _))
            .map(std::fs::File::from)
            .map_err(|e| Failure::from_io(&e.into(), &self.shown))
    }
}

/// Clears `O_NONBLOCK` on an open file.
fn set_blocking(file: &std::fs::File) -> rustix::io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    rustix::fs::fcntl_setfl(file, flags - OFlags::NONBLOCK)
}

fn read_only(shown: &str) -> Failure {
    Failure::new(
        StatusCode::FORBIDDEN,
        format!("read-only file system: {shown}"),
    )
    .with_code("FILE_ACCESS_DENIED")
}

/// A place that changed between the walk and its use (a sandbox swapping names): refused.
pub fn changed(shown: &str) -> Failure {
    Failure::conflict(format!(
        "{shown} changed while it was being opened: try again"
    ))
    .with_code("FILE_CHANGED")
}

fn invalid(message: String) -> Failure {
    Failure::bad_request(message).with_code("INVALID_FILE_PATH")
}

/// Hands a folder the walk made to the sandbox's user.
pub type Give<'a> = &'a dyn Fn(BorrowedFd<'_>) -> std::io::Result<()>;

impl Root {
    pub fn new(host: PathBuf, layout: Arc<Layout>) -> Root {
        Root {
            host,
            layout,
            volumes: Vec::new(),
        }
    }

    /// The same root with the sandbox's volumes mounted (a later one over an earlier one at
    /// the same place, as mounts stack).
    pub fn with_volumes(mut self, volumes: Vec<Volume>) -> Root {
        self.volumes = volumes;
        self
    }

    /// The volume mounted exactly at `logical`.
    fn volume_at(&self, logical: &str) -> Option<&Volume> {
        self.volumes.iter().rev().find(|v| v.at == logical)
    }

    /// The host folder of the sandbox's `/` (for messages only: never opened by path but
    /// at the start of a walk).
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// Resolves `input`, following a symlink in the last component too.
    pub fn resolve(&self, input: &str) -> Result<Resolved, Failure> {
        self.walk(input, true, Create::Nothing, None)
    }

    /// Resolves `input` but leaves a symlink in the last component as it is (delete, move,
    /// lstat operate on the link itself).
    pub fn resolve_nofollow(&self, input: &str) -> Result<Resolved, Failure> {
        self.walk(input, false, Create::Nothing, None)
    }

    /// Resolves `input` for creating it: its missing parent folders are made (given to the
    /// sandbox's user by `give`); a symlink as the last component is followed when
    /// `follow_last` (a write through a link lands where the link points, as `>` does inside),
    /// else left to be replaced (a rename's destination).
    pub fn resolve_for_create(
        &self,
        input: &str,
        follow_last: bool,
        give: Give<'_>,
    ) -> Result<Resolved, Failure> {
        self.walk(input, follow_last, Create::Parents, Some(give))
    }

    /// Makes the folder `input` and its missing parents, as `mkdir -p` in the sandbox would.
    pub fn make_dirs(&self, input: &str, give: Give<'_>) -> Result<Resolved, Failure> {
        self.walk(input, true, Create::All, Some(give))
    }

    fn open_root(&self) -> Result<(Dir, Stat), Failure> {
        let fd = rustix::fs::open(
            &self.host,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Failure::internal(format!("the sandbox's root cannot be opened: {e}")))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Failure::internal(e.to_string()))?;
        Ok((Dir::one(fd), st))
    }

    fn walk(
        &self,
        input: &str,
        follow_last: bool,
        create: Create,
        give: Option<Give<'_>>,
    ) -> Result<Resolved, Failure> {
        if input.contains('\0') {
            return Err(invalid("path contains a NUL byte".into()));
        }
        let input = if input.is_empty() { "." } else { input };
        let mut pending: VecDeque<OsString> = VecDeque::new();
        push_components(&mut pending, Path::new(&absolute(input)));
        let (root, root_stat) = self.open_root()?;
        let mut stack = vec![Level {
            name: OsString::new(),
            dir: root,
            stat: root_stat,
            read_only: false,
        }];
        let mut links = 0usize;
        let mut steps = 0usize;
        // A last component that is not a folder of the stack: a file (or an unfollowed
        // link), or a name that does not exist.
        let mut leaf: Option<Leaf> = None;
        while let Some(part) = pending.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(invalid(format!("path too long to resolve: {input}")));
            }
            if part == OsStr::new("..") {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let is_last = pending.is_empty();
            let logical = logical_of(&stack, Some(&part));
            let top = stack.last().expect("the root is never popped");
            // A mount point: a volume's folder on this machine (writable), or this machine's
            // folder (read-only).
            let mount = match (self.volume_at(&logical), self.layout.source_of(&logical)) {
                (Some(volume), _) => Some((volume.open(), false)),
                (None, Source::Special(kind)) => {
                    return Err(invalid(format!(
                        "{logical} is on the sandbox's own {kind} file system, which the file API does not serve"
                    )))
                }
                (None, Source::ReadOnly(layers, rest)) if rest.is_empty() => {
                    Some((Dir::open_host(&layers), true))
                }
                _ => None,
            };
            if let Some((dir, read_only)) = mount {
                let dir = dir.map_err(|e| Failure::from_io(&e, &logical))?;
                let stat = rustix::fs::fstat(&*dir.layers[0])
                    .map_err(|e| Failure::from_io(&e.into(), &logical))?;
                stack.push(Level {
                    name: part,
                    dir,
                    stat,
                    read_only,
                });
                continue;
            }
            let read_only = top.read_only;
            let found = top
                .dir
                .lookup(&part)
                .map_err(|e| Failure::from_io(&e, &logical))?;
            let Some((layer, fd, st)) = found else {
                let make = match create {
                    Create::All => true,
                    Create::Parents => !is_last,
                    Create::Nothing => false,
                };
                if is_last && !make {
                    leaf = Some((top.dir.layers[0].clone(), part, None));
                    continue;
                }
                if !make {
                    // Nothing below a missing folder exists: the rest is named lexically
                    // (a command's cwd is shown to it; a file route answers "not found").
                    let mut rest = vec![part];
                    rest.extend(pending.drain(..));
                    let mut shown = PathBuf::from(logical_of(&stack, None));
                    for c in rest {
                        if c == OsStr::new("..") {
                            shown.pop();
                        } else {
                            shown.push(c);
                        }
                    }
                    let shown = shown.to_string_lossy().into_owned();
                    return Ok(Resolved {
                        read_only: read_only || self.under_read_only(&shown),
                        shown,
                        at: None,
                        node: None,
                    });
                }
                if read_only {
                    return Err(read_only_failure(&logical));
                }
                match rustix::fs::mkdirat(&*top.dir.layers[0], &part, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {
                        if let (Some(give), Ok(made)) = (
                            give,
                            rustix::fs::openat(&*top.dir.layers[0], &part, LOOKUP, Mode::empty()),
                        ) {
                            if rustix::fs::fstat(&made)
                                .is_ok_and(|s| file_type(&s) == FileType::Directory)
                            {
                                let _ = give(made.as_fd());
                            }
                        }
                    }
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(Failure::from_io(&e.into(), &logical)),
                }
                // Looked up again: whatever is there now is walked like anything else.
                pending.push_front(part);
                continue;
            };
            let ft = file_type(&st);
            if ft == FileType::Symlink && (follow_last || !is_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(invalid(format!(
                        "too many levels of symbolic links: {input}"
                    )));
                }
                let target = rustix::fs::readlinkat(&fd, c"", Vec::new())
                    .map_err(|e| Failure::from_io(&e.into(), &logical))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.has_root() {
                    stack.truncate(1);
                }
                let mut expanded = VecDeque::new();
                push_components(&mut expanded, &target);
                expanded.extend(pending.drain(..));
                pending = expanded;
                continue;
            }
            if ft == FileType::Directory {
                let dir = top.dir.child(&part, fd);
                stack.push(Level {
                    name: part,
                    dir,
                    stat: st,
                    read_only,
                });
                continue;
            }
            if !is_last {
                return Err(Failure::from_io(
                    &std::io::ErrorKind::NotADirectory.into(),
                    &logical,
                ));
            }
            leaf = Some((layer, part, Some((fd, st))));
        }
        let read_only_top = stack.last().is_some_and(|l| l.read_only);
        if let Some((layer, name, node)) = leaf {
            // A last component that is a file or missing: under the folder on top.
            let shown = logical_of(&stack, Some(&name));
            let read_only = read_only_top || self.under_read_only(&shown);
            return Ok(Resolved {
                shown,
                read_only,
                at: Some((layer, name)),
                node: node.map(|(fd, stat)| Node {
                    fd: Arc::new(fd),
                    stat,
                    dir: None,
                }),
            });
        }
        // The last component is the folder on top of the stack.
        let shown = logical_of(&stack, None);
        let level = stack.pop().expect("the root is never popped");
        let at = match stack.last() {
            Some(parent) if !self.is_mount_point(&shown) => {
                Some((parent.dir.layers[0].clone(), level.name.clone()))
            }
            _ => None,
        };
        let at = match (at, stack.last()) {
            // A folder in a lower layer is held by that layer's folder.
            (Some((_, name)), Some(parent)) if parent.dir.layers.len() > 1 => {
                let mut holder = parent.dir.layers[0].clone();
                for l in &parent.dir.layers {
                    if rustix::fs::statat(&**l, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok()
                    {
                        holder = l.clone();
                        break;
                    }
                }
                Some((holder, name))
            }
            (at, _) => at,
        };
        Ok(Resolved {
            shown,
            read_only: level.read_only,
            at,
            node: Some(Node {
                fd: level.dir.layers[0].clone(),
                stat: level.stat,
                dir: Some(level.dir),
            }),
        })
    }

    fn is_mount_point(&self, shown: &str) -> bool {
        self.volume_at(shown).is_some()
            || matches!(self.layout.source_of(shown), Source::ReadOnly(_, rest) if rest.is_empty())
    }

    fn under_read_only(&self, shown: &str) -> bool {
        matches!(self.layout.source_of(shown), Source::ReadOnly(..))
    }
}

fn read_only_failure(shown: &str) -> Failure {
    read_only(shown)
}

/// The sandbox path of the stack (and `last` below it).
fn logical_of(stack: &[Level], last: Option<&OsStr>) -> String {
    let mut out = String::new();
    for l in stack.iter().skip(1) {
        out.push('/');
        out.push_str(&l.name.to_string_lossy());
    }
    if let Some(n) = last {
        out.push('/');
        out.push_str(&n.to_string_lossy());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
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

/// One entry of a folder being read: its name and lstat, and the layer it is in.
pub struct Entry {
    pub name: OsString,
    pub stat: Stat,
    pub layer: Arc<OwnedFd>,
}

impl Entry {
    pub fn file_type(&self) -> FileType {
        file_type(&self.stat)
    }

    /// Opens the entry as a folder (never through a symlink: a name swapped since it was
    /// read fails here instead).
    pub fn open_dir(&self, all_layers: &Dir) -> std::io::Result<Dir> {
        let flags = LOOKUP | OFlags::DIRECTORY;
        let fd = rustix::fs::openat(&*self.layer, &self.name, flags, Mode::empty())?;
        let st = rustix::fs::fstat(&fd)?;
        if st.st_ino != self.stat.st_ino || st.st_dev != self.stat.st_dev {
            return Err(std::io::Error::other("changed"));
        }
        Ok(all_layers.child(&self.name, fd))
    }

    /// Opens the entry as a regular file for reading (`None` for anything else, or when the
    /// name holds something else by now).
    pub fn open_regular(&self) -> Option<std::fs::File> {
        if self.file_type() != FileType::RegularFile {
            return None;
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*self.layer, &self.name, flags, Mode::empty()).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        if st.st_ino != self.stat.st_ino
            || st.st_dev != self.stat.st_dev
            || file_type(&st) != FileType::RegularFile
        {
            return None;
        }
        let file = std::fs::File::from(fd);
        set_blocking(&file).ok()?;
        Some(file)
    }
}

/// The entries of a folder, sorted by name, its layers merged (a name in an upper layer hides
/// the same name below). At most `limit` entries are read.
pub fn entries(dir: &Dir, limit: usize) -> std::io::Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for layer in &dir.layers {
        let readable = rustix::fs::openat(
            &**layer,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let list = rustix::fs::Dir::new(readable)?;
        for e in list {
            let Ok(e) = e else { break };
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." || !seen.insert(name.to_os_string()) {
                continue;
            }
            let Ok(stat) =
                rustix::fs::statat(&**layer, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            out.push(Entry {
                name: name.to_os_string(),
                stat,
                layer: layer.clone(),
            });
            if out.len() >= limit {
                break;
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("home/daytona")).unwrap();
        for m in ["usr", "etc", "proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(root.join(m)).unwrap();
        }
        let layout = Layout::for_this_machine(&dir.path().join("etc-top"));
        (dir, Root::new(root, Arc::new(layout)))
    }

    #[allow(clippy::unnecessary_wraps)] // the shape `give` callbacks have
    fn no_give(_: BorrowedFd<'_>) -> std::io::Result<()> {
        Ok(())
    }

    #[test]
    fn relative_paths_resolve_against_the_work_dir() {
        let (_d, root) = setup();
        let r = root.resolve("a/b.txt").unwrap();
        assert_eq!(r.shown, "/home/daytona/a/b.txt");
        assert!(
            r.stat().is_err(),
            "a missing folder on the way is not found"
        );
        let r = root.resolve("b.txt").unwrap();
        assert_eq!(r.shown, "/home/daytona/b.txt");
        assert!(r.file_type().is_none());
        assert!(!r.read_only);
        let r = root.resolve_for_create("a/b.txt", true, &no_give).unwrap();
        assert_eq!(r.shown, "/home/daytona/a/b.txt");
        assert!(root.host().join("home/daytona/a").is_dir());
    }

    #[test]
    fn dotdot_never_climbs_above_the_root() {
        let (_d, root) = setup();
        let r = root.resolve("../../../../../tmp/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
    }

    #[test]
    fn the_toolchain_is_the_machines_and_read_only() {
        let (_d, root) = setup();
        let r = root.resolve("/usr/bin/env").unwrap();
        assert!(r.file_type().is_some());
        assert!(r.read_only);
        assert!(r.writable().is_err());
        let r = root.resolve("../../etc/os-release").unwrap();
        assert!(r.read_only);
        assert!(root.resolve("/proc/1/environ").is_err());
        assert!(root.resolve("/dev/null").is_err());
        assert!(root.make_dirs("/usr/forge-test", &no_give).is_err());
    }

    #[test]
    fn symlinks_are_followed_as_inside_the_sandbox() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::fs::write(root.host().join("tmp/x"), "x").unwrap();
        std::os::unix::fs::symlink("/tmp", home.join("t")).unwrap();
        std::os::unix::fs::symlink("../../../../..", home.join("up")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", home.join("bin")).unwrap();
        let r = root.resolve("t/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
        assert!(r.file_type().is_some());
        let r = root.resolve("up/tmp/x").unwrap();
        assert_eq!(r.shown, "/tmp/x");
        let r = root.resolve("bin/env").unwrap();
        assert_eq!(r.shown, "/usr/bin/env");
        assert!(r.read_only);
        let r = root.resolve_nofollow("t").unwrap();
        assert_eq!(r.shown, "/home/daytona/t");
        assert_eq!(r.file_type(), Some(FileType::Symlink));
    }

    #[test]
    fn symlink_loops_stop() {
        let (_d, root) = setup();
        let home = root.host().join("home/daytona");
        std::os::unix::fs::symlink("loop", home.join("loop")).unwrap();
        assert!(root.resolve("loop").is_err());
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let (_d, root) = setup();
        let fifo = root.host().join("home/daytona/pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let r = root.resolve("pipe").unwrap();
        let e = r.open_read().unwrap_err();
        assert_eq!(e.code, Some("NOT_A_REGULAR_FILE"));
        assert!(e.message.contains("FIFO"), "{}", e.message);
    }
}

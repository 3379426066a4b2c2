//! A folder on this machine as a [`FileSource`]. Directory symlinks are never followed
//! (symlink loops cannot trap the walk), special files (FIFOs, devices) are never opened,
//! and reads stop at the cap, so a huge or endless file cannot stall detection.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::source::{DirEntry, EntryKind, FileBytes, FileSource};

/// A local folder. Paths given to it are relative to `root`.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl FileSource for LocalSource {
    fn list_dir(&self, dir: &str) -> std::io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.abs(dir))? {
            let Ok(entry) = entry else { continue };
            // Names that are not UTF-8 cannot be config files we look for; skip them.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // file_type() does not follow symlinks.
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => EntryKind::Dir,
                Ok(t) if t.is_file() => EntryKind::File,
                _ => EntryKind::Other,
            };
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read_file(&self, path: &str, max_bytes: usize) -> std::io::Result<Option<FileBytes>> {
        let abs = self.abs(path);
        // Non-blocking open, so a FIFO cannot stall us; then only regular files are read
        // (a symlink loop or dangling link fails to open: treated as missing).
        let mut options = fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc_o_nonblock());
        }
        let Ok(file) = options.open(&abs) else {
            return Ok(None);
        };
        let size = match file.metadata() {
            Ok(m) if m.is_file() => m.len() as usize,
            _ => return Ok(None),
        };
        let mut bytes = Vec::with_capacity(size.min(max_bytes) + 1);
        file.take(max_bytes as u64 + 1).read_to_end(&mut bytes)?;
        let truncated = bytes.len() > max_bytes;
        bytes.truncate(max_bytes);
        Ok(Some(FileBytes { bytes, truncated }))
    }
}

/// `O_NONBLOCK` (the same value on every Linux architecture except alpha, sparc, parisc and
/// mips, and on macOS it is 4).
#[cfg(unix)]
fn libc_o_nonblock() -> i32 {
    if cfg!(target_os = "macos") || cfg!(target_os = "ios") || cfg!(target_os = "freebsd") {
        0x4
    } else if cfg!(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    )) {
        0x80
    } else {
        0o4000
    }
}

/// The repository root of `folder`: the nearest ancestor (or itself) holding `.git`, looked
/// for at most 8 levels up; `folder` itself when there is none.
pub fn find_repo_root(folder: &Path) -> PathBuf {
    let mut cur = Some(folder);
    for _ in 0..8 {
        let Some(dir) = cur else { break };
        if dir.join(".git").exists() {
            return dir.to_path_buf();
        }
        cur = dir.parent();
    }
    folder.to_path_buf()
}

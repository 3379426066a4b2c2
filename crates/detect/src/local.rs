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
        // metadata() follows a file symlink; a loop or dangling link is an error → missing.
        match fs::metadata(&abs) {
            Ok(m) if m.is_file() => {}
            _ => return Ok(None),
        }
        let file = match fs::File::open(&abs) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let mut bytes = Vec::new();
        file.take(max_bytes as u64 + 1).read_to_end(&mut bytes)?;
        let truncated = bytes.len() > max_bytes;
        bytes.truncate(max_bytes);
        Ok(Some(FileBytes { bytes, truncated }))
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

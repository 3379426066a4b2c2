//! Where the files come from. The detector never touches the disk or the network itself: it
//! asks a [`FileSource`] for directory entries and (capped) file contents. Three sources
//! exist or are planned:
//!
//! - [`crate::LocalSource`]: a folder on this machine;
//! - [`MemorySource`]: an in-memory `{path: content}` map (tests, JS callers, uploads);
//! - a remote folder (inside a sandbox): that one does not implement the trait call by call,
//!   which would cost one round trip per directory. It uses the two-phase API instead:
//!   [`crate::Listing::from_paths`] from one recursive listing, [`crate::candidate_paths`]
//!   to choose the few files worth downloading, one bulk download, then
//!   [`crate::detect_snapshot`]. See the crate docs.

use std::collections::BTreeMap;

/// What kind of thing a directory entry is. Symlinks are reported as such and never
/// followed as directories (that is how symlink loops are survived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink, socket, FIFO, device: listed for existence checks, never descended into.
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
}

/// The first bytes of a file, and whether there were more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBytes {
    pub bytes: Vec<u8>,
    /// True when the file is longer than the cap that was asked for.
    pub truncated: bool,
}

/// Read-only access to a repository. Paths are relative, `/`-separated, with `""` for the
/// repository root. Implementations must not follow directory symlinks, must not block on
/// special files, and must return at most `max_bytes` bytes.
pub trait FileSource {
    /// The entries of one directory. A missing directory is an empty list.
    fn list_dir(&self, dir: &str) -> std::io::Result<Vec<DirEntry>>;
    /// Up to `max_bytes` bytes of one file. `Ok(None)` when it is missing or not a regular file.
    fn read_file(&self, path: &str, max_bytes: usize) -> std::io::Result<Option<FileBytes>>;
}

/// An in-memory repository: `{path: content}`. Directories are implied by the paths.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemorySource {
    /// Builds a source from `(path, content)` pairs; leading `./` and `/` are removed.
    pub fn new<P: AsRef<str>, C: Into<Vec<u8>>>(files: impl IntoIterator<Item = (P, C)>) -> Self {
        let files = files
            .into_iter()
            .filter_map(|(p, c)| normalize_path(p.as_ref()).map(|p| (p, c.into())))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        MemorySource { files }
    }

    /// The paths held, for the two-phase API.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The whole map (path → bytes).
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }
}

impl FileSource for MemorySource {
    fn list_dir(&self, dir: &str) -> std::io::Result<Vec<DirEntry>> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<DirEntry> = Vec::new();
        for path in self.files.range(prefix.clone()..) {
            let Some(rest) = path.0.strip_prefix(&prefix) else {
                break;
            };
            let entry = match rest.split_once('/') {
                Some((name, _)) => DirEntry {
                    name: name.to_string(),
                    kind: EntryKind::Dir,
                },
                None => DirEntry {
                    name: rest.to_string(),
                    kind: EntryKind::File,
                },
            };
            if out.last() != Some(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn read_file(&self, path: &str, max_bytes: usize) -> std::io::Result<Option<FileBytes>> {
        Ok(self.files.get(path).map(|b| FileBytes {
            bytes: b[..b.len().min(max_bytes)].to_vec(),
            truncated: b.len() > max_bytes,
        }))
    }
}

/// Normalises a relative path: `\` → `/`, drops `.` segments and leading slashes, rejects
/// `..`. Returns `None` for paths that leave the root.
pub fn normalize_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

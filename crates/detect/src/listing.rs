//! The set of paths in a repository (phase one of detection), built either by walking a
//! [`FileSource`] with bounds, or from a remote recursive listing.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Warning;
use crate::source::{normalize_path, EntryKind, FileSource};

/// Directory names never walked into: dependencies, VCS data and build outputs. They hold
/// nothing the detector needs and can be huge.
pub const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    "dist",
    "build",
    "out",
    ".next",
    ".nuxt",
    ".output",
    ".svelte-kit",
    ".astro",
    ".turbo",
    ".vercel",
    ".netlify",
    ".cache",
    ".parcel-cache",
    ".angular",
    ".expo",
    ".docusaurus",
    ".yarn",
    ".pnpm-store",
    "coverage",
    "target",
    "vendor",
    "__pycache__",
    ".venv",
    "tmp",
];

/// Folders listed but not walked into: assets and the inside of `src/` hold no package,
/// lockfile or config the detector reads (entry files sit directly in `src/`).
pub const SHALLOW_DIRS: &[&str] = &[
    "public",
    "static",
    "assets",
    "images",
    "img",
    "fonts",
    "styles",
    "css",
    "locales",
    "__tests__",
    "__mocks__",
    "__snapshots__",
];

/// Bounds for walking a source.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// Directories deeper than this (root = 0) are not listed.
    pub max_depth: usize,
    /// The walk stops after this many entries in total.
    pub max_entries: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        WalkLimits {
            max_depth: 6,
            max_entries: 20_000,
        }
    }
}

/// Every file and directory path seen, relative and `/`-separated.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Directory → names of the files directly in it (`""` is the root).
    files: BTreeMap<String, BTreeSet<String>>,
    /// Every directory, including the root `""`.
    dirs: BTreeSet<String>,
    pub(crate) warnings: Vec<Warning>,
}

impl Listing {
    /// Builds a listing from file paths (directories are implied by them). This is the entry
    /// point for a remote source: one recursive listing of the sandbox folder, filtered with
    /// [`is_skipped_path`] on the remote side or here.
    pub fn from_paths<S: AsRef<str>>(paths: impl IntoIterator<Item = S>) -> Self {
        let mut listing = Listing::default();
        listing.dirs.insert(String::new());
        for p in paths {
            if let Some(p) = normalize_path(p.as_ref()) {
                if !p.is_empty() && !is_skipped_path(&p) {
                    listing.add_file(&p);
                }
            }
        }
        listing
    }

    /// Walks a source breadth-first within `limits`. Skips [`SKIPPED_DIRS`], never descends
    /// into symlinks, and records a warning when the walk was cut short.
    pub fn walk(source: &dyn FileSource, limits: WalkLimits) -> std::io::Result<Self> {
        Self::walk_under(source, "", limits)
    }

    /// Like [`Listing::walk`], but walks only the subfolder `start` in depth; of each folder
    /// above it (up to the source root) only the files are listed, which is what lockfiles,
    /// `.nvmrc` and workspace files found "walking up to the repository root" need.
    pub fn walk_under(
        source: &dyn FileSource,
        start: &str,
        limits: WalkLimits,
    ) -> std::io::Result<Self> {
        let mut listing = Listing::default();
        listing.dirs.insert(String::new());
        if !start.is_empty() {
            let mut anc = split_parent(start).0.to_string();
            loop {
                for e in source.list_dir(&anc).unwrap_or_default() {
                    if e.kind != EntryKind::Dir {
                        listing.add_file(&join(&anc, &e.name));
                    }
                }
                if anc.is_empty() {
                    break;
                }
                anc = split_parent(&anc).0.to_string();
            }
            listing.add_dir(start);
        }
        let mut queue = std::collections::VecDeque::from([(start.to_string(), 0usize)]);
        let mut seen = 0usize;
        let mut truncated = false;
        let mut first = true;
        while let Some((dir, depth)) = queue.pop_front() {
            let entries = match source.list_dir(&dir) {
                Ok(e) => e,
                // The root must be readable; a subfolder that is not is just skipped.
                Err(e) if first => return Err(e),
                Err(_) => continue,
            };
            first = false;
            for entry in entries {
                seen += 1;
                if seen > limits.max_entries {
                    truncated = true;
                    break;
                }
                let path = if dir.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{dir}/{}", entry.name)
                };
                match entry.kind {
                    EntryKind::Dir => {
                        if SKIPPED_DIRS.contains(&entry.name.as_str()) {
                            continue;
                        }
                        listing.add_dir(&path);
                        let shallow = SHALLOW_DIRS.contains(&entry.name.as_str())
                            || dir == "src"
                            || dir.ends_with("/src");
                        if shallow {
                            continue;
                        }
                        if depth < limits.max_depth {
                            queue.push_back((path, depth + 1));
                        } else {
                            truncated = true;
                        }
                    }
                    EntryKind::File | EntryKind::Other => listing.add_file(&path),
                }
            }
            if seen > limits.max_entries {
                break;
            }
        }
        if truncated {
            listing.warnings.push(Warning::new(
                "WALK_TRUNCATED",
                format!(
                    "the repository is larger than the walk limits ({} levels, {} entries); deeper or later files were not read",
                    limits.max_depth, limits.max_entries
                ),
            ));
        }
        Ok(listing)
    }

    fn add_dir(&mut self, path: &str) {
        let mut d = path;
        while self.dirs.insert(d.to_string()) && !d.is_empty() {
            d = split_parent(d).0;
        }
    }

    fn add_file(&mut self, path: &str) {
        let (dir, name) = split_parent(path);
        self.add_dir(dir);
        self.files
            .entry(dir.to_string())
            .or_default()
            .insert(name.to_string());
    }

    /// True when `path` is a file of the listing.
    pub fn has_file(&self, path: &str) -> bool {
        let (dir, name) = split_parent(path);
        self.files.get(dir).is_some_and(|s| s.contains(name))
    }

    /// True when `path` is a directory of the listing.
    pub fn has_dir(&self, path: &str) -> bool {
        self.dirs.contains(path)
    }

    /// Names of the files directly inside `dir`.
    pub fn files_in(&self, dir: &str) -> impl Iterator<Item = &str> {
        self.files
            .get(dir)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// Every directory.
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.dirs.iter().map(String::as_str)
    }

    /// Every file path.
    pub fn file_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.files
            .iter()
            .flat_map(|(d, names)| names.iter().map(move |n| join(d, n)))
    }

    /// Warnings from building the listing (walk cut short).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// True when a path goes through one of [`SKIPPED_DIRS`].
pub fn is_skipped_path(path: &str) -> bool {
    let mut segs = path.split('/').peekable();
    while let Some(s) = segs.next() {
        if segs.peek().is_some() && SKIPPED_DIRS.contains(&s) {
            return true;
        }
    }
    false
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
pub(crate) fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", path),
    }
}

/// Joins a directory and a relative path (`""` is the root).
pub(crate) fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else if rel.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

//! forge-detect: which framework a repository uses, and how to start it for a preview.
//!
//! Given a repository (a local folder, an in-memory `{path: content}` map, or a folder inside
//! a sandbox) it answers with a [`Detection`]: framework, confidence and evidence, package
//! manager and install command, a dev command that listens on 0.0.0.0 on a port, the env a
//! preview host needs, the Node version, and for monorepos every app with its own answer.
//!
//! The core does no I/O. Detection runs in two phases:
//! 1. a [`Listing`] of the repository's paths (bounded walk of a [`FileSource`], or
//!    [`Listing::from_paths`] from a remote recursive listing);
//! 2. [`candidate_paths`] picks the few files worth reading (package.json files, lockfile
//!    headers, version files, Vite configs, server entry files); their bytes go into a
//!    [`Snapshot`] and [`detect_snapshot`] answers.
//!
//! A remote source therefore costs one listing and one bulk download:
//! ```no_run
//! # use forge_detect::*;
//! # fn list_recursively() -> Vec<String> { vec![] }
//! # fn bulk_download(_: &[String]) -> Vec<(String, Vec<u8>)> { vec![] }
//! let listing = Listing::from_paths(list_recursively());
//! let wanted: Vec<String> = candidate_paths(&listing).into_iter().map(|c| c.path).collect();
//! let snapshot = Snapshot::from_download(listing, bulk_download(&wanted));
//! let answer = detect_snapshot(&snapshot, &DetectOptions::default())?;
//! # Ok::<(), DetectError>(())
//! ```

mod command;
pub mod dep_env;
mod detect;
mod error;
pub mod frameworks;
mod listing;
mod local;
mod lockfiles;
mod manifest;
mod matcher;
mod package;
mod pm;
pub mod rules_doc;
mod snapshot;
mod source;
mod workspaces;

use std::path::Path;

pub use detect::{detect_snapshot, DetectOptions, Detection, FrameworkInfo, DEFAULT_ALLOWED_HOSTS};
pub use error::{DetectError, Warning};
pub use listing::{is_skipped_path, Listing, WalkLimits, SKIPPED_DIRS};
pub use local::{find_repo_root, LocalSource};
pub use pm::PackageManagerInfo;
pub use snapshot::{candidate_paths, Candidate, Snapshot};
pub use source::{DirEntry, EntryKind, FileBytes, FileSource, MemorySource};
pub use workspaces::MonorepoInfo;

/// Detects through any [`FileSource`]: walks from `start` (a repository-relative folder,
/// `""` for the root) within `limits`, reads the candidates, answers. `opts.root` is taken
/// relative to `start`.
pub fn detect_source(
    source: &dyn FileSource,
    start: &str,
    limits: WalkLimits,
    opts: &DetectOptions,
) -> Result<Detection, DetectError> {
    let listing = Listing::walk_under(source, start, limits).map_err(|e| DetectError::Source {
        message: e.to_string(),
    })?;
    let mut snap = Snapshot::new(listing);
    for c in candidate_paths(&snap.listing) {
        if let Ok(Some(f)) = source.read_file(&c.path, c.max_bytes) {
            snap.insert(c.path, f.bytes, f.truncated);
        }
    }
    let mut opts = opts.clone();
    let root = match &opts.root {
        Some(r) => {
            let r = source::normalize_path(r)
                .ok_or_else(|| DetectError::InvalidRoot { root: r.clone() })?;
            listing::join(start, &r)
        }
        None => start.to_string(),
    };
    opts.root = (!root.is_empty()).then_some(root);
    detect_snapshot(&snap, &opts)
}

/// Detects a local folder. Lockfiles, `.nvmrc` and workspace files are also looked for in
/// the folders above it, up to the repository root (the nearest `.git`).
pub fn detect_dir(path: impl AsRef<Path>, opts: &DetectOptions) -> Result<Detection, DetectError> {
    detect_dir_within(path, opts, WalkLimits::default())
}

/// [`detect_dir`] with explicit walk bounds. A caller that wants an answer without leaving
/// its thread for small repositories can try tight limits first and fall back to the default
/// ones (on another thread) when the answer carries `WALK_TRUNCATED`.
pub fn detect_dir_within(
    path: impl AsRef<Path>,
    opts: &DetectOptions,
    limits: WalkLimits,
) -> Result<Detection, DetectError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| DetectError::NotFound {
        path: shown.clone(),
    })?;
    if !meta.is_dir() {
        return Err(DetectError::NotADirectory { path: shown });
    }
    let abs = std::fs::canonicalize(path).map_err(|_| DetectError::NotFound { path: shown })?;
    let repo = find_repo_root(&abs);
    let start = abs
        .strip_prefix(&repo)
        .ok()
        .and_then(|p| p.to_str())
        .map(|s| s.replace('\\', "/"))
        .unwrap_or_default();
    let source = LocalSource::new(&repo);
    let mut d = detect_source(&source, &start, limits, opts)?;
    if !start.is_empty() {
        d.evidence.push(format!(
            "repository root: {} (paths are relative to it)",
            repo.display()
        ));
    }
    Ok(d)
}

/// Detects an in-memory `{path: content}` map.
pub fn detect_files<P: AsRef<str>, C: Into<Vec<u8>>>(
    files: impl IntoIterator<Item = (P, C)>,
    opts: &DetectOptions,
) -> Result<Detection, DetectError> {
    let mem = MemorySource::new(files);
    let listing = Listing::from_paths(mem.paths());
    let snap = Snapshot::from_download(
        listing,
        mem.files().iter().map(|(p, b)| (p.clone(), b.clone())),
    );
    detect_snapshot(&snap, opts)
}

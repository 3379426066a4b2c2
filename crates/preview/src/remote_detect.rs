//! Framework detection of a folder inside a sandbox, in two round trips: one listing (a
//! pruned `find` through `process/execute`, which every Daytona daemon has, unlike the newer
//! `depth` parameter of `GET /files`) and one bulk download of the few files the detector reads
//! (`forge_detect::candidate_paths`). Nothing is written into the sandbox.
//!
//! The repository is untrusted (and its install scripts may have run before detection): the
//! listing carries each file's size, and a candidate larger than its cap (a 1 GiB sparse
//! `package.json`) is not downloaded at all, with a warning, so detection never fetches more
//! than the caps add up to.

use crate::PreviewError;
use forge_daytona::{shell, CallOptions, ExecOptions, Toolbox};
use forge_detect::{
    candidate_paths, detect_snapshot, DetectOptions, Detection, Listing, Snapshot, Warning,
};

/// At most this many paths are listed; a larger tree is cut (and detection warns through the
/// listing being partial, as for a local walk).
pub const MAX_LISTED_FILES: usize = 20_000;
const MAX_DEPTH: u32 = 8;

/// The shell command that lists `folder`: regular files as `<size> <path>` lines, relative to
/// it, pruning the folders detection never reads (node_modules, .git, build outputs), bounded
/// in depth and count. Fails (exit 3) when the folder does not exist, so that it is told apart
/// from an empty one.
pub fn listing_command(folder: &str) -> Result<String, forge_daytona::Error> {
    let prune = forge_detect::SKIPPED_DIRS
        .iter()
        .map(|d| format!("-name {}", shell::quote(d).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" -o ");
    Ok(format!(
        "cd {} 2>/dev/null || exit 3; find . -maxdepth {MAX_DEPTH} \\( {prune} \\) -prune -o -type f -printf '%s %P\\n' 2>/dev/null | head -n {}",
        shell::quote(folder)?,
        MAX_LISTED_FILES + 1
    ))
}

/// Detects the framework of `folder` (absolute, or relative to the sandbox work dir).
pub async fn detect_in_sandbox(
    toolbox: &Toolbox,
    folder: &str,
    opts: &DetectOptions,
    call: &CallOptions,
) -> Result<Detection, PreviewError> {
    let listed = toolbox
        .process()
        .execute(&listing_command(folder)?, &ExecOptions::default(), call)
        .await?;
    if listed.exit_code == 3 {
        return Err(forge_detect::DetectError::NotFound {
            path: folder.to_owned(),
        }
        .into());
    }
    let sized: Vec<(u64, &str)> = listed
        .result
        .lines()
        .filter_map(|l| {
            let (size, path) = l.split_once(' ')?;
            Some((size.parse().ok()?, path))
        })
        .filter(|(_, p)| !p.is_empty())
        .take(MAX_LISTED_FILES)
        .collect();
    let sizes: std::collections::HashMap<&str, u64> = sized.iter().map(|(s, p)| (*p, *s)).collect();
    let listing = Listing::from_paths(sized.iter().map(|(_, p)| *p));
    let base = folder.trim_end_matches('/');
    let mut wanted: Vec<String> = Vec::new();
    let mut oversized: Vec<(String, u64, usize)> = Vec::new();
    for c in candidate_paths(&listing) {
        match sizes.get(c.path.as_str()) {
            Some(size) if *size > c.max_bytes as u64 => {
                oversized.push((c.path, *size, c.max_bytes));
            }
            _ => wanted.push(format!("{base}/{}", c.path)),
        }
    }
    let mut files = Vec::with_capacity(wanted.len());
    if !wanted.is_empty() {
        for r in toolbox.fs().download_many(&wanted, call).await? {
            if let (Some(rel), Some(bytes)) = (r.path.strip_prefix(&format!("{base}/")), r.content)
            {
                files.push((rel.to_owned(), bytes.to_vec()));
            }
        }
    }
    let mut snapshot = Snapshot::from_download(listing, files);
    let mut warnings = Vec::new();
    for (path, size, cap) in oversized {
        if path.rsplit('/').next() == Some("package.json") {
            // Read as a manifest too large to use (the detector says so itself).
            snapshot.insert(path, Vec::new(), true);
        } else {
            warnings.push(Warning {
                code: "FILE_TOO_LARGE".into(),
                message: format!(
                    "{path} is {size} bytes, more than the {cap} bytes detection reads: not downloaded"
                ),
            });
        }
    }
    let mut detection = detect_snapshot(&snapshot, opts)?;
    detection.warnings.extend(warnings);
    Ok(detection)
}

//! Framework detection of a folder inside a sandbox, in two round trips: one listing (a
//! pruned `find` through `process/execute`, which every Daytona daemon has, unlike the newer
//! `depth` parameter of `GET /files`) and one bulk download of the few files the detector reads
//! (`forge_detect::candidate_paths`). Nothing is written into the sandbox.

use crate::PreviewError;
use forge_daytona::{shell, CallOptions, ExecOptions, Toolbox};
use forge_detect::{candidate_paths, detect_snapshot, DetectOptions, Detection, Listing, Snapshot};

/// At most this many paths are listed; a larger tree is cut (and detection warns through the
/// listing being partial, as for a local walk).
pub const MAX_LISTED_FILES: usize = 20_000;
const MAX_DEPTH: u32 = 8;

/// The shell command that lists `folder`: regular files, relative to it, pruning the folders
/// detection never reads (node_modules, .git, build outputs), bounded in depth and count.
/// Fails (exit 3) when the folder does not exist, so that it is told apart from an empty one.
pub fn listing_command(folder: &str) -> Result<String, forge_daytona::Error> {
    let prune = forge_detect::SKIPPED_DIRS
        .iter()
        .map(|d| format!("-name {}", shell::quote(d).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" -o ");
    Ok(format!(
        "cd {} 2>/dev/null || exit 3; find . -maxdepth {MAX_DEPTH} \\( {prune} \\) -prune -o -type f -print 2>/dev/null | head -n {}",
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
    let paths: Vec<&str> = listed
        .result
        .lines()
        .filter_map(|l| l.strip_prefix("./"))
        .take(MAX_LISTED_FILES)
        .collect();
    let listing = Listing::from_paths(paths);
    let base = folder.trim_end_matches('/');
    let wanted: Vec<String> = candidate_paths(&listing)
        .into_iter()
        .map(|c| format!("{base}/{}", c.path))
        .collect();
    let mut files = Vec::with_capacity(wanted.len());
    if !wanted.is_empty() {
        for r in toolbox.fs().download_many(&wanted, call).await? {
            if let (Some(rel), Some(bytes)) = (r.path.strip_prefix(&format!("{base}/")), r.content)
            {
                files.push((rel.to_owned(), bytes.to_vec()));
            }
        }
    }
    Ok(detect_snapshot(
        &Snapshot::from_download(listing, files),
        opts,
    )?)
}

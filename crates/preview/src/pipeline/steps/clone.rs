//! Step 2, `clone`: the repository into the sandbox (or, for the CLI, a local folder uploaded).

use super::{ms, toolbox, DEFAULT_PATH};
use crate::pipeline::failure::{AtStep, Step};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client, CloneParams, Toolbox};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What to clone. The token goes in the request body (`username`/`password`), never in the URL
/// or the sandbox's git config.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CloneRepositoryInput", optional_fields = nullable))]
pub struct CloneInput {
    pub sandbox_id: String,
    pub repo_url: String,
    pub branch: Option<String>,
    pub commit_id: Option<String>,
    /// A GitHub token (or any HTTPS git password).
    pub token: Option<String>,
    /// Defaults to `x-access-token` when a token is given (GitHub's convention).
    pub username: Option<String>,
    /// Defaults to [`DEFAULT_PATH`].
    pub path: Option<String>,
    /// Shallow clone depth; 1 unless a commit is asked for.
    pub depth: Option<u32>,
}

impl std::fmt::Debug for CloneInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloneInput")
            .field("sandbox_id", &self.sandbox_id)
            .field("repo_url", &"<redacted>")
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("path", &self.path)
            .finish()
    }
}

/// The cloned repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "ClonedRepository"))]
pub struct Cloned {
    pub sandbox_id: String,
    pub path: String,
    pub branch: Option<String>,
    pub elapsed_ms: u64,
}

/// Clones a repository into the sandbox.
pub async fn clone_repository(
    client: &Client,
    input: &CloneInput,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let tb = toolbox(client, &input.sandbox_id, Step::Clone).await?;
    run(&tb, input, call).await
}

/// The step inside the pipeline, with the sandbox's toolbox.
pub(crate) async fn run(
    tb: &Toolbox,
    input: &CloneInput,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let t = Instant::now();
    let path = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let params = CloneParams {
        url: input.repo_url.clone(),
        path: path.clone(),
        branch: input.branch.clone(),
        commit_id: input.commit_id.clone(),
        depth: match input.commit_id {
            Some(_) => input.depth,
            None => Some(input.depth.unwrap_or(1)),
        },
        username: input.token.as_ref().map(|_| {
            input
                .username
                .clone()
                .unwrap_or_else(|| "x-access-token".to_owned())
        }),
        password: input.token.clone(),
    };
    tb.git()
        .clone_repo(&params, call)
        .await
        .at(Step::Clone, &input.sandbox_id)?;
    Ok(Cloned {
        sandbox_id: input.sandbox_id.clone(),
        path,
        branch: input.branch.clone(),
        elapsed_ms: ms(t.elapsed()),
    })
}

/// Folders never uploaded from a local folder: dependencies (installed in the sandbox), VCS
/// data and framework caches. Build outputs are kept: a `build/` folder may be source.
pub const UPLOAD_SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    ".next",
    ".nuxt",
    ".turbo",
    ".cache",
    ".svelte-kit",
    ".angular",
    ".parcel-cache",
    ".output",
    ".astro",
    ".expo",
];
/// At most this many files are uploaded from a local folder.
pub const MAX_UPLOAD_FILES: usize = 50_000;

/// The files of a local folder to upload, repository-relative, without [`UPLOAD_SKIPPED_DIRS`]
/// and without following symlinks.
pub fn upload_list(
    folder: &std::path::Path,
) -> Result<Vec<(String, std::path::PathBuf)>, PreviewError> {
    let meta = std::fs::metadata(folder).map_err(|_| forge_detect::DetectError::NotFound {
        path: folder.display().to_string(),
    })?;
    if !meta.is_dir() {
        return Err(forge_detect::DetectError::NotFound {
            path: folder.display().to_string(),
        }
        .into());
    }
    let mut out = Vec::new();
    let mut stack = vec![(folder.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() && !UPLOAD_SKIPPED_DIRS.contains(&name.as_str()) {
                stack.push((e.path(), r));
            } else if ft.is_file() {
                if out.len() >= MAX_UPLOAD_FILES {
                    return Err(forge_daytona::Error::InvalidArgument(format!(
                        "{} has more than {MAX_UPLOAD_FILES} files to upload",
                        folder.display()
                    ))
                    .into());
                }
                out.push((r, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads a local folder (see [`upload_list`]) to `path` in the sandbox, in one streamed
/// bulk upload: the pipeline's clone step for a folder that is not a repository URL.
pub(crate) async fn upload(
    tb: &Toolbox,
    sandbox_id: &str,
    folder: &std::path::Path,
    path: &str,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let t = Instant::now();
    let files = upload_list(folder).at(Step::Clone, sandbox_id)?;
    let items = files
        .into_iter()
        .map(|(rel, local)| forge_daytona::UploadItem {
            source: forge_daytona::UploadSource::File(local),
            destination: format!("{}/{rel}", path.trim_end_matches('/')),
        })
        .collect();
    tb.fs()
        .upload(items, call)
        .await
        .at(Step::Clone, sandbox_id)?;
    Ok(Cloned {
        sandbox_id: sandbox_id.to_owned(),
        path: path.to_owned(),
        branch: None,
        elapsed_ms: ms(t.elapsed()),
    })
}

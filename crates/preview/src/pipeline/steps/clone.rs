//! Step 2, `clone`: the repository into the sandbox (or, for the CLI, a local folder uploaded).

use super::{marker, ms, toolbox, DEFAULT_PATH};
use crate::pipeline::failure::{AtStep, Step};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client, CloneParams, ExecOptions, Toolbox};
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

/// What the clone step records about a folder it clones into (see [`super::marker`]): the
/// repository (without credentials), branch and commit asked for, and, once done, its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct CloneRecord {
    repo: String,
    branch: Option<String>,
    commit_id: Option<String>,
    /// `None` while cloning: a folder found with such a record is an interrupted clone of ours.
    result: Option<Cloned>,
}

impl CloneRecord {
    fn same_clone(&self, other: &CloneRecord) -> bool {
        (&self.repo, &self.branch, &self.commit_id)
            == (&other.repo, &other.branch, &other.commit_id)
    }
}

/// Clones a repository into the sandbox. Run again with the same repository, branch and
/// commit into the same folder (a workflow's retry), it recognises its own clone and returns
/// the first run's result; a clone of ours that was interrupted is removed and made again. A
/// folder it did not clone there (another repository, the user's files) is still an error.
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
    let sid = &input.sandbox_id;
    let path = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let mut record = CloneRecord {
        repo: super::install::scope_of(&input.repo_url).unwrap_or_default(),
        branch: input.branch.clone(),
        commit_id: input.commit_id.clone(),
        result: None,
    };
    let earlier = marker::read::<CloneRecord>(tb, MARKER, &path, call)
        .await
        .at(Step::Clone, sid)?
        .filter(|r| r.same_clone(&record));
    let present = match tb.fs().info(&path).await {
        Ok(_) => true,
        Err(forge_daytona::Error::NotFound(_)) => false,
        Err(e) => return Err(e).at(Step::Clone, sid),
    };
    match (earlier, present) {
        (
            Some(CloneRecord {
                result: Some(done), ..
            }),
            true,
        ) => return Ok(done),
        // Our own clone, interrupted: what it left is ours to remove.
        (Some(_), true) => match tb.fs().delete(&path, true).await {
            Ok(()) | Err(forge_daytona::Error::NotFound(_)) => {}
            Err(e) => return Err(e).at(Step::Clone, sid),
        },
        // Not ours: the clone below fails on it as it should, and nothing is recorded.
        (None, true) => {}
        (_, false) => marker::write(tb, MARKER, &path, &record, call)
            .await
            .at(Step::Clone, sid)?,
    }
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
        .at(Step::Clone, sid)?;
    let cloned = Cloned {
        sandbox_id: sid.clone(),
        path: path.clone(),
        branch: input.branch.clone(),
        elapsed_ms: ms(t.elapsed()),
    };
    record.result = Some(cloned.clone());
    // Independent (the record is outside the checkout): both at once.
    tokio::join!(
        commit_times(tb, &path, call),
        marker::write_best_effort(tb, MARKER, &path, &record, call)
    );
    Ok(cloned)
}

/// The clone step's records (see [`marker`]).
const MARKER: &str = "clone";

/// Gives every file of the checkout, and its folders, the commit's time as modification time
/// (`.git` left alone; links themselves, never their targets). A clone otherwise stamps them
/// with the time of the clone, so two clones of one commit differ in every time, and a dev
/// server's build cache that checks files by time (webpack's, in `next dev`) takes a cache
/// restored from an earlier preview (see the embedded backend's build caches) for stale.
/// Two clones of one commit now look alike; a file changed by a later commit gets that
/// commit's time, and so another time than the cache recorded.
const COMMIT_TIMES: &str = "t=$(git log -1 --format=%ct) && git ls-files -z | xargs -0 -r touch -h -c -m -d \"@$t\" -- && find . -name .git -prune -o -type d -print0 | xargs -0 -r touch -h -c -m -d \"@$t\" --";

/// Runs [`COMMIT_TIMES`] in the checkout. Best effort: a failure leaves the clone's times,
/// which only makes a restored build cache a miss.
async fn commit_times(tb: &Toolbox, path: &str, call: &CallOptions) {
    let opts = ExecOptions {
        cwd: Some(path.to_owned()),
        env: std::collections::BTreeMap::default(),
        timeout: Some(std::time::Duration::from_mins(2)),
    };
    let _ = tb.process().execute(COMMIT_TIMES, &opts, call).await;
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

/// A local folder to upload instead of cloning (the CLI's `forge preview <folder>`).
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub folder: std::path::PathBuf,
    /// Send `.env*` files too. Off by default: they hold the developer's own secrets, which a
    /// sandbox (and whoever can reach its preview) must not get unless asked.
    pub include_env: bool,
}

/// Whether a file name is an environment file (`.env`, `.env.local`, `.env.production`, ...).
fn is_env_file(name: &str) -> bool {
    name == ".env" || name.starts_with(".env.")
}

/// The files of a local folder to upload, repository-relative: what git would track there
/// (`.gitignore`, `.git/info/exclude` and the ignore files of parent folders honoured, also
/// in a folder that is not a repository), without [`UPLOAD_SKIPPED_DIRS`], without `.env*`
/// unless `include_env`, and without following symlinks.
pub fn upload_list(
    folder: &std::path::Path,
    include_env: bool,
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
    let walk = ignore::WalkBuilder::new(folder)
        // Dotfiles are source (`.npmrc`, `.babelrc`); only ignore rules decide.
        .hidden(false)
        .ignore(false)
        // A user's global excludes differ between machines; the repository's rules do not.
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| {
            let dir = e.file_type().is_some_and(|t| t.is_dir());
            !(dir && UPLOAD_SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        })
        .build();
    let mut out = Vec::new();
    for entry in walk.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if !include_env && is_env_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(folder) else {
            continue;
        };
        if out.len() >= MAX_UPLOAD_FILES {
            return Err(forge_daytona::Error::InvalidArgument(format!(
                "{} has more than {MAX_UPLOAD_FILES} files to upload",
                folder.display()
            ))
            .into());
        }
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push((rel, entry.path().to_path_buf()));
    }
    out.sort();
    Ok(out)
}

/// Uploads a local folder (see [`upload_list`]) to `path` in the sandbox, in one streamed
/// bulk upload: the pipeline's clone step for a folder that is not a repository URL.
pub(crate) async fn upload(
    tb: &Toolbox,
    sandbox_id: &str,
    from: &Upload,
    path: &str,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let t = Instant::now();
    let files = upload_list(&from.folder, from.include_env).at(Step::Clone, sandbox_id)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &std::path::Path, include_env: bool) -> Vec<String> {
        upload_list(dir, include_env)
            .unwrap()
            .into_iter()
            .map(|(rel, _)| rel)
            .collect()
    }

    #[test]
    fn an_upload_is_what_git_would_track_without_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (path, text) in [
            ("package.json", "{}"),
            (".gitignore", "*.log\n/secret/\n"),
            (".npmrc", "x"),
            (".env", "KEY=1"),
            (".env.local", "KEY=2"),
            ("src/.env.production", "KEY=3"),
            ("src/app.js", "x"),
            ("src/debug.log", "x"),
            ("secret/key.pem", "x"),
            ("node_modules/a/index.js", "x"),
            ("web/.gitignore", "gen/\n"),
            ("web/gen/out.js", "x"),
            ("web/main.js", "x"),
        ] {
            let p = d.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let kept = [
            ".gitignore",
            ".npmrc",
            "package.json",
            "src/app.js",
            "web/.gitignore",
            "web/main.js",
        ];
        assert_eq!(names(d, false), kept);
        let with_env = names(d, true);
        for env in [".env", ".env.local", "src/.env.production"] {
            assert!(with_env.contains(&env.to_owned()), "{env}: {with_env:?}");
        }
        assert_eq!(with_env.len(), kept.len() + 3);
    }
}

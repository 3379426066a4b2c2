//! `sandbox.git`: git inside a sandbox, with the integration guide's names and argument order.
//!
//! Credentials travel in request fields (or, for `fetch` and `commitAmend`, through the
//! environment of a one-off credential helper), never in a URL git would store: after
//! `clone('https://x-access-token:TOKEN@host/repo', ...)` neither `.git/config` nor
//! `git remote -v` holds the token, and no error message does.

use crate::client::{into, read_options};
use crate::error::Rejection;
use crate::process::toolbox_call;
use crate::promise::Pending;
use crate::sandbox::SandboxCore;
use crate::toolbox_dto::{
    GitAuthor, GitBranches, GitCommitResult, GitFileStatus, GitRemote, GitStatus,
};
use forge_daytona::{CallOptions, CloneParams, GitCredentials};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;

/// Git operations inside a sandbox (`sandbox.git`). `path` is the repository folder.
#[napi]
pub struct SandboxGit {
    core: Arc<SandboxCore>,
}

impl SandboxGit {
    pub(crate) fn new(core: Arc<SandboxCore>) -> Self {
        SandboxGit { core }
    }
}

/// Options of `git.addRemote`.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Default)]
pub struct AddRemoteOptions {
    /// Fetch the remote right after adding it.
    pub fetch: Option<bool>,
    /// Replace a remote of the same name.
    pub overwrite: Option<bool>,
}

fn creds(username: Option<String>, password: Option<String>) -> GitCredentials {
    GitCredentials { username, password }
}

/// The guide's one-word status of a path from the daemon's two sides.
fn one_word(staging: &str, worktree: &str) -> &'static str {
    let either = |w: &str| staging == w || worktree == w;
    if either("Updated but unmerged") {
        "conflicted"
    } else if either("Untracked") {
        "untracked"
    } else if either("Deleted") {
        "deleted"
    } else if either("Added") {
        "added"
    } else if either("Renamed") {
        "renamed"
    } else if either("Copied") {
        "copied"
    } else if either("Modified") {
        "modified"
    } else {
        "unmodified"
    }
}

fn status_dto(s: forge_wire::GitStatus) -> GitStatus {
    GitStatus {
        current_branch: s.current_branch,
        ahead: s.ahead.unwrap_or(0),
        behind: s.behind.unwrap_or(0),
        branch_published: s.branch_published,
        upstream: s.upstream,
        detached: s.detached,
        file_status: s
            .file_status
            .into_iter()
            .map(|f| GitFileStatus {
                status: one_word(&f.staging, &f.worktree).to_owned(),
                name: f.name,
                staging: f.staging,
                worktree: f.worktree,
                extra: f.extra,
            })
            .collect(),
    }
}

#[napi]
impl SandboxGit {
    /// Clones `url` into `path`. `depthOrCommit`: a number is a shallow-clone depth (the
    /// guide), a string a commit to check out (the official SDK). Credentials go in
    /// `username` / `password`; a URL like `https://x-access-token:TOKEN@github.com/...` is
    /// accepted and its credentials are moved out of it, so the stored remote never holds them.
    /// An aborted clone is killed on the embedded backend; Daytona's API cannot stop one, so
    /// there it may run to its end.
    #[napi(js_name = "clone", ts_return_type = "Promise<void>")]
    #[allow(clippy::too_many_arguments)]
    pub fn clone_repo(
        &self,
        env: &Env,
        url: String,
        path: String,
        branch: Option<String>,
        #[napi(ts_arg_type = "number | string")] depth_or_commit: Option<Either<u32, String>>,
        username: Option<String>,
        password: Option<String>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let (depth, commit_id) = match depth_or_commit {
            Some(Either::A(d)) => (Some(d).filter(|d| *d > 0), None),
            Some(Either::B(c)) => (None, Some(c).filter(|c| !c.is_empty())),
            None => (None, None),
        };
        let p = CloneParams {
            url,
            path,
            branch: branch.filter(|b| !b.is_empty()),
            commit_id,
            depth,
            username,
            password,
        };
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            tb.git()
                .clone_repo(&p, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)
        })
    }

    /// `{ currentBranch, ahead, behind, fileStatus: [{ name, status, staging, worktree }] }`;
    /// `fileStatus` is empty when the tree is clean.
    #[napi(ts_return_type = "Promise<GitStatus>")]
    pub fn status(&self, env: &Env, path: String) -> Result<Pending<GitStatus>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let s = tb.git().status(&path).await.map_err(into)?;
            Ok(status_dto(s))
        })
    }

    /// `{ branches, current }` (local branches).
    #[napi(ts_return_type = "Promise<GitBranches>")]
    pub fn branches(&self, env: &Env, path: String) -> Result<Pending<GitBranches>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let b = tb.git().branches(&path).await.map_err(into)?;
            Ok(GitBranches {
                branches: b.branches,
                current: b.current,
            })
        })
    }

    /// Creates a branch at HEAD (without switching to it).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_branch(&self, env: &Env, path: String, name: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.git().create_branch(&path, &name).await.map_err(into)
        })
    }

    /// Switches to a branch.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn checkout_branch(&self, env: &Env, path: String, branch: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.git().checkout_branch(&path, &branch).await.map_err(into)
        })
    }

    /// Deletes a local branch.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_branch(&self, env: &Env, path: String, name: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.git().delete_branch(&path, &name).await.map_err(into)
        })
    }

    /// Stages files (`['.']` stages everything).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn add(&self, env: &Env, path: String, files: Vec<String>) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.git().add(&path, &files).await.map_err(into)
        })
    }

    /// Commits the staged changes: `commit(path, message, { name, email })` as in the guide,
    /// or `commit(path, message, name, email, allowEmpty?)` as in the official SDK. Resolves
    /// with `{ sha }`.
    #[napi(ts_return_type = "Promise<GitCommitResult>")]
    pub fn commit(
        &self,
        env: &Env,
        path: String,
        message: String,
        #[napi(ts_arg_type = "{ name: string; email: string } | string")] author: Either<
            GitAuthor,
            String,
        >,
        email: Option<String>,
        allow_empty: Option<bool>,
    ) -> Result<Pending<GitCommitResult>> {
        let (name, email) = match author {
            Either::A(a) => (a.name, a.email),
            Either::B(name) => (name, email.unwrap_or_default()),
        };
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            if name.trim().is_empty() || email.trim().is_empty() {
                return Err(Rejection::invalid(
                    "a commit needs an author name and email",
                ));
            }
            let sha = tb
                .git()
                .commit(&path, &message, &name, &email, allow_empty.unwrap_or(false))
                .await
                .map_err(into)?;
            Ok(GitCommitResult { sha })
        })
    }

    /// Amends the last commit with the staged changes: a new `message` (or the old one when
    /// omitted) and, when given, a new author. Resolves with the new `{ sha }`.
    #[napi(ts_return_type = "Promise<GitCommitResult>")]
    pub fn commit_amend(
        &self,
        env: &Env,
        path: String,
        message: Option<String>,
        author: Option<GitAuthor>,
    ) -> Result<Pending<GitCommitResult>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let who = author.as_ref().map(|a| (a.name.as_str(), a.email.as_str()));
            let sha = tb
                .git()
                .commit_amend(&path, message.as_deref(), who)
                .await
                .map_err(into)?;
            Ok(GitCommitResult { sha })
        })
    }

    /// Adds a remote. A URL carrying credentials is refused (they would be stored in
    /// `.git/config`): pass them to `fetch` / `pull` / `push` instead.
    #[napi(
        ts_args_type = "path: string, name: string, url: string, options?: AddRemoteOptions | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn add_remote(
        &self,
        env: &Env,
        path: String,
        name: String,
        url: String,
        options: Option<Unknown>,
    ) -> Result<Pending<()>> {
        let o: AddRemoteOptions = read_options(env, options, "addRemote options")?;
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.git()
                .add_remote(
                    &path,
                    &name,
                    &url,
                    o.fetch.unwrap_or(false),
                    o.overwrite.unwrap_or(false),
                )
                .await
                .map_err(into)
        })
    }

    /// `[{ name, url }]`.
    #[napi(ts_return_type = "Promise<Array<GitRemote>>")]
    pub fn list_remotes(&self, env: &Env, path: String) -> Result<Pending<Vec<GitRemote>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let r = tb.git().remotes(&path).await.map_err(into)?;
            Ok(r.into_iter()
                .map(|r| GitRemote {
                    name: r.name,
                    url: r.url,
                })
                .collect())
        })
    }

    /// `git fetch [remote]`, with optional credentials.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn fetch(
        &self,
        env: &Env,
        path: String,
        remote: Option<String>,
        username: Option<String>,
        password: Option<String>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let c = creds(username, password);
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            tb.git()
                .fetch(
                    &path,
                    remote.as_deref(),
                    &c,
                    &CallOptions::new().with_cancel(cancel),
                )
                .await
                .map_err(into)
        })
    }

    /// `pull(path, remote?, branch?, username?, password?)`, in the guide's order.
    #[napi(ts_return_type = "Promise<void>")]
    #[allow(clippy::too_many_arguments)]
    pub fn pull(
        &self,
        env: &Env,
        path: String,
        remote: Option<String>,
        branch: Option<String>,
        username: Option<String>,
        password: Option<String>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let s = Sync {
            push: false,
            path,
            remote,
            branch,
            creds: creds(username, password),
        };
        self.sync(env, s, signal)
    }

    /// `push(path, remote?, branch?, username?, password?)`, in the guide's order.
    #[napi(ts_return_type = "Promise<void>")]
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &self,
        env: &Env,
        path: String,
        remote: Option<String>,
        branch: Option<String>,
        username: Option<String>,
        password: Option<String>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let s = Sync {
            push: true,
            path,
            remote,
            branch,
            creds: creds(username, password),
        };
        self.sync(env, s, signal)
    }
}

/// A pull or a push.
struct Sync {
    push: bool,
    path: String,
    remote: Option<String>,
    branch: Option<String>,
    creds: GitCredentials,
}

impl SandboxGit {
    fn sync(&self, env: &Env, s: Sync, signal: Option<Object>) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, signal, move |tb, _| async move {
            let git = tb.git();
            let (branch, remote) = (s.branch.as_deref(), s.remote.as_deref());
            let r = if s.push {
                git.push(&s.path, &s.creds, branch, remote).await
            } else {
                git.pull(&s.path, &s.creds, branch, remote).await
            };
            r.map_err(into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::one_word;

    #[test]
    fn one_word_status() {
        assert_eq!(one_word("Unmodified", "Modified"), "modified");
        assert_eq!(one_word("Added", "Modified"), "added");
        assert_eq!(one_word("Untracked", "Untracked"), "untracked");
        assert_eq!(one_word("Modified", "Deleted"), "deleted");
        assert_eq!(one_word("Updated but unmerged", "Modified"), "conflicted");
        assert_eq!(one_word("Unmodified", "Unmodified"), "unmodified");
    }
}

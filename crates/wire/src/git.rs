//! Toolbox git types (daytona-wire.md §6). A few daemon fields are snake_case on the wire.

use serde::{Deserialize, Serialize};

/// `GitCloneRequest`. Credentials travel here, never inside the URL that git stores.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitCloneRequest {
    pub url: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

/// Debug without the password: no secret in a `Debug` string.
impl std::fmt::Debug for GitCloneRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCloneRequest")
            .field("url", &self.url)
            .field("path", &self.path)
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("depth", &self.depth)
            .finish()
    }
}

/// `GitAddRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitAddRequest {
    pub path: String,
    pub files: Vec<String>,
}

/// `GitBranchRequest` / `GitDeleteBranchRequest` (the DELETE carries a JSON body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitBranchRequest {
    pub path: String,
    pub name: String,
}

/// `GitCheckoutRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitCheckoutRequest {
    pub path: String,
    pub branch: String,
}

/// `GitCommitRequest`: author and email are flat strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitCommitRequest {
    pub path: String,
    pub message: String,
    pub author: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
}

/// `GitCommitResponse`: the wire says `hash`; the SDK calls it `sha`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitCommitResponse {
    pub hash: String,
}

/// `GitPullRequest` / `GitPushRequest` (push adds `set_upstream`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitSyncRequest {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_upstream: Option<bool>,
}

impl std::fmt::Debug for GitSyncRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSyncRequest")
            .field("path", &self.path)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("branch", &self.branch)
            .field("remote", &self.remote)
            .finish()
    }
}

/// `FileStatus`: one entry of `git status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStatus {
    pub name: String,
    /// `Unmodified`, `Untracked`, `Modified`, `Added`, `Deleted`, `Renamed`, `Copied`,
    /// `Updated but unmerged`.
    pub staging: String,
    pub worktree: String,
    #[serde(default)]
    pub extra: String,
}

/// `GitStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    pub current_branch: String,
    #[serde(default)]
    pub file_status: Vec<FileStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_published: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detached: Option<bool>,
}

/// `ListBranchResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListBranchResponse {
    pub branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

/// `GitAddRemoteRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitAddRemoteRequest {
    pub path: String,
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
}

/// `GitRemote`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitRemote {
    pub name: String,
    pub url: String,
}

/// `ListRemotesResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRemotesResponse {
    pub remotes: Vec<GitRemote>,
}

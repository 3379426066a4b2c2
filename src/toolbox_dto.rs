//! Plain-object DTOs of `sandbox.fs`, `sandbox.git` and the session half of `sandbox.process`.
//! Everything here is JSON-serialisable except the file contents the guide returns as Buffers.

use crate::error::Rejection;
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// One entry of `fs.listFiles` / the answer of `fs.getFileDetails`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct FileInfo {
    pub name: String,
    /// The entry's path as asked (the listed folder joined with `name`).
    pub path: String,
    pub is_dir: bool,
    /// Size in bytes.
    pub size: f64,
    /// Modification time, as Daytona's daemon writes it (Go time string).
    pub mod_time: String,
    /// Modification time, RFC 3339 (empty when the server did not say).
    pub modified_at: String,
    /// Go `os.FileMode` string, e.g. `-rw-r--r--` or `drwxr-xr-x`.
    pub mode: String,
    /// Octal permissions, e.g. `0644`.
    pub permissions: String,
    pub owner: String,
    pub group: String,
}

impl FileInfo {
    /// Converts a wire entry; `path` is what the caller used when the server gave none.
    pub(crate) fn from_wire(f: forge_wire::FileInfo, path: String) -> Self {
        FileInfo {
            path: f.path.filter(|p| !p.is_empty()).unwrap_or(path),
            name: f.name,
            is_dir: f.is_dir,
            size: f.size as f64,
            mod_time: f.mod_time,
            modified_at: f.modified_at,
            mode: f.mode,
            permissions: f.permissions,
            owner: f.owner,
            group: f.group,
        }
    }
}

/// A line of `fs.searchFiles` (content search): file, 1-based line number and the line.
#[napi(object)]
#[derive(Clone, Default)]
pub struct FileMatch {
    pub file: String,
    pub line: u32,
    pub content: String,
}

/// A per-item failure inside a bulk answer (`downloadFiles`, `replaceInFiles`): the same
/// `code` / `status` / `message` a rejected promise would carry.
#[napi(object)]
#[derive(Clone, Default)]
pub struct ItemError {
    #[napi(ts_type = "DaytonaErrorCode")]
    pub code: String,
    pub message: String,
    pub status: Option<u32>,
    /// The daemon's own code when it gave one (`FILE_NOT_FOUND`, ...).
    pub server_code: Option<String>,
}

impl From<Rejection> for ItemError {
    fn from(f: Rejection) -> Self {
        ItemError {
            code: f.code,
            message: f.message,
            status: f.status.map(u32::from),
            server_code: f.server_code,
        }
    }
}

/// One file of `fs.downloadFiles`: its bytes, or the reason it failed.
#[napi(object, object_from_js = false)]
pub struct DownloadedFile {
    pub path: String,
    #[napi(ts_type = "Buffer")]
    pub content: Option<crate::fs::JsBytes>,
    pub error: Option<ItemError>,
}

/// An upload source read from a local file, streamed from disk: `{ localPath }`.
#[napi(object, object_to_js = false)]
pub struct LocalFile {
    pub local_path: String,
}

/// One file of `fs.uploadFiles`: `content` (Buffer, Uint8Array or string) or `localPath`, and
/// the destination `path` in the sandbox.
#[napi(object, object_to_js = false)]
pub struct FileUpload {
    #[napi(ts_type = "Buffer | Uint8Array | string")]
    pub content: Option<Either<String, Uint8Array>>,
    /// A local file to stream instead of `content`.
    pub local_path: Option<String>,
    /// Destination in the sandbox (relative paths resolve against the work dir).
    pub path: String,
}

/// One file of `fs.replaceInFiles`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct ReplaceResult {
    pub file: String,
    pub success: bool,
    pub error: Option<String>,
}

/// `fs.setFilePermissions` options; unset fields stay as they are.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Default)]
pub struct FilePermissions {
    /// Octal, e.g. `'755'`.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// One path of `git.status().fileStatus`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct GitFileStatus {
    pub name: String,
    /// One word, as the guide reads it, from both sides in this order of precedence:
    /// `conflicted`, `untracked`, `deleted`, `added`, `renamed`, `copied`, `modified`,
    /// `unmodified`.
    pub status: String,
    /// The index side as the daemon reports it (`Unmodified`, `Modified`, `Added`, ...).
    pub staging: String,
    /// The worktree side as the daemon reports it.
    pub worktree: String,
    pub extra: String,
}

/// `git.status(path)`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct GitStatus {
    pub current_branch: String,
    /// Commits ahead of the upstream (0 without one).
    pub ahead: u32,
    /// Commits behind the upstream (0 without one).
    pub behind: u32,
    pub branch_published: Option<bool>,
    pub upstream: Option<String>,
    pub detached: Option<bool>,
    /// Changed paths; empty when the tree is clean.
    pub file_status: Vec<GitFileStatus>,
}

/// `git.branches(path)`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct GitBranches {
    pub branches: Vec<String>,
    pub current: Option<String>,
}

/// A remote of `git.listRemotes`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct GitRemote {
    pub name: String,
    pub url: String,
}

/// `git.commit(...)`: the new commit.
#[napi(object)]
#[derive(Clone, Default)]
pub struct GitCommitResult {
    pub sha: String,
}

/// Commit author (`{ name, email }`).
#[napi(object, object_to_js = false)]
#[derive(Clone, Default)]
pub struct GitAuthor {
    pub name: String,
    pub email: String,
}

/// `process.exec(cmd, options)`.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Default)]
pub struct ExecOptions {
    /// Working directory (relative paths resolve against the sandbox work dir).
    pub cwd: Option<String>,
    /// Seconds; the command is killed and the call rejects with `DAYTONA_TIMEOUT`.
    pub timeout: Option<u32>,
    pub env: Option<std::collections::HashMap<String, String>>,
}

/// `process.exec`: stdout and stderr really separate.
#[napi(object)]
#[derive(Clone, Default)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// `process.codeRun(code, params)`.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Default)]
pub struct CodeRunParams {
    /// Arguments: `process.argv[2]` onwards.
    pub argv: Option<Vec<String>>,
    pub env: Option<std::collections::HashMap<String, String>>,
}

/// `process.codeRun`: exit code and combined output.
#[napi(object)]
#[derive(Clone, Default)]
pub struct CodeRunResult {
    pub exit_code: i32,
    /// stdout and stderr combined.
    pub result: String,
}

/// `process.executeSessionCommand(id, request)`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SessionExecuteRequest {
    pub command: String,
    /// Return at once with `cmdId` instead of waiting for the command.
    pub run_async: Option<bool>,
    /// Official-SDK spelling of `runAsync`.
    #[napi(js_name = "async")]
    pub legacy_async: Option<bool>,
    /// Working directory of this command only (the session's own directory is kept).
    pub cwd: Option<String>,
}

/// The answer of `process.executeSessionCommand`. For a synchronous command it carries the
/// exit code and output; for `runAsync` only `cmdId`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SessionExecuteResponse {
    pub cmd_id: String,
    pub exit_code: Option<i32>,
    /// Combined output (stream markers removed).
    pub output: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// `process.getSessionCommandStatus`.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SessionCommandStatus {
    pub id: String,
    pub command: String,
    /// Set once the command has exited.
    pub exit_code: Option<i32>,
    pub is_running: bool,
}

/// A command of a session (`getSession`, `listSessions`).
#[napi(object)]
#[derive(Clone, Default)]
pub struct SessionCommand {
    pub id: String,
    pub command: String,
    pub exit_code: Option<i32>,
}

/// A session and its commands.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SessionInfo {
    pub session_id: String,
    pub commands: Vec<SessionCommand>,
}

impl From<forge_wire::Session> for SessionInfo {
    fn from(s: forge_wire::Session) -> Self {
        SessionInfo {
            session_id: s.session_id,
            commands: s
                .commands
                .into_iter()
                .map(|c| SessionCommand {
                    id: c.id,
                    command: c.command,
                    exit_code: c.exit_code,
                })
                .collect(),
        }
    }
}

/// `process.getSessionCommandLogs(id, cmdId)`: the output so far, split.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SessionCommandLogs {
    pub stdout: String,
    pub stderr: String,
}

/// A piece of live output (`streamSessionCommandLogs`).
#[napi(object)]
#[derive(Clone, Default)]
pub struct LogChunk {
    /// `'stdout'` or `'stderr'`.
    #[napi(ts_type = "'stdout' | 'stderr'")]
    pub stream: String,
    /// UTF-8 text; one chunk may hold several lines or part of one.
    pub data: String,
}

/// What `next()` of the log iterator resolves to (the async-iterator protocol).
#[napi(object)]
#[derive(Clone, Default)]
pub struct LogIteratorResult {
    pub done: bool,
    pub value: Option<LogChunk>,
}

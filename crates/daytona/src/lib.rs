//! `forge-daytona`: a Rust client for the Daytona API and toolbox that speaks the wire of the
//! official TypeScript SDK 0.218.0 (`shared/reference/daytona-wire.md`).
//!
//! # API summary (what the napi binding calls)
//!
//! ```text
//! let client = Client::new(DaytonaConfig::from_env().with_api_key(k).with_api_url(u))?;  // cheap Clone
//! client.create(&CreateParams{image, workspace_class, public, env, labels, idempotency_key, ..}, &CallOptions) -> Sandbox  (waits `started`)
//! client.cleanup(&Cleanup{key, labels}, &opts)                -> Vec<String>  (deleted ids)
//! client.get(id) / client.get_with(id, &opts)                  -> Sandbox
//! client.list(&ListQuery{cursor, limit, labels, states, ..}, &opts) -> ListPage{items, next_cursor}
//! client.list_all(&ListQuery, &opts)                           -> Vec<Sandbox>   (follows cursors)
//! client.start(id, &opts) / stop(id, force, &opts)             -> Sandbox  (wait `started` / `stopped`)
//! client.archive(id, &opts) -> Sandbox;  client.delete(id, wait, &opts)
//! client.preview_url(id, port)                                 -> PreviewUrl{sandbox_id, url, token}
//! client.signed_preview_url(id, port, Some(expires))          -> SignedPreviewUrl{url, token, ..}
//! client.expire_signed_preview_url(id, port, token)            -> ()
//! client.toolbox(&sandbox) / client.toolbox_for(id)            -> Toolbox
//!   toolbox.process(): execute(cmd, &ExecOptions{cwd, env, timeout}, &opts) -> {exit_code, result}
//!                      exec(..) -> ExecResult{stdout, stderr, exit_code}   (session based)
//!                      spawn(cmd, &ExecOptions, &opts) -> Spawned{.logs(), .wait(), .output(), .kill()}
//!                      code_run, create_session, execute_session_command, get_session_command,
//!                      get_session_command_logs, stream_session_command_logs -> LogStream
//!                      (Stream of LogChunk{stream: Stdout|Stderr, data}), send_session_command_input,
//!                      kill_session_command / kill_session_command_via_execute (real API, see toolbox::killable),
//!                      get_session, list_sessions, delete_session
//!   toolbox.fs():  list, info, create_folder, upload / upload_file (streamed multipart),
//!                  download / download_to_file / download_many, delete, delete_many, chmod,
//!                  set_permissions, find (content), search (names), replace, replace_in_file, move_files
//!   toolbox.git(): clone_repo, status, branches, create_branch, checkout_branch, delete_branch, add,
//!                  commit -> sha, commit_amend, fetch, add_remote, remotes, push, pull
//! ```
//!
//! Every failure is an [`Error`] with a stable [`Error::code`] (`DAYTONA_NOT_FOUND`, ...),
//! [`Error::status`], [`Error::retryable`] and no secret in its text. Long calls take
//! [`CallOptions`]: a deadline that covers retries and waits, and a [`CancellationToken`].

pub mod call;
pub mod client;
pub mod config;
pub mod error;
pub mod fetch;
mod http;
pub mod idempotency;
mod local;
mod log;
pub mod network;
pub mod retry;
pub mod shell;
pub mod snapshots;
pub mod toolbox;
pub mod wait;

pub use call::{CallOptions, CancellationToken};
pub use client::{
    Client, CreateParams, Interval, ListOrder, ListPage, ListQuery, ListSort, PreviewUrl,
    Resources, SignedPreviewUrl, WorkspaceClass, DEFAULT_LIFECYCLE_TIMEOUT, LANGUAGE_LABEL,
};
pub use config::{
    Auth, DaytonaConfig, ResolvedConfig, RetryConfig, DEFAULT_API_URL, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT, SOURCE_LABEL,
};
pub use error::{ApiError, Error, Result};
/// The wire types, re-exported.
pub use forge_wire as wire;
pub use http::user_agent;
pub use idempotency::{Cleanup, IDEMPOTENCY_LABEL};
pub use log::{log_enabled, log_request};
pub use network::NetworkSettings;
pub use snapshots::SnapshotSource;
pub use toolbox::fs::{DownloadResult, Fs, PathResult, Permissions, UploadItem, UploadSource};
pub use toolbox::git::{CloneParams, Git, GitCredentials};
/// The TLS of this crate's WebSockets (rustls, ring, the webpki roots), for other WebSocket
/// clients of the workspace (the preview's DevTools connection), so that one TLS set-up is
/// compiled in.
#[cfg(not(target_family = "wasm"))]
pub use toolbox::logs::socket::tls_connector as websocket_tls;
pub use toolbox::logs::{Demuxer, LogChunk, LogStream, LogStreamKind};
pub use toolbox::process::{CodeRunParams, ExecOptions, ExecResult, Process, Spawned};
pub use toolbox::pty::{Pty, PtyExit, PtyHandle, PtyOptions, PtyOutput};
pub use toolbox::Toolbox;

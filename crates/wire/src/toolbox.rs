//! Toolbox types beyond files, git and commands: PTY sessions, interpreter contexts, the
//! daemon's environment, system metrics, stored git credentials and `/init`
//! (toolbox.json; the WebSocket frames are in daytona-wire.md and the official SDK's
//! `PtyHandle.js` / `CodeInterpreter.js`).

use crate::sandbox::StringMap;
use serde::{Deserialize, Serialize};

/// `POST /process/pty` (`PtyCreateRequest`). Every field is optional on the wire; the daemon
/// answers 400 without an `id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u32>,
    /// Start the shell when the first client connects, not at create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lazy_start: Option<bool>,
}

/// `PtyCreateResponse` (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateResponse {
    pub session_id: String,
}

/// `PtySessionInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtySessionInfo {
    pub id: String,
    pub cwd: String,
    #[serde(default)]
    pub envs: StringMap,
    pub cols: u32,
    pub rows: u32,
    pub created_at: String,
    /// The shell runs (false before a lazy start).
    pub active: bool,
    pub lazy_start: bool,
}

/// `PtyListResponse`: `GET /process/pty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PtyListResponse {
    #[serde(default)]
    pub sessions: Vec<PtySessionInfo>,
}

/// `PtyResizeRequest`: both required, 1..=1000.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PtyResizeRequest {
    pub cols: u32,
    pub rows: u32,
}

/// A PTY WebSocket's control message (a text frame; output travels as binary frames):
/// `{"type":"control","status":"connected"}`, `{"type":"control","status":"exited",
/// "exitCode":N,"exitReason":"…"}` (to clients that offered the `X-Daytona-Pty-Exit-Control`
/// subprotocol), `{"type":"control","status":"error","error":"…"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtyControl {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The subprotocol a PTY client offers to get the `exited` control message.
pub const PTY_EXIT_CONTROL_SUBPROTOCOL: &str = "X-Daytona-Pty-Exit-Control";
/// The subprotocol prefix that carries a created PTY's envs (base64url JSON, no padding).
pub const PTY_ENVS_SUBPROTOCOL_PREFIX: &str = "X-Daytona-Pty-Envs~";

/// `CreateContextRequest`: `POST /process/interpreter/context`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateContextRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `InterpreterContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterpreterContext {
    pub id: String,
    pub cwd: String,
    pub created_at: String,
    pub active: bool,
    pub language: String,
}

/// `ListContextsResponse` (the default context is not listed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListContextsResponse {
    #[serde(default)]
    pub contexts: Vec<InterpreterContext>,
}

/// The first (and only) frame a client sends on `GET /process/interpreter/execute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterpreterExecuteRequest {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// Seconds; 0 disables it; absent: 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<StringMap>,
}

/// One frame the interpreter streams: `type` is `stdout` / `stderr` (`text`), `error`
/// (`name`, `value`, `traceback`) or `control` (`text`: `completed` / `interrupted`). Every
/// field is always present, as the daemon sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterpreterChunk {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub traceback: String,
}

/// The close code of an interpreter execution that ran past its timeout.
pub const INTERPRETER_TIMEOUT_CLOSE: u16 = 4008;

/// `UpdateEnvRequest`: `POST /env`. `unset` and `unsetValuePrefix` apply before `set`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEnvRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unset: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unset_value_prefix: Option<String>,
}

/// `SystemMetrics`: `GET /system/metrics`. Bytes in bytes; `cpuUsedPct` of the CPU limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    pub timestamp: String,
    pub timestamp_unix: i64,
    pub cpu_count: u64,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
    pub disk_free: u64,
}

/// `GitAuthenticateRequest`: `POST /git/credentials`. `host` defaults to github.com,
/// `protocol` to https.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitAuthenticateRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl std::fmt::Debug for GitAuthenticateRequest {
    /// The password is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuthenticateRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// `InitializeRequest`: `POST /init`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitializeRequest {
    pub token: String,
}

impl std::fmt::Debug for InitializeRequest {
    /// The token is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitializeRequest { token: <redacted> }")
    }
}

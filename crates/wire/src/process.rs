//! Toolbox process types: one-shot exec, code run and sessions (daytona-wire.md §7).

use crate::sandbox::StringMap;
use serde::{Deserialize, Serialize};

/// `POST /process/execute`. The env field is `envs` on the wire; the timeout is in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// `ExecuteResponse`: stdout and stderr combined in `result`, as the daemon does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub result: String,
}

/// `POST /process/code-run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRunRequest {
    pub code: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// `CodeRunResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRunResponse {
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub result: String,
    /// Charts of matplotlib figures the code showed (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<CodeRunArtifacts>,
}

/// `CodeRunArtifacts`: each chart as the daemon describes it (`Chart`: `type`, `title`,
/// `png`, `x_label`, `y_label`, ticks, scales, `elements`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeRunArtifacts {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<serde_json::Value>,
}

/// `POST /process/session`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    pub session_id: String,
}

/// `POST /process/session/{id}/exec`. `async` is the legacy alias of `runAsync`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteRequest {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub legacy_async: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_input_echo: Option<bool>,
}

/// `SessionExecuteResponse`: 202 `{cmdId}` when async, 200 with the output otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteResponse {
    pub cmd_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// `Command`: one command of a session; `exitCode` is absent while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCommand {
    pub id: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `Session`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub session_id: String,
    #[serde(default)]
    pub commands: Vec<SessionCommand>,
}

/// `SessionCommandLogsResponse`: `output` keeps the raw markers; stdout/stderr are split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCommandLogsResponse {
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

/// `SessionSendInputRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSendInputRequest {
    pub data: String,
}

/// `IsPortInUseResponse`: `GET /port/{port}/in-use`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsPortInUseResponse {
    #[serde(default)]
    pub is_in_use: bool,
}

/// `PortList`: `GET /port`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortList {
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// `WorkDirResponse` / `UserHomeDirResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirResponse {
    pub dir: String,
}

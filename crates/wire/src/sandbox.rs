//! Control-plane types: sandboxes, their states, list pages and preview links.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Environment variables and labels: ordered maps so that what we send and store is stable.
pub type StringMap = BTreeMap<String, String>;

/// `SandboxState` (22 values on the wire). Unknown values from a newer server are kept as
/// [`SandboxState::Unknown`] rather than failing the whole response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    Creating,
    Restoring,
    Destroyed,
    Destroying,
    Started,
    Stopped,
    Starting,
    Stopping,
    Error,
    BuildFailed,
    PendingBuild,
    BuildingSnapshot,
    PullingSnapshot,
    Archived,
    Archiving,
    Resizing,
    Snapshotting,
    Forking,
    Pausing,
    Paused,
    Resuming,
    #[default]
    #[serde(other)]
    Unknown,
}

impl SandboxState {
    /// The wire spelling (`started`, `build_failed`, ...).
    pub fn as_str(self) -> &'static str {
        use SandboxState::{
            Archived, Archiving, BuildFailed, BuildingSnapshot, Creating, Destroyed, Destroying,
            Error, Forking, Paused, Pausing, PendingBuild, PullingSnapshot, Resizing, Restoring,
            Resuming, Snapshotting, Started, Starting, Stopped, Stopping, Unknown,
        };
        match self {
            Creating => "creating",
            Restoring => "restoring",
            Destroyed => "destroyed",
            Destroying => "destroying",
            Started => "started",
            Stopped => "stopped",
            Starting => "starting",
            Stopping => "stopping",
            Error => "error",
            BuildFailed => "build_failed",
            PendingBuild => "pending_build",
            BuildingSnapshot => "building_snapshot",
            Unknown => "unknown",
            PullingSnapshot => "pulling_snapshot",
            Archived => "archived",
            Archiving => "archiving",
            Resizing => "resizing",
            Snapshotting => "snapshotting",
            Forking => "forking",
            Pausing => "pausing",
            Paused => "paused",
            Resuming => "resuming",
        }
    }

    /// States a waiter must stop on with an error (the SDK's `error` / `build_failed`).
    pub fn is_failed(self) -> bool {
        matches!(self, SandboxState::Error | SandboxState::BuildFailed)
    }
}

impl std::fmt::Display for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A volume mount in a create request and a sandbox (`SandboxVolume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxVolume {
    pub volume_id: String,
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// `CreateBuildInfo`: an image is sent as a one-line Dockerfile, `FROM <image>\n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBuildInfo {
    pub dockerfile_content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hashes: Option<Vec<String>>,
}

/// `BuildInfo` as returned in a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hashes: Option<Vec<String>>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub snapshot_ref: String,
}

/// `CreateSandbox`, the body of `POST /sandbox`, with the fields the official SDK sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSandbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The SDK always sends `env` (`{}` when empty).
    #[serde(default)]
    pub env: StringMap,
    #[serde(default)]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_stop_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_archive_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<SandboxVolume>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<CreateBuildInfo>,
    /// `networkBlockAll`, `networkAllowList`, `domainAllowList`: the same three fields as
    /// the network-settings update.
    #[serde(flatten)]
    pub network: UpdateNetworkSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<i64>,
    /// Not supported by the embedded backend (refused, never ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_sandbox: Option<String>,
    /// Vault secrets to mount, `[{envVar: secretName}]`. Not supported by the embedded
    /// backend (refused when not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<StringMap>>,
    /// A sandbox with `/dev/kvm`. Not supported by the embedded backend (refused when true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm: Option<bool>,
    /// A proxy all outbound traffic goes through. Not supported by the embedded backend
    /// (refused when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_proxy_url: Option<String>,
}

/// `Sandbox` (and `SandboxListItem`, a subset: the fields a list item lacks default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    pub id: String,
    #[serde(default)]
    pub organization_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: StringMap,
    #[serde(default)]
    pub labels: StringMap,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub network_block_all: bool,
    #[serde(default)]
    pub target: String,
    #[serde(default, serialize_with = "whole")]
    pub cpu: f64,
    #[serde(default, serialize_with = "whole")]
    pub gpu: f64,
    #[serde(default, serialize_with = "whole")]
    pub memory: f64,
    #[serde(default, serialize_with = "whole")]
    pub disk: f64,
    #[serde(default)]
    pub state: SandboxState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recoverable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_opt"
    )]
    pub auto_stop_interval: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_opt"
    )]
    pub auto_archive_interval: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_opt"
    )]
    pub auto_delete_interval: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_opt"
    )]
    pub auto_pause_interval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<SandboxVolume>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    /// Base of the toolbox: requests go to `{toolboxProxyUrl}/{id}/...`. May be absent in
    /// old DTOs, in which case `GET /sandbox/{id}/toolbox-proxy-url` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolbox_proxy_url: Option<String>,
    /// How the embedded backend keeps this sandbox apart (an extension: Daytona's API has no
    /// such field; its sandboxes are always containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// What the sandbox uses of its limits, on the embedded backend (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<SandboxUsage>,
}

/// `UpdateSandboxNetworkSettings`, the body of `POST /sandbox/{id}/network-settings`: what is
/// given changes, what is left out stays; an empty list lifts it. Also the network part of
/// [`CreateSandbox`] (flattened into it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateNetworkSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_block_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_allow_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_allow_list: Option<String>,
}

/// `ListSandboxesResponse`: one page of `GET /sandbox`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSandboxesResponse {
    pub items: Vec<Sandbox>,
    /// Null or empty on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `PortPreviewUrl`: `GET /sandbox/{id}/ports/{port}/preview-url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortPreviewUrl {
    pub sandbox_id: String,
    pub url: String,
    pub token: String,
}

/// `SignedPortPreviewUrl`: `GET /sandbox/{id}/ports/{port}/signed-preview-url`, a URL that
/// carries its own short-lived token, usable without headers (an iframe, a shared link).
/// `Debug` hides the token and the URL that holds it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPortPreviewUrl {
    #[serde(default)]
    pub sandbox_id: String,
    #[serde(default)]
    pub port: u16,
    pub token: String,
    pub url: String,
}

impl std::fmt::Debug for SignedPortPreviewUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedPortPreviewUrl")
            .field("sandbox_id", &self.sandbox_id)
            .field("port", &self.port)
            .field("url", &"<redacted: holds the token>")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `ToolboxProxyUrl`: `GET /sandbox/{id}/toolbox-proxy-url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolboxProxyUrl {
    pub url: String,
}

/// A whole number as a JSON integer (`1`, not `1.0`): the API's schema has integers there,
/// and strict clients (the Python SDK's `StrictInt` models) refuse `1.0`.
fn whole<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

// serde's `serialize_with` hands the field by reference: `&Option<f64>` is its signature.
#[allow(clippy::ref_option)]
fn whole_opt<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => whole(v, s),
        None => s.serialize_none(),
    }
}

/// How the embedded backend (`forge local`) isolates a sandbox, in its JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Isolation {
    /// `container` (own namespaces, uid 1000, own root) or `none` (processes of this
    /// machine's user in the sandbox's folder).
    pub level: String,
    /// Who the sandbox's processes are, inside and on this machine.
    pub user: String,
    /// How it reaches the network.
    pub network: String,
    /// Its CPU, memory and process limits.
    pub limits: String,
    /// Why a piece is missing, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a sandbox of the embedded backend uses (in its JSON): measured from its cgroup and its
/// folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxUsage {
    /// Bytes of its files (its own folder; the machine's toolchain it mounts is not counted).
    pub disk_bytes: u64,
    /// Bytes of memory its processes use now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Processes it runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// CPU time it has used, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// How many of its processes the kernel killed for going over its memory limit.
    #[serde(default)]
    pub oom_kills: u64,
}

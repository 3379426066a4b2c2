//! Plain-object DTOs crossing the napi boundary. Everything a user may return from an Inngest
//! `step.run` or a server action is one of these: JSON-serialisable, no class instances, no
//! Buffers.

use napi_derive::napi;
use serde::Deserialize;
use std::collections::HashMap;
use ts_rs::TS;

/// Options of `new Daytona(...)`. Every field falls back to the environment the way the
/// official SDK resolves it (`DAYTONA_API_KEY`, `DAYTONA_JWT_TOKEN`, `DAYTONA_ORGANIZATION_ID`,
/// `DAYTONA_API_URL`, `DAYTONA_TARGET`). A misspelt key or a wrong type is a
/// `DAYTONA_INVALID_ARGUMENT` naming it.
#[derive(Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct DaytonaOptions {
    /// API key (`Authorization: Bearer`). Env: `DAYTONA_API_KEY`.
    pub api_key: Option<String>,
    /// JWT, used when no API key is given; needs `organizationId`. Env: `DAYTONA_JWT_TOKEN`.
    pub jwt_token: Option<String>,
    /// Organization for JWT auth. Env: `DAYTONA_ORGANIZATION_ID`.
    pub organization_id: Option<String>,
    /// Control-plane URL including `/api`. Default `https://app.daytona.io/api`.
    /// Env: `DAYTONA_API_URL`.
    pub api_url: Option<String>,
    /// Region to create sandboxes in. Env: `DAYTONA_TARGET`.
    pub target: Option<String>,
    /// `'local'` runs the embedded Daytona-compatible backend in this process (started on
    /// first use, one per process, stopped at exit); `'remote'` talks to `apiUrl`. Default:
    /// `'local'` when env `FORGE_BACKEND=local` is set, else `'remote'`.
    pub backend: Option<Backend>,
    /// Per-request timeout in milliseconds for calls without their own (default 600 000: ten
    /// minutes; a command run with a `timeout` gets that timeout and a minute more).
    pub request_timeout_ms: Option<u32>,
}

/// Which backend a `Daytona` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded Daytona-compatible backend, in this process.
    Local,
    /// Daytona cloud or a self-hosted Daytona at `apiUrl`.
    Remote,
}

/// A volume to mount (`{volumeId, mountPath, subpath?}`).
#[derive(Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct VolumeMount {
    pub volume_id: String,
    pub mount_path: String,
    pub subpath: Option<String>,
}

/// Options of `daytona.create(...)`, named as in the integration guide. A misspelt key or a
/// wrong type is a `DAYTONA_INVALID_ARGUMENT` naming it.
#[derive(Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct CreateSandboxOptions {
    /// Base image, e.g. `node:22-bookworm`. Sent as a one-line Dockerfile (`FROM <image>`),
    /// as the official SDK does. The embedded backend records it and runs this machine's tools.
    pub image: Option<String>,
    /// A snapshot name instead of an image.
    pub snapshot: Option<String>,
    /// `small` (2 vCPU, 8 GiB), `medium` (4 vCPU, 16 GiB) or `large` (8 vCPU, 32 GiB). Daytona
    /// has no classes on the wire: this becomes `cpu`/`memory`/`disk`.
    #[ts(as = "Option<forge_daytona::WorkspaceClass>")]
    pub workspace_class: Option<String>,
    /// vCPUs, overriding the class.
    #[serde(default, deserialize_with = "positive")]
    pub cpu: Option<u32>,
    /// Memory in GiB, overriding the class.
    #[serde(default, deserialize_with = "positive")]
    pub memory: Option<u32>,
    /// Disk in GiB, overriding the class.
    #[serde(default, deserialize_with = "positive")]
    pub disk: Option<u32>,
    /// Public preview URLs (no token needed).
    pub public: Option<bool>,
    /// Environment variables of the sandbox (`env` on the wire).
    pub env_vars: Option<HashMap<String, String>>,
    /// Labels, usable as a list filter.
    pub labels: Option<HashMap<String, String>>,
    pub volumes: Option<Vec<VolumeMount>>,
    pub name: Option<String>,
    /// OS user of the sandbox.
    pub user: Option<String>,
    /// Language of `process.codeRun`: `typescript` (default), `javascript` or `python`
    /// (the `code-toolbox-language` label, which may also be given in `labels`).
    pub language: Option<String>,
    /// Region, overriding the client's `target`.
    pub target: Option<String>,
    /// No outbound network at all (previews still work).
    pub network_block_all: Option<bool>,
    /// Comma-separated IPv4 addresses or CIDR blocks the sandbox may reach (all others are
    /// unreachable; its resolver stays reachable).
    pub network_allow_list: Option<String>,
    /// The only names the sandbox may reach (`['registry.npmjs.org', '*.github.com']`, or
    /// comma-separated as the official SDK takes it). `example.com` is that name only;
    /// `*.example.com` is every name below it, not `example.com` itself. At most 64 entries.
    /// Not together with `networkAllowList` on the embedded backend.
    pub domain_allow_list: Option<DomainAllowList>,
    /// Minutes of inactivity before auto-stop (0 disables).
    pub auto_stop_interval: Option<u32>,
    /// Minutes stopped before auto-archive.
    pub auto_archive_interval: Option<u32>,
    /// Minutes stopped before auto-delete (negative disables).
    pub auto_delete_interval: Option<i32>,
    /// Seconds to wait for the sandbox to start (default 60; 0 waits forever).
    pub timeout: Option<u32>,
    /// Makes the create safe to retry: called again with the same key (an Inngest step's
    /// `${event.id}:create-sandbox`), it returns the sandbox it made instead of making another,
    /// also when two calls race; two keys never share a sandbox. The sandbox carries the
    /// label `forge.idempotency-key` (the key's SHA-256) and, unless `name` is given, is named
    /// `forge-<that hash>`. `cleanup({ key })` deletes it.
    pub idempotency_key: Option<String>,
}

/// What `daytona.cleanup` deletes: the sandboxes made under `key` (a `createSandbox`
/// `idempotencyKey`) and/or those carrying every one of `labels`. One of them is required.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CleanupFilter {
    pub key: Option<String>,
    pub labels: Option<HashMap<String, String>>,
}

/// What `daytona.cleanup` deleted.
#[napi(object)]
#[derive(Default)]
pub struct CleanupResult {
    /// The ids of the sandboxes deleted (already gone ones are not counted).
    pub deleted: Vec<String>,
}

/// A count of vCPUs or GiB: a whole number of at least 1 (`-1` must not wrap to 4294967295).
fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::{Error, Unexpected};
    let n = match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v.as_f64(),
    };
    match n {
        Some(n) if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) => {
            Ok(Some(n as u32))
        }
        // Not the value itself: it may be a token given in the wrong place.
        _ => Err(D::Error::invalid_value(
            Unexpected::Other("another value"),
            &"a positive integer",
        )),
    }
}

/// A sandbox as plain data: what `sandbox.toJSON()` and `JSON.stringify(sandbox)` give.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SandboxInfo {
    pub id: String,
    pub name: String,
    /// `started`, `stopped`, `archived`, `error`, ... (the Daytona state).
    pub state: String,
    pub public: bool,
    pub target: String,
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub labels: HashMap<String, String>,
    /// The image requested at creation (from its one-line Dockerfile), if any.
    pub image: Option<String>,
    pub snapshot: Option<String>,
    pub user: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub error_reason: Option<String>,
    /// Whether every outbound connection is blocked.
    pub network_block_all: bool,
    /// The addresses it may reach (comma-separated CIDR blocks), if limited to them.
    pub network_allow_list: Option<String>,
    /// The names it may reach (comma-separated, normalised: `example.com,*.example.org`), if
    /// limited to them.
    pub domain_allow_list: Option<String>,
    /// Minutes without activity before it is stopped (0: never).
    pub auto_stop_interval: Option<f64>,
    /// Minutes stopped before it is archived.
    pub auto_archive_interval: Option<f64>,
    /// Minutes stopped before it is deleted (0: as soon as it stops; negative: never).
    pub auto_delete_interval: Option<f64>,
    /// When it was last used (RFC 3339); `listSandboxes` sorts by it by default.
    pub last_activity_at: Option<String>,
}

impl From<&forge_wire::Sandbox> for SandboxInfo {
    fn from(s: &forge_wire::Sandbox) -> Self {
        let image = s
            .build_info
            .as_ref()
            .and_then(|b| b.dockerfile_content.as_deref())
            .and_then(|d| d.lines().find_map(|l| l.trim().strip_prefix("FROM ")))
            .map(|i| i.trim().to_owned());
        SandboxInfo {
            id: s.id.clone(),
            name: s.name.clone(),
            state: s.state.as_str().to_owned(),
            public: s.public,
            target: s.target.clone(),
            cpu: s.cpu,
            memory: s.memory,
            disk: s.disk,
            labels: s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            image,
            snapshot: s.snapshot.clone(),
            user: s.user.clone(),
            created_at: s.created_at.clone(),
            updated_at: s.updated_at.clone(),
            error_reason: s.error_reason.clone(),
            network_block_all: s.network_block_all,
            network_allow_list: s.network_allow_list.clone(),
            domain_allow_list: s.domain_allow_list.clone(),
            auto_stop_interval: s.auto_stop_interval,
            auto_archive_interval: s.auto_archive_interval,
            auto_delete_interval: s.auto_delete_interval,
            last_activity_at: s.last_activity_at.clone(),
        }
    }
}

/// Filter of `daytona.listSandboxes(...)`.
#[derive(Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ListSandboxesQuery {
    /// Only sandboxes carrying all these labels.
    pub labels: Option<HashMap<String, String>>,
    /// Only sandboxes in these states.
    pub states: Option<Vec<String>>,
    /// Page size per request (1-200, default 100). All pages are fetched.
    pub limit: Option<u32>,
    /// What to sort by (default `lastActivityAt`).
    #[ts(optional = nullable, type = "'name' | 'cpu' | 'memoryGib' | 'diskGib' | 'lastActivityAt' | 'createdAt'")]
    pub sort: Option<String>,
    /// Sort direction (default `desc`: the most recently used first).
    #[ts(optional = nullable, type = "'asc' | 'desc'")]
    pub order: Option<String>,
}

/// Result of `process.executeCommand`: stdout and stderr combined, as Daytona returns them.
#[napi(object)]
#[derive(Clone, Default)]
pub struct ExecuteResponse {
    pub exit_code: i32,
    /// Combined stdout and stderr.
    pub result: String,
}

/// A preview link: `url`, and the `token` to send as `X-Daytona-Preview-Token` for private
/// sandboxes (the same for every port; it changes when the sandbox restarts).
#[napi(object)]
#[derive(Clone, Default)]
pub struct PreviewLink {
    pub sandbox_id: String,
    pub port: u32,
    pub url: String,
    pub token: String,
}

/// A signed preview link (`sandbox.getSignedPreviewUrl`): `url` opens the port's preview with
/// no header or cookie (a link to share, an iframe) until `expiresInSeconds` pass or
/// `sandbox.expireSignedPreviewUrl(port, token)` ends it.
#[napi(object)]
#[derive(Clone, Default)]
pub struct SignedPreviewLink {
    pub sandbox_id: String,
    pub port: u32,
    /// The token inside `url`, for `expireSignedPreviewUrl`.
    pub token: String,
    pub url: String,
}

/// Options of `sandbox.fork`.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Default)]
pub struct ForkSandboxParams {
    /// Name of the new sandbox (default: generated).
    pub name: Option<String>,
}

/// Settings of `sandbox.updateNetworkSettings`.
#[derive(serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
#[derive(Clone, Default)]
pub struct NetworkSettings {
    /// `true` blocks every outbound connection of the sandbox (the internet, allowed host
    /// ports); `false` restores them. Its previews keep working.
    pub network_block_all: Option<bool>,
    /// Comma-separated IPv4 addresses or CIDR blocks the sandbox may reach (`''`: all again).
    /// On the embedded backend its routes are narrowed to them; its resolver stays reachable.
    pub network_allow_list: Option<String>,
    /// The only names the sandbox may reach from now on (`[]` or `''`: the list is lifted).
    /// `example.com` is that name only; `*.example.com` is every name below it, not
    /// `example.com` itself. On the embedded backend, names resolve only through its resolver
    /// and connections (HTTP on 80, TLS on 443) go only through its proxies, which check the
    /// `Host` and the TLS server name.
    pub domain_allow_list: Option<DomainAllowList>,
}

/// A `domainAllowList`: names, as an array or comma-separated in one string (the official
/// SDK's form). Each is one host name (`example.com`: that name only) or a wildcard
/// (`*.example.com`: every name below it, not `example.com` itself); case and a trailing dot
/// do not matter. A wrong entry is a `DAYTONA_INVALID_ARGUMENT` naming `domainAllowList`.
#[derive(Clone, TS)]
#[ts(untagged)]
pub enum DomainAllowList {
    Csv(String),
    Names(Vec<String>),
}

impl DomainAllowList {
    /// The entries, one name each.
    pub fn entries(self) -> Vec<String> {
        match self {
            DomainAllowList::Csv(list) => list.split(',').map(str::to_owned).collect(),
            DomainAllowList::Names(names) => names,
        }
    }
}

/// By hand rather than `#[serde(untagged)]`: a wrong entry is then named by its index
/// (`domainAllowList[2] must be a string`), not "did not match any variant".
impl<'de> Deserialize<'de> for DomainAllowList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = DomainAllowList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of names or a comma-separated string")
            }
            fn visit_str<E: serde::de::Error>(self, list: &str) -> Result<Self::Value, E> {
                Ok(DomainAllowList::Csv(list.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(DomainAllowList::Names(names))
            }
        }
        d.deserialize_any(Either)
    }
}

//! The embedded backend's dependency cache (`POST /api/forge/sandboxes/{id}/dependencies`,
//! an extension: Daytona has no such route and answers 404).

use crate::StringMap;
use serde::{Deserialize, Serialize};

/// What the pipeline asks of the cache around its install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DependencyCacheAction {
    /// Before the install: put the cached `node_modules` of this key into the project.
    Restore,
    /// Right after the pipeline's own install succeeded: keep the project's `node_modules`
    /// under this key.
    Store,
}

/// The request: which project, installed how.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyCacheRequest {
    pub action: Option<DependencyCacheAction>,
    /// The folder in the sandbox the install runs in (where `node_modules` goes); relative
    /// paths resolve against `/home/daytona`.
    pub path: String,
    /// `npm`, `pnpm`, `yarn` or `bun`.
    pub manager: String,
    /// The install command the pipeline runs.
    pub command: String,
    /// The install's own environment (what changes what it installs).
    #[serde(default)]
    pub env: StringMap,
    /// What the project is (the repository URL without credentials): entries are shared only
    /// between requests of the same scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// What the cache did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DependencyCacheOutcome {
    /// `node_modules` was put in place from the cache: the install is not needed.
    Restored,
    /// The project's `node_modules` is in the cache now.
    Stored,
    /// Nothing was done (`reason` says why): install as usual.
    Skipped,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyCacheResponse {
    pub outcome: DependencyCacheOutcome,
    /// The entry's key (sha256, hex), when one was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Files, folders and links restored or stored.
    #[serde(default)]
    pub entries: u64,
    /// Bytes of the files restored or stored.
    #[serde(default)]
    pub bytes: u64,
    /// Whether files were hard links to the cache's read-only files (else copies).
    #[serde(default)]
    pub linked: bool,
    #[serde(default)]
    pub elapsed_ms: u64,
    /// On a restore: the dev servers' build caches put back with `node_modules` (their
    /// folders, e.g. `.next/cache`), kept from an earlier sandbox of the same key when it was
    /// deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_caches: Vec<String>,
}

//! The daemon's own routes: `POST /env` (its process environment), `GET /system/metrics`,
//! `POST /init`, and the route groups this backend does not serve (`/lsp/…`,
//! `/computeruse/…`), which answer "not supported" (400, code `NOT_SUPPORTED`, in the
//! toolbox's error shape).
//!
//! **`/env`.** The daemon changes its own environment, which every process it starts later
//! inherits (commands, sessions, PTYs, interpreters) and which is gone when the sandbox
//! restarts with a new daemon. Here the change is kept in the sandbox's private state folder
//! (`<sandbox>/state/daemon-env.json`, never in the sandbox; mode 0600, as values may be
//! secrets), tied to the sandbox's running container (its init's pid and start time): every
//! later command's environment is built with it, a backend started again still finds it, and
//! a stopped and started sandbox starts without it, as a new daemon would. Commands already
//! running keep their environment; a session keeps what its earlier commands exported.

use super::Sbx;
use crate::error::Failure;
use crate::util::JsonBody;
use crate::Shared;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use forge_wire::{InitializeRequest, StringMap, SystemMetrics, UpdateEnvRequest};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The file, in the sandbox's state folder, that holds the daemon's environment changes.
const ENV_FILE: &str = "daemon-env.json";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/env", post(update_env))
        .route("/init", post(init))
        .route("/system/metrics", get(metrics))
        .route("/lsp", any(lsp))
        .route("/lsp/{*rest}", any(lsp))
        .route("/computeruse", any(computer_use))
        .route("/computeruse/{*rest}", any(computer_use))
}

/// The daemon's environment changes, for one container of the sandbox.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvOverlay {
    /// The container they belong to: its init's pid and start time.
    init: (i32, u64),
    /// Variables set (added or overwritten).
    #[serde(default)]
    pub set: StringMap,
    /// Variables removed (from the sandbox's env and the defaults a command gets).
    #[serde(default)]
    pub unset: BTreeSet<String>,
}

impl EnvOverlay {
    /// The sandbox env as the daemon's changes leave it.
    pub fn apply(&self, base: &StringMap) -> StringMap {
        let mut env: StringMap = base
            .iter()
            .filter(|(k, _)| !self.unset.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Folds in an `UpdateEnvRequest`: `unset`, then `unsetValuePrefix` (over the sandbox's
    /// env as it is now, sparing the names being set), then `set`.
    fn update(&mut self, base: &StringMap, req: &UpdateEnvRequest) {
        let set = req.set.clone().unwrap_or_default();
        let mut remove: Vec<String> = req.unset.clone().unwrap_or_default();
        if let Some(prefix) = req.unset_value_prefix.as_deref().filter(|p| !p.is_empty()) {
            remove.extend(
                self.apply(base)
                    .into_iter()
                    .filter(|(k, v)| v.starts_with(prefix) && !set.contains_key(k))
                    .map(|(k, _)| k),
            );
        }
        for name in remove.into_iter().filter(|n| !n.is_empty()) {
            self.set.remove(&name);
            self.unset.insert(name);
        }
        for (k, v) in set {
            self.unset.remove(&k);
            self.set.insert(k, v);
        }
    }
}

/// The daemon's environment changes that hold for the sandbox's running container (`init`:
/// its pid and start time), if any. Blocking, but a small file (usually none).
pub fn read_overlay(state_dir: &Path, init: Option<(i32, u64)>) -> Option<EnvOverlay> {
    let init = init?;
    let bytes = std::fs::read(state_dir.join(ENV_FILE)).ok()?;
    serde_json::from_slice::<EnvOverlay>(&bytes)
        .ok()
        .filter(|o| o.init == init)
}

fn write_overlay(state_dir: &Path, overlay: &EnvOverlay) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(state_dir)?;
    let tmp: PathBuf = state_dir.join(format!("{ENV_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(overlay).unwrap_or_default())?;
    drop(f);
    std::fs::rename(&tmp, state_dir.join(ENV_FILE))
}

/// `POST /env`: changes the environment of every command started later (see the module
/// docs). Names to set must be valid variable names (400).
async fn update_env(
    sbx: Sbx,
    JsonBody(req): JsonBody<UpdateEnvRequest>,
) -> Result<Json<serde_json::Value>, Failure> {
    if let Some(set) = &req.set {
        super::process::check_env(set)?;
    }
    let running = sbx.running().await?;
    let init = (running.pid, running.start);
    let state_dir = sbx.state.store.state_dir(&sbx.id);
    let base = sbx.record_env.clone();
    // One change at a time per backend: two concurrent updates must not lose one.
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = LOCK.lock().await;
    let written = tokio::task::spawn_blocking(move || {
        let mut overlay = read_overlay(&state_dir, Some(init)).unwrap_or(EnvOverlay {
            init,
            ..Default::default()
        });
        overlay.update(&base, &req);
        write_overlay(&state_dir, &overlay)
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))?;
    written.map_err(|e| Failure::internal(format!("cannot save the environment: {e}")))?;
    Ok(Json(serde_json::json!({"message": "Environment updated"})))
}

/// `POST /init`: for the daemon, the token the proxy authenticates to it with, and its
/// telemetry. Here the backend itself authenticates every toolbox call (API key or preview
/// token) and sends no telemetry, so there is nothing to set up: the token is checked for
/// presence, never stored nor logged.
async fn init(
    _sbx: Sbx,
    JsonBody(req): JsonBody<InitializeRequest>,
) -> Result<Json<serde_json::Value>, Failure> {
    if req.token.is_empty() {
        return Err(Failure::bad_request("token is required"));
    }
    Ok(Json(serde_json::json!({
        "message": "Auth token set and telemetry initialized successfully"
    })))
}

/// The last CPU reading of each sandbox, for `cpuUsedPct` over a window.
#[derive(Default)]
pub struct CpuSamples {
    last: std::sync::Mutex<HashMap<String, Sample>>,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_us: u64,
    pct: f64,
}

/// A new window starts once the last one is this old.
const CPU_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

impl CpuSamples {
    /// The sandbox's CPU use as a percentage of its limit, over the window since the last
    /// reading at least [`CPU_WINDOW`] old (0 until there is one, as the daemon's).
    fn percent(&self, id: &str, cpu_us: Option<u64>, cpus: u64) -> f64 {
        let Some(now_us) = cpu_us else {
            return 0.0;
        };
        let now = Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = Sample {
            at: now,
            cpu_us: now_us,
            pct: 0.0,
        };
        let Some(prev) = last.get(id).copied() else {
            last.insert(id.to_string(), fresh);
            return 0.0;
        };
        let elapsed = now.duration_since(prev.at);
        if elapsed < CPU_WINDOW {
            return prev.pct;
        }
        let pct = if now_us >= prev.cpu_us {
            let used = (now_us - prev.cpu_us) as f64;
            let wall = elapsed.as_micros() as f64 * cpus.max(1) as f64;
            (used / wall * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        };
        last.insert(id.to_string(), Sample { pct, ..fresh });
        pct
    }

    pub fn forget(&self, id: &str) {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

const GIB: u64 = 1 << 30;

/// `GET /system/metrics`: the sandbox's cgroup (memory in use and its page cache, CPU time as
/// a share of its `cpu` limit), its limits (`cpu`, `memory`, `disk`) as the totals, and the
/// bytes its files take. Where this machine gives no cgroups, the figures read from them are 0.
async fn metrics(sbx: Sbx) -> Json<SystemMetrics> {
    let usage = sbx.state.runtime.usage(&sbx.id).await;
    let cache = {
        let (cg, id) = (sbx.state.runtime.cgroups.clone(), sbx.id.clone());
        tokio::task::spawn_blocking(move || cg.memory_cache_bytes(&id))
            .await
            .ok()
            .flatten()
    };
    let cpus = sbx.limits.cpu.max(1);
    let cpu_us = usage.cpu_seconds.map(|s| (s * 1e6) as u64);
    let pct = sbx.state.sessions.cpu.percent(&sbx.id, cpu_us, cpus);
    let now = std::time::SystemTime::now();
    let unix = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let disk_total = sbx.limits.disk_gib.max(1) * GIB;
    Json(SystemMetrics {
        timestamp: humantime::format_rfc3339_seconds(now).to_string(),
        timestamp_unix: unix,
        cpu_count: cpus,
        cpu_used_pct: (pct * 100.0).round() / 100.0,
        mem_used: usage.memory_bytes.unwrap_or(0),
        mem_total: sbx.limits.memory_gib.max(1) * GIB,
        mem_cache: cache.unwrap_or(0),
        disk_used: usage.disk_bytes,
        disk_total,
        disk_free: disk_total.saturating_sub(usage.disk_bytes),
    })
}

/// Daytona's "not supported" answer, as the control plane's (400, code `NOT_SUPPORTED`).
fn not_supported(what: &str) -> Failure {
    Failure::bad_request(format!(
        "{what} is not supported by the embedded backend (forge local): use Daytona for it"
    ))
    .with_code("NOT_SUPPORTED")
}

/// `/lsp/…`: no language servers here.
async fn lsp(_sbx: Sbx) -> Failure {
    not_supported("LSP (language server) support")
}

/// `/computeruse/…`: no desktop here.
async fn computer_use(_sbx: Sbx) -> Failure {
    not_supported("Computer use")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_updates_unset_then_set() {
        let base = map(&[("A", "1"), ("SECRET", "ph:x"), ("KEEP", "ph:y")]);
        let mut o = EnvOverlay::default();
        o.update(
            &base,
            &UpdateEnvRequest {
                set: Some(map(&[("B", "2"), ("KEEP", "real")])),
                unset: Some(vec!["A".into()]),
                unset_value_prefix: Some("ph:".into()),
            },
        );
        assert_eq!(
            o.apply(&base),
            map(&[("B", "2"), ("KEEP", "real")]),
            "{o:?}"
        );
        // Set again after an unset: back.
        o.update(
            &base,
            &UpdateEnvRequest {
                set: Some(map(&[("A", "3")])),
                ..Default::default()
            },
        );
        assert_eq!(o.apply(&base)["A"], "3");
        assert!(!o.unset.contains("A"));
    }

    #[test]
    #[allow(clippy::float_cmp)] // exactly zero: no window yet, nothing computed
    fn cpu_percent_needs_a_window() {
        let s = CpuSamples::default();
        assert_eq!(s.percent("x", Some(1_000_000), 2), 0.0);
        assert_eq!(s.percent("x", Some(2_000_000), 2), 0.0, "within the window");
        assert_eq!(s.percent("y", None, 1), 0.0);
    }
}

//! The toolbox under `/toolbox/{id}/…`: the Daytona daemon's routes (toolbox.json) served on
//! the sandbox's confined root.

// One file per area, named as in the client (crates/daytona/src/toolbox) and the binding
// (src/): fs (+ its transfers), git, process (+ its sessions), logs.
pub mod fs;
pub mod fs_transfer;
pub mod git;
pub mod interpreter;
pub mod logs;
pub mod process;
pub mod process_sessions;
pub mod pty;
pub mod system;

use crate::confine::{Resolved, Root};
use crate::container::cgroup::Limits;
use crate::container::process::{self as container_process, Child, NotStarted, Spec};
use crate::container::Running;
use crate::error::Failure;
use crate::procs::ProcEnv;
use crate::store::{is_running, WORK_DIR};
use crate::Shared;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{DirResponse, IsPortInUseResponse, PortList};
use std::sync::Arc;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/work-dir", get(work_dir))
        .route("/user-home-dir", get(work_dir))
        .route("/port/{port}/in-use", get(port_in_use))
        .route("/port", get(ports))
        .route("/version", get(version))
        .route("/process/execute", post(process::execute))
        .route("/process/code-run", post(process::code_run))
        .route("/files", get(fs::list).delete(fs::delete))
        .route("/files/info", get(fs::info))
        .route("/files/folder", post(fs::create_folder))
        .route("/files/find", get(fs::find))
        .route("/files/search", get(fs::search))
        .route("/files/replace", post(fs::replace))
        .route("/files/permissions", post(fs::permissions))
        .route("/files/move", post(fs::move_files))
        .route("/files/download", get(fs_transfer::download))
        .route("/files/bulk-download", post(fs_transfer::bulk_download))
        .route(
            "/files/bulk-upload",
            post(fs_transfer::bulk_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .merge(process_sessions::routes())
        .merge(pty::routes())
        .merge(interpreter::routes())
        .merge(system::routes())
        .merge(git::routes())
        .with_state(state)
}

/// The sandbox a toolbox request addresses: loaded from the path, required to be started.
pub struct Sbx {
    pub state: Shared,
    pub id: String,
    pub root: Root,
    pub penv: ProcEnv,
    pub limits: Limits,
    /// How its container is started (limits, volumes, network).
    pub start: crate::container::Start,
    /// The sandbox's env as created, before the daemon's env changes (`POST /env`).
    pub record_env: forge_wire::StringMap,
    /// Names the daemon's env changes removed from every command's environment.
    unset: std::collections::BTreeSet<String>,
}

impl FromRequestParts<Shared> for Sbx {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Sbx, Failure> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Failure::bad_request("missing sandbox id"))?;
        let id = params
            .iter()
            .find(|(k, _)| *k == "sandbox_id")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| Failure::bad_request("missing sandbox id"))?;
        let rec = state
            .store
            .get(&id)
            .await
            .ok_or_else(|| Failure::not_found(format!("sandbox {id} not found")))?;
        if !is_running(rec.sandbox.state) {
            return Err(Failure::conflict(format!(
                "sandbox {id} is {}: start it before using the toolbox",
                rec.sandbox.state
            )));
        }
        let id = rec.sandbox.id.clone();
        // Any toolbox call is activity (the auto-stop timer counts from the last one).
        state.store.touch(&id).await;
        let dir = state.store.sandbox_dir(&id);
        // The daemon's env changes, while the container they were made for runs.
        let init = state.runtime.running(&id).map(|r| (r.pid, r.start));
        let overlay = system::read_overlay(&state.store.state_dir(&id), init);
        let (env, unset) = match overlay {
            Some(o) => (o.apply(&rec.sandbox.env), o.unset),
            None => (
                rec.sandbox.env.clone(),
                std::collections::BTreeSet::default(),
            ),
        };
        Ok(Sbx {
            state: state.clone(),
            root: Root::new(dir.join("root"), state.runtime.layout())
                .with_volumes(crate::volumes::mounts(state, &rec.sandbox)),
            penv: ProcEnv {
                sandbox_id: id.clone(),
                dir,
                env,
            },
            limits: limits_of(&rec.sandbox),
            start: crate::api::start_spec(state, &rec.sandbox),
            record_env: rec.sandbox.env,
            unset,
            id,
        })
    }
}

/// A sandbox's limits from its record (`cpu` vCPUs, `memory` GiB).
pub fn limits_of(s: &forge_wire::Sandbox) -> Limits {
    Limits {
        cpu: s.cpu.max(1.0) as u64,
        memory_gib: s.memory.max(1.0) as u64,
        disk_gib: s.disk.max(1.0) as u64,
    }
}

impl Sbx {
    /// The sandbox's container, started if it is not running.
    pub async fn running(&self) -> Result<Arc<Running>, Failure> {
        self.state.runtime.ensure(&self.id, &self.start).await
    }

    /// A path as this sandbox's commands see it.
    pub fn cmd_path(&self, r: &Resolved) -> String {
        self.state.runtime.command_path(self.root.host(), &r.shown)
    }

    /// The whole environment of a command run in `cwd` (as the command sees it).
    pub fn env(&self, cwd: &str, extra: &forge_wire::StringMap) -> Vec<String> {
        let mut env = crate::procs::command_env(&self.state.runtime, &self.penv, cwd, extra);
        if !self.unset.is_empty() {
            // Removed by `POST /env` (the request's own envs still win).
            env.retain(|kv| {
                let name = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                !self.unset.contains(name) || extra.contains_key(name)
            });
        }
        env
    }

    /// Starts a command in the sandbox (its container started first if needed).
    pub async fn spawn(&self, spec: Spec) -> Result<Child, Spawn> {
        let running = self.running().await.map_err(Spawn::Sandbox)?;
        container_process::spawn(&running.ctl, spec)
            .await
            .map_err(Spawn::Command)
    }

    /// Makes a folder and its missing parents (given to the sandbox's user), as `mkdir -p`
    /// in the sandbox would, and answers it pinned.
    pub async fn mkdirs(&self, path: &str) -> Result<Resolved, Failure> {
        let (root, state, path) = (self.root.clone(), self.state.clone(), path.to_string());
        fs::blocking(move || {
            let give = |fd: std::os::fd::BorrowedFd<'_>| state.runtime.give_fd(fd);
            let dir = root.make_dirs(&path, &give)?;
            if !dir.is_dir() {
                return Err(Failure::conflict(format!(
                    "{} exists and is not a directory",
                    dir.shown
                )));
            }
            Ok(dir)
        })
        .await
    }

    /// Resolves a path to write (its missing parent folders made, given to the sandbox's
    /// user), pinned; a symlink as the last component is followed, as a write inside would.
    pub async fn for_create(&self, path: &str) -> Result<Resolved, Failure> {
        let (root, state, path) = (self.root.clone(), self.state.clone(), path.to_string());
        fs::blocking(move || {
            let give = |fd: std::os::fd::BorrowedFd<'_>| state.runtime.give_fd(fd);
            root.resolve_for_create(&path, true, &give)
        })
        .await
    }
}

/// Why a command did not start: the sandbox could not run it, or the command itself could
/// not be started (a missing cwd or program: the daemon's exit code -1).
pub enum Spawn {
    Sandbox(Failure),
    Command(NotStarted),
}

/// `GET /work-dir` and `GET /user-home-dir`: both `/home/daytona`.
async fn work_dir(_sbx: Sbx) -> Json<DirResponse> {
    Json(DirResponse {
        dir: WORK_DIR.to_string(),
    })
}

/// `GET /version`.
async fn version(_sbx: Sbx) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "version": concat!("forge-local/", env!("CARGO_PKG_VERSION")) }))
}

/// `GET /port`: the TCP ports the sandbox's processes listen on, in its own network.
async fn ports(sbx: Sbx) -> Json<PortList> {
    let ports = sbx.state.runtime.listening(&sbx.id).await;
    Json(PortList { ports })
}

/// `GET /port/{port}/in-use`: does something of this sandbox listen on that port.
async fn port_in_use(
    sbx: Sbx,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
) -> Result<Json<IsPortInUseResponse>, Failure> {
    let port: u16 = params
        .iter()
        .find(|(k, _)| k == "port")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| *p >= 1)
        .ok_or_else(|| Failure::bad_request("invalid port"))?;
    let is_in_use = sbx.state.runtime.listening(&sbx.id).await.contains(&port);
    Ok(Json(IsPortInUseResponse { is_in_use }))
}

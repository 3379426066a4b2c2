//! The toolbox under `/toolbox/{id}/…`: the Daytona daemon's routes (toolbox.json) served on
//! the sandbox's confined root.

pub mod exec;
pub mod files;
pub mod git;
pub mod logs;
pub mod sessions;
pub mod transfer;

use crate::confine::Root;
use crate::error::Failure;
use crate::procs::{PortsEnv, ProcEnv};
use crate::store::{is_running, WORK_DIR};
use crate::Shared;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{DirResponse, IsPortInUseResponse, PortList};

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/work-dir", get(work_dir))
        .route("/user-home-dir", get(work_dir))
        .route("/port/{port}/in-use", get(port_in_use))
        .route("/port", get(ports))
        .route("/version", get(version))
        .route("/process/execute", post(exec::execute))
        .route("/process/code-run", post(exec::code_run))
        .route("/files", get(files::list).delete(files::delete))
        .route("/files/info", get(files::info))
        .route("/files/folder", post(files::create_folder))
        .route("/files/find", get(files::find))
        .route("/files/search", get(files::search))
        .route("/files/replace", post(files::replace))
        .route("/files/permissions", post(files::permissions))
        .route("/files/move", post(files::move_files))
        .route("/files/download", get(transfer::download))
        .route("/files/bulk-download", post(transfer::bulk_download))
        .route(
            "/files/bulk-upload",
            post(transfer::bulk_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .merge(sessions::routes())
        .merge(git::routes())
        .with_state(state)
}

/// The sandbox a toolbox request addresses: loaded from the path, required to be started.
pub struct Sbx {
    pub state: Shared,
    pub id: String,
    pub root: Root,
    pub penv: ProcEnv,
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
        let root_host = state.store.root(&id);
        let home = root_host.join(WORK_DIR.trim_start_matches('/'));
        Ok(Sbx {
            state: state.clone(),
            root: Root::new(root_host),
            penv: ProcEnv {
                sandbox_id: id.clone(),
                home,
                env: rec.sandbox.env.clone(),
                ports: state.ports_shim.clone().map(|shim| PortsEnv {
                    shim,
                    dir: crate::ports::dir(&state.store.sandbox_dir(&id)),
                }),
            },
            id,
        })
    }
}

impl Sbx {
    /// The sandbox's code language label (`code-toolbox-language`).
    pub async fn label(&self, key: &str) -> Option<String> {
        let rec = self.state.store.get(&self.id).await?;
        rec.sandbox.labels.get(key).cloned()
    }
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

/// `GET /port`: the TCP ports this sandbox listens on, as its processes see them (see
/// `crate::ports::listening`): its published ports with a live listener, plus loopback or
/// wildcard listeners its processes hold that the port shim does not reach.
async fn ports(sbx: Sbx) -> Json<PortList> {
    let dir = crate::ports::dir(&sbx.state.store.sandbox_dir(&sbx.id));
    let id = sbx.id.clone();
    let ports = tokio::task::spawn_blocking(move || crate::ports::listening(&dir, &id))
        .await
        .unwrap_or_default();
    Json(PortList { ports })
}

/// `GET /port/{port}/in-use`: is something of this sandbox listening on that port: its
/// published mapping has a live listener, else (servers the port shim does not reach)
/// something accepts on 127.0.0.1:port.
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
    let dir = crate::ports::dir(&sbx.state.store.sandbox_dir(&sbx.id));
    if crate::ports::mapped(&dir, port).is_some() {
        return Ok(Json(IsPortInUseResponse { is_in_use: true }));
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let is_in_use = matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    );
    Ok(Json(IsPortInUseResponse { is_in_use }))
}

//! Volumes (`/api/volumes`): a folder of this machine per volume (`<home>/volumes/<id>/data`),
//! created, listed, found by name and deleted, and mounted read-write into the sandboxes
//! that name it at create (`volumes: [{volumeId, mountPath, subpath}]`), shared between them
//! as a Daytona volume is.

use crate::error::{now_rfc3339, Failure};
use crate::objects::Objects;
use crate::util::{new_uuid, JsonBody};
use crate::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use forge_wire::{CreateVolume, Volume, VolumeState};
use std::path::PathBuf;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/volumes", get(list).post(create))
        .route("/volumes/{id}", get(get_one).delete(remove))
        .route("/volumes/by-name/{name}", get(by_name))
}

/// The 404 of an unknown volume, worded as the API's.
pub fn not_found(id: &str) -> Failure {
    Failure::not_found(format!("Volume {id} not found"))
}

fn objects(state: &Shared) -> &Objects<Volume> {
    &state.volumes
}

/// The volumes a sandbox mounts, as its file routes resolve them (the container mounts the
/// same folders: see `api::start_spec`).
pub fn mounts(state: &Shared, s: &forge_wire::Sandbox) -> Vec<crate::confine::Volume> {
    s.volumes
        .iter()
        .flatten()
        .map(|v| crate::confine::Volume {
            data: data(state, &v.volume_id),
            subpath: v.subpath.clone().filter(|p| !p.is_empty()),
            at: crate::container::layout::absolute(&v.mount_path),
        })
        .collect()
}

/// The folder a volume's files are in.
pub fn data(state: &Shared, id: &str) -> PathBuf {
    objects(state).folder(id).join("data")
}

async fn create(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<CreateVolume>,
) -> Result<Json<Volume>, Failure> {
    let name = req.name.trim().to_string();
    if name.is_empty() || name.contains(['/', '\0']) {
        return Err(Failure::bad_request(format!(
            "invalid volume name {name:?}"
        )));
    }
    let now = now_rfc3339();
    let vol = Volume {
        id: new_uuid(),
        name: name.clone(),
        organization_id: "local".into(),
        state: VolumeState::Ready,
        created_at: now.clone(),
        updated_at: now,
        last_used_at: None,
        error_reason: None,
    };
    let dir = data(&state, &vol.id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::internal(format!("cannot create the volume's folder: {e}")))?;
    // Its files are the sandboxes' user's.
    let _ = state.runtime.give(&dir);
    let added = objects(&state)
        .insert_new(vol.clone())
        .map_err(|e| Failure::internal(format!("cannot write the volume's record: {e}")))?;
    if !added {
        let _ = std::fs::remove_dir_all(objects(&state).folder(&vol.id));
        return Err(Failure::conflict(format!(
            "Volume with name {name} already exists"
        )));
    }
    Ok(Json(vol))
}

async fn list(State(state): State<Shared>) -> Json<Vec<Volume>> {
    Json(objects(&state).all())
}

async fn get_one(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Volume>, Failure> {
    objects(&state)
        .get(&id)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

async fn by_name(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Volume>, Failure> {
    objects(&state)
        .all()
        .into_iter()
        .find(|v| v.name == name)
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

/// `DELETE /volumes/{id}`: refused (409) while a sandbox that mounts it is not deleted.
async fn remove(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, Failure> {
    let vol = objects(&state).get(&id).ok_or_else(|| not_found(&id))?;
    let users: Vec<String> = state
        .store
        .all()
        .await
        .into_iter()
        .filter(|r| {
            r.sandbox
                .volumes
                .iter()
                .flatten()
                .any(|v| v.volume_id == vol.id)
        })
        .map(|r| r.sandbox.id)
        .collect();
    if !users.is_empty() {
        return Err(Failure::conflict(format!(
            "Volume {} is in use by sandbox {}",
            vol.name,
            users.join(", ")
        )));
    }
    let (state2, vid) = (state.clone(), vol.id.clone());
    tokio::task::spawn_blocking(move || objects(&state2).remove(&vid))
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(|e| Failure::internal(format!("cannot remove the volume: {e}")))?;
    Ok(StatusCode::OK.into_response())
}

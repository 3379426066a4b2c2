//! `daytona.snapshot` and `daytona.volume`: snapshots and volumes, with the official SDK's names
//! (`create`, `get`, `list`, `delete`). Their answers are the API's JSON as it is (`Json`), so
//! what is described here is the TypeScript of that JSON.

use crate::client::{into, Inner};
use crate::error::Rejection;
use crate::json::Json;
use crate::promise::{spawn_promise, Pending};
use forge_daytona::{CallOptions, SnapshotSource};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;

/// A snapshot, as Daytona's API gives it (`SnapshotDto`).
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct Snapshot {
    pub id: String,
    pub organization_id: String,
    pub general: bool,
    pub name: String,
    /// The image it was made from (absent for a Dockerfile build or a sandbox's snapshot).
    pub image_name: Option<String>,
    /// `pending`, `building`, `active`, `inactive`, `error`, `build_failed`, `removing`, ...
    pub state: String,
    /// Size in GB, when known.
    #[napi(ts_type = "number | null")]
    pub size: Option<f64>,
    #[napi(ts_type = "Array<string> | null")]
    pub entrypoint: Option<Vec<String>>,
    pub cpu: u32,
    pub gpu: u32,
    /// Memory in GiB.
    pub mem: u32,
    /// Disk in GiB.
    pub disk: u32,
    #[napi(ts_type = "string | null")]
    pub error_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[napi(ts_type = "string | null")]
    pub last_used_at: Option<String>,
    /// The Dockerfile it was built from (`dockerfileContent`), when it was built.
    #[napi(
        ts_type = "{ dockerfileContent?: string, contextHashes?: Array<string>, createdAt: string, updatedAt: string, snapshotRef: string }"
    )]
    pub build_info: Option<String>,
    /// The sandbox it was taken from (`sandbox.createSnapshot`).
    pub source_sandbox_id: Option<String>,
}

/// One page of `daytona.snapshot.list()`.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct PaginatedSnapshots {
    pub items: Vec<Snapshot>,
    pub total: u32,
    pub page: u32,
    pub total_pages: u32,
}

/// A volume, as Daytona's API gives it (`VolumeDto`). Mount it with
/// `daytona.create({ volumes: [{ volumeId: volume.id, mountPath }] })`.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct Volume {
    pub id: String,
    pub name: String,
    pub organization_id: String,
    /// `ready`, `pending_create`, `creating`, `deleting`, `error`, ...
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    #[napi(ts_type = "string | null")]
    pub last_used_at: Option<String>,
    #[napi(ts_type = "string | null")]
    pub error_reason: Option<String>,
}

/// What `daytona.snapshot.create` makes a snapshot from: `image` (an image name) or
/// `dockerfile` (its steps are run to build it).
#[napi(object, object_to_js = false)]
pub struct CreateSnapshotParams {
    pub name: String,
    /// An image name, e.g. `node:22-bookworm` (the official SDK's `Image` objects are not
    /// accepted: pass their Dockerfile as `dockerfile`).
    pub image: Option<String>,
    /// A Dockerfile (`FROM`, `RUN`, `ENV`, `WORKDIR`, ...), built by running its steps.
    pub dockerfile: Option<String>,
}

/// Options of `daytona.snapshot.create`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CreateSnapshotOptions {
    /// Seconds to wait until it is `active` (default 600; 0 waits forever).
    pub timeout: Option<u32>,
}

/// Paging of `daytona.snapshot.list`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct ListSnapshotsQuery {
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// Per page, 1-200 (default 100).
    pub limit: Option<u32>,
}

/// The id a `delete` was given: the object's `id`, or the string itself.
fn id_of(what: &str, v: Either<String, Object>) -> std::result::Result<String, Rejection> {
    let id = match v {
        Either::A(s) => Some(s),
        Either::B(o) => o.get::<String>("id").ok().flatten(),
    };
    id.filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::invalid(format!("{what} must be an id or an object with an id")))
}

/// Snapshots (`daytona.snapshot`): images made ready to start sandboxes from
/// (`daytona.create({ snapshot: name })`).
#[napi]
pub struct SnapshotService {
    inner: Arc<Inner>,
}

impl SnapshotService {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        SnapshotService { inner }
    }
}

#[napi]
impl SnapshotService {
    /// Creates a snapshot from an image name or a Dockerfile and waits until it is `active`
    /// (rejects with the build's reason when it failed).
    #[napi(ts_return_type = "Promise<Snapshot>")]
    pub fn create(
        &self,
        env: &Env,
        params: CreateSnapshotParams,
        options: Option<CreateSnapshotOptions>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<Json<forge_wire::Snapshot>>> {
        let inner = self.inner.clone();
        let timeout = options.unwrap_or_default().timeout;
        let source = match (params.image, params.dockerfile) {
            (Some(i), None) => Ok(SnapshotSource::Image(i)),
            (None, Some(d)) => Ok(SnapshotSource::Dockerfile(d)),
            _ => Err(Rejection::invalid(
                "give a snapshot either an image or a dockerfile",
            )),
        };
        let name = params.name;
        spawn_promise(env, signal, move |cancel| async move {
            let source = source?;
            let client = inner.client().await?;
            let mut opts = CallOptions::new().with_cancel(cancel);
            if let Some(t) = timeout.filter(|t| *t > 0) {
                opts = opts.with_timeout(Duration::from_secs(u64::from(t)));
            }
            let snap = client
                .create_snapshot(&name, &source, &opts)
                .await
                .map_err(into)?;
            Json::of(&snap)
        })
    }

    /// Gets a snapshot by id or name (`DAYTONA_NOT_FOUND` when there is none).
    #[napi(ts_return_type = "Promise<Snapshot>")]
    pub fn get(
        &self,
        env: &Env,
        id_or_name: String,
    ) -> Result<Pending<Json<forge_wire::Snapshot>>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let snap = client
                .snapshot(&id_or_name, &CallOptions::new())
                .await
                .map_err(into)?;
            Json::of(&snap)
        })
    }

    /// Lists snapshots, one page (`{ items, total, page, totalPages }`).
    #[napi(ts_return_type = "Promise<PaginatedSnapshots>")]
    pub fn list(
        &self,
        env: &Env,
        query: Option<ListSnapshotsQuery>,
    ) -> Result<Pending<Json<forge_wire::PaginatedSnapshots>>> {
        let inner = self.inner.clone();
        let q = query.unwrap_or_default();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let page = client
                .snapshots(
                    u64::from(q.page.unwrap_or(1)),
                    u64::from(q.limit.unwrap_or(100)),
                    &CallOptions::new(),
                )
                .await
                .map_err(into)?;
            Json::of(&page)
        })
    }

    /// Deletes a snapshot (given as the object `get`/`list` returned, its id or its name).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Snapshot | string")] snapshot: Either<String, Object>,
    ) -> Result<Pending<()>> {
        let inner = self.inner.clone();
        let id = id_of("snapshot", snapshot);
        spawn_promise(env, None, move |_| async move {
            let id = id?;
            let client = inner.client().await?;
            client
                .delete_snapshot(&id, &CallOptions::new())
                .await
                .map_err(into)
        })
    }
}

/// Volumes (`daytona.volume`): folders that outlive sandboxes and are shared by every sandbox
/// that mounts them (`daytona.create({ volumes: [{ volumeId, mountPath }] })`).
#[napi]
pub struct VolumeService {
    inner: Arc<Inner>,
}

impl VolumeService {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        VolumeService { inner }
    }
}

#[napi]
impl VolumeService {
    /// Creates a volume.
    #[napi(ts_return_type = "Promise<Volume>")]
    pub fn create(&self, env: &Env, name: String) -> Result<Pending<Json<forge_wire::Volume>>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let v = client
                .create_volume(&name, &CallOptions::new())
                .await
                .map_err(into)?;
            Json::of(&v)
        })
    }

    /// Gets a volume by name; with `create: true` a missing one is created (as the official
    /// SDK's `get(name, true)`), else `DAYTONA_NOT_FOUND`.
    #[napi(ts_return_type = "Promise<Volume>")]
    pub fn get(
        &self,
        env: &Env,
        name: String,
        create: Option<bool>,
    ) -> Result<Pending<Json<forge_wire::Volume>>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let opts = CallOptions::new();
            let v = match client.volume(&name, &opts).await {
                Err(e) if create == Some(true) && e.status() == Some(404) => {
                    client.create_volume(&name, &opts).await
                }
                other => other,
            }
            .map_err(into)?;
            Json::of(&v)
        })
    }

    /// Lists every volume.
    #[napi(ts_return_type = "Promise<Array<Volume>>")]
    pub fn list(&self, env: &Env) -> Result<Pending<Json<Vec<forge_wire::Volume>>>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let all = client.volumes(&CallOptions::new()).await.map_err(into)?;
            Json::of(&all)
        })
    }

    /// Deletes a volume (given as the object `get`/`list` returned, or its id). Refused while
    /// a sandbox mounts it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Volume | string")] volume: Either<String, Object>,
    ) -> Result<Pending<()>> {
        let inner = self.inner.clone();
        let id = id_of("volume", volume);
        spawn_promise(env, None, move |_| async move {
            let id = id?;
            let client = inner.client().await?;
            client
                .delete_volume(&id, &CallOptions::new())
                .await
                .map_err(into)
        })
    }
}

//! The control plane under `/api`: sandbox lifecycle, listing, toolbox URL and preview links,
//! with the paths, bodies and state rules of the Daytona API (daytona-wire.md §3, §8).

use crate::error::{now_rfc3339, Failure};
use crate::store::{not_found, Record};
use crate::util::{new_uuid, query_flag, query_get, query_pairs, random_token, JsonBody};
use crate::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{
    BuildInfo, CreateSandbox, ListSandboxesResponse, PortPreviewUrl, Sandbox, SandboxState,
    StringMap, ToolboxProxyUrl,
};

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/sandbox", post(create).get(list))
        .route("/sandbox/{id}", get(get_one).delete(delete))
        .route("/sandbox/{id}/start", post(start))
        .route("/sandbox/{id}/stop", post(stop))
        .route("/sandbox/{id}/archive", post(archive))
        .route("/sandbox/{id}/labels", axum::routing::put(set_labels))
        .route("/sandbox/{id}/autostop/{interval}", post(set_interval))
        .route("/sandbox/{id}/autoarchive/{interval}", post(set_interval))
        .route("/sandbox/{id}/autodelete/{interval}", post(set_interval))
        .route("/sandbox/{id}/resize", post(resize))
        .route("/sandbox/{id}/last-activity", post(last_activity))
        .route("/sandbox/{id}/toolbox-proxy-url", get(toolbox_proxy_url))
        .route("/sandbox/{id}/ports/{port}/preview-url", get(preview_url))
        .route("/sandbox/{id}/pause", post(pause))
        .route("/sandbox/{id}/recover", post(recover))
        .route("/sandbox/{id}/fork", post(fork))
        .route("/sandbox/{id}/snapshot", post(snapshot))
        .route("/sandbox/{id}/network-settings", post(network_settings))
        .route("/sandbox/{id}/public/{public}", post(set_public))
        .route("/sandbox/{id}/autopause/{interval}", post(set_interval))
        .route("/sandbox/{id}/ttl/{minutes}", post(set_ttl))
        .route(
            "/sandbox/{id}/ssh-access",
            post(not_supported).delete(not_supported),
        )
        .route("/sandbox/ssh-access/validate", get(not_supported))
        .route("/sandbox/{id}/secrets", axum::routing::put(not_supported))
        .route("/sandbox/{id}/signing-key", get(not_supported))
        .route("/sandbox/{id}/signing-key/rotate", post(not_supported))
        .route("/sandbox/{id}/telemetry/{kind}", get(not_supported))
        .route(
            "/sandbox/{id}/build-logs-url",
            get(crate::snapshots::sandbox_build_logs_url),
        )
        .route(
            "/sandbox/{id}/build-logs",
            get(crate::snapshots::sandbox_build_logs),
        )
        .route("/secret", get(not_supported).post(not_supported))
        .route("/secret/paginated", get(not_supported))
        .route(
            "/secret/{sid}",
            get(not_supported)
                .patch(not_supported)
                .delete(not_supported),
        )
        .route("/warm-pools", get(not_supported).post(not_supported))
        .route(
            "/warm-pools/{wid}",
            axum::routing::patch(not_supported).delete(not_supported),
        )
        .route(
            "/object-storage/push-access",
            get(crate::object_storage::push_access),
        )
        .merge(crate::signed::routes())
        .merge(crate::snapshots::routes())
        .merge(crate::volumes::routes())
        .merge(crate::deps_cache::routes())
        .with_state(state)
}

/// The sandbox as the wire shows it, with this backend's toolbox URL and isolation.
fn render(state: &Shared, rec: &Record) -> Sandbox {
    let mut s = rec.sandbox.clone();
    s.toolbox_proxy_url = Some(format!("{}/toolbox", state.base_url));
    s.isolation = Some(state.runtime.isolation.clone());
    s
}

/// Starts the sandbox's container in the background, so its first command finds it up (a
/// command that comes sooner waits for the same start). Called before the create or start is
/// answered: a stop sent after that answer wins even when this task has not run yet.
pub(crate) fn start_soon(state: &Shared, rec: &Record) {
    let state = state.clone();
    let id = rec.sandbox.id.clone();
    let spec = start_spec(&state, &rec.sandbox);
    state.runtime.may_start(&id);
    tokio::spawn(async move {
        if let Err(e) = state.runtime.ensure(&id, &spec).await {
            // Taken down with the backend before it was up, or stopped (or deleted) before
            // this task ran: not the sandbox's failure.
            if state.runtime.closing() || state.runtime.was_stopped(&id) {
                return;
            }
            tracing::warn!("sandbox {id} did not start: {}", e.message);
            failed_start(&state, &id, e.message).await;
        }
    });
}

/// A sandbox whose container could not start ends in `error` with the reason, recoverable:
/// `recover` (or `start`) tries again once the cause is gone. Only a sandbox still meant to
/// be started: a stop or delete that came meanwhile wins.
async fn failed_start(state: &Shared, id: &str, reason: String) {
    let updated = state
        .store
        .update(id, |rec| {
            if rec.sandbox.state != SandboxState::Started {
                return Err(Failure::conflict("no longer starting"));
            }
            rec.sandbox.state = SandboxState::Error;
            rec.sandbox.error_reason = Some(reason);
            rec.sandbox.recoverable = Some(true);
            Ok(())
        })
        .await;
    if let Ok(rec) = updated {
        announce(state, SandboxState::Started, &rec);
    }
}

/// How a sandbox's container is started: its limits, its volumes, its network.
pub(crate) fn start_spec(state: &Shared, s: &Sandbox) -> crate::container::Start {
    let mounts = s
        .volumes
        .iter()
        .flatten()
        .map(|v| {
            let volume = crate::volumes::data(state, &v.volume_id);
            let mut host = volume.clone();
            if let Some(sub) = v.subpath.as_deref().filter(|p| !p.is_empty()) {
                host = host.join(sub.trim_start_matches('/'));
            }
            (volume, host, v.mount_path.clone())
        })
        .collect();
    crate::container::Start {
        limits: crate::toolbox::limits_of(s),
        mounts,
        network: !s.network_block_all,
        allow: allowed(s),
        domains: domains_of(s),
    }
}

/// `FROM <image>` of a one-line Dockerfile (what the SDK sends for an image string).
fn image_of(dockerfile: &str) -> Option<String> {
    dockerfile.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match words.next() {
            Some(w) if w.eq_ignore_ascii_case("FROM") => {
                words.find(|w| !w.starts_with("--")).map(str::to_string)
            }
            _ => None,
        }
    })
}

async fn create(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<CreateSandbox>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = create_sandbox(&state, req).await?;
    let shown = render(&state, &rec);
    state.events.created(&shown);
    Ok(Json(shown))
}

/// Largest `autoArchiveInterval` (minutes): 30 days, what the API makes of 0.
const MAX_AUTO_ARCHIVE: u32 = 30 * 24 * 60;

/// A mount path for a volume: absolute, normalised, not `/` and not under the machine's
/// read-only mounts or the sandbox's kernel file systems.
fn volume_mount_path(state: &Shared, path: &str) -> Result<String, Failure> {
    if !path.starts_with('/') || path.contains(':') {
        return Err(Failure::bad_request(format!(
            "volume mountPath must be absolute, without ':': {path}"
        )));
    }
    let at = crate::container::layout::absolute(path);
    let layout = state.runtime.layout();
    let clash = at == "/"
        || layout.mounts.iter().any(|m| {
            at == m.at() || at.starts_with(&format!("{}/", m.at())) || m.at().starts_with(&at)
        })
        || layout.links.iter().any(|(n, _)| at == format!("/{n}"));
    if clash {
        return Err(Failure::bad_request(format!(
            "volume mountPath {path} is not allowed (it is / or under the sandbox's system folders)"
        )));
    }
    Ok(at)
}

/// Creates a sandbox: validates the request (an unknown snapshot or volume is a 404, options
/// this backend cannot honour are refused, never ignored), writes its folder and record, puts
/// a snapshot's files in place, and starts its container in the background.
pub async fn create_sandbox(state: &Shared, req: CreateSandbox) -> Result<Record, Failure> {
    let has_resources = req.cpu.is_some() || req.memory.is_some() || req.disk.is_some();
    if req.snapshot.is_some() && req.build_info.is_some() {
        return Err(Failure::bad_request(
            "Cannot specify both a snapshot and build info",
        ));
    }
    if req.snapshot.is_some() && has_resources {
        return Err(Failure::bad_request(
            "Cannot specify Sandbox resources when using a snapshot",
        ));
    }
    let allow_list = allow_list(req.network.network_allow_list.as_deref())?;
    let domain_list = domain_list(req.network.domain_allow_list.as_deref())?;
    lists_enforceable(state, allow_list.as_ref(), domain_list.as_ref())?;
    // Options with no meaning on one machine: refused, never ignored (Daytona's "not
    // supported" shape, as the routes of the same kind answer).
    let unsupported = [
        ("linkedSandbox", req.linked_sandbox.is_some()),
        (
            "secrets",
            req.secrets.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("kvm", req.kvm == Some(true)),
        (
            "outboundProxyUrl",
            req.outbound_proxy_url
                .as_deref()
                .is_some_and(|u| !u.trim().is_empty()),
        ),
    ];
    if let Some((option, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(Failure::bad_request(format!(
            "{option} is not supported by the embedded backend (forge local): use Daytona for it"
        ))
        .with_code("NOT_SUPPORTED"));
    }
    let snapshot = match req.snapshot.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(name) => {
            let snap = state
                .snapshots
                .get(name)
                .ok_or_else(|| crate::snapshots::not_found(name))?;
            if snap.state != forge_wire::SnapshotState::Active {
                return Err(Failure::bad_request(format!(
                    "Snapshot {name} is not active (state {:?})",
                    snap.state
                )));
            }
            Some(snap)
        }
    };
    // A declarative image with steps (the SDKs' `Image`): built first, as a snapshot the
    // sandbox starts from (its files and environment; the request's resources stay).
    let built = match req.build_info.as_ref() {
        Some(b) if crate::snapshots::has_steps(&b.dockerfile_content) => {
            Some(crate::snapshots::build_for_sandbox(state, b).await?)
        }
        _ => None,
    };
    let mut volumes = Vec::new();
    for v in req.volumes.clone().unwrap_or_default() {
        let vol = state
            .volumes
            .get(&v.volume_id)
            .ok_or_else(|| crate::volumes::not_found(&v.volume_id))?;
        let mount_path = volume_mount_path(state, &v.mount_path)?;
        if let Some(sub) = v.subpath.as_deref() {
            // `:` separates the runtime's mount table fields.
            if sub.split('/').any(|c| c == "..") || sub.contains(':') {
                return Err(Failure::bad_request(format!(
                    "invalid volume subpath {sub}"
                )));
            }
        }
        volumes.push(forge_wire::SandboxVolume {
            volume_id: vol.id,
            mount_path,
            subpath: v.subpath,
        });
    }
    let now = now_rfc3339();
    let id = new_uuid();
    let build_info = req.build_info.as_ref().map(|b| BuildInfo {
        dockerfile_content: Some(b.dockerfile_content.clone()),
        context_hashes: b.context_hashes.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        snapshot_ref: image_of(&b.dockerfile_content).unwrap_or_default(),
    });
    let name = req
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.clone());
    // A snapshot's environment first, the request's over it.
    let mut env = snapshot
        .as_ref()
        .or(built.as_ref())
        .map(|s| crate::snapshots::setup(state, &s.id).env)
        .unwrap_or_default();
    env.extend(req.env.clone());
    let (cpu, memory, disk) = match &snapshot {
        Some(s) => (s.cpu.max(1), s.mem.max(1), s.disk.max(1)),
        None => (
            req.cpu.unwrap_or(1),
            req.memory.unwrap_or(1),
            req.disk.unwrap_or(3),
        ),
    };
    let auto_archive = match req.auto_archive_interval {
        None => 10080,
        Some(0) => MAX_AUTO_ARCHIVE,
        Some(m) => m.min(MAX_AUTO_ARCHIVE),
    };
    let sandbox = Sandbox {
        id: id.clone(),
        organization_id: "local".into(),
        name,
        snapshot: snapshot.as_ref().map(|s| s.name.clone()),
        user: req.user.clone().unwrap_or_else(|| "daytona".into()),
        env,
        labels: req.labels.clone(),
        public: req.public.unwrap_or(false),
        network_block_all: req.network.network_block_all.unwrap_or(false),
        target: req.target.clone().unwrap_or_else(|| "local".into()),
        cpu: f64::from(cpu),
        gpu: f64::from(req.gpu.unwrap_or(0)),
        memory: f64::from(memory),
        disk: f64::from(disk),
        state: SandboxState::Started,
        desired_state: Some("started".into()),
        error_reason: None,
        recoverable: Some(false),
        auto_stop_interval: Some(f64::from(req.auto_stop_interval.unwrap_or(15))),
        auto_archive_interval: Some(f64::from(auto_archive)),
        auto_delete_interval: Some(f64::from(req.auto_delete_interval.unwrap_or(-1))),
        auto_pause_interval: Some(f64::from(req.auto_pause_interval.unwrap_or(0).max(0))),
        auto_destroy_at: req
            .ttl_minutes
            .filter(|t| *t > 0)
            .map(|t| crate::lifecycle::after_minutes(t as f64)),
        network_allow_list: allow_list,
        domain_allow_list: domain_list,
        volumes: Some(volumes),
        build_info,
        created_at: Some(now.clone()),
        updated_at: Some(now.clone()),
        last_activity_at: Some(now),
        sandbox_class: Some("container".into()),
        daemon_version: Some(concat!("forge-local/", env!("CARGO_PKG_VERSION")).into()),
        runner_id: Some("local".into()),
        toolbox_proxy_url: None,
        isolation: None,
        usage: None,
    };
    let rec = state
        .store
        .insert(Record {
            sandbox,
            preview_token: random_token(32),
            previews: std::collections::BTreeMap::default(),
            parent: None,
            stopped_at: None,
        })
        .await?;
    if let Some(s) = snapshot.as_ref().or(built.as_ref()) {
        if let Err(e) = crate::snapshots::place_files(state, &s.id, &id).await {
            let _ = state.store.remove(&id, false).await;
            return Err(e);
        }
        let mut used = s.clone();
        used.last_used_at = Some(now_rfc3339());
        let _ = state.snapshots.put(used);
    }
    start_soon(state, &rec);
    Ok(rec)
}

/// A sandbox the backend makes for its own work (a snapshot build), labelled so.
pub async fn create_internal(
    state: &Shared,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<Record, Failure> {
    let req = CreateSandbox {
        name: Some(name.to_string()),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cpu: Some(2),
        memory: Some(2),
        disk: Some(10),
        ..Default::default()
    };
    create_sandbox(state, req).await
}

/// Deletes a sandbox (its container stopped, its folder moved out); unknown ids are ignored.
pub async fn delete_internal(state: &Shared, id: &str) {
    // A start that waited for this turn finds no record afterwards.
    let _turn = state.runtime.turn(id).await;
    state.sessions.drop_sandbox(id).await;
    let nothing_left = state.runtime.stop(id, true).await;
    // Its processes stopped, its dev server's build caches are settled: kept for the next
    // sandbox of the same project (see `build_cache`).
    crate::build_cache::keep(state, id).await;
    state.previews.drop_sandbox(id).await;
    state.runtime.disk.forget(id);
    let _ = state.store.remove(id, nothing_left).await;
}

/// `GET /sandbox/{id}`, with what the sandbox uses (`usage`, an extension).
async fn get_one(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let mut s = render(&state, &rec);
    s.usage = Some(state.runtime.usage(&rec.sandbox.id).await);
    Ok(Json(s))
}

/// `GET /sandbox`: cursor paging (`cursor`, `limit` 1–200, default 100), the API's filters and
/// sort (see [`crate::listing`]). The cursor is the id of the last item of the previous page.
async fn list(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListSandboxesResponse>, Failure> {
    let q = query_pairs(query.as_deref());
    let limit = match query_get(&q, "limit") {
        None | Some("") => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| Failure::bad_request("limit must be an integer between 1 and 200"))?,
    };
    let cursor = query_get(&q, "cursor").filter(|c| !c.is_empty());
    let filters = crate::listing::filters(&q)?;
    let mut matching: Vec<Record> = state
        .store
        .all()
        .await
        .into_iter()
        .filter(|r| filters.iter().all(|f| f(r)))
        // The backend's own (snapshot builds) are not the caller's.
        .filter(|r| !r.sandbox.labels.contains_key("forge.snapshot.build"))
        .collect();
    crate::listing::sort(&q, &mut matching)?;
    let start = match cursor {
        None => 0,
        Some(c) => matching
            .iter()
            .position(|r| r.sandbox.id == c)
            .map(|i| i + 1)
            .ok_or_else(|| Failure::bad_request("invalid cursor"))?,
    };
    let page: Vec<Sandbox> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|r| render(&state, r))
        .collect();
    let next_cursor = if start + page.len() < matching.len() {
        page.last().map(|s| s.id.clone())
    } else {
        None
    };
    Ok(Json(ListSandboxesResponse {
        items: page,
        next_cursor,
    }))
}

async fn start(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let (old, rec) = start_sandbox(&state, &id).await?;
    Ok(Json(announce(&state, old, &rec)))
}

/// Starts a stopped, archived or errored sandbox (a new preview token, as Daytona does), or
/// resumes a paused one (its processes thawed, the same token). Returns its old state too.
pub async fn start_sandbox(state: &Shared, id: &str) -> Result<(SandboxState, Record), Failure> {
    let (id, _turn) = turn(state, id).await?;
    let id = id.as_str();
    let old = state_of(state, id).await?;
    if old == SandboxState::Paused {
        state.runtime.freeze(id, false).await?;
    }
    let rec = state
        .store
        .update(id, |rec| {
            match rec.sandbox.state {
                SandboxState::Started => return Ok(()),
                SandboxState::Paused => {}
                SandboxState::Stopped | SandboxState::Archived | SandboxState::Error => {
                    rec.preview_token = random_token(32);
                }
                other => {
                    return Err(Failure::conflict(format!(
                        "Sandbox is in state {other} and cannot be started"
                    )))
                }
            }
            rec.sandbox.state = SandboxState::Started;
            rec.sandbox.desired_state = Some("started".into());
            rec.sandbox.last_activity_at = Some(now_rfc3339());
            rec.sandbox.error_reason = None;
            rec.sandbox.recoverable = Some(false);
            rec.stopped_at = None;
            Ok(())
        })
        .await?;
    start_soon(state, &rec);
    Ok((old, rec))
}

async fn stop(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Sandbox>, Failure> {
    let force = query_flag(&query_pairs(query.as_deref()), "force");
    let (old, rec) = stop_sandbox(&state, &id, force).await?;
    Ok(Json(announce(&state, old, &rec)))
}

/// Stops a sandbox: SIGTERM to its processes (up to 2 s; `force`: SIGKILL at once), its
/// container ended, its sessions dropped. Returns its old state too (read in its turn).
pub async fn stop_sandbox(
    state: &Shared,
    id: &str,
    force: bool,
) -> Result<(SandboxState, Record), Failure> {
    let (id, _turn) = turn(state, id).await?;
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    match rec.sandbox.state {
        SandboxState::Started
        | SandboxState::Stopped
        | SandboxState::Error
        | SandboxState::Paused => {}
        other => {
            return Err(Failure::conflict(format!(
                "Sandbox is in state {other} and cannot be stopped"
            )))
        }
    }
    let sid = rec.sandbox.id.clone();
    if rec.sandbox.state == SandboxState::Paused {
        // Frozen processes cannot take a SIGTERM: thawed first, killed at once.
        let _ = state.runtime.freeze(&sid, false).await;
    }
    state.sessions.drop_sandbox(&sid).await;
    state
        .runtime
        .stop(&sid, force || rec.sandbox.state == SandboxState::Paused)
        .await;
    let old = rec.sandbox.state;
    state
        .store
        .update(&sid, |rec| {
            rec.sandbox.state = SandboxState::Stopped;
            rec.sandbox.desired_state = Some("stopped".into());
            if old != SandboxState::Stopped || rec.stopped_at.is_none() {
                rec.stopped_at = Some(now_rfc3339());
            }
            Ok(())
        })
        .await
        .map(|rec| (old, rec))
}

async fn pause(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let (old, rec) = pause_sandbox(&state, &id).await?;
    Ok(Json(announce(&state, old, &rec)))
}

/// Pauses a started sandbox: every process of it frozen (its cgroup's freezer), its files and
/// memory kept; `start` resumes it. Returns its old state too (read in its turn).
pub async fn pause_sandbox(state: &Shared, id: &str) -> Result<(SandboxState, Record), Failure> {
    let (id, _turn) = turn(state, id).await?;
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    match rec.sandbox.state {
        SandboxState::Started => {}
        SandboxState::Paused => return Ok((SandboxState::Paused, rec)),
        other => {
            return Err(Failure::conflict(format!(
                "Sandbox is in state {other} and cannot be paused"
            )))
        }
    }
    let sid = rec.sandbox.id.clone();
    state
        .runtime
        .ensure(&sid, &start_spec(state, &rec.sandbox))
        .await?;
    state.runtime.freeze(&sid, true).await?;
    state
        .store
        .update(&sid, |rec| {
            rec.sandbox.state = SandboxState::Paused;
            rec.sandbox.desired_state = Some("paused".into());
            Ok(())
        })
        .await
        .map(|rec| (SandboxState::Started, rec))
}

async fn archive(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let old = state_of(&state, &id).await?;
    let rec = archive_sandbox(&state, &id).await?;
    Ok(Json(announce(&state, old, &rec)))
}

/// Archives a stopped sandbox (its files kept).
pub async fn archive_sandbox(state: &Shared, id: &str) -> Result<Record, Failure> {
    state
        .store
        .update(id, |rec| match rec.sandbox.state {
            SandboxState::Stopped | SandboxState::Archived => {
                rec.sandbox.state = SandboxState::Archived;
                rec.sandbox.desired_state = Some("archived".into());
                Ok(())
            }
            other => Err(Failure::bad_request(format!(
                "Sandbox must be stopped before it can be archived (state: {other})"
            ))),
        })
        .await
}

async fn delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    Ok(Json(delete_sandbox(&state, &id).await?))
}

/// Deletes a sandbox: its container stopped, its folder moved out, its previews closed.
pub async fn delete_sandbox(state: &Shared, id: &str) -> Result<Sandbox, Failure> {
    let rec = state.store.get(id).await.ok_or_else(|| not_found(id))?;
    let sid = rec.sandbox.id.clone();
    if rec.sandbox.state == SandboxState::Paused {
        let _ = state.runtime.freeze(&sid, false).await;
    }
    delete_internal(state, &sid).await;
    let mut gone = render(state, &rec);
    gone.state = SandboxState::Destroyed;
    gone.desired_state = Some("destroyed".into());
    state.events.state(&gone, rec.sandbox.state);
    Ok(gone)
}

/// `POST /sandbox/{id}/recover`: a sandbox in a recoverable `error` (its container did not
/// start) is started again.
async fn recover(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let old = rec.sandbox.state;
    if old != SandboxState::Error {
        return Err(Failure::bad_request(format!(
            "Sandbox is in state {old} and cannot be recovered (only errored sandboxes can)"
        )));
    }
    if rec.sandbox.recoverable != Some(true) {
        return Err(Failure::bad_request(
            "Sandbox error is not recoverable and cannot be recovered",
        ));
    }
    let (old, rec) = start_sandbox(&state, &id).await?;
    Ok(Json(announce(&state, old, &rec)))
}

#[derive(serde::Deserialize, Default)]
struct NameBody {
    #[serde(default)]
    name: Option<String>,
}

/// `POST /sandbox/{id}/fork`: a new sandbox with a copy of this one's files (blocks shared
/// where the file system can), its resources, env and labels, started.
async fn fork(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Option<axum::Json<NameBody>>,
) -> Result<Json<Sandbox>, Failure> {
    let src = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let s = &src.sandbox;
    let req = CreateSandbox {
        name: body.and_then(|b| b.0.name).filter(|n| !n.trim().is_empty()),
        env: s.env.clone(),
        labels: s.labels.clone(),
        public: Some(s.public),
        cpu: Some(s.cpu as u32),
        memory: Some(s.memory as u32),
        disk: Some(s.disk as u32),
        network: forge_wire::UpdateNetworkSettings {
            network_block_all: Some(s.network_block_all),
            ..Default::default()
        },
        volumes: s.volumes.clone(),
        ..Default::default()
    };
    let rec = create_sandbox(&state, req).await?;
    let new_id = rec.sandbox.id.clone();
    let copied = {
        let (from, to) = (
            state.store.sandbox_dir(&src.sandbox.id).join("root"),
            state.store.sandbox_dir(&new_id).join("root"),
        );
        let entries: Vec<_> = crate::snapshots::own_entries(&state, &from);
        tokio::task::spawn_blocking(move || {
            for e in entries {
                crate::objects::copy_tree(&e, &to.join(e.file_name().unwrap_or_default()))?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
    };
    if let Err(e) = copied {
        let _ = delete_sandbox(&state, &new_id).await;
        return Err(Failure::internal(format!(
            "cannot copy the sandbox's files: {e}"
        )));
    }
    let rec = state
        .store
        .update(&new_id, |r| {
            r.parent = Some(src.sandbox.id.clone());
            Ok(())
        })
        .await?;
    let shown = render(&state, &rec);
    state.events.created(&shown);
    Ok(Json(shown))
}

/// `POST /sandbox/{id}/snapshot {name}`: a snapshot of this sandbox's files.
async fn snapshot(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NameBody>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let name = body
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Failure::bad_request("name is required"))?;
    let now = now_rfc3339();
    let snap = forge_wire::Snapshot {
        id: new_uuid(),
        organization_id: "local".into(),
        name: name.clone(),
        state: forge_wire::SnapshotState::Snapshotting,
        cpu: rec.sandbox.cpu as u32,
        gpu: rec.sandbox.gpu as u32,
        mem: rec.sandbox.memory as u32,
        disk: rec.sandbox.disk as u32,
        created_at: now.clone(),
        updated_at: now,
        reference: Some(name.clone()),
        source_sandbox_id: Some(rec.sandbox.id.clone()),
        ..Default::default()
    };
    let added = state
        .snapshots
        .insert_new(snap.clone())
        .map_err(|e| Failure::internal(format!("cannot write snapshot record: {e}")))?;
    if !added {
        return Err(Failure::conflict(format!(
            "Snapshot with name {name} already exists"
        )));
    }
    let kept = crate::snapshots::keep_files(&state, &rec.sandbox.id, &snap.id).await;
    let mut done = snap;
    done.updated_at = now_rfc3339();
    match kept {
        Ok(()) => done.state = forge_wire::SnapshotState::Active,
        Err(e) => {
            done.state = forge_wire::SnapshotState::Error;
            done.error_reason = Some(e);
        }
    }
    let _ = state.snapshots.put(done.clone());
    if let Some(reason) = done.error_reason {
        return Err(Failure::internal(reason));
    }
    Ok(Json(render(&state, &rec)))
}

/// A `domainAllowList` checked and normalised (`None`: no list).
fn domain_list(list: Option<&str>) -> Result<Option<String>, Failure> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let parsed = crate::container::domains::parse(list).map_err(Failure::bad_request)?;
    Ok(Some(crate::container::domains::render(&parsed)))
}

/// The parsed domain list a sandbox has (empty: none).
pub(crate) fn domains_of(s: &Sandbox) -> Vec<crate::container::domains::Pattern> {
    s.domain_allow_list
        .as_deref()
        .and_then(|l| crate::container::domains::parse(l).ok())
        .unwrap_or_default()
}

/// Both lists at once are refused: with a domain list the sandbox has no route out at all
/// (everything goes through the backend's proxies), so addresses could not be allowed too.
/// A domain list needs the sandbox's own network namespace.
fn lists_enforceable(
    state: &Shared,
    addresses: Option<&String>,
    domains: Option<&String>,
) -> Result<(), Failure> {
    if addresses.is_some() && domains.is_some() {
        return Err(Failure::bad_request(
            "networkAllowList and domainAllowList together are not supported by the embedded backend (a domain list sends everything through its proxies): use one",
        ));
    }
    if domains.is_some() && !state.runtime.confines_network() {
        return Err(Failure::bad_request(
            "domainAllowList needs sandboxes in their own network namespace (containers), which this backend does not have here",
        ));
    }
    Ok(())
}

/// A `networkAllowList` checked and normalised (`None`: no list).
fn allow_list(list: Option<&str>) -> Result<Option<String>, Failure> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let parsed = crate::container::net::parse_allow_list(list).map_err(Failure::bad_request)?;
    Ok(Some(
        parsed
            .iter()
            .map(|(a, l)| format!("{a}/{l}"))
            .collect::<Vec<_>>()
            .join(","),
    ))
}

/// The parsed allow list a sandbox has (empty: none).
pub(crate) fn allowed(s: &Sandbox) -> Vec<(std::net::Ipv4Addr, u8)> {
    s.network_allow_list
        .as_deref()
        .and_then(|l| crate::container::net::parse_allow_list(l).ok())
        .unwrap_or_default()
}

/// `POST /sandbox/{id}/network-settings`: `networkBlockAll`, `networkAllowList` and
/// `domainAllowList` are enforced at once on a running sandbox (its network detached or
/// attached again; its routes narrowed to the listed addresses in its own network namespace;
/// the backend's resolver and proxies put in it), at its next start otherwise. An empty list
/// lifts it.
async fn network_settings(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<forge_wire::UpdateNetworkSettings>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let list = match &body.network_allow_list {
        Some(l) => allow_list(Some(l))?,
        None => rec.sandbox.network_allow_list.clone(),
    };
    let domains = match &body.domain_allow_list {
        Some(l) => domain_list(Some(l))?,
        None => rec.sandbox.domain_allow_list.clone(),
    };
    lists_enforceable(&state, list.as_ref(), domains.as_ref())?;
    let (was_blocked, before, domains_before) = (
        rec.sandbox.network_block_all,
        rec.sandbox.network_allow_list.clone(),
        rec.sandbox.domain_allow_list.clone(),
    );
    let block = body.network_block_all.unwrap_or(was_blocked);
    // Whether the network tool is attached (the sandbox routes out by itself) before and after.
    let (was, now) = (
        !was_blocked && domains_before.is_none(),
        !block && domains.is_none(),
    );
    let id = rec.sandbox.id.clone();
    if was && !now {
        state.runtime.set_network(&id, false)?;
    }
    // The proxies serve while the sandbox is not blocked and has a domain list.
    let serving = |b: bool, d: &Option<String>| (!b).then(|| d.clone()).flatten();
    let (served, serve) = (
        serving(was_blocked, &domains_before),
        serving(block, &domains),
    );
    if served != serve {
        let parsed = serve
            .as_deref()
            .and_then(|l| crate::container::domains::parse(l).ok())
            .unwrap_or_default();
        state.runtime.set_domains(&id, &parsed).await?;
    }
    if !was && now {
        state.runtime.set_network(&id, true)?;
    }
    let rec = state
        .store
        .update(&id, |r| {
            r.sandbox.network_block_all = block;
            r.sandbox.network_allow_list.clone_from(&list);
            r.sandbox.domain_allow_list.clone_from(&domains);
            Ok(())
        })
        .await?;
    // Attached again, the network tool routes everything: the list goes back on.
    if now && (list != before || (!was && list.is_some())) {
        state
            .runtime
            .set_allow_list(&rec.sandbox.id, &allowed(&rec.sandbox))
            .await?;
    }
    Ok(Json(render(&state, &rec)))
}

/// `POST /sandbox/{id}/public/{isPublic}`.
async fn set_public(
    State(state): State<Shared>,
    Path((id, public)): Path<(String, String)>,
) -> Result<Json<Sandbox>, Failure> {
    let public = match public.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(Failure::bad_request("isPublic must be true or false")),
    };
    let rec = state
        .store
        .update(&id, |r| {
            r.sandbox.public = public;
            Ok(())
        })
        .await?;
    Ok(Json(render(&state, &rec)))
}

/// `POST /sandbox/{id}/ttl/{minutes}`: deleted that many minutes from now (0: no TTL).
async fn set_ttl(
    State(state): State<Shared>,
    Path((id, minutes)): Path<(String, String)>,
) -> Result<Json<Sandbox>, Failure> {
    let minutes: f64 = minutes
        .parse()
        .ok()
        .filter(|m: &f64| *m >= 0.0)
        .ok_or_else(|| Failure::bad_request("ttl must be a non-negative number of minutes"))?;
    let rec = state
        .store
        .update(&id, |r| {
            r.sandbox.auto_destroy_at =
                (minutes > 0.0).then(|| crate::lifecycle::after_minutes(minutes));
            Ok(())
        })
        .await?;
    Ok(Json(render(&state, &rec)))
}

/// Routes the official SDKs call that mean nothing on one machine: Daytona's 400 with a
/// message, never a 200 (ssh access, secrets, warm pools, signing keys, telemetry).
async fn not_supported(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> Failure {
    Failure::bad_request(format!(
        "{} is not supported by the embedded backend (forge local): use Daytona for it",
        uri.path()
    ))
    .with_code("NOT_SUPPORTED")
}

/// The sandbox's id (from its id or name) and its lifecycle turn ([`Runtime::turn`]), held
/// by the caller until its change is written.
///
/// [`Runtime::turn`]: crate::container::Runtime::turn
async fn turn(
    state: &Shared,
    id_or_name: &str,
) -> Result<(String, tokio::sync::OwnedMutexGuard<()>), Failure> {
    let id = state
        .store
        .get(id_or_name)
        .await
        .ok_or_else(|| not_found(id_or_name))?
        .sandbox
        .id;
    let turn = state.runtime.turn(&id).await;
    Ok((id, turn))
}

/// The state a sandbox is in now (404 when unknown).
async fn state_of(state: &Shared, id: &str) -> Result<SandboxState, Failure> {
    Ok(state
        .store
        .get(id)
        .await
        .ok_or_else(|| not_found(id))?
        .sandbox
        .state)
}

/// The sandbox as the wire shows it, its state change (from `old`) sent to event listeners.
fn announce(state: &Shared, old: SandboxState, rec: &Record) -> Sandbox {
    let shown = render(state, rec);
    state.events.state(&shown, old);
    shown
}

#[derive(serde::Deserialize)]
struct LabelsBody {
    labels: StringMap,
}

async fn set_labels(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LabelsBody>,
) -> Result<Response, Failure> {
    let rec = state
        .store
        .update(&id, |rec| {
            rec.sandbox.labels = body.labels;
            Ok(())
        })
        .await?;
    Ok(Json(serde_json::json!({ "labels": rec.sandbox.labels })).into_response())
}

/// `POST /sandbox/{id}/autostop|autopause|autoarchive|autodelete/{minutes}`, enforced by the
/// sandboxes' timers (`crate::lifecycle`); an auto-archive interval of 0 is the maximum. As in
/// Daytona, at most one of auto-stop and auto-pause is non-zero: setting one while the other is
/// on is a 400 (the SDKs tell their users to turn the other off first).
async fn set_interval(
    State(state): State<Shared>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path((id, interval)): Path<(String, String)>,
) -> Result<Json<Sandbox>, Failure> {
    let minutes: i64 = interval
        .parse()
        .map_err(|_| Failure::bad_request("interval must be an integer (minutes)"))?;
    let kind = uri.path().rsplit('/').nth(1).unwrap_or("").to_string();
    let rec = state
        .store
        .update(&id, |rec| {
            let s = &mut rec.sandbox;
            match kind.as_str() {
                "autostop" | "autopause" if minutes >= 0 => {
                    let (this, other, other_name) = if kind == "autostop" {
                        (&mut s.auto_stop_interval, s.auto_pause_interval, "auto-pause")
                    } else {
                        (&mut s.auto_pause_interval, s.auto_stop_interval, "auto-stop")
                    };
                    if minutes > 0 && other.unwrap_or(0.0) > 0.0 {
                        return Err(Failure::bad_request(format!(
                            "at most one of auto-stop and auto-pause may be non-zero: set the {other_name} interval to 0 first"
                        )));
                    }
                    *this = Some(minutes as f64);
                }
                "autoarchive" if minutes >= 0 => {
                    let m = if minutes == 0 {
                        MAX_AUTO_ARCHIVE
                    } else {
                        (minutes as u32).min(MAX_AUTO_ARCHIVE)
                    };
                    s.auto_archive_interval = Some(f64::from(m));
                }
                "autodelete" => s.auto_delete_interval = Some(minutes as f64),
                _ => return Err(Failure::bad_request("interval must not be negative")),
            }
            Ok(())
        })
        .await?;
    Ok(Json(render(&state, &rec)))
}

#[derive(serde::Deserialize)]
struct ResizeBody {
    cpu: Option<u32>,
    memory: Option<u32>,
    disk: Option<u32>,
}

/// `POST /sandbox/{id}/resize`, with Daytona's rules: a started sandbox only grows its CPU and
/// memory (a hot resize), disk needs a stopped sandbox and only grows, other states refuse it.
/// The new limits apply from the sandbox's next start.
async fn resize(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ResizeBody>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state
        .store
        .update(&id, |rec| {
            let s = &mut rec.sandbox;
            if [body.cpu, body.memory, body.disk] == [None; 3] {
                return Err(Failure::bad_request("resize needs cpu, memory or disk"));
            }
            if [body.cpu, body.memory, body.disk].contains(&Some(0)) {
                return Err(Failure::bad_request("resources must be at least 1"));
            }
            let shrinks = |new: Option<u32>, old: f64| new.is_some_and(|n| f64::from(n) < old);
            let refusal = match s.state {
                SandboxState::Started if body.disk.is_some() => {
                    Some("disk can only be resized while the sandbox is stopped")
                }
                SandboxState::Started
                    if shrinks(body.cpu, s.cpu) || shrinks(body.memory, s.memory) =>
                {
                    Some("a started sandbox can only increase its cpu and memory: stop it first")
                }
                SandboxState::Started | SandboxState::Stopped => None,
                _ => Some("only a started or stopped sandbox can be resized"),
            };
            if let Some(message) = refusal {
                return Err(Failure::bad_request(message));
            }
            if shrinks(body.disk, s.disk) {
                return Err(Failure::bad_request("disk size can only be increased"));
            }
            if let Some(c) = body.cpu {
                s.cpu = f64::from(c);
            }
            if let Some(m) = body.memory {
                s.memory = f64::from(m);
            }
            if let Some(d) = body.disk {
                s.disk = f64::from(d);
            }
            Ok(())
        })
        .await?;
    Ok(Json(render(&state, &rec)))
}

/// `POST /sandbox/{id}/last-activity`.
async fn last_activity(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, Failure> {
    state
        .store
        .update(&id, |rec| {
            rec.sandbox.last_activity_at = Some(now_rfc3339());
            Ok(())
        })
        .await?;
    Ok(axum::http::StatusCode::CREATED)
}

async fn toolbox_proxy_url(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ToolboxProxyUrl>, Failure> {
    state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    Ok(Json(ToolboxProxyUrl {
        url: format!("{}/toolbox", state.base_url),
    }))
}

/// `GET /sandbox/{id}/ports/{port}/preview-url`: the URL of the sandbox port's preview proxy
/// listener (started on first use, see [`crate::preview`]) and the sandbox's preview token.
async fn preview_url(
    State(state): State<Shared>,
    Path((id, port)): Path<(String, String)>,
) -> Result<Json<PortPreviewUrl>, Failure> {
    let port = crate::signed::port_of(&port)?;
    let (rec, url) = state.previews.open(&state, &id, port).await?;
    Ok(Json(PortPreviewUrl {
        sandbox_id: rec.sandbox.id.clone(),
        url,
        token: rec.preview_token.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::{create_internal, image_of, start_sandbox, start_spec, stop_sandbox};
    use crate::{LocalBackend, LocalConfig};
    use forge_wire::SandboxState;

    /// A backend in its own home (kept alive by the returned folder) and one sandbox in it,
    /// its container running: its id and how it is started.
    async fn running(
        name: &str,
    ) -> (
        tempfile::TempDir,
        LocalBackend,
        String,
        crate::container::Start,
    ) {
        let home = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::start(LocalConfig {
            home: Some(home.path().to_path_buf()),
            api_key: Some("test-key".into()),
            bind: None,
            stop_sandboxes_on_exit: true,
            ..Default::default()
        })
        .await
        .expect("backend starts");
        let state = &backend.state;
        let rec = create_internal(state, name, &[]).await.expect("created");
        let id = rec.sandbox.id.clone();
        let spec = start_spec(state, &rec.sandbox);
        state.runtime.ensure(&id, &spec).await.expect("it starts");
        (home, backend, id, spec)
    }

    /// A start that reaches the sandbox's gate after a stop (the create's background start,
    /// or a command, preview or pause that read the sandbox as started just before the stop)
    /// does not bring its container back; the next create or start does. Over HTTP the start
    /// task nearly always reaches the gate first, so the late order is made here directly:
    /// the runtime's stop, then the start that read `started` before it.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_start_that_comes_after_a_stop_does_not_run_the_sandbox() {
        let (_home, backend, id, spec) = running("gate").await;
        let state = backend.state.clone();

        // The stop's runtime half; its record still says `started`, as the late start read.
        assert!(state.runtime.stop(&id, true).await);
        let Err(err) = state.runtime.ensure(&id, &spec).await else {
            panic!("a start after the stop must not run the sandbox again");
        };
        assert_eq!(err.status.as_u16(), 409, "{}", err.message);
        assert!(err.message.contains("was stopped"), "{}", err.message);
        assert!(state.runtime.running(&id).is_none());

        // The whole stop, then a start: it runs again.
        let (_, rec) = stop_sandbox(&state, &id, true).await.expect("stopped");
        assert_eq!(rec.sandbox.state, SandboxState::Stopped);
        start_sandbox(&state, &id).await.expect("started");
        state
            .runtime
            .ensure(&id, &spec)
            .await
            .expect("a started sandbox runs");
        backend.shutdown().await;
    }

    /// A start sent while a stop is under way waits for it, then starts the sandbox again:
    /// the record and the container agree. Without the turn, the start read the record the
    /// stop had not written yet (`started`: nothing to change), let the container start again
    /// after the stop ended it, and the stop then wrote `stopped` over a running container.
    /// The stop is taken apart here as `stop_sandbox` does it (the turn, the runtime's stop,
    /// the record) so that the start comes between its halves.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_start_during_a_stop_waits_for_it() {
        let (_home, backend, id, spec) = running("turn").await;
        let state = backend.state.clone();

        let turn = state.runtime.turn(&id).await;
        assert!(state.runtime.stop(&id, true).await);
        let start = tokio::spawn({
            let (state, id) = (state.clone(), id.clone());
            async move { start_sandbox(&state, &id).await.map(|(_, rec)| rec) }
        });
        // Time for the start to run if nothing holds it (it needs no lock the test holds but
        // the turn, and writes its record in milliseconds). With the turn it cannot finish:
        // this bound only decides how surely a build without it is caught, never whether
        // this one passes.
        for _ in 0..200 {
            if start.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            !start.is_finished(),
            "the start must wait for the stop under way"
        );
        state
            .store
            .update(&id, |rec| {
                rec.sandbox.state = SandboxState::Stopped;
                Ok(())
            })
            .await
            .expect("the stop's record");
        drop(turn);

        let rec = start
            .await
            .expect("joined")
            .expect("started after the stop");
        assert_eq!(rec.sandbox.state, SandboxState::Started);
        // The start's container task, waited for through the container's own lock.
        state
            .runtime
            .ensure(&id, &spec)
            .await
            .expect("a started sandbox runs");
        let rec = state.store.get(&id).await.expect("still there");
        assert_eq!(
            rec.sandbox.state,
            SandboxState::Started,
            "the record says what the container does"
        );
        backend.shutdown().await;
    }

    #[test]
    fn image_is_read_from_the_dockerfile() {
        assert_eq!(image_of("FROM node:22\n").as_deref(), Some("node:22"));
        assert_eq!(
            image_of("from --platform=linux/amd64 python:3.12\nRUN x").as_deref(),
            Some("python:3.12")
        );
        assert_eq!(image_of("RUN x"), None);
    }
}

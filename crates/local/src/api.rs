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
/// command that comes sooner waits for the same start).
fn start_soon(state: &Shared, rec: &Record) {
    let state = state.clone();
    let id = rec.sandbox.id.clone();
    let limits = crate::toolbox::limits_of(&rec.sandbox);
    tokio::spawn(async move {
        if let Err(e) = state.runtime.ensure(&id, limits).await {
            tracing::warn!("{}", e.message);
        }
    });
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
    let sandbox = Sandbox {
        id: id.clone(),
        organization_id: "local".into(),
        name,
        snapshot: req.snapshot.clone(),
        user: req.user.clone().unwrap_or_else(|| "daytona".into()),
        env: req.env.clone(),
        labels: req.labels.clone(),
        public: req.public.unwrap_or(false),
        network_block_all: req.network_block_all.unwrap_or(false),
        target: req.target.clone().unwrap_or_else(|| "local".into()),
        cpu: req.cpu.unwrap_or(1) as f64,
        gpu: req.gpu.unwrap_or(0) as f64,
        memory: req.memory.unwrap_or(1) as f64,
        disk: req.disk.unwrap_or(3) as f64,
        state: SandboxState::Started,
        desired_state: Some("started".into()),
        error_reason: None,
        recoverable: Some(false),
        auto_stop_interval: Some(req.auto_stop_interval.unwrap_or(15) as f64),
        auto_archive_interval: Some(req.auto_archive_interval.unwrap_or(10080) as f64),
        auto_delete_interval: Some(req.auto_delete_interval.unwrap_or(-1) as f64),
        volumes: Some(req.volumes.clone().unwrap_or_default()),
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
            previews: Default::default(),
        })
        .await?;
    start_soon(&state, &rec);
    let shown = render(&state, &rec);
    state.events.created(&shown);
    Ok(Json(shown))
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
    let old = state_of(&state, &id).await?;
    let rec = state
        .store
        .update(&id, |rec| {
            match rec.sandbox.state {
                SandboxState::Started => return Ok(()),
                SandboxState::Stopped | SandboxState::Archived | SandboxState::Error => {}
                other => {
                    return Err(Failure::conflict(format!(
                        "Sandbox is in state {other} and cannot be started"
                    )))
                }
            }
            rec.sandbox.state = SandboxState::Started;
            rec.sandbox.desired_state = Some("started".into());
            rec.sandbox.last_activity_at = Some(now_rfc3339());
            // A new preview token on every start, as Daytona does.
            rec.preview_token = random_token(32);
            Ok(())
        })
        .await?;
    start_soon(&state, &rec);
    Ok(Json(announce(&state, old, &rec)))
}

async fn stop(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Sandbox>, Failure> {
    let force = query_flag(&query_pairs(query.as_deref()), "force");
    let old = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let rec = &old;
    match rec.sandbox.state {
        SandboxState::Started | SandboxState::Stopped | SandboxState::Error => {}
        other => {
            return Err(Failure::conflict(format!(
                "Sandbox is in state {other} and cannot be stopped"
            )))
        }
    }
    let sid = rec.sandbox.id.clone();
    state.sessions.drop_sandbox(&sid).await;
    state.runtime.stop(&sid, force).await;
    let rec = state
        .store
        .update(&sid, |rec| {
            rec.sandbox.state = SandboxState::Stopped;
            rec.sandbox.desired_state = Some("stopped".into());
            Ok(())
        })
        .await?;
    Ok(Json(announce(&state, old.sandbox.state, &rec)))
}

async fn archive(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let old = state_of(&state, &id).await?;
    let rec = state
        .store
        .update(&id, |rec| match rec.sandbox.state {
            SandboxState::Stopped | SandboxState::Archived => {
                rec.sandbox.state = SandboxState::Archived;
                rec.sandbox.desired_state = Some("archived".into());
                Ok(())
            }
            other => Err(Failure::bad_request(format!(
                "Sandbox must be stopped before it can be archived (state: {other})"
            ))),
        })
        .await?;
    Ok(Json(announce(&state, old, &rec)))
}

async fn delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let sid = rec.sandbox.id.clone();
    state.sessions.drop_sandbox(&sid).await;
    let nothing_left = state.runtime.stop(&sid, true).await;
    state.previews.drop_sandbox(&sid).await;
    state.store.remove(&sid, nothing_left).await?;
    let mut gone = render(&state, &rec);
    gone.state = SandboxState::Destroyed;
    gone.desired_state = Some("destroyed".into());
    state.events.state(&gone, rec.sandbox.state);
    Ok(Json(gone))
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

/// `POST /sandbox/{id}/autostop|autoarchive|autodelete/{minutes}`: recorded (the local
/// backend never stops, archives or deletes a sandbox on its own).
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
                "autostop" if minutes >= 0 => s.auto_stop_interval = Some(minutes as f64),
                "autoarchive" if minutes >= 0 => s.auto_archive_interval = Some(minutes as f64),
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

/// `POST /sandbox/{id}/resize`: recorded (no limits are enforced here); disk only grows.
async fn resize(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ResizeBody>,
) -> Result<Json<Sandbox>, Failure> {
    let rec = state
        .store
        .update(&id, |rec| {
            let s = &mut rec.sandbox;
            if [body.cpu, body.memory, body.disk].contains(&Some(0)) {
                return Err(Failure::bad_request("resources must be at least 1"));
            }
            if body.disk.is_some_and(|d| (d as f64) < s.disk) {
                return Err(Failure::bad_request("disk size can only be increased"));
            }
            if let Some(c) = body.cpu {
                s.cpu = c as f64;
            }
            if let Some(m) = body.memory {
                s.memory = m as f64;
            }
            if let Some(d) = body.disk {
                s.disk = d as f64;
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
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| Failure::bad_request("port must be between 1 and 65535"))?;
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    let url = state
        .previews
        .url_for(&state, &rec.sandbox.id, port)
        .await
        .map_err(|e| Failure::internal(format!("cannot open the preview listener: {e}")))?;
    Ok(Json(PortPreviewUrl {
        sandbox_id: rec.sandbox.id.clone(),
        url,
        token: rec.preview_token.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::image_of;

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

//! Snapshots (`/api/snapshots`): named starting points for new sandboxes.
//!
//! There are no images here (every sandbox has this machine's toolchain), so a snapshot is
//! files: what a sandbox had in its own folder (`/home`, and anything it made outside the
//! toolchain's read-only mounts), kept in `<home>/snapshots/<id>/files` and copied into each
//! sandbox made from it (blocks shared where the file system can), plus the environment and
//! work dir a build set. A snapshot is made
//! - from an image name: recorded, no files (the machine's toolchain is the image), `active`
//!   at once;
//! - from a declarative image (`buildInfo.dockerfileContent`, what the SDKs' `Image` builder
//!   sends): its `RUN`, `ENV`, `WORKDIR` steps run in a fresh sandbox over the machine's
//!   toolchain (package managers reach their registries), as the sandbox's user, the output
//!   kept as the build log; the result's files are the snapshot. `COPY`/`ADD` take their
//!   sources from the contexts the SDK uploaded (`buildInfo.contextHashes`, see
//!   [`crate::object_storage`]), unpacked and copied by the sandbox's own `tar` and `cp`;
//! - from a sandbox (`POST /sandbox/{id}/snapshot`): a copy of its files.
//!
//! A sandbox created with an unknown snapshot name is a 404, never a silent success.

use crate::container::process::{Output, Spec};
use crate::error::{now_rfc3339, Failure};
use crate::objects::{copy_tree, Objects};
use crate::util::{new_uuid, query_get, query_pairs, JsonBody};
use crate::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{BuildInfo, CreateSnapshot, PaginatedSnapshots, Snapshot, SnapshotState};
use std::path::PathBuf;

/// What a built snapshot adds to the sandboxes made from it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    pub env: forge_wire::StringMap,
    pub workdir: Option<String>,
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/snapshots", post(create).get(list))
        .route("/snapshots/{id}", get(get_one).delete(remove))
        .route("/snapshots/{id}/activate", post(activate))
        .route("/snapshots/{id}/deactivate", post(deactivate))
        .route("/snapshots/{id}/build-logs-url", get(build_logs_url))
        .route("/snapshots/{id}/build-logs", get(build_logs))
}

/// The 404 of an unknown snapshot, worded as the API's.
pub fn not_found(name: &str) -> Failure {
    Failure::not_found(format!("Snapshot {name} not found"))
}

fn objects(state: &Shared) -> &Objects<Snapshot> {
    &state.snapshots
}

/// The files folder of a snapshot.
pub fn files(state: &Shared, id: &str) -> PathBuf {
    objects(state).folder(id).join("files")
}

fn log_path(state: &Shared, id: &str) -> PathBuf {
    objects(state).folder(id).join("build.log")
}

/// What a built snapshot sets for its sandboxes.
pub fn setup(state: &Shared, id: &str) -> Setup {
    std::fs::read(objects(state).folder(id).join("setup.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn persist(state: &Shared, s: &Snapshot) -> Result<(), Failure> {
    objects(state)
        .put(s.clone())
        .map_err(|e| Failure::internal(format!("cannot write snapshot record: {e}")))
}

async fn create(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<CreateSnapshot>,
) -> Result<Json<Snapshot>, Failure> {
    start(&state, req).map(Json)
}

/// Records a new snapshot and, for a declarative image, starts its build in the background
/// (not `async`: a build creates a sandbox, which may build an image, which comes here).
fn start(state: &Shared, req: CreateSnapshot) -> Result<Snapshot, Failure> {
    let name = req.name.trim().to_string();
    if name.is_empty() {
        return Err(Failure::bad_request("name is required"));
    }
    if req.image_name.is_none() && req.build_info.is_none() {
        return Err(Failure::bad_request("imageName or buildInfo is required"));
    }
    let now = now_rfc3339();
    let building = req.build_info.is_some();
    let snap = Snapshot {
        id: new_uuid(),
        organization_id: "local".into(),
        name: name.clone(),
        image_name: req.image_name.clone(),
        state: if building {
            SnapshotState::Building
        } else {
            SnapshotState::Active
        },
        entrypoint: req.entrypoint.clone(),
        cpu: req.cpu.unwrap_or(1),
        gpu: req.gpu.unwrap_or(0),
        mem: req.memory.unwrap_or(1),
        disk: req.disk.unwrap_or(3),
        created_at: now.clone(),
        updated_at: now.clone(),
        build_info: req.build_info.as_ref().map(|b| BuildInfo {
            dockerfile_content: Some(b.dockerfile_content.clone()),
            context_hashes: b.context_hashes.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
            snapshot_ref: name.clone(),
        }),
        reference: Some(req.image_name.clone().unwrap_or_else(|| name.clone())),
        ..Default::default()
    };
    let added = objects(state)
        .insert_new(snap.clone())
        .map_err(|e| Failure::internal(format!("cannot write snapshot record: {e}")))?;
    if !added {
        return Err(Failure::conflict(format!(
            "Snapshot with name {name} already exists"
        )));
    }
    let _ = std::fs::create_dir_all(files(state, &snap.id));
    if let Some(b) = req.build_info {
        let (state2, snap2) = (state.clone(), snap.clone());
        tokio::spawn(async move { build(state2, snap2, b.dockerfile_content).await });
    }
    Ok(snap)
}

/// True when a Dockerfile does more than name its base image (the SDKs send an image name
/// as `FROM <image>` alone, which has nothing to build here).
pub fn has_steps(dockerfile: &str) -> bool {
    instructions(dockerfile)
        .iter()
        .any(|(kw, _)| matches!(kw.as_str(), "RUN" | "COPY" | "ADD" | "ENV" | "WORKDIR"))
}

/// The snapshot a sandbox created from a declarative image starts from: built now (the
/// create answers when it is), or the one an earlier sandbox of the same Dockerfile and
/// contexts built. Named `forge-build-<hash>`, as Daytona names such builds by their content.
pub async fn build_for_sandbox(
    state: &Shared,
    info: &forge_wire::CreateBuildInfo,
) -> Result<Snapshot, Failure> {
    let name = build_name(&info.dockerfile_content, info.context_hashes.as_deref());
    // A failed build of the same content is built again.
    if let Some(old) = objects(state).get(&name) {
        if old.state == SnapshotState::BuildFailed {
            let _ = objects(state).remove(&old.id);
        }
    }
    let made = start(
        state,
        CreateSnapshot {
            name: name.clone(),
            build_info: Some(info.clone()),
            ..Default::default()
        },
    );
    if let Err(e) = made {
        if e.status != StatusCode::CONFLICT {
            return Err(e);
        }
    }
    // Built by this create or by another one of the same image: wait for it to settle.
    loop {
        let snap = objects(state).get(&name).ok_or_else(|| not_found(&name))?;
        match snap.state {
            SnapshotState::Active => return Ok(snap),
            SnapshotState::BuildFailed => {
                return Err(Failure::bad_request(format!(
                    "the image build failed: {}",
                    snap.error_reason.unwrap_or_default()
                )))
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// The name of the snapshot a declarative image (a Dockerfile and its contexts) is built as.
fn build_name(dockerfile: &str, context_hashes: Option<&[String]>) -> String {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    hash.update(dockerfile.as_bytes());
    for h in context_hashes.into_iter().flatten() {
        hash.update(b"\0");
        hash.update(h.as_bytes());
    }
    let digest: String = hash
        .finish()
        .as_ref()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("forge-build-{digest}")
}

/// The snapshot a sandbox's declarative image was built as (`None`: it was not built, or that
/// snapshot was deleted since).
pub fn built_for(state: &Shared, sandbox: &forge_wire::Sandbox) -> Option<Snapshot> {
    let info = sandbox.build_info.as_ref()?;
    let dockerfile = info
        .dockerfile_content
        .as_deref()
        .filter(|d| has_steps(d))?;
    objects(state).get(&build_name(dockerfile, info.context_hashes.as_deref()))
}

/// The snapshot of a sandbox's build, or the 404 saying it has none.
async fn sandbox_build(state: &Shared, id: &str) -> Result<Snapshot, Failure> {
    let rec = state
        .store
        .get(id)
        .await
        .ok_or_else(|| crate::store::not_found(id))?;
    built_for(state, &rec.sandbox).ok_or_else(|| {
        Failure::not_found(format!(
            "Sandbox {id} has no build logs: it was not built from a declarative image"
        ))
    })
}

/// `GET /sandbox/{id}/build-logs-url`: for a sandbox created from a declarative image, the URL
/// of its image build's logs (those of the snapshot it was built as); a 404 for the others.
pub async fn sandbox_build_logs_url(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Failure> {
    let snap = sandbox_build(&state, &id).await?;
    build_logs_url(State(state), Path(snap.id)).await
}

/// `GET /sandbox/{id}/build-logs[?follow=true]`: the same logs, directly.
pub async fn sandbox_build_logs(
    State(state): State<Shared>,
    Path(id): Path<String>,
    query: RawQuery,
) -> Result<Response, Failure> {
    let snap = sandbox_build(&state, &id).await?;
    build_logs(State(state), Path(snap.id), query).await
}

/// `GET /snapshots?page=&limit=&name=&sort=&order=`.
async fn list(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<PaginatedSnapshots>, Failure> {
    let q = query_pairs(query.as_deref());
    let num = |k: &str, d: u64| -> Result<u64, Failure> {
        match query_get(&q, k) {
            None | Some("") => Ok(d),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Failure::bad_request(format!("{k} must be a positive integer"))),
        }
    };
    let (page, limit) = (num("page", 1)?, num("limit", 100)?.min(200));
    let name = query_get(&q, "name").unwrap_or("").to_lowercase();
    let mut all: Vec<Snapshot> = objects(&state)
        .all()
        .into_iter()
        .filter(|s| s.name.to_lowercase().contains(&name))
        .collect();
    let desc = query_get(&q, "order") != Some("asc");
    match query_get(&q, "sort").unwrap_or("createdAt") {
        "name" => all.sort_by(|a, b| a.name.cmp(&b.name)),
        "state" => all.sort_by(|a, b| format!("{:?}", a.state).cmp(&format!("{:?}", b.state))),
        "lastUsedAt" => all.sort_by(|a, b| a.last_used_at.cmp(&b.last_used_at)),
        _ => all.sort_by(|a, b| a.created_at.cmp(&b.created_at)),
    }
    if desc {
        all.reverse();
    }
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .collect();
    Ok(Json(PaginatedSnapshots {
        items,
        total,
        page,
        total_pages: total.div_ceil(limit).max(1),
    }))
}

async fn get_one(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, Failure> {
    objects(&state)
        .get(&id)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

async fn remove(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, Failure> {
    let s = objects(&state).get(&id).ok_or_else(|| not_found(&id))?;
    let (state2, sid) = (state.clone(), s.id.clone());
    tokio::task::spawn_blocking(move || objects(&state2).remove(&sid))
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
        .map_err(|e| Failure::internal(format!("cannot remove the snapshot: {e}")))?;
    Ok(StatusCode::OK.into_response())
}

fn set_active(state: &Shared, id: &str, active: bool) -> Result<Json<Snapshot>, Failure> {
    let mut s = objects(state).get(id).ok_or_else(|| not_found(id))?;
    match (s.state, active) {
        (SnapshotState::Active | SnapshotState::Inactive, _) => {
            s.state = if active {
                SnapshotState::Active
            } else {
                SnapshotState::Inactive
            };
            s.updated_at = now_rfc3339();
            persist(state, &s)?;
            Ok(Json(s))
        }
        (other, _) => Err(Failure::bad_request(format!(
            "Snapshot {} is {other:?} and cannot be changed",
            s.name
        ))),
    }
}

async fn activate(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, Failure> {
    set_active(&state, &id, true)
}

async fn deactivate(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, Failure> {
    set_active(&state, &id, false)
}

async fn build_logs_url(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Failure> {
    let s = objects(&state).get(&id).ok_or_else(|| not_found(&id))?;
    Ok(Json(serde_json::json!({
        "url": format!("{}/api/snapshots/{}/build-logs", state.base_url, s.id)
    })))
}

/// `GET /snapshots/{id}/build-logs[?follow=true]`: the build's output as text; with
/// `follow`, streamed until the build ends.
async fn build_logs(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Failure> {
    let s = objects(&state).get(&id).ok_or_else(|| not_found(&id))?;
    let follow = crate::util::query_flag(&query_pairs(query.as_deref()), "follow");
    let path = log_path(&state, &s.id);
    if !follow {
        let text = tokio::fs::read(&path).await.unwrap_or_default();
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let sid = s.id.clone();
    let stream = futures_util::stream::unfold(0u64, move |offset| {
        let (state, path, sid) = (state.clone(), path.clone(), sid.clone());
        async move {
            loop {
                let data = tokio::fs::read(&path).await.unwrap_or_default();
                if (data.len() as u64) > offset {
                    let chunk = bytes::Bytes::copy_from_slice(&data[offset as usize..]);
                    return Some((Ok::<_, std::io::Error>(chunk), data.len() as u64));
                }
                let done = objects(&state)
                    .get(&sid)
                    .is_none_or(|s| s.state != SnapshotState::Building);
                if done {
                    return None;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// One instruction of a Dockerfile: its keyword (upper-case) and its arguments, continuation
/// lines joined, comments and blank lines dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (kw, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((kw.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// `ENV a=1 b=2` or `ENV a 1`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    if !args.contains('=') {
        let (k, v) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(k.to_string(), v.trim().trim_matches('"').to_string())];
    }
    shell_words(args)
        .into_iter()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Splits on spaces, keeping double-quoted parts together (quotes removed).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Runs a declarative image's steps in a fresh sandbox and keeps its files as the snapshot.
async fn build(state: Shared, mut snap: Snapshot, dockerfile: String) {
    let log = log_path(&state, &snap.id);
    let say = |text: String| {
        let log = log.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            if let Ok(mut f) = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .await
            {
                let _ = f.write_all(text.as_bytes()).await;
            }
        }
    };
    let outcome = run_build(&state, &snap, &dockerfile, &say).await;
    snap.updated_at = now_rfc3339();
    match outcome {
        Ok(()) => {
            say("Snapshot built\n".into()).await;
            snap.state = SnapshotState::Active;
        }
        Err(reason) => {
            say(format!("Build failed: {reason}\n")).await;
            snap.state = SnapshotState::BuildFailed;
            snap.error_reason = Some(reason);
        }
    }
    let _ = persist(&state, &snap);
}

/// Where a build's uploaded contexts are unpacked inside its sandbox (its `/tmp`, which a
/// snapshot does not keep).
const CONTEXT_DIR: &str = "/tmp/.forge-build-context";

/// Copies `COPY`/`ADD` sources from the unpacked context to their destination, run by the
/// sandbox's bash (so links a `RUN` step planted are followed inside the sandbox, never on
/// this machine). `$1` context, `$2` destination, then the sources (globs allowed: `IFS`
/// empty, so an unquoted source only globs). A folder's contents are copied into the
/// destination; a file goes into it when it ends with `/`, is a folder or there are several
/// sources, else becomes it (Docker's rules).
const COPY_SCRIPT: &str = r#"set -e
ctx=$1; dst=$2; shift 2
case $dst in /*) ;; *) dst=$PWD/$dst ;; esac
many=0; [ $# -gt 1 ] && many=1
cd "$ctx"
IFS=
for pat in "$@"; do
  found=0
  for s in $pat; do
    if [ ! -e "$s" ] && [ ! -L "$s" ]; then break; fi
    found=1
    if [ -d "$s" ] && [ ! -L "$s" ]; then
      mkdir -p -- "$dst"; cp -a -- "$s/." "$dst/"
    elif [ $many = 1 ] || [ "${dst%/}" != "$dst" ] || [ -d "$dst" ]; then
      mkdir -p -- "$dst"; cp -a -- "$s" "$dst/"
    else
      mkdir -p -- "$(dirname -- "$dst")"; cp -a -- "$s" "$dst"
    fi
  done
  if [ $found = 0 ]; then echo "COPY: $pat: no such file or directory in the build context" >&2; exit 1; fi
done
"#;

/// The sources and destination of a `COPY`/`ADD` (shell or JSON form), each source made
/// relative to the build context (a leading `/` names the context's root, as in Docker);
/// flags other than `--chown` (files are the sandbox user's here) are refused.
fn copy_args(kw: &str, args: &str) -> Result<(Vec<String>, String), String> {
    let mut words = if args.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<String>>(args)
            .map_err(|_| format!("{kw} {args}: not a JSON array"))?
    } else {
        shell_words(args)
    };
    while words.first().is_some_and(|w| w.starts_with("--")) {
        let flag = words.remove(0);
        if !flag.starts_with("--chown=") {
            return Err(format!(
                "{kw} {flag} is not supported by the embedded backend (only --chown, which is implied: files belong to the sandbox's user)"
            ));
        }
    }
    if words.len() < 2 {
        return Err(format!("{kw} {args}: needs a source and a destination"));
    }
    let dst = words.pop().unwrap_or_default();
    let mut srcs = Vec::new();
    for w in words {
        if kw == "ADD"
            && (w.starts_with("http://") || w.starts_with("https://") || w.starts_with("git@"))
        {
            return Err(format!(
                "ADD {w}: remote sources are not supported by the embedded backend: use RUN curl or git"
            ));
        }
        let rel = w.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return Err(format!("{kw} {w}: the source is outside the build context"));
        }
        srcs.push(if rel.is_empty() {
            ".".into()
        } else {
            rel.to_string()
        });
    }
    Ok((srcs, dst))
}

/// Runs one program in the build's sandbox, its output appended to the build log; an
/// optional file is its stdin. Answers its exit code.
async fn run_step<F, Fut>(
    ctl: &crate::container::ctl::Ctl,
    argv: Vec<String>,
    cwd: &str,
    env: Vec<String>,
    stdin: Option<PathBuf>,
    say: &F,
) -> Result<i32, String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use tokio::io::AsyncReadExt;
    let spec = Spec {
        argv,
        cwd: cwd.to_string(),
        env,
        stdin: stdin.is_some(),
        output: Output::Combined,
        fd3: None,
    };
    let mut child = crate::container::process::spawn(ctl, spec)
        .await
        .map_err(|e| e.to_string())?;
    let feed = child.stdin.take().zip(stdin).map(|(mut pipe, path)| {
        tokio::spawn(async move {
            if let Ok(mut f) = tokio::fs::File::open(path).await {
                let _ = tokio::io::copy(&mut f, &mut pipe).await;
            }
        })
    });
    let mut buf = vec![0u8; 16 * 1024];
    if let Some(r) = child.stdout.as_mut() {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => say(String::from_utf8_lossy(&buf[..n]).into_owned()).await,
            }
        }
    }
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    Ok(child.wait().await)
}

async fn run_build<F, Fut>(
    state: &Shared,
    snap: &Snapshot,
    dockerfile: &str,
    say: &F,
) -> Result<(), String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let steps = instructions(dockerfile);
    // Every uploaded context named by the request, found before anything runs.
    let mut contexts = Vec::new();
    for hash in snap
        .build_info
        .as_ref()
        .and_then(|b| b.context_hashes.clone())
        .unwrap_or_default()
    {
        contexts.push(state.storage.context(&hash).ok_or_else(|| {
            format!("build context {hash} was not uploaded (the SDK uploads it through object-storage push access)")
        })?);
    }
    let builder = crate::api::create_internal(
        state,
        &format!("snapshot-build-{}", snap.id),
        &[("forge.snapshot.build", snap.id.as_str())],
    )
    .await
    .map_err(|e| e.message)?;
    let result = async {
        let running = state
            .runtime
            .ensure(
                &builder.sandbox.id,
                &crate::api::start_spec(state, &builder.sandbox),
            )
            .await
            .map_err(|e| e.message)?;
        let mut setup = Setup::default();
        let mut cwd = crate::container::WORK_DIR.to_string();
        let root = state.store.sandbox_dir(&builder.sandbox.id).join("root");
        let penv = crate::procs::ProcEnv {
            sandbox_id: builder.sandbox.id.clone(),
            dir: state.store.sandbox_dir(&builder.sandbox.id),
            env: forge_wire::StringMap::new(),
        };
        let mut unpacked = false;
        for (kw, args) in steps {
            say(format!("Step {kw} {args}\n")).await;
            let env = crate::procs::command_env(&state.runtime, &penv, &cwd, &setup.env);
            match kw.as_str() {
                "ENV" => {
                    for (k, v) in env_pairs(&args) {
                        setup.env.insert(k, v);
                    }
                }
                "WORKDIR" => {
                    let dir = crate::container::layout::absolute(
                        &std::path::Path::new(&cwd).join(&args).to_string_lossy(),
                    );
                    let host = root.join(dir.trim_start_matches('/'));
                    std::fs::create_dir_all(&host).map_err(|e| e.to_string())?;
                    let _ = state.runtime.give(&host);
                    cwd.clone_from(&dir);
                    setup.workdir = Some(dir);
                }
                "RUN" => {
                    let command = if args.trim_start().starts_with('[') {
                        serde_json::from_str::<Vec<String>>(&args)
                            .map(|v| v.join(" "))
                            .map_err(|_| format!("RUN {args}: not a JSON array"))?
                    } else {
                        args.clone()
                    };
                    let argv = vec!["bash".into(), "-c".into(), command];
                    let code = run_step(&running.ctl, argv, &cwd, env, None, say)
                        .await
                        .map_err(|e| format!("RUN {args}: {e}"))?;
                    if code != 0 {
                        return Err(format!("RUN {args} exited with {code}"));
                    }
                }
                "COPY" | "ADD" => {
                    let (srcs, dst) = copy_args(&kw, &args)?;
                    if !unpacked {
                        // The uploaded tars unpacked by the sandbox's own tar, as its user.
                        let mkdir = vec!["mkdir".into(), "-p".into(), CONTEXT_DIR.into()];
                        run_step(&running.ctl, mkdir, "/", env.clone(), None, say).await?;
                        for tar in &contexts {
                            let argv =
                                ["tar", "-x", "--no-same-owner", "-C", CONTEXT_DIR, "-f", "-"]
                                    .map(String::from)
                                    .to_vec();
                            let code = run_step(
                                &running.ctl,
                                argv,
                                "/",
                                env.clone(),
                                Some(tar.clone()),
                                say,
                            )
                            .await?;
                            if code != 0 {
                                return Err(format!(
                                    "unpacking the build context exited with {code}"
                                ));
                            }
                        }
                        unpacked = true;
                    }
                    let mut argv: Vec<String> = vec![
                        "bash".into(),
                        "-c".into(),
                        COPY_SCRIPT.into(),
                        "copy".into(),
                        CONTEXT_DIR.into(),
                        dst,
                    ];
                    argv.extend(srcs);
                    let code = run_step(&running.ctl, argv, &cwd, env, None, say)
                        .await
                        .map_err(|e| format!("{kw} {args}: {e}"))?;
                    if code != 0 {
                        return Err(format!("{kw} {args} exited with {code}"));
                    }
                }
                // Recorded by the image, meaningless here: the machine's toolchain is the base.
                "FROM" | "USER" | "EXPOSE" | "CMD" | "ENTRYPOINT" | "LABEL" | "ARG" | "SHELL"
                | "STOPSIGNAL" | "HEALTHCHECK" | "VOLUME" | "ONBUILD" => {}
                other => return Err(format!("unknown Dockerfile instruction {other}")),
            }
        }
        keep_files(state, &builder.sandbox.id, &snap.id).await?;
        std::fs::write(
            objects(state).folder(&snap.id).join("setup.json"),
            serde_json::to_vec(&setup).unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    crate::api::delete_internal(state, &builder.sandbox.id).await;
    result
}

/// Top-level folders of a sandbox's root that are its own (not the toolchain's mounts and
/// links, not its scratch folders).
pub fn own_entries(state: &Shared, root: &std::path::Path) -> Vec<PathBuf> {
    let layout = state.runtime.layout();
    let skip: Vec<String> = layout
        .mounts
        .iter()
        .map(|m| m.at().trim_start_matches('/').to_string())
        .chain(layout.links.iter().map(|(n, _)| n.clone()))
        .chain(["tmp", "run"].iter().map(std::string::ToString::to_string))
        .collect();
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| !skip.contains(&e.file_name().to_string_lossy().into_owned()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Copies a sandbox's own files into a snapshot's files folder.
pub async fn keep_files(state: &Shared, sandbox: &str, snapshot: &str) -> Result<(), String> {
    let root = state.store.sandbox_dir(sandbox).join("root");
    let dest = files(state, snapshot);
    let entries = own_entries(state, &root);
    tokio::task::spawn_blocking(move || {
        for e in entries {
            copy_tree(&e, &dest.join(e.file_name().unwrap_or_default()))?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot copy the sandbox's files: {e}"))
}

/// Copies a snapshot's files into a new sandbox's root (before its container starts).
pub async fn place_files(state: &Shared, snapshot: &str, sandbox: &str) -> Result<(), Failure> {
    let from = files(state, snapshot);
    let root = state.store.sandbox_dir(sandbox).join("root");
    tokio::task::spawn_blocking(move || {
        for e in std::fs::read_dir(&from)?.flatten() {
            copy_tree(&e.path(), &root.join(e.file_name()))?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))?
    .map_err(|e| Failure::internal(format!("cannot place the snapshot's files: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_are_read_as_instructions() {
        let steps = instructions(
            "FROM python:3.12\n# a comment\n\nENV A=1 B=\"two words\"\nRUN pip install \\\n    requests\nWORKDIR app\nENV C 3\n",
        );
        assert_eq!(
            steps,
            vec![
                ("FROM".to_string(), "python:3.12".to_string()),
                ("ENV".into(), "A=1 B=\"two words\"".into()),
                ("RUN".into(), "pip install  requests".into()),
                ("WORKDIR".into(), "app".into()),
                ("ENV".into(), "C 3".into()),
            ]
        );
        assert_eq!(
            env_pairs("A=1 B=\"two words\""),
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(env_pairs("C 3"), vec![("C".into(), "3".into())]);
    }

    #[test]
    fn copy_sources_are_read_relative_to_the_context() {
        assert_eq!(
            copy_args("COPY", "/tmp/x/a.txt /home/daytona/a.txt").unwrap(),
            (
                vec!["tmp/x/a.txt".to_string()],
                "/home/daytona/a.txt".to_string()
            )
        );
        assert_eq!(
            copy_args("COPY", "[\"a b\", \"/\", \"dst/\"]").unwrap(),
            (vec!["a b".to_string(), ".".to_string()], "dst/".to_string())
        );
        assert!(copy_args("COPY", "--chown=daytona:daytona a b").is_ok());
        for bad in [
            "../etc/passwd /x",
            "--from=base /a /b",
            "--chmod=755 a b",
            "onlyone",
        ] {
            assert!(copy_args("COPY", bad).is_err(), "{bad}");
        }
        assert!(copy_args("ADD", "https://example.com/x /x").is_err());
    }
}

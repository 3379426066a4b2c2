//! Background sessions (daytona-wire.md §7): create / list / get / delete, commands run sync
//! or async, their status, their logs (JSON, text, or live over WebSocket) and their stdin.
//!
//! How a session behaves like one long-lived shell while each command still runs on its own
//! (so it can be killed with its tree): every command is a fresh `bash` that first restores
//! the session's working directory and exported environment from a state file given to it as
//! fd 3 (a copy of the session's state, in the backend's folder: nothing is written into the
//! sandbox), runs the command with `set -a` (so plain assignments are kept too), then writes
//! `cd` and `export -p` back to fd 3; when it ends, that copy becomes the session's state.
//! `cd`, `export` and `X=1` carry over between commands; shell functions, aliases and options
//! do not. Async commands started together each see the state as it was when they started.
//!
//! Output goes to a log file written by the command's monitor inside the sandbox (see
//! `logs`), so a command's log and exit code outlive the backend process.

use super::logs::{self, LogStore};
use super::{Sbx, Spawn};
use crate::container::process::{Killer, Output, Spec};
use crate::error::Failure;
use crate::procs;
use crate::store::WORK_DIR;
use crate::util::{new_uuid, query_flag, query_pairs, JsonBody};
use crate::Shared;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{
    CreateSessionRequest, Session as WireSession, SessionCommand, SessionExecuteRequest,
    SessionExecuteResponse, SessionSendInputRequest, StringMap,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The shell program every session command runs in (see the module docs); the command is
/// its `$1`, the state file its fd 3.
const WRAPPER: &str = r#"__forge_cmd=$1
shift
. /dev/fd/3 2>/dev/null
set -a
eval "$__forge_cmd"
__forge_rc=$?
set +a
{ printf 'cd -- %q 2>/dev/null\n' "$PWD"; export -p; } > /dev/fd/3 2>/dev/null
exit $__forge_rc
"#;

/// How long the output may stay quiet, after the shell exited and while something (a
/// background child) still holds its pipes, before a sync answer is sent anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// The longest a sync answer waits for output after the shell exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// One command of a session.
pub struct Cmd {
    id: String,
    command: String,
    /// The command's monitor in the sandbox (names it for kills; kept for a later backend).
    monitor: i32,
    killer: Killer,
    log: Arc<LogStore>,
    /// The log file, for the echo of input sent to the command.
    log_path: PathBuf,
    /// Input sent to the command is echoed into its log (unless `suppressInputEcho`).
    echo: bool,
    exit: tokio::sync::watch::Receiver<Option<i32>>,
    /// Turns true once the command's state (cwd, exports) became the session's: a sync answer
    /// waits for it, so the next command starts from it. The exit code alone is not enough:
    /// it is seen here and by the task that saves the state at the same moment, and on a
    /// busy machine the answer could go out (and the next command start) before the save.
    state_saved: tokio::sync::watch::Receiver<bool>,
    stdin: tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>>,
}

impl Cmd {
    fn exit_code(&self) -> Option<i32> {
        *self.exit.borrow()
    }
    fn wire(&self) -> SessionCommand {
        SessionCommand {
            id: self.id.clone(),
            command: self.command.clone(),
            exit_code: self.exit_code(),
        }
    }
    /// Waits until the command exited and its output was drained (bounded grace).
    async fn finished(&self) {
        let mut rx = self.exit.clone();
        let _ = rx.wait_for(std::option::Option::is_some).await;
        // The saving task always answers (or drops its sender, which ends the wait too).
        let _ = self.state_saved.clone().wait_for(|saved| *saved).await;
        let mut tick = self.log.subscribe();
        // Until every writer is done (the state we want), or the output has been quiet for
        // DRAIN_GRACE (a background child holds the pipes): the grace restarts with each
        // write, so a slow machine still draining the shell's own output is waited for. A
        // background child that never stops writing is cut off at DRAIN_LIMIT.
        let drained = async {
            while !self.log.writers_done() {
                match tokio::time::timeout(DRAIN_GRACE, tick.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_LIMIT, drained).await;
    }
}

/// One session: its commands and its state folder (saved env and cwd).
pub struct Session {
    id: String,
    state_dir: PathBuf,
    commands: std::sync::Mutex<Vec<Arc<Cmd>>>,
}

impl Session {
    fn wire(&self) -> WireSession {
        WireSession {
            session_id: self.id.clone(),
            commands: self
                .commands
                .lock()
                .map(|c| c.iter().map(|c| c.wire()).collect())
                .unwrap_or_default(),
        }
    }
    fn command(&self, id: &str) -> Option<Arc<Cmd>> {
        self.commands
            .lock()
            .ok()?
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }
    /// Writes `session.json` (the session and its commands) into the session's folder, so a
    /// backend started later on this home finds them (see [`Sessions::restore`]).
    fn save(&self) {
        let commands: Vec<serde_json::Value> = self
            .commands
            .lock()
            .map(|c| {
                c.iter()
                    .map(|c| {
                        serde_json::json!({"id": c.id, "command": c.command, "monitor": c.monitor})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = serde_json::json!({"sessionId": self.id, "commands": commands});
        let tmp = self.state_dir.join("session.json.tmp");
        if std::fs::write(&tmp, body.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, self.state_dir.join(SESSION_FILE));
        }
    }

    /// Kills the tree of every command of the session: one that exited may have left a child
    /// running (`setsid`, `nohup … &`), still in its monitor's tree. A command whose monitor
    /// is gone is answered "no such command" by the init, and nothing else is signalled.
    async fn kill_all(&self) {
        let running: Vec<Killer> = self
            .commands
            .lock()
            .map(|c| c.iter().map(|c| c.killer.clone()).collect())
            .unwrap_or_default();
        for k in running {
            let _ = k.kill(libc::SIGKILL).await;
        }
    }
}

/// The file in a session's folder that describes it.
const SESSION_FILE: &str = "session.json";

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedSession {
    session_id: String,
    commands: Vec<SavedCommand>,
}

#[derive(serde::Deserialize)]
struct SavedCommand {
    id: String,
    command: String,
    monitor: i32,
}

/// Every live session of every sandbox, by (sandbox id, session id), and the toolbox's other
/// per-sandbox processes and readings: PTY sessions, interpreter contexts, CPU samples.
#[derive(Default)]
pub struct Sessions {
    map: tokio::sync::Mutex<HashMap<(String, String), Arc<Session>>>,
    pub ptys: super::pty::Ptys,
    pub interpreters: super::interpreter::Contexts,
    pub cpu: super::system::CpuSamples,
}

impl Sessions {
    /// Kills and forgets every session, PTY session and interpreter context of a sandbox (it
    /// stops or is deleted).
    pub async fn drop_sandbox(&self, sandbox: &str) {
        self.ptys.drop_sandbox(sandbox).await;
        self.interpreters.drop_sandbox(sandbox).await;
        self.cpu.forget(sandbox);
        let mut map = self.map.lock().await;
        let keys: Vec<_> = map.keys().filter(|(s, _)| s == sandbox).cloned().collect();
        for k in keys {
            if let Some(s) = map.remove(&k) {
                s.kill_all().await;
                let _ = tokio::fs::remove_dir_all(&s.state_dir).await;
            }
        }
    }

    /// Finds the sessions a backend before this one left in the sandboxes whose container
    /// still runs: their commands, logs and exit codes (those still running are watched
    /// through their exit files; their stdin is gone with the old backend).
    pub async fn restore(&self, state: &crate::Shared) {
        let mut map = self.map.lock().await;
        for rec in state.store.all().await {
            let id = rec.sandbox.id;
            let Some(running) = state.runtime.running(&id) else {
                continue;
            };
            let dir = state.store.state_dir(&id).join("sessions");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let state_dir = e.path();
                let Ok(text) = std::fs::read(state_dir.join(SESSION_FILE)) else {
                    continue;
                };
                let Ok(saved) = serde_json::from_slice::<SavedSession>(&text) else {
                    continue;
                };
                let commands = saved
                    .commands
                    .into_iter()
                    .map(|c| restored_command(&state_dir, &running, c))
                    .collect();
                map.insert(
                    (id.clone(), saved.session_id.clone()),
                    Arc::new(Session {
                        id: saved.session_id,
                        state_dir,
                        commands: std::sync::Mutex::new(commands),
                    }),
                );
            }
        }
    }

    async fn get(&self, sandbox: &str, session: &str) -> Result<Arc<Session>, Failure> {
        self.map
            .lock()
            .await
            .get(&(sandbox.to_string(), session.to_string()))
            .cloned()
            .ok_or_else(|| {
                Failure::not_found(format!("session {session} not found")).with_code("NOT_FOUND")
            })
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/process/session", post(create).get(list))
        .route("/process/session/entrypoint", get(entrypoint))
        .route("/process/session/entrypoint/logs", get(entrypoint_logs))
        .route("/process/session/{session_id}", get(get_one).delete(remove))
        .route("/process/session/{session_id}/exec", post(exec))
        .route(
            "/process/session/{session_id}/command/{command_id}",
            get(command).delete(kill_command),
        )
        .route(
            "/process/session/{session_id}/command/{command_id}/logs",
            get(logs_route),
        )
        .route(
            "/process/session/{session_id}/command/{command_id}/input",
            post(input),
        )
}

/// The `session_id` / `command_id` path parameters (the sandbox id comes from the nest).
fn param(params: &[(String, String)], key: &str) -> String {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

type Params = Path<Vec<(String, String)>>;

async fn create(
    sbx: Sbx,
    JsonBody(req): JsonBody<CreateSessionRequest>,
) -> Result<Response, Failure> {
    let sid = req.session_id.trim().to_string();
    if sid.is_empty() || sid == "entrypoint" || sid.contains(['/', '\0']) {
        return Err(Failure::bad_request(format!("invalid session id {sid:?}")));
    }
    let mut map = sbx.state.sessions.map.lock().await;
    let key = (sbx.id.clone(), sid.clone());
    if map.contains_key(&key) {
        return Err(Failure::conflict(format!("session {sid} already exists")));
    }
    let state_dir = sbx
        .state
        .store
        .state_dir(&sbx.id)
        .join("sessions")
        .join(new_uuid());
    tokio::fs::create_dir_all(&state_dir)
        .await
        .map_err(|e| Failure::internal(format!("cannot create session state: {e}")))?;
    let session = Arc::new(Session {
        id: sid,
        state_dir,
        commands: std::sync::Mutex::new(Vec::new()),
    });
    session.save();
    map.insert(key, session);
    Ok(StatusCode::CREATED.into_response())
}

async fn list(sbx: Sbx) -> Json<Vec<WireSession>> {
    let map = sbx.state.sessions.map.lock().await;
    let mut out: Vec<WireSession> = map
        .iter()
        .filter(|((s, _), _)| *s == sbx.id)
        .map(|(_, s)| s.wire())
        .collect();
    out.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    Json(out)
}

/// `GET /process/session/entrypoint`: the image's entrypoint session. Nothing runs an
/// entrypoint here (no images), so it is always empty.
async fn entrypoint(_sbx: Sbx) -> Json<WireSession> {
    Json(WireSession {
        session_id: "entrypoint".into(),
        commands: Vec::new(),
    })
}

/// `GET /process/session/entrypoint/logs`: empty (JSON, or a WebSocket closed at once).
async fn entrypoint_logs(
    _sbx: Sbx,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.on_upgrade(|mut socket| async move {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "".into(),
                })))
                .await;
        }),
        Err(_) => {
            Json(serde_json::json!({"output": "", "stdout": "", "stderr": ""})).into_response()
        }
    }
}

async fn get_one(sbx: Sbx, Path(p): Params) -> Result<Json<WireSession>, Failure> {
    let s = sbx
        .state
        .sessions
        .get(&sbx.id, &param(&p, "session_id"))
        .await?;
    Ok(Json(s.wire()))
}

async fn remove(sbx: Sbx, Path(p): Params) -> Result<Response, Failure> {
    let sid = param(&p, "session_id");
    let removed = sbx
        .state
        .sessions
        .map
        .lock()
        .await
        .remove(&(sbx.id.clone(), sid.clone()));
    let s = removed.ok_or_else(|| Failure::not_found(format!("session {sid} not found")))?;
    s.kill_all().await;
    let _ = tokio::fs::remove_dir_all(&s.state_dir).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// True when the client speaks a wire level of at least 0.167.0 (JSON logs, split streams).
fn new_wire(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(forge_wire::headers::SDK_VERSION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if v.contains("dev") {
        return true;
    }
    let mut parts = v.trim_start_matches('v').split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u64>()
            .unwrap_or(0)
    });
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 167)
}

async fn exec(
    sbx: Sbx,
    Path(p): Params,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SessionExecuteRequest>,
) -> Result<Response, Failure> {
    let session = sbx
        .state
        .sessions
        .get(&sbx.id, &param(&p, "session_id"))
        .await?;
    if req.command.trim().is_empty() {
        return Err(Failure::bad_request("command is required"));
    }
    let run_async = req.run_async.or(req.legacy_async).unwrap_or(false);
    let echo = !req.suppress_input_echo.unwrap_or(false);
    let cmd = spawn(&sbx, &session, &req.command, echo).await?;
    if run_async {
        return Ok((
            StatusCode::ACCEPTED,
            Json(SessionExecuteResponse {
                cmd_id: cmd.id.clone(),
                ..Default::default()
            }),
        )
            .into_response());
    }
    cmd.finished().await;
    let (raw, _) = cmd.log.read_all();
    let mut res = SessionExecuteResponse {
        cmd_id: cmd.id.clone(),
        exit_code: cmd.exit_code(),
        ..Default::default()
    };
    if new_wire(&headers) {
        let (out, err) = logs::demux(&raw);
        res.output = Some(String::from_utf8_lossy(&raw).into_owned());
        res.stdout = Some(String::from_utf8_lossy(&out).into_owned());
        res.stderr = Some(String::from_utf8_lossy(&err).into_owned());
    } else {
        res.output = Some(String::from_utf8_lossy(&logs::strip(&raw)).into_owned());
    }
    Ok(Json(res).into_response())
}

/// Starts one command of a session (see the module docs) and returns at once.
async fn spawn(
    sbx: &Sbx,
    session: &Arc<Session>,
    command: &str,
    echo: bool,
) -> Result<Arc<Cmd>, Failure> {
    let slot = procs::command_slot(&sbx.state.commands)?;
    let id = new_uuid();
    let cwd = sbx.cmd_path(&sbx.root.resolve(WORK_DIR)?);
    let files = {
        let (dir, id) = (session.state_dir.clone(), id.clone());
        tokio::task::spawn_blocking(move || command_files(&dir, &id))
            .await
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(|e| Failure::internal(format!("cannot create the command's log: {e}")))?
    };
    let CommandFiles {
        log,
        exit_file,
        state,
        log_path,
        state_path,
    } = files;
    // The command reopens its state file (`/dev/fd/3`) as the sandbox's user.
    let _ = sbx.state.runtime.give(&state_path);
    let spec = Spec {
        argv: vec![
            "bash".into(),
            "-c".into(),
            WRAPPER.into(),
            "forge-session".into(),
            command.to_string(),
        ],
        cwd: cwd.clone(),
        env: sbx.env(&cwd, &StringMap::new()),
        stdin: true,
        output: Output::Log {
            log,
            exit_file,
            limit: sbx.state.config.session_log_limit,
        },
        fd3: Some(state.into()),
    };
    let mut child = match sbx.spawn(spec).await {
        Ok(c) => c,
        Err(Spawn::Sandbox(f)) => return Err(f),
        Err(Spawn::Command(e)) => {
            return Err(Failure::internal(format!("cannot start the command: {e}")))
        }
    };
    let exit = child.exit_watch();
    let ticks = child.ticks();
    let mut drained = child.drained();
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let (saved_tx, state_saved) = tokio::sync::watch::channel(false);
    let cmd = Arc::new(Cmd {
        id,
        command: command.to_string(),
        monitor: child.monitor,
        killer: child.killer(),
        log: Arc::new(LogStore::open(log_path.clone(), ticks.clone(), done)),
        log_path,
        echo,
        exit,
        state_saved,
        stdin: tokio::sync::Mutex::new(child.stdin.take()),
    });
    if let Ok(mut cmds) = session.commands.lock() {
        cmds.push(cmd.clone());
    }
    session.save();
    let waiter = cmd.clone();
    let session_state = session.state_dir.join("state");
    tokio::spawn(async move {
        child.wait().await;
        waiter.stdin.lock().await.take();
        // The command's view of the session is the session's now.
        let _ = tokio::fs::rename(&state_path, &session_state).await;
        saved_tx.send_replace(true);
        drop(slot);
        // Done once the monitor says the output is drained (or is gone): every byte of output
        // is in the log. (The monitor itself stays while a background child of the command
        // lives, so that killing the command still reaches it.)
        let _ = drained.wait_for(|d| *d).await;
        done_tx.send_replace(true);
    });
    Ok(cmd)
}

/// A command found in a session's folder: finished (its exit file says how), or still running,
/// then watched: its exit file and its log, polled until it has exited.
fn restored_command(
    state_dir: &std::path::Path,
    running: &Arc<crate::container::Running>,
    saved: SavedCommand,
) -> Arc<Cmd> {
    let logs = state_dir.join("logs");
    let exit_path = logs.join(format!("{}.exit", saved.id));
    let log_path = logs.join(format!("{}.log", saved.id));
    let read_exit = {
        let p = exit_path.clone();
        move || -> Option<i32> { std::fs::read_to_string(&p).ok()?.trim().parse().ok() }
    };
    let code = read_exit();
    let (exit_tx, exit) = tokio::sync::watch::channel(code);
    let (tick_tx, ticks) = tokio::sync::watch::channel(0u64);
    let (done_tx, done) = tokio::sync::watch::channel(code.is_some());
    if code.is_none() {
        let (pid, start) = (running.pid, running.start);
        let log = log_path.clone();
        tokio::spawn(async move {
            let mut len = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = std::fs::metadata(&log).map_or(0, |m| m.len());
                if now != len {
                    len = now;
                    tick_tx.send_modify(|t| *t += 1);
                }
                let gone = crate::container::start_time(pid) != Some(start);
                if let Some(c) = read_exit().or(gone.then_some(crate::container::process::KILLED)) {
                    exit_tx.send_replace(Some(c));
                    tick_tx.send_modify(|t| *t += 1);
                    done_tx.send_replace(true);
                    return;
                }
                if exit_tx.is_closed() {
                    return;
                }
            }
        });
    }
    Arc::new(Cmd {
        killer: Killer::new(running.ctl.clone(), saved.monitor),
        id: saved.id,
        command: saved.command,
        monitor: saved.monitor,
        log: Arc::new(LogStore::open(log_path.clone(), ticks, done)),
        log_path,
        echo: true,
        exit,
        // A command of an earlier backend: its state was saved (or lost) with that backend.
        state_saved: tokio::sync::watch::channel(true).1,
        stdin: tokio::sync::Mutex::new(None),
    })
}

/// The files of one session command, in the session's folder (the backend's, not the
/// sandbox's).
struct CommandFiles {
    log: std::fs::File,
    exit_file: std::fs::File,
    state: std::fs::File,
    log_path: PathBuf,
    state_path: PathBuf,
}

/// Creates a command's log, exit file and state copy (the session's state as it is now).
fn command_files(dir: &std::path::Path, id: &str) -> std::io::Result<CommandFiles> {
    use std::os::unix::fs::OpenOptionsExt;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{id}.log"));
    let open = |path: &std::path::Path, append: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .append(append)
            .create(true)
            .truncate(!append)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let log = open(&log_path, true)?;
    let exit_file = open(&logs.join(format!("{id}.exit")), false)?;
    let state_path = dir.join(format!("state.{id}"));
    let current = std::fs::read(dir.join("state")).unwrap_or_default();
    let state = open(&state_path, false)?;
    std::io::Write::write_all(&mut &state, &current)?;
    Ok(CommandFiles {
        log,
        exit_file,
        state,
        log_path,
        state_path,
    })
}

async fn find_cmd(sbx: &Sbx, p: &[(String, String)]) -> Result<Arc<Cmd>, Failure> {
    let session = sbx
        .state
        .sessions
        .get(&sbx.id, &param(p, "session_id"))
        .await?;
    let cid = param(p, "command_id");
    session.command(&cid).ok_or_else(|| {
        Failure::not_found(format!("command {cid} not found")).with_code("NOT_FOUND")
    })
}

async fn command(sbx: Sbx, Path(p): Params) -> Result<Json<SessionCommand>, Failure> {
    Ok(Json(find_cmd(&sbx, &p).await?.wire()))
}

/// `DELETE …/command/{id}` (an extension: Daytona has no such route): kills the command's
/// whole tree (everything it started, `setsid` and `nohup … &` children included: they stay
/// in its monitor's tree).
async fn kill_command(sbx: Sbx, Path(p): Params) -> Result<Response, Failure> {
    let cmd = find_cmd(&sbx, &p).await?;
    let killed = cmd.killer.kill(libc::SIGKILL).await.unwrap_or(0);
    if killed == 0 && cmd.exit_code().is_some() {
        return Err(
            Failure::new(StatusCode::GONE, "command has already completed")
                .with_code("COMMAND_ALREADY_COMPLETED"),
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn input(
    sbx: Sbx,
    Path(p): Params,
    JsonBody(req): JsonBody<SessionSendInputRequest>,
) -> Result<Response, Failure> {
    let cmd = find_cmd(&sbx, &p).await?;
    let gone = || {
        Failure::new(StatusCode::GONE, "command has already completed")
            .with_code("COMMAND_ALREADY_COMPLETED")
    };
    if cmd.exit_code().is_some() {
        return Err(gone());
    }
    // As the daemon: the input is a line (a newline is added when missing), echoed into the
    // command's log as output unless the command was started with `suppressInputEcho`.
    let mut line = req.data.clone();
    if !line.ends_with('\n') {
        line.push('\n');
    }
    if cmd.stdin.lock().await.is_none() {
        return Err(gone());
    }
    if cmd.echo {
        let mut marked = forge_wire::STDOUT_MARKER.to_vec();
        marked.extend_from_slice(line.as_bytes());
        let path = cmd.log_path.clone();
        let _ = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(&marked))
        })
        .await;
    }
    // Sent after its echo, so the log shows the input before what the command answers.
    let mut stdin = cmd.stdin.lock().await;
    let pipe = stdin.as_mut().ok_or_else(gone)?;
    pipe.write_all(line.as_bytes()).await.map_err(|_| gone())?;
    drop(stdin);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET …/logs`: over a WebSocket upgrade, the raw marked bytes as binary frames (live with
/// `follow=true`, closed with 1000 once the command exited and the log is drained); without
/// one, JSON `{output, stdout, stderr}` for clients ≥ 0.167.0, else text. When older output
/// was cut by the log bound, the JSON has `"truncated": true` and the answer carries
/// `X-Forge-Log-Truncated: true`.
async fn logs_route(
    sbx: Sbx,
    Path(p): Params,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let cmd = find_cmd(&sbx, &p).await?;
    let follow = query_flag(&query_pairs(query.as_deref()), "follow");
    if let Ok(ws) = ws {
        return Ok(ws.on_upgrade(move |socket| stream_ws(socket, cmd, follow)));
    }
    if follow {
        return Ok(stream_http(cmd));
    }
    let (raw, truncated) = cmd.log.read_all();
    let mut res = if new_wire(&headers) {
        let (out, err) = logs::demux(&raw);
        let mut body = serde_json::json!({
            "output": String::from_utf8_lossy(&raw),
            "stdout": String::from_utf8_lossy(&out),
            "stderr": String::from_utf8_lossy(&err),
        });
        if truncated {
            body["truncated"] = serde_json::Value::Bool(true);
        }
        Json(body).into_response()
    } else {
        let has_version = headers.contains_key(forge_wire::headers::SDK_VERSION);
        let text = if has_version { raw } else { logs::strip(&raw) };
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    };
    if truncated {
        res.headers_mut().insert(
            "x-forge-log-truncated",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

/// Largest WebSocket frame / HTTP chunk of log bytes.
const FRAME: usize = 64 * 1024;

/// How long an exited command's log may stay idle (background children still holding the
/// pipes) before the stream ends anyway.
const IDLE_AFTER_EXIT: Duration = Duration::from_secs(1);

/// What a log follower should do next.
enum Next {
    Send(Vec<u8>),
    Wait,
    End,
}

struct Follower {
    cmd: Arc<Cmd>,
    offset: u64,
    follow: bool,
    idle_since: Option<std::time::Instant>,
    tick: tokio::sync::watch::Receiver<u64>,
}

impl Follower {
    fn new(cmd: Arc<Cmd>, follow: bool) -> Follower {
        let tick = cmd.log.subscribe();
        Follower {
            cmd,
            offset: 0,
            follow,
            idle_since: None,
            tick,
        }
    }

    fn next(&mut self) -> Next {
        let (data, next) = self.cmd.log.read_at(self.offset, FRAME);
        if !data.is_empty() {
            self.offset = next;
            self.idle_since = None;
            return Next::Send(data);
        }
        self.offset = next;
        if !self.follow {
            return Next::End;
        }
        if self.cmd.exit_code().is_some() {
            if self.cmd.log.writers_done() {
                return Next::End;
            }
            let since = *self.idle_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= IDLE_AFTER_EXIT {
                return Next::End;
            }
        }
        Next::Wait
    }

    /// Waits for new output, or a short while (exit and idle checks need a poll).
    async fn wait(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.tick.changed()).await;
    }
}

async fn stream_ws(mut socket: WebSocket, cmd: Arc<Cmd>, follow: bool) {
    let mut f = Follower::new(cmd, follow);
    loop {
        match f.next() {
            Next::Send(data) => {
                if socket.send(Message::Binary(data.into())).await.is_err() {
                    return;
                }
            }
            Next::End => break,
            Next::Wait => {
                tokio::select! {
                    () = f.wait() => {}
                    msg = socket.recv() => match msg {
                        None | Some(Err(_) | Ok(Message::Close(_))) => return,
                        Some(Ok(_)) => {}
                    }
                }
            }
        }
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

/// `follow=true` without a WebSocket: the raw marked bytes as a chunked HTTP body.
fn stream_http(cmd: Arc<Cmd>) -> Response {
    let f = Follower::new(cmd, true);
    let stream = futures_util::stream::unfold(f, |mut f| async move {
        loop {
            match f.next() {
                Next::Send(data) => {
                    return Some((Ok::<_, std::io::Error>(bytes::Bytes::from(data)), f))
                }
                Next::End => return None,
                Next::Wait => f.wait().await,
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

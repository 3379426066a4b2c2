//! PTY sessions (`/process/pty…`): a `bash -i -l` on a real terminal inside the sandbox,
//! driven over WebSocket as the official SDK's `PtyHandle` does.
//!
//! The terminal belongs to the sandbox: its init opens it in the sandbox's own devpts
//! (`open_pty`, the runtime's PTY op) and hands back the master and the slave; the shell is
//! started with the slave as its controlling terminal, leading a session of its own (job
//! control, ^C to its foreground job, SIGWINCH on resize). The backend keeps the master: what
//! a client sends is written to it, what the terminal prints is sent to every connected client
//! as binary frames (dropped when none is connected, as the daemon does), and a resize is a
//! `TIOCSWINSZ` on it.
//!
//! The wire, as the daemon speaks it: a client gets the text frame
//! `{"type":"control","status":"connected"}` once attached, then the output; when the shell
//! exits, clients that offered the `X-Daytona-Pty-Exit-Control` subprotocol get
//! `{"type":"control","status":"exited","exitCode":N,"exitReason":"(…)"}` (no reason for 0),
//! and every client a close frame (1000 for exit code 0, else 1011) whose reason is
//! `{"exitCode":N,"exitReason":"…"}`. A session that exited or was killed (137, `SIGKILL`) is
//! gone: it cannot be started again. `GET /process/pty/create-connect?id=&cols=&rows=&cwd=`
//! creates and attaches in one upgrade, the envs in the subprotocol
//! `X-Daytona-Pty-Envs~<base64url JSON>`.
//!
//! A PTY session lives as long as the backend process that holds its master: a backend
//! started again does not find it (the shell gets SIGHUP when the master closes).

use super::Sbx;
use super::Spawn;
use crate::container::process::{self, Killer, Output, Spec};
use crate::error::Failure;
use crate::store::WORK_DIR;
use crate::util::{query_get, query_pairs, JsonBody};
use crate::Shared;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{
    PtyControl, PtyCreateRequest, PtyCreateResponse, PtyListResponse, PtyResizeRequest,
    PtySessionInfo, StringMap, PTY_ENVS_SUBPROTOCOL_PREFIX, PTY_EXIT_CONTROL_SUBPROTOCOL,
};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{broadcast, watch};

/// Largest terminal side the daemon accepts.
const MAX_SIDE: u32 = 1000;

/// Output frames buffered per client before it is dropped as a slow consumer.
const CLIENT_BACKLOG: usize = 1024;

/// How long output may keep coming after the shell exited (from what it started that still
/// holds the terminal) before clients are told it exited.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Longest PTY session id.
const MAX_ID: usize = 256;

/// The program every PTY runs, as the daemon runs its shell.
const SHELL: [&str; 3] = ["bash", "-i", "-l"];

/// What a session tells its clients.
#[derive(Clone)]
enum Event {
    Output(bytes::Bytes),
    Exit(i32),
}

/// The parts of a session that change.
struct Info {
    cwd: String,
    envs: StringMap,
    cols: u32,
    rows: u32,
    created_at: String,
    lazy_start: bool,
    active: bool,
}

/// The terminal of a started session.
struct Terminal {
    master: Arc<AsyncFd<OwnedFd>>,
    killer: Killer,
}

/// One PTY session.
pub struct Pty {
    id: String,
    sandbox: String,
    info: std::sync::Mutex<Info>,
    /// `None` until started (a lazy session until its first client).
    terminal: tokio::sync::Mutex<Option<Terminal>>,
    /// Set once the shell exited (its code): the session cannot start again.
    exit: watch::Sender<Option<i32>>,
    events: broadcast::Sender<Event>,
    /// One client's input at a time, so a message is never interleaved with another's.
    input: tokio::sync::Mutex<()>,
}

impl Pty {
    fn wire(&self) -> PtySessionInfo {
        let info = self
            .info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        PtySessionInfo {
            id: self.id.clone(),
            cwd: info.cwd.clone(),
            envs: info.envs.clone(),
            cols: info.cols,
            rows: info.rows,
            created_at: info.created_at.clone(),
            active: info.active,
            lazy_start: info.lazy_start,
        }
    }

    fn set_active(&self, active: bool) {
        self.info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .active = active;
    }

    fn exited(&self) -> Option<i32> {
        *self.exit.borrow()
    }

    /// Starts the shell (once): a terminal in the sandbox, `bash -i -l` on it, and the task
    /// that reads its output until it exits.
    async fn start(self: &Arc<Self>, sbx: &Sbx) -> Result<(), Failure> {
        let mut terminal = self.terminal.lock().await;
        if terminal.is_some() {
            return Ok(());
        }
        if self.exited().is_some() {
            return Err(gone(
                "PTY session has already been used and cannot be restarted",
            ));
        }
        let (cwd, envs, cols, rows) = {
            let info = self
                .info
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (info.cwd.clone(), info.envs.clone(), info.cols, info.rows)
        };
        let slot = crate::procs::command_slot(&sbx.state.commands)?;
        let resolved = sbx.root.resolve(&cwd)?;
        let dir = sbx.cmd_path(&resolved);
        let running = sbx.running().await?;
        let (master, slave) = process::open_pty(&running.ctl, cols as u16, rows as u16)
            .await
            .map_err(|e| {
                Failure::internal(format!("cannot open a terminal in the sandbox: {e}"))
            })?;
        let spec = Spec {
            argv: SHELL.iter().map(std::string::ToString::to_string).collect(),
            env: sbx.env(&dir, &envs),
            cwd: dir,
            stdin: false,
            output: Output::Terminal(slave),
            fd3: None,
        };
        let child = match sbx.spawn(spec).await {
            Ok(c) => c,
            Err(Spawn::Sandbox(f)) => return Err(f),
            Err(Spawn::Command(e)) if e.stage == "chdir" => {
                return Err(Failure::bad_request(format!(
                    "cannot start the PTY session in {}: {}",
                    resolved.shown, e.error
                )))
            }
            Err(Spawn::Command(e)) => {
                return Err(Failure::internal(format!(
                    "failed to start PTY session: {e}"
                )))
            }
        };
        let master = Arc::new(
            nonblocking(master)
                .and_then(|fd| {
                    // SAFETY: an OwnedFd keeps its descriptor open, and the same one, for as
                    // long as it lives (as long as the AsyncFd that owns it).
                    unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)
                })
                .map_err(|e| Failure::internal(format!("cannot use the terminal: {e}")))?,
        );
        *terminal = Some(Terminal {
            master: master.clone(),
            killer: child.killer(),
        });
        self.set_active(true);
        let (pty, state) = (self.clone(), sbx.state.clone());
        tokio::spawn(async move {
            let code = pump(&pty, &master, child).await;
            drop(slot);
            pty.set_active(false);
            pty.exit.send_replace(Some(code));
            let _ = pty.events.send(Event::Exit(code));
            // Exited: gone from the list, as the daemon's are.
            state.sessions.ptys.forget(&pty).await;
            // The master closes with the last client: whatever still holds the terminal
            // gets SIGHUP.
            pty.terminal.lock().await.take();
        });
        Ok(())
    }

    /// Writes a client's input to the terminal.
    async fn write(&self, data: &[u8]) -> std::io::Result<()> {
        let master = match self.terminal.lock().await.as_ref() {
            Some(t) => t.master.clone(),
            None => return Err(std::io::Error::other("the PTY session is not running")),
        };
        let _one = self.input.lock().await;
        let mut done = 0;
        while done < data.len() {
            let mut ready = master.writable().await?;
            match ready.try_io(|fd| {
                // SAFETY: write(2) from a live slice into a descriptor we own.
                let n = unsafe {
                    libc::write(
                        fd.as_raw_fd(),
                        data[done..].as_ptr().cast::<libc::c_void>(),
                        data.len() - done,
                    )
                };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(n)) => done += n,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Kills the shell and everything it started (`SIGKILL`: clients see exit code 137).
    async fn kill(&self) {
        let killer = self
            .terminal
            .lock()
            .await
            .as_ref()
            .map(|t| t.killer.clone());
        if let Some(k) = killer {
            let _ = k.kill(libc::SIGKILL).await;
        }
    }
}

/// Reads the terminal and tells clients what it printed, until the shell exited and its
/// output is drained (the terminal closed by everyone, or quiet for a while); its exit code.
async fn pump(pty: &Pty, master: &AsyncFd<OwnedFd>, mut child: process::Child) -> i32 {
    let mut exit = child.exit_watch();
    let mut buf = vec![0u8; 32 * 1024];
    let mut exited_at: Option<tokio::time::Instant> = None;
    loop {
        let idle = async {
            match exited_at {
                // After the exit: a short quiet spell ends it, and the grace in any case.
                Some(at) => {
                    let quiet = tokio::time::Instant::now() + Duration::from_millis(200);
                    tokio::time::sleep_until(quiet.min(at + DRAIN_GRACE)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = read_some(master, &mut buf) => match read {
                // EOF or EIO: every holder of the terminal closed it.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = pty.events.send(Event::Output(bytes::Bytes::copy_from_slice(&buf[..n])));
                }
            },
            changed = exit.wait_for(std::option::Option::is_some), if exited_at.is_none() => {
                let _ = changed;
                exited_at = Some(tokio::time::Instant::now());
            }
            () = idle => break,
        }
    }
    child.wait().await
}

/// One read from the terminal (0 or an error: it is closed).
async fn read_some(master: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut ready = master.readable().await?;
        match ready.try_io(|fd| {
            // SAFETY: read(2) into a live buffer from a descriptor we own.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast::<libc::c_void>(),
                    buf.len(),
                )
            };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }) {
            Ok(r) => return r,
            Err(_would_block) => {}
        }
    }
}

fn nonblocking(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl(2) on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(fd)
}

fn gone(message: &str) -> Failure {
    Failure::new(StatusCode::GONE, message.to_string())
}

/// Every PTY session of every sandbox, by (sandbox id, session id).
#[derive(Default)]
pub struct Ptys {
    map: tokio::sync::Mutex<HashMap<(String, String), Arc<Pty>>>,
}

impl Ptys {
    async fn get(&self, sandbox: &str, id: &str) -> Option<Arc<Pty>> {
        self.map
            .lock()
            .await
            .get(&(sandbox.to_string(), id.to_string()))
            .cloned()
    }

    /// Removes a session, if the entry is still this one.
    async fn forget(&self, pty: &Arc<Pty>) {
        let mut map = self.map.lock().await;
        let key = (pty.sandbox.clone(), pty.id.clone());
        if map.get(&key).is_some_and(|p| Arc::ptr_eq(p, pty)) {
            map.remove(&key);
        }
    }

    /// Kills and forgets every PTY session of a sandbox (it stops or is deleted).
    pub async fn drop_sandbox(&self, sandbox: &str) {
        let gone: Vec<Arc<Pty>> = {
            let mut map = self.map.lock().await;
            let keys: Vec<_> = map.keys().filter(|(s, _)| s == sandbox).cloned().collect();
            keys.into_iter().filter_map(|k| map.remove(&k)).collect()
        };
        for p in gone {
            p.kill().await;
        }
    }

    /// Creates a session (409 when the id is taken) and starts it unless `lazy`.
    async fn create(
        &self,
        sbx: &Sbx,
        id: String,
        cwd: String,
        envs: StringMap,
        (cols, rows): (u32, u32),
        lazy: bool,
    ) -> Result<Arc<Pty>, Failure> {
        let pty = {
            let mut map = self.map.lock().await;
            let key = (sbx.id.clone(), id.clone());
            if map.contains_key(&key) {
                return Err(Failure::conflict(format!(
                    "PTY session with ID '{id}' already exists"
                )));
            }
            let pty = Arc::new(Pty {
                id,
                sandbox: sbx.id.clone(),
                info: std::sync::Mutex::new(Info {
                    cwd,
                    envs,
                    cols,
                    rows,
                    created_at: crate::error::now_rfc3339(),
                    lazy_start: lazy,
                    active: false,
                }),
                terminal: tokio::sync::Mutex::new(None),
                exit: watch::channel(None).0,
                events: broadcast::channel(CLIENT_BACKLOG).0,
                input: tokio::sync::Mutex::new(()),
            });
            map.insert(key, pty.clone());
            pty
        };
        if !lazy {
            if let Err(e) = pty.start(sbx).await {
                self.forget(&pty).await;
                return Err(e);
            }
        }
        Ok(pty)
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/process/pty", post(create).get(list))
        .route("/process/pty/create-connect", get(create_connect))
        .route("/process/pty/{session_id}", get(get_one).delete(remove))
        .route("/process/pty/{session_id}/connect", get(connect))
        .route("/process/pty/{session_id}/resize", post(resize))
}

type Params = Path<Vec<(String, String)>>;

fn session_id(p: &[(String, String)]) -> String {
    p.iter()
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The session's settings as the daemon defaults and checks them.
fn settings(
    id: Option<&str>,
    cwd: Option<&str>,
    envs: Option<StringMap>,
    cols: Option<u32>,
    rows: Option<u32>,
) -> Result<(String, String, StringMap, (u32, u32)), Failure> {
    let id = id.unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(Failure::bad_request("session ID is required"));
    }
    if id.len() > MAX_ID || id.contains(['/', '\0']) {
        return Err(Failure::bad_request(format!("invalid session ID {id:?}")));
    }
    let (cols, rows) = (cols.unwrap_or(80), rows.unwrap_or(24));
    if cols > MAX_SIDE || rows > MAX_SIDE {
        return Err(Failure::bad_request(
            "invalid value for cols or rows - must be at most 1000",
        ));
    }
    let mut envs = envs.unwrap_or_default();
    super::process::check_env(&envs)?;
    envs.entry("TERM".into())
        .or_insert_with(|| "xterm-256color".into());
    let cwd = cwd
        .filter(|c| !c.is_empty())
        .unwrap_or(WORK_DIR)
        .to_string();
    Ok((id, cwd, envs, (cols.max(1), rows.max(1))))
}

/// `POST /process/pty`: 201 `{sessionId}`.
async fn create(sbx: Sbx, JsonBody(req): JsonBody<PtyCreateRequest>) -> Result<Response, Failure> {
    let (id, cwd, envs, size) = settings(
        req.id.as_deref(),
        req.cwd.as_deref(),
        req.envs,
        req.cols,
        req.rows,
    )?;
    let lazy = req.lazy_start.unwrap_or(false);
    sbx.state
        .sessions
        .ptys
        .create(&sbx, id.clone(), cwd, envs, size, lazy)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PtyCreateResponse { session_id: id }),
    )
        .into_response())
}

/// `GET /process/pty`: `{sessions}`.
async fn list(sbx: Sbx) -> Json<PtyListResponse> {
    let map = sbx.state.sessions.ptys.map.lock().await;
    let mut sessions: Vec<PtySessionInfo> = map
        .iter()
        .filter(|((s, _), _)| *s == sbx.id)
        .map(|(_, p)| p.wire())
        .collect();
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Json(PtyListResponse { sessions })
}

fn not_found() -> Failure {
    Failure::not_found("PTY session not found")
}

async fn get_one(sbx: Sbx, Path(p): Params) -> Result<Json<PtySessionInfo>, Failure> {
    let pty = sbx
        .state
        .sessions
        .ptys
        .get(&sbx.id, &session_id(&p))
        .await
        .ok_or_else(not_found)?;
    Ok(Json(pty.wire()))
}

/// `DELETE /process/pty/{id}`: kills the shell and its tree; 200 `{message}`.
async fn remove(sbx: Sbx, Path(p): Params) -> Result<Response, Failure> {
    let ptys = &sbx.state.sessions.ptys;
    let pty = ptys
        .get(&sbx.id, &session_id(&p))
        .await
        .ok_or_else(not_found)?;
    ptys.forget(&pty).await;
    pty.kill().await;
    Ok(Json(serde_json::json!({"message": "PTY session deleted"})).into_response())
}

/// `POST /process/pty/{id}/resize`: the new size (`TIOCSWINSZ`: the foreground job gets
/// SIGWINCH); the session's info. 410 once the shell exited or before a lazy start.
async fn resize(
    sbx: Sbx,
    Path(p): Params,
    JsonBody(req): JsonBody<PtyResizeRequest>,
) -> Result<Json<PtySessionInfo>, Failure> {
    if !(1..=MAX_SIDE).contains(&req.cols) || !(1..=MAX_SIDE).contains(&req.rows) {
        return Err(Failure::bad_request(
            "cols and rows must be between 1 and 1000",
        ));
    }
    let pty = sbx
        .state
        .sessions
        .ptys
        .get(&sbx.id, &session_id(&p))
        .await
        .ok_or_else(|| gone("PTY session not found"))?;
    {
        let terminal = pty.terminal.lock().await;
        let t = terminal
            .as_ref()
            .filter(|_| pty.exited().is_none())
            .ok_or_else(|| gone("cannot resize inactive PTY session"))?;
        process::resize(t.master.get_ref(), req.cols as u16, req.rows as u16)
            .map_err(|e| Failure::internal(format!("cannot resize the terminal: {e}")))?;
    }
    {
        let mut info = pty
            .info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        info.cols = req.cols;
        info.rows = req.rows;
    }
    Ok(Json(pty.wire()))
}

/// Whether the client offered the exit-control subprotocol.
fn wants_exit_control(ws: &WebSocketUpgrade) -> bool {
    ws.requested_protocols()
        .any(|p| p.as_bytes() == PTY_EXIT_CONTROL_SUBPROTOCOL.as_bytes())
}

/// The envs a create-connect client sends as `X-Daytona-Pty-Envs~<base64url JSON>`.
fn subprotocol_envs(headers: &HeaderMap) -> Result<Option<StringMap>, Failure> {
    for value in headers.get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL) {
        for proto in value.to_str().unwrap_or_default().split(',') {
            let Some(encoded) = proto.trim().strip_prefix(PTY_ENVS_SUBPROTOCOL_PREFIX) else {
                continue;
            };
            let invalid = || Failure::bad_request("invalid envs subprotocol");
            let bytes = base64url_decode(encoded).ok_or_else(invalid)?;
            let envs: StringMap = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
            return Ok(Some(envs));
        }
    }
    Ok(None)
}

/// Base64url (padding optional).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `GET /process/pty/{id}/connect` (WebSocket): attaches to a session, starting a lazy one.
async fn connect(
    sbx: Sbx,
    Path(p): Params,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let ws = ws.map_err(|_| Failure::bad_request("a WebSocket upgrade is required"))?;
    let exit_control = wants_exit_control(&ws);
    let pty = sbx.state.sessions.ptys.get(&sbx.id, &session_id(&p)).await;
    let ws = ws.protocols([PTY_EXIT_CONTROL_SUBPROTOCOL]);
    Ok(ws.on_upgrade(move |socket| async move {
        let Some(pty) = pty else {
            return refuse(socket, "PTY session not found".into()).await;
        };
        if let Err(e) = pty.start(&sbx).await {
            return refuse(socket, e.message).await;
        }
        attach(socket, pty, exit_control).await;
    }))
}

/// `GET /process/pty/create-connect?id=&cols=&rows=&cwd=` (WebSocket): creates a session
/// and attaches to it in one round trip.
async fn create_connect(
    sbx: Sbx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let side = |k: &str| query_get(&q, k).and_then(|v| v.parse::<u32>().ok());
    let envs = subprotocol_envs(&headers)?;
    let (id, cwd, envs, size) = settings(
        query_get(&q, "id"),
        query_get(&q, "cwd"),
        envs,
        side("cols"),
        side("rows"),
    )?;
    let ws = ws.map_err(|_| Failure::bad_request("a WebSocket upgrade is required"))?;
    if sbx.state.sessions.ptys.get(&sbx.id, &id).await.is_some() {
        return Err(Failure::conflict(format!(
            "PTY session with ID '{id}' already exists"
        )));
    }
    let exit_control = wants_exit_control(&ws);
    let ws = ws.protocols([PTY_EXIT_CONTROL_SUBPROTOCOL]);
    Ok(ws.on_upgrade(move |socket| async move {
        let created = sbx
            .state
            .sessions
            .ptys
            .create(&sbx, id, cwd, envs, size, false)
            .await;
        match created {
            Ok(pty) => attach(socket, pty, exit_control).await,
            Err(e) => {
                refuse(
                    socket,
                    format!("Failed to start PTY session: {}", e.message),
                )
                .await;
            }
        }
    }))
}

fn control(status: &str) -> PtyControl {
    PtyControl {
        kind: "control".into(),
        status: status.into(),
        ..Default::default()
    }
}

async fn send_control(socket: &mut WebSocket, msg: &PtyControl) -> bool {
    let text = serde_json::to_string(msg).unwrap_or_default();
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// The daemon's error control message, then a close.
async fn refuse(mut socket: WebSocket, error: String) {
    let mut msg = control("error");
    msg.error = Some(format!("Failed to connect to PTY session: {error}"));
    send_control(&mut socket, &msg).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// How the daemon words an exit code: for the close reason, and (in parentheses) for the
/// `exited` control message. `None` for 0.
fn exit_reason(code: i32) -> Option<String> {
    Some(match code {
        0 => return None,
        130 => "Ctrl+C".into(),
        137 => "SIGKILL".into(),
        143 => "SIGTERM".into(),
        c if c > 128 => format!("signal {}", c - 128),
        _ => "non-zero exit".into(),
    })
}

/// Tells a client the shell exited: the control message (when it asked for it), then the
/// close frame with the exit code in its reason.
async fn send_exit(socket: &mut WebSocket, code: i32, exit_control: bool) {
    let reason = exit_reason(code);
    if exit_control {
        let mut msg = control("exited");
        msg.exit_code = Some(code);
        msg.exit_reason = reason.as_ref().map(|r| format!("({r})"));
        send_control(socket, &msg).await;
    }
    let mut body = serde_json::json!({ "exitCode": code });
    if let Some(r) = reason {
        body["exitReason"] = serde_json::Value::String(r);
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: if code == 0 { 1000 } else { 1011 },
            reason: body.to_string().into(),
        })))
        .await;
}

/// One client of a started session: `connected`, then output out and input in until the
/// client leaves or the shell exits.
async fn attach(mut socket: WebSocket, pty: Arc<Pty>, exit_control: bool) {
    let mut events = pty.events.subscribe();
    if let Some(code) = pty.exited() {
        return send_exit(&mut socket, code, exit_control).await;
    }
    if !send_control(&mut socket, &control("connected")).await {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Output(bytes)) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Exit(code)) => return send_exit(&mut socket, code, exit_control).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: "slow consumer".into(),
                        })))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if pty.write(&data).await.is_err() {
                        return unavailable(socket).await;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if pty.write(text.as_bytes()).await.is_err() {
                        return unavailable(socket).await;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn unavailable(mut socket: WebSocket) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1011,
            reason: "PTY session unavailable".into(),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes_the_sdk_envs_token() {
        // `{"A":"1"}` as the SDK encodes it (base64url, no padding).
        assert_eq!(base64url_decode("eyJBIjoiMSJ9").unwrap(), br#"{"A":"1"}"#);
        assert!(base64url_decode("not base64!").is_none());
    }

    #[test]
    fn exit_reasons_are_the_daemons() {
        assert_eq!(exit_reason(0), None);
        assert_eq!(exit_reason(137).as_deref(), Some("SIGKILL"));
        assert_eq!(exit_reason(129).as_deref(), Some("signal 1"));
        assert_eq!(exit_reason(2).as_deref(), Some("non-zero exit"));
    }
}

//! The code interpreter (`/process/interpreter/…`): Python contexts that keep their state
//! between executions, and executions streamed over WebSocket as the official SDK's
//! `CodeInterpreter` speaks it.
//!
//! Each context is a Python process inside the sandbox (`interpreter_worker.py`, run as
//! `python3 -u -c`), started when the context is created (the `default` context at its first
//! use), as the sandbox's user in the context's `cwd`, with the sandbox's environment.
//! `GET /process/interpreter/execute` upgrades to a WebSocket; the client's first frame is
//! `{code, contextId?, timeout?, envs?}`; the answer is JSON text frames, each
//! `{type, text, name, value, traceback}`: `stdout` / `stderr` as the code prints (its own
//! `print`s and anything its subprocesses write), `error` for an exception (its name, value
//! and the traceback of the user's code only), then `control` `completed`, and a close 1000.
//! Executions of one context run one after another, in the order they came.
//!
//! A timeout (seconds, default 10 minutes, 0 for none) interrupts the code with SIGINT
//! (`control` `interrupted`), or after 2 s more kills the worker (its state is lost, the next
//! execution starts a new one); either way the socket closes with 4008, which the SDKs report
//! as a timeout. A worker that dies mid-execution ends it with an `error` chunk
//! (`WorkerProcessError`) and a close 1001. Contexts live as long as the backend process (a
//! worker reads its commands from the backend and ends when the backend goes away).

use super::{Sbx, Spawn};
use crate::container::process::{Child, Killer, Output, Spec};
use crate::error::Failure;
use crate::store::WORK_DIR;
use crate::util::JsonBody;
use crate::Shared;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use forge_wire::{
    CreateContextRequest, InterpreterChunk, InterpreterContext, InterpreterExecuteRequest,
    ListContextsResponse, StringMap, INTERPRETER_TIMEOUT_CLOSE,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The worker program (see its header for the protocol).
const WORKER: &str = include_str!("interpreter_worker.py");

/// The one language the daemon's interpreter speaks.
const PYTHON: &str = "python";

/// The context an execution without `contextId` runs in (never listed, never deleted).
const DEFAULT: &str = "default";

/// An execution's timeout when the request names none.
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(10);

/// How long interrupted code may take to stop before its worker is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Largest chunk line a worker may send (its reader sends at most 64 KiB of text at once).
const MAX_LINE: usize = 8 * 1024 * 1024;

/// A running worker of a context.
struct Worker {
    stdin: tokio::net::unix::pipe::Sender,
    chunks: mpsc::Receiver<InterpreterChunk>,
    killer: Killer,
    exit: tokio::sync::watch::Receiver<Option<i32>>,
}

impl Worker {
    fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }
}

/// One interpreter context.
pub struct Context {
    id: String,
    /// The working directory as the sandbox shows it.
    cwd: String,
    created_at: String,
    /// The worker, held by the execution that runs (executions queue on it, in order).
    worker: tokio::sync::Mutex<Option<Worker>>,
    /// Signals the current worker without waiting for the execution that holds it.
    killer: std::sync::Mutex<Option<Killer>>,
    alive: Arc<AtomicBool>,
}

impl Context {
    fn wire(&self) -> InterpreterContext {
        InterpreterContext {
            id: self.id.clone(),
            cwd: self.cwd.clone(),
            created_at: self.created_at.clone(),
            active: self.alive.load(Ordering::Relaxed),
            language: PYTHON.into(),
        }
    }

    async fn kill(&self) {
        let killer = self
            .killer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(k) = killer {
            let _ = k.kill(libc::SIGKILL).await;
        }
    }

    /// The context's worker, started (again) when there is none or it died.
    async fn ensure_worker<'a>(
        &self,
        sbx: &Sbx,
        slot: &'a mut Option<Worker>,
    ) -> Result<&'a mut Worker, Failure> {
        if !slot.as_ref().is_some_and(Worker::alive) {
            *slot = Some(self.start(sbx).await?);
        }
        slot.as_mut()
            .ok_or_else(|| Failure::internal("the interpreter did not start"))
    }

    async fn start(&self, sbx: &Sbx) -> Result<Worker, Failure> {
        let permit = crate::procs::command_slot(&sbx.state.commands)?;
        let resolved = sbx.root.resolve(&self.cwd)?;
        let dir = sbx.cmd_path(&resolved);
        let spec = Spec {
            argv: vec!["python3".into(), "-u".into(), "-c".into(), WORKER.into()],
            env: sbx.env(&dir, &StringMap::new()),
            cwd: dir,
            stdin: true,
            output: Output::Separate,
            fd3: None,
        };
        let mut child: Child = match sbx.spawn(spec).await {
            Ok(c) => c,
            Err(Spawn::Sandbox(f)) => return Err(f),
            Err(Spawn::Command(e)) if e.stage == "chdir" => {
                return Err(Failure::bad_request(format!(
                    "cannot start the interpreter in {}: {}",
                    resolved.shown, e.error
                )))
            }
            Err(Spawn::Command(e)) if e.stage == "exec" => {
                return Err(Failure::bad_request(format!(
                    "the sandbox has no python3 for the interpreter: {}",
                    e.error
                )))
            }
            Err(Spawn::Command(e)) => {
                return Err(Failure::internal(format!(
                    "cannot start the interpreter: {e}"
                )))
            }
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Failure::internal("the interpreter has no pipes"));
        };
        let (tx, chunks) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::with_capacity(64 * 1024, stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match tokio::io::AsyncReadExt::take(&mut lines, MAX_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let Ok(chunk) = serde_json::from_slice::<InterpreterChunk>(&line) else {
                    continue;
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        // The worker's own diagnostics (before it took over its fds): read and dropped.
        if let Some(mut stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            });
        }
        let killer = child.killer();
        let exit = child.exit_watch();
        *self
            .killer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(killer.clone());
        self.alive.store(true, Ordering::Relaxed);
        let alive = self.alive.clone();
        tokio::spawn(async move {
            child.wait().await;
            alive.store(false, Ordering::Relaxed);
            drop(permit);
        });
        Ok(Worker {
            stdin,
            chunks,
            killer,
            exit,
        })
    }
}

/// Every interpreter context of every sandbox, by (sandbox id, context id).
#[derive(Default)]
pub struct Contexts {
    map: tokio::sync::Mutex<HashMap<(String, String), Arc<Context>>>,
}

impl Contexts {
    fn new_context(id: String, cwd: String) -> Arc<Context> {
        Arc::new(Context {
            id,
            cwd,
            created_at: crate::error::now_rfc3339(),
            worker: tokio::sync::Mutex::new(None),
            killer: std::sync::Mutex::new(None),
            alive: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn get(&self, sandbox: &str, id: &str) -> Option<Arc<Context>> {
        self.map
            .lock()
            .await
            .get(&(sandbox.to_string(), id.to_string()))
            .cloned()
    }

    /// The sandbox's default context (made on first use).
    async fn default_context(&self, sandbox: &str) -> Arc<Context> {
        self.map
            .lock()
            .await
            .entry((sandbox.to_string(), DEFAULT.to_string()))
            .or_insert_with(|| Self::new_context(DEFAULT.into(), WORK_DIR.into()))
            .clone()
    }

    /// Kills every worker of a sandbox and forgets its contexts (it stops or is deleted).
    pub async fn drop_sandbox(&self, sandbox: &str) {
        let gone: Vec<Arc<Context>> = {
            let mut map = self.map.lock().await;
            let keys: Vec<_> = map.keys().filter(|(s, _)| s == sandbox).cloned().collect();
            keys.into_iter().filter_map(|k| map.remove(&k)).collect()
        };
        for c in gone {
            c.kill().await;
        }
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/process/interpreter/context",
            post(create_context).get(list_contexts),
        )
        .route("/process/interpreter/context/{id}", delete(delete_context))
        .route("/process/interpreter/execute", get(execute))
}

/// `POST /process/interpreter/context`: a new context with its worker running.
async fn create_context(
    sbx: Sbx,
    JsonBody(req): JsonBody<CreateContextRequest>,
) -> Result<Json<InterpreterContext>, Failure> {
    let language = req.language.as_deref().unwrap_or(PYTHON);
    if language != PYTHON {
        return Err(Failure::bad_request(format!(
            "unsupported language: {language} (only 'python' is supported currently)"
        )));
    }
    let cwd = req
        .cwd
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| sbx.root.resolve(c).map(|r| r.shown))
        .transpose()?
        .unwrap_or_else(|| WORK_DIR.to_string());
    let ctx = Contexts::new_context(crate::util::new_uuid(), cwd);
    {
        let mut worker = ctx.worker.lock().await;
        *worker = Some(ctx.start(&sbx).await?);
    }
    sbx.state
        .sessions
        .interpreters
        .map
        .lock()
        .await
        .insert((sbx.id.clone(), ctx.id.clone()), ctx.clone());
    Ok(Json(ctx.wire()))
}

/// `GET /process/interpreter/context`: the contexts made by users (not `default`).
async fn list_contexts(sbx: Sbx) -> Json<ListContextsResponse> {
    let map = sbx.state.sessions.interpreters.map.lock().await;
    let mut contexts: Vec<InterpreterContext> = map
        .iter()
        .filter(|((s, id), _)| *s == sbx.id && id != DEFAULT)
        .map(|(_, c)| c.wire())
        .collect();
    contexts.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Json(ListContextsResponse { contexts })
}

/// `DELETE /process/interpreter/context/{id}`: kills its worker.
async fn delete_context(
    sbx: Sbx,
    Path(p): Path<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let id = p
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if id == DEFAULT {
        return Err(Failure::bad_request("cannot delete default context"));
    }
    let removed = sbx
        .state
        .sessions
        .interpreters
        .map
        .lock()
        .await
        .remove(&(sbx.id.clone(), id.clone()));
    let ctx = removed.ok_or_else(|| {
        Failure::not_found(format!("context with ID '{id}' not found")).with_code("NOT_FOUND")
    })?;
    ctx.kill().await;
    Ok(Json(serde_json::json!({"message": "Context deleted successfully"})).into_response())
}

/// `GET /process/interpreter/execute` (WebSocket).
async fn execute(
    sbx: Sbx,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let ws = ws.map_err(|_| Failure::bad_request("a WebSocket upgrade is required"))?;
    Ok(ws.on_upgrade(move |socket| run(socket, sbx)))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await;
}

/// The first frame: the request (or why it is refused: a close code and reason).
async fn read_request(socket: &mut WebSocket) -> Result<InterpreterExecuteRequest, (u16, String)> {
    let first = loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => break t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => break b.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Err((1002, "failed to read first message".into())),
        }
    };
    let req: InterpreterExecuteRequest =
        serde_json::from_slice(&first).map_err(|_| (1002, "invalid JSON payload".into()))?;
    if req.code.is_empty() {
        return Err((1008, "code is required".into()));
    }
    if req.timeout.is_some_and(|t| t < 0) {
        return Err((1008, "timeout must be greater than or equal to 0".into()));
    }
    Ok(req)
}

/// One execution: the request, the context's worker (queued behind earlier executions), the
/// code sent to it, its chunks streamed until its control chunk, the close.
async fn run(mut socket: WebSocket, sbx: Sbx) {
    let req = match read_request(&mut socket).await {
        Ok(r) => r,
        Err((code, reason)) => return close(&mut socket, code, &reason).await,
    };
    let contexts = &sbx.state.sessions.interpreters;
    let ctx = match req.context_id.as_deref() {
        None => contexts.default_context(&sbx.id).await,
        Some(id) => match contexts.get(&sbx.id, id).await {
            Some(c) => c,
            None => return close(&mut socket, 1008, &format!("context not found: {id}")).await,
        },
    };
    let timeout = match req.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s as u64)),
    };
    let mut slot = ctx.worker.lock().await;
    let worker = match ctx.ensure_worker(&sbx, &mut slot).await {
        Ok(w) => w,
        Err(f) => return close(&mut socket, 1011, &f.message).await,
    };
    // Output of an earlier execution's leftovers (background threads) is not this one's.
    while worker.chunks.try_recv().is_ok() {}
    let mut command = serde_json::json!({ "code": req.code, "envs": req.envs }).to_string();
    command.push('\n');
    if worker.stdin.write_all(command.as_bytes()).await.is_err() {
        return close(&mut socket, 1011, "the interpreter is not running").await;
    }
    let started = tokio::time::Instant::now();
    let mut deadline = timeout.map(|t| started + t);
    let mut interrupted = false;
    let mut client = true;
    let end = loop {
        let wait = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            chunk = worker.chunks.recv() => if let Some(chunk) = chunk {
                let last = chunk.kind == "control";
                if client {
                    let text = serde_json::to_string(&chunk).unwrap_or_default();
                    client = socket.send(Message::Text(text.into())).await.is_ok();
                }
                if last {
                    break if interrupted { INTERPRETER_TIMEOUT_CLOSE } else { 1000 };
                }
            } else {
                // The worker died mid-execution (killed, or the code ended the process). Its
                // exit is awaited before the answer, so that the next execution never finds
                // it still counted alive (its output closes before it is reaped).
                let code = worker.exit.clone().wait_for(std::option::Option::is_some).await.map_or(-1, |c| (*c).unwrap_or(-1));
                if interrupted {
                    break INTERPRETER_TIMEOUT_CLOSE;
                }
                let chunk = InterpreterChunk {
                    kind: "error".into(),
                    name: "WorkerProcessError".into(),
                    value: format!("the interpreter process exited (code {code}); its state is lost"),
                    ..Default::default()
                };
                if client {
                    let text = serde_json::to_string(&chunk).unwrap_or_default();
                    let _ = socket.send(Message::Text(text.into())).await;
                }
                break 1001;
            },
            () = wait => {
                if interrupted {
                    // It did not stop: the worker goes (the next execution starts a new one).
                    let _ = worker.killer.kill(libc::SIGKILL).await;
                    deadline = None;
                } else {
                    // ^C to the code; a little while to stop.
                    interrupted = true;
                    let _ = worker.killer.kill(libc::SIGINT).await;
                    deadline = Some(tokio::time::Instant::now() + INTERRUPT_GRACE);
                }
            }
            msg = socket.recv(), if client => {
                // The client may leave; the execution still runs to its end, as the daemon's.
                if matches!(msg, None | Some(Err(_) | Ok(Message::Close(_)))) {
                    client = false;
                }
            }
        }
    };
    drop(slot);
    if client {
        let reason = if end == 1001 {
            "worker process ended"
        } else {
            ""
        };
        close(&mut socket, end, reason).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_worker_is_valid_python_source() {
        // Compiled by the tests that run it; here only that it is there and self-contained.
        assert!(super::WORKER.contains("def main():"));
        assert!(!super::WORKER.contains('\0'));
    }
}

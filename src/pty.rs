//! PTY sessions in JS: `sandbox.process.createPty` / `connectPty` and the session calls, with
//! the official SDK's names, over the client's [`Pty`](forge_daytona::Pty).
//!
//! Output reaches `onData` through the binding's one callback mechanism ([`JsCallback`]): each
//! call waits for the previous one (and the promise it returned), so a slow callback slows the
//! socket down and nothing is dropped. A callback that throws (or rejects) disconnects this
//! client: the shell in the sandbox lives on (`connectPty` attaches again), and `wait()`
//! rejects with `DAYTONA_CALLBACK_ERROR`.

use crate::callback::JsCallback;
use crate::client::into;
use crate::error::{Code, Rejection};
use crate::events::callback_option;
use crate::process::{toolbox_call, SandboxProcess};
use crate::promise::{spawn_promise, Pending};
use forge_daytona::{CallOptions, PtyOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// The `onData` callback: `(data: Uint8Array) => unknown`.
type DataCallback = JsCallback<Buffer>;

/// A PTY session as the daemon describes it.
#[napi(object)]
#[derive(Clone, Default)]
pub struct PtySessionInfo {
    pub id: String,
    /// The shell's working directory.
    pub cwd: String,
    /// The extra environment the session was created with.
    pub envs: HashMap<String, String>,
    pub cols: u32,
    pub rows: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Whether its shell runs (false before a lazily created session's first connect).
    pub active: bool,
    pub lazy_start: bool,
}

impl From<forge_wire::PtySessionInfo> for PtySessionInfo {
    fn from(s: forge_wire::PtySessionInfo) -> Self {
        PtySessionInfo {
            id: s.id,
            cwd: s.cwd,
            envs: s.envs.into_iter().collect(),
            cols: s.cols,
            rows: s.rows,
            created_at: s.created_at,
            active: s.active,
            lazy_start: s.lazy_start,
        }
    }
}

/// How a PTY's shell ended (the official SDK's `PtyResult`).
#[napi(object)]
#[derive(Clone, Default)]
pub struct PtyResult {
    /// The shell's exit code (137 after `kill()`).
    pub exit_code: i32,
    /// The daemon's reason when not 0 (`SIGKILL`, `non-zero exit`, ...).
    pub error: Option<String>,
}

// ------------------------------------------------------------ TypeScript descriptions only

/// The options of `createPty`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct PtyCreateOptions {
    /// The session's id, unique in the sandbox.
    pub id: String,
    /// Working directory (the sandbox's work dir by default).
    pub cwd: Option<String>,
    /// Extra environment of the shell.
    pub envs: Option<HashMap<String, String>>,
    /// Terminal width, 1..=1000 (default 80).
    pub cols: Option<u32>,
    /// Terminal height, 1..=1000 (default 24).
    pub rows: Option<u32>,
    /// Gets the terminal's output as it comes; each call waits for the previous one (and the
    /// promise it returned). One that throws disconnects this client (the shell lives on) and
    /// makes `wait()` reject with `DAYTONA_CALLBACK_ERROR`.
    #[napi(ts_type = "(data: Uint8Array) => unknown")]
    pub on_data: Option<serde_json::Value>,
}

/// The options of `connectPty`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct PtyConnectOptions {
    /// As `createPty`'s `onData`.
    #[napi(ts_type = "(data: Uint8Array) => unknown")]
    pub on_data: Option<serde_json::Value>,
}

// ------------------------------------------------------------ the handle

/// The onData delivery: running, or how it ended.
enum Delivery {
    Running(JoinHandle<std::result::Result<(), Rejection>>),
    Done(std::result::Result<(), Rejection>),
}

/// One client of a PTY session (`createPty` / `connectPty`): input in, output to `onData`,
/// the exit code from `wait()`.
#[napi]
pub struct PtyHandle {
    inner: Arc<forge_daytona::PtyHandle>,
    delivery: Arc<Mutex<Delivery>>,
}

impl PtyHandle {
    /// Starts feeding the handle's output to `on_data` (read and dropped without one).
    async fn start(inner: forge_daytona::PtyHandle, on_data: Option<DataCallback>) -> Self {
        let inner = Arc::new(inner);
        let mut out = inner.take_output().await;
        let owner = inner.clone();
        let task = tokio::spawn(async move {
            let Some(out) = out.as_mut() else {
                return Ok(());
            };
            while let Some(bytes) = out.next_chunk().await {
                if let Some(cb) = &on_data {
                    if let Err(e) = cb.call("onData", Buffer::from(bytes)).await {
                        owner.disconnect();
                        return Err(e);
                    }
                }
            }
            Ok(())
        });
        PtyHandle {
            inner,
            delivery: Arc::new(Mutex::new(Delivery::Running(task))),
        }
    }
}

#[napi]
impl PtyHandle {
    /// The session's id.
    #[napi(getter)]
    pub fn session_id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// Writes to the terminal: text (a command and a newline; the byte 3 is Ctrl+C) or bytes.
    /// `DAYTONA_CONNECTION` once this client is disconnected.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_input(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "string | Uint8Array")] data: Either<String, Uint8Array>,
    ) -> Result<Pending<()>> {
        let bytes = match data {
            Either::A(s) => s.into_bytes(),
            Either::B(b) => b.to_vec(),
        };
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            inner.send_input(bytes).await.map_err(into)
        })
    }

    /// Resizes the terminal (the foreground program gets SIGWINCH); the session's info.
    #[napi(ts_return_type = "Promise<PtySessionInfo>")]
    pub fn resize(&self, env: &Env, cols: u32, rows: u32) -> Result<Pending<PtySessionInfo>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            inner.resize(cols, rows).await.map(Into::into).map_err(into)
        })
    }

    /// Kills the shell (SIGKILL): `wait()` then gives exit code 137.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn kill(&self, env: &Env) -> Result<Pending<()>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            inner.kill().await.map_err(into)
        })
    }

    /// Waits for the shell to exit, after every `onData` call for its output has returned:
    /// `{ exitCode, error }`. Rejects with `DAYTONA_CALLBACK_ERROR` when `onData` threw, and
    /// with `DAYTONA_CONNECTION` when this client was disconnected first.
    #[napi(ts_return_type = "Promise<PtyResult>")]
    pub fn wait(&self, env: &Env) -> Result<Pending<PtyResult>> {
        let (inner, delivery) = (self.inner.clone(), self.delivery.clone());
        spawn_promise(env, None, move |_| async move {
            let exit = inner.wait().await;
            let delivered = {
                let mut d = delivery.lock().await;
                if let Delivery::Running(task) = &mut *d {
                    let r = task.await.unwrap_or_else(|_| {
                        Err(Rejection::of(Code::Internal, "the onData task panicked"))
                    });
                    *d = Delivery::Done(r);
                }
                match &*d {
                    Delivery::Done(r) => r.clone(),
                    Delivery::Running(_) => Ok(()),
                }
            };
            delivered?;
            let e = exit.map_err(into)?;
            Ok::<_, Rejection>(PtyResult {
                exit_code: e.exit_code,
                error: e.reason,
            })
        })
    }

    /// Closes this client's connection; the session and its shell live on.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect(&self, env: &Env) -> Result<Pending<()>> {
        self.inner.disconnect();
        spawn_promise(env, None, |_| async { Ok::<_, Rejection>(()) })
    }
}

// ------------------------------------------------------------ sandbox.process

/// `options[name]` as `T` (`undefined` when absent).
fn field<T: FromNapiValue + ValidateNapiValue>(options: &Object, name: &str) -> Result<Option<T>> {
    options.get::<T>(name)
}

#[napi]
impl SandboxProcess {
    /// Creates a PTY session (a login shell on a real terminal) and connects to it in one
    /// round trip, as the official SDK's `createPty` does. Resolves once connected.
    #[napi(ts_return_type = "Promise<PtyHandle>")]
    pub fn create_pty(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "PtyCreateOptions")] options: Object,
    ) -> Result<Pending<PtyHandle>> {
        let on_data: Option<DataCallback> = callback_option(env, Some(&options), "onData")?;
        let o = PtyOptions {
            id: field::<String>(&options, "id")?.unwrap_or_default(),
            cwd: field(&options, "cwd")?,
            envs: field::<HashMap<String, String>>(&options, "envs")?
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cols: field(&options, "cols")?,
            rows: field(&options, "rows")?,
        };
        toolbox_call(env, &self.core, None, move |tb, cancel| async move {
            let h = tb
                .pty()
                .create_and_connect(&o, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)?;
            Ok(PtyHandle::start(h, on_data).await)
        })
    }

    /// Connects to an existing PTY session (another client of the same terminal, or again
    /// after a disconnect). `DAYTONA_NOT_FOUND` for an unknown id.
    #[napi(ts_return_type = "Promise<PtyHandle>")]
    pub fn connect_pty(
        &self,
        env: &Env,
        session_id: String,
        #[napi(ts_arg_type = "PtyConnectOptions")] options: Option<Object>,
    ) -> Result<Pending<PtyHandle>> {
        let on_data: Option<DataCallback> = callback_option(env, options.as_ref(), "onData")?;
        toolbox_call(env, &self.core, None, move |tb, cancel| async move {
            let h = tb
                .pty()
                .connect(&session_id, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)?;
            Ok(PtyHandle::start(h, on_data).await)
        })
    }

    /// Every PTY session of the sandbox.
    #[napi(ts_return_type = "Promise<PtySessionInfo[]>")]
    pub fn list_pty_sessions(&self, env: &Env) -> Result<Pending<Vec<PtySessionInfo>>> {
        toolbox_call(env, &self.core, None, |tb, _| async move {
            let all = tb.pty().list().await.map_err(into)?;
            Ok(all.into_iter().map(Into::into).collect())
        })
    }

    /// One PTY session. `DAYTONA_NOT_FOUND` for an unknown (or exited) id.
    #[napi(ts_return_type = "Promise<PtySessionInfo>")]
    pub fn get_pty_session_info(
        &self,
        env: &Env,
        session_id: String,
    ) -> Result<Pending<PtySessionInfo>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.pty()
                .get(&session_id)
                .await
                .map(Into::into)
                .map_err(into)
        })
    }

    /// Resizes a PTY session's terminal; its info.
    #[napi(ts_return_type = "Promise<PtySessionInfo>")]
    pub fn resize_pty_session(
        &self,
        env: &Env,
        session_id: String,
        cols: u32,
        rows: u32,
    ) -> Result<Pending<PtySessionInfo>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.pty()
                .resize(&session_id, cols, rows)
                .await
                .map(Into::into)
                .map_err(into)
        })
    }

    /// Kills a PTY session's shell (SIGKILL) and removes the session.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn kill_pty_session(&self, env: &Env, session_id: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.pty().delete(&session_id).await.map_err(into)
        })
    }
}

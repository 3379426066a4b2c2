//! Live session-command logs in JS (named `logs` as in the client's and the backend's
//! toolbox): user callbacks and an async iterator over the client's
//! [`LogStream`](forge_daytona::LogStream).
//!
//! Both are pull-based: the next chunk is read from the (bounded) stream only after the
//! previous one was handed over — the callback returned (and its promise settled) or the
//! iterator's `next()` was called again — so a slow consumer slows the socket down and
//! nothing is dropped. A callback that throws ends the stream as a typed rejection (see
//! [`JsCallback`]).

use crate::callback::JsCallback;
use crate::client::into;
use crate::error::Rejection;
use crate::process::toolbox_call;
use crate::promise::{spawn_promise, Pending};
use crate::sandbox::SandboxCore;
use crate::toolbox_dto::{LogChunk, LogIteratorResult};
use forge_daytona::{CallOptions, CancellationToken, LogStream, LogStreamKind};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use tokio::sync::Mutex;

/// A user callback receiving one piece of text (`(chunk: string) => unknown`).
pub type LogCallback = JsCallback<String>;

/// Feeds the stream to the callbacks until the command exits (the stream ends). A stream
/// without a callback is read and dropped.
pub(crate) async fn stream_to_callbacks(
    mut stream: LogStream,
    on_stdout: Option<LogCallback>,
    on_stderr: Option<LogCallback>,
) -> std::result::Result<(), Rejection> {
    while let Some(chunk) = stream.next_chunk().await {
        let chunk = chunk.map_err(into)?;
        let (cb, which) = match chunk.stream {
            LogStreamKind::Stdout => (&on_stdout, "onStdout"),
            LogStreamKind::Stderr => (&on_stderr, "onStderr"),
        };
        if let Some(cb) = cb {
            cb.call(which, chunk.data).await?;
        }
    }
    Ok(())
}

enum IterState {
    /// Not opened yet: the socket opens on the first `next()`.
    Idle,
    Open(LogStream),
    Done,
}

/// The live output of a session command as an async iterator of `{ stream, data }` chunks
/// (`for await (const chunk of stream)`), ending when the command exits. Opened on the first
/// `next()`; `return()` (what `break` calls) closes it.
#[napi]
pub struct SessionLogStream {
    core: Arc<SandboxCore>,
    session_id: String,
    command_id: String,
    state: Arc<Mutex<IterState>>,
    closed: CancellationToken,
}

impl SessionLogStream {
    pub(crate) fn new(core: Arc<SandboxCore>, session_id: String, command_id: String) -> Self {
        SessionLogStream {
            core,
            session_id,
            command_id,
            state: Arc::new(Mutex::new(IterState::Idle)),
            closed: CancellationToken::new(),
        }
    }
}

fn chunk_result(c: forge_daytona::LogChunk) -> LogIteratorResult {
    let stream = match c.stream {
        LogStreamKind::Stdout => "stdout",
        LogStreamKind::Stderr => "stderr",
    };
    LogIteratorResult {
        done: false,
        value: Some(LogChunk {
            stream: stream.to_owned(),
            data: c.data,
        }),
    }
}

const DONE: LogIteratorResult = LogIteratorResult {
    done: true,
    value: None,
};

#[napi]
impl SessionLogStream {
    /// The next chunk, or `{ done: true }` once the command has exited. Calls are served in
    /// order. An aborted `next()` loses nothing: the chunk stays for the next call.
    #[napi(ts_return_type = "Promise<IteratorResult<LogChunk, undefined>>")]
    pub fn next(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<LogIteratorResult>> {
        let state = self.state.clone();
        let closed = self.closed.clone();
        let (sid, cid) = (self.session_id.clone(), self.command_id.clone());
        toolbox_call(env, &self.core, signal, move |tb, _| async move {
            let mut st = state.lock().await;
            if closed.is_cancelled() {
                *st = IterState::Done;
            }
            if matches!(*st, IterState::Idle) {
                let process = tb.process();
                let opts = CallOptions::new();
                let open = process.stream_session_command_logs(&sid, &cid, &opts);
                let opened = tokio::select! {
                    () = closed.cancelled() => None,
                    s = open => Some(s),
                };
                match opened {
                    Some(Ok(s)) => *st = IterState::Open(s),
                    Some(Err(e)) => {
                        *st = IterState::Done;
                        return Err(into(e));
                    }
                    None => *st = IterState::Done,
                }
            }
            let IterState::Open(stream) = &mut *st else {
                return Ok(DONE);
            };
            let next = tokio::select! {
                () = closed.cancelled() => None,
                c = stream.next_chunk() => c,
            };
            match next {
                Some(Ok(c)) => Ok(chunk_result(c)),
                Some(Err(e)) => {
                    *st = IterState::Done;
                    Err(into(e))
                }
                None => {
                    *st = IterState::Done;
                    Ok(DONE)
                }
            }
        })
    }

    /// Closes the stream (what `break` in `for await` calls); later `next()` calls are done.
    #[napi(
        js_name = "return",
        ts_return_type = "Promise<IteratorResult<LogChunk, undefined>>"
    )]
    pub fn close(&self, env: &Env) -> Result<Pending<LogIteratorResult>> {
        self.closed.cancel();
        let state = self.state.clone();
        close_promise(env, state)
    }

    /// `for await` support: the stream is its own iterator.
    #[napi(well_known_symbol = "asyncIterator", ts_return_type = "this")]
    #[allow(clippy::unused_self)] // napi-rs methods take `&self`
    pub fn async_iterator<'a>(&self, this: This<'a>) -> Object<'a> {
        this.object
    }
}

/// Resolves `{ done: true }` after the stream is dropped (waits for an in-flight `next()`,
/// which the cancelled token ends at once).
fn close_promise(env: &Env, state: Arc<Mutex<IterState>>) -> Result<Pending<LogIteratorResult>> {
    spawn_promise(env, None, move |_| async move {
        *state.lock().await = IterState::Done;
        Ok::<_, Rejection>(DONE)
    })
}

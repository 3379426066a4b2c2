//! The pipeline's stream in JS: its progress events and its commands' output lines
//! (`forge_preview::pipeline::log_lines`), delivered to `onProgress` / `onLog` callbacks
//! ([`EventPump`]) or pulled through an async iterator ([`PreviewEvents`]).
//!
//! Both read the core's one ordered queue, so a consumer sees "install started", the
//! install's lines, then "install finished". Both are pull-based: the next event is taken only
//! after the previous one was handed over (the callback returned and its promise settled, or
//! `next()` was called again), and the queue holds few lines, so a slow consumer slows down
//! the reading of the command's log and nothing is dropped.

use crate::callback::JsCallback;
use crate::client::{Daytona, Inner};
use crate::error::{Detail, IntoRejection, Rejection};
use crate::json::Json;
use crate::pipeline::preview_inputs;
use crate::promise::{spawn_promise, token_for, Pending};
use forge_daytona::{CallOptions, CancellationToken};
use forge_preview::pipeline::log_lines::LOG_CAPACITY;
use forge_preview::pipeline::{
    self as core, log_channel, LogLine, LogReceiver, PipelineEvent, Progress,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A progress callback: `(event: PreviewProgress) => unknown`.
pub(crate) type ProgressCallback = JsCallback<Json<Progress>>;
/// A log-line callback: `(line: PreviewLogLine) => unknown`.
pub(crate) type LogLineCallback = JsCallback<Json<LogLine>>;

/// The function `options[name]`, if given; anything else but `undefined`/`null` is a typed
/// invalid-argument error naming the option.
pub(crate) fn callback_option<T: ToNapiValue + 'static>(
    env: &Env,
    options: Option<&Object>,
    name: &str,
) -> Result<Option<JsCallback<T>>> {
    let Some(options) = options else {
        return Ok(None);
    };
    match options.get::<Unknown>(name)? {
        Some(v) if v.get_type()? == ValueType::Function => {
            // SAFETY: checked to be a function just above.
            Ok(Some(unsafe {
                JsCallback::<T>::from_napi_value(env.raw(), v.raw())?
            }))
        }
        Some(v) if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => {
            Err(Rejection::invalid(format!("{name} must be a function")).into_js(env))
        }
        _ => Ok(None),
    }
}

/// Delivers the queue's events to the callbacks in order, off the work's path. A callback that
/// throws or rejects cancels the work (which then cleans up: a running command is killed, a
/// failed pipeline's sandbox deleted) and its error is what the call rejects with; nothing
/// more is delivered.
pub(crate) struct EventPump {
    task: tokio::task::JoinHandle<()>,
    error: Arc<Mutex<Option<Rejection>>>,
}

impl EventPump {
    pub(crate) fn start(
        mut rx: LogReceiver,
        on_progress: Option<ProgressCallback>,
        on_log: Option<LogLineCallback>,
        cancel: CancellationToken,
    ) -> EventPump {
        let error = Arc::new(Mutex::new(None));
        let err = error.clone();
        let task = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let (step, called) = match e {
                    PipelineEvent::Progress { progress } => {
                        match (&on_progress, Json::of(&progress)) {
                            (Some(cb), Ok(json)) => {
                                (progress.step, cb.call("onProgress", json).await)
                            }
                            _ => continue,
                        }
                    }
                    PipelineEvent::Log { log } => match (&on_log, Json::of(&log)) {
                        (Some(cb), Ok(json)) => (log.step, cb.call("onLog", json).await),
                        _ => continue,
                    },
                };
                if let Err(mut f) = called {
                    f.details = vec![("step", Detail::Str(step.as_str().to_owned()))];
                    if let Ok(mut slot) = err.lock() {
                        slot.get_or_insert(f);
                    }
                    cancel.cancel();
                    // Dropping the queue ends every follow; progress goes nowhere.
                    return;
                }
            }
        });
        EventPump { task, error }
    }

    /// Waits until every event was delivered (every sender dropped); the callback's error, if
    /// one threw.
    pub(crate) async fn finish(self) -> Option<Rejection> {
        let _ = self.task.await;
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

/// The work's answer, or the callback's error when a callback threw and the work failed (it
/// was cancelled because of it). Work that finished before the cancellation keeps its answer.
pub(crate) fn settle<T: Serialize, E: IntoRejection>(
    r: std::result::Result<T, E>,
    callback_error: Option<Rejection>,
) -> std::result::Result<Json<T>, Rejection> {
    match (r, callback_error) {
        (Ok(v), _) => Json::of(&v),
        (Err(_), Some(cb)) => Err(cb),
        (Err(e), None) => Err(e.into_rejection()),
    }
}

/// Where the pipeline stands for the iterator.
enum Outcome {
    Running(tokio::sync::oneshot::Receiver<std::result::Result<core::PreviewResult, Rejection>>),
    /// The result was handed out (or the iterator was closed).
    Done,
}

/// The pipeline's events as an async iterator (`for await (const e of events)`): `{ type:
/// 'progress', progress }`, `{ type: 'log', log }`, and last `{ type: 'result', result }`; a
/// failure rejects `next()` with the pipeline's `DaytonaError`. The pipeline starts at once
/// and waits for the reader once a few lines are unread. `return()` (what `break` calls)
/// cancels it: a sandbox it made is deleted, also when the preview was ready but its result not
/// yet read. An iterator dropped without `return()` stops being fed, but its pipeline runs on to
/// its end (pass `signal` to bound it).
#[napi]
pub struct PreviewEvents {
    inner: Arc<Inner>,
    rx: Arc<tokio::sync::Mutex<Option<LogReceiver>>>,
    outcome: Arc<tokio::sync::Mutex<Outcome>>,
    cancel: CancellationToken,
}

/// How long `return()` waits for a cancelled pipeline to clean up.
const CLOSE_TIMEOUT: Duration = Duration::from_mins(2);

fn item<T: Serialize>(value: &T) -> std::result::Result<Json<serde_json::Value>, Rejection> {
    Json::of(&serde_json::json!({ "done": false, "value": value }))
}

fn done() -> std::result::Result<Json<serde_json::Value>, Rejection> {
    Json::of(&serde_json::json!({ "done": true }))
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Last<'a> {
    Result { result: &'a core::PreviewResult },
}

#[napi]
impl PreviewEvents {
    /// The next event; after the `result` event, `{ done: true }`. Calls are served in order.
    #[napi(
        ts_return_type = "Promise<IteratorResult<{ type: 'progress'; progress: PreviewProgress } | { type: 'log'; log: PreviewLogLine } | { type: 'result'; result: PreviewResult }, undefined>>"
    )]
    pub fn next(&self, env: &Env) -> Result<Pending<Json<serde_json::Value>>> {
        let (rx, outcome) = (self.rx.clone(), self.outcome.clone());
        spawn_promise(env, None, move |_| async move {
            let mut rx = rx.lock().await;
            if let Some(r) = rx.as_mut() {
                if let Some(e) = r.recv().await {
                    return item(&e);
                }
                *rx = None;
            }
            let mut st = outcome.lock().await;
            match std::mem::replace(&mut *st, Outcome::Done) {
                Outcome::Running(h) => match h.await {
                    Ok(Ok(result)) => item(&Last::Result { result: &result }),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Rejection::of(
                        crate::error::Code::Internal,
                        "the pipeline's task ended without an answer",
                    )),
                },
                Outcome::Done => done(),
            }
        })
    }

    /// Stops reading (what `break` in `for await` calls): cancels the pipeline and resolves
    /// once it has cleaned up.
    #[napi(
        js_name = "return",
        ts_return_type = "Promise<IteratorResult<never, undefined>>"
    )]
    pub fn close(&self, env: &Env) -> Result<Pending<Json<serde_json::Value>>> {
        self.cancel.cancel();
        let (rx, outcome, inner) = (self.rx.clone(), self.outcome.clone(), self.inner.clone());
        spawn_promise(env, None, move |_| async move {
            // Unread lines no longer hold the pipeline back.
            drop(rx.lock().await.take());
            let mut st = outcome.lock().await;
            if let Outcome::Running(h) = std::mem::replace(&mut *st, Outcome::Done) {
                // Ready before the cancellation reached it: its sandbox was never handed out.
                if let Ok(Ok(Ok(r))) = tokio::time::timeout(CLOSE_TIMEOUT, h).await {
                    let client = inner.client().await?;
                    let opts = CallOptions::new().with_timeout(Duration::from_mins(1));
                    client
                        .delete(&r.sandbox_id, false, &opts)
                        .await
                        .map_err(crate::client::into)?;
                }
            }
            done()
        })
    }

    /// `for await` support: the object is its own iterator.
    #[napi(well_known_symbol = "asyncIterator", ts_return_type = "this")]
    #[allow(clippy::unused_self)] // napi-rs methods take `&self`
    pub fn async_iterator<'a>(&self, this: This<'a>) -> Object<'a> {
        this.object
    }
}

#[napi]
impl Daytona {
    /// `cloneAndPreview` as an async iterator of its events, for a UI that shows them live
    /// (e.g. as server-sent events): every progress event, every line of the install's and the
    /// dev server's output, then the result. Same options as `cloneAndPreview` but
    /// `onProgress` and `onLog` (the iterator yields them). A failure rejects the pending
    /// `next()` with the same `DaytonaError` `cloneAndPreview` rejects with; `signal` aborts.
    ///
    /// ```js
    /// for await (const e of daytona.cloneAndPreviewEvents({ repoUrl })) {
    ///   if (e.type === 'log') console.log(`[${e.log.step}] ${e.log.line}`)
    ///   else if (e.type === 'result') console.log(e.result.previewUrl)
    /// }
    /// ```
    #[napi(ts_args_type = "options: Omit<CloneAndPreviewOptions, 'onProgress' | 'onLog'>")]
    pub fn clone_and_preview_events(&self, env: Env, options: Object) -> Result<PreviewEvents> {
        for name in ["onProgress", "onLog"] {
            if options.has_named_property(name)? {
                let v: Unknown = options.get_named_property(name)?;
                if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) {
                    return Err(Rejection::invalid(format!(
                        "{name} is not an option of cloneAndPreviewEvents: the iterator yields its events"
                    ))
                    .into_js(&env));
                }
            }
        }
        let cancel = token_for(&env, crate::promise::signal_of(Some(&options))?)?;
        let (create, mut req) = preview_inputs(
            &env,
            options.to_unknown(),
            "cloneAndPreviewEvents options",
            &["onProgress", "onLog"],
        )?;
        let (sink, rx) = log_channel(LOG_CAPACITY);
        req.log = sink.clone();
        let inner = self.inner.clone();
        let token = cancel.clone();
        let (tx, answer) = tokio::sync::oneshot::channel();
        napi::bindgen_prelude::spawn(async move {
            let run = async {
                let client = inner.client().await?;
                let report = move |p: Progress| sink.progress(p);
                let call = CallOptions::new().with_cancel(token);
                core::clone_and_preview(&client, &create, &req, &report, &call)
                    .await
                    .map_err(IntoRejection::into_rejection)
            };
            let _ = tx.send(run.await);
        });
        Ok(PreviewEvents {
            inner: self.inner.clone(),
            rx: Arc::new(tokio::sync::Mutex::new(Some(rx))),
            outcome: Arc::new(tokio::sync::Mutex::new(Outcome::Running(answer))),
            cancel,
        })
    }
}

// ------------------------------------------------------------ TypeScript descriptions only

/// The optional last argument of `installDependencies`, `startDevServer` and `verifyPreview`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct StreamingStepOptions {
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<serde_json::Value>,
    /// Gets the command's output line by line while the step runs; each call waits for the
    /// previous one (and the promise it returned), so a slow callback slows the reading down
    /// and no line is lost. A callback that throws cancels the step (a running install is
    /// killed), which rejects with `DAYTONA_CALLBACK_ERROR`; a step that had already finished
    /// keeps its answer.
    #[napi(ts_type = "(line: PreviewLogLine) => unknown")]
    pub on_log: Option<serde_json::Value>,
}

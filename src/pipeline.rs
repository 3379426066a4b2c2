//! JS face of the clone → preview pipeline (`forge_preview::pipeline`): `cloneAndPreview` and
//! each step on its own, as methods of `Daytona`.
//!
//! Inputs and outputs are plain JSON-serialisable objects, because Inngest serialises every
//! step result between runs: what `createSandbox` returns can be stored and handed to
//! `cloneRepository` in another process. They cross the boundary as JSON (one `JSON.stringify`
//! in, one `JSON.parse` out); their TypeScript is generated from the core's types (`typings.rs`).

use crate::client::{create_params, read_options, Daytona};
use crate::dto::CreateSandboxOptions;
use crate::error::{IntoRejection, Rejection};
use crate::events::{callback_option, settle, EventPump, LogLineCallback, ProgressCallback};
use crate::json::{fields_of, Json};
use crate::promise::{signal_of, spawn_promise, Pending};
use forge_daytona::CreateParams;
use forge_daytona::{CallOptions, CancellationToken};
use forge_preview::pipeline::log_lines::LOG_CAPACITY;
use forge_preview::pipeline::{self as core, log_channel, LogSink, PreviewRequest, Progress};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

fn call_options(cancel: CancellationToken) -> CallOptions {
    CallOptions::new().with_cancel(cancel)
}

/// Options of `cloneAndPreview` besides the sandbox's creation options (all of
/// `CreateSandboxOptions` apply too; `CloneAndPreviewOptions` in the typings is both).
#[derive(Deserialize, Default, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "PipelineOptions", optional_fields = nullable)]
pub(crate) struct PreviewOptionsJson {
    /// `https://github.com/owner/repo` (or any git URL the sandbox can reach).
    repo_url: String,
    branch: Option<String>,
    commit_id: Option<String>,
    /// A GitHub token (sent as the clone's password, never in the URL).
    token: Option<String>,
    /// Defaults to `x-access-token` when `token` is given.
    username: Option<String>,
    /// Where to clone, relative to the work dir. Default `workspace/project`.
    path: Option<String>,
    depth: Option<u32>,
    /// Keep the sandbox when a step fails (it is deleted otherwise).
    keep_on_failure: Option<bool>,
    /// The app folder of a monorepo, instead of the automatic pick.
    root: Option<String>,
    /// Use this port instead of the framework's default.
    port: Option<u16>,
    install_command: Option<String>,
    dev_command: Option<String>,
    install_timeout_ms: Option<u64>,
    /// Default 60 000 (180 000 for Next.js, Angular, Nuxt, Gatsby, Docusaurus).
    verify_timeout_ms: Option<u64>,
    /// Also reach the install and the dev server.
    env_vars: Option<BTreeMap<String, String>>,
    /// `false`: never restore or store `node_modules` in the embedded backend's dependency
    /// cache (on by default there: a second preview of the same repository and lockfile
    /// skips its install; Daytona has no such cache and ignores this).
    dependency_cache: Option<bool>,
    /// Also load the preview in a headless browser once it answers over HTTP (see
    /// `VerifyPreviewInput.browser`).
    browser: Option<forge_preview::browser::BrowserSetting>,
}

impl PreviewOptionsJson {
    fn into_request(self) -> PreviewRequest {
        PreviewRequest {
            clone: core::CloneInput {
                sandbox_id: String::new(),
                repo_url: self.repo_url,
                branch: self.branch,
                commit_id: self.commit_id,
                token: self.token,
                username: self.username,
                path: self.path,
                depth: self.depth,
            },
            upload_from: None,
            keep_on_failure: self.keep_on_failure.unwrap_or(false),
            root: self.root,
            port: self.port,
            install_command: self.install_command,
            dev_command: self.dev_command,
            env_vars: self.env_vars.unwrap_or_default(),
            install_timeout: self.install_timeout_ms.map(Duration::from_millis),
            verify_timeout: self.verify_timeout_ms.map(Duration::from_millis),
            dependency_cache: self.dependency_cache,
            browser: self
                .browser
                .as_ref()
                .and_then(forge_preview::browser::BrowserSetting::options),
            log: LogSink::none(),
        }
    }
}

/// The sandbox's creation parameters and the pipeline's request in `cloneAndPreview`'s
/// options (shared by `cloneAndPreviewEvents`). One object, two readers: each accepts the
/// other's keys, `signal` and the callbacks in `callbacks`; any other key is refused with a
/// "did you mean".
pub(crate) fn preview_inputs(
    env: &Env,
    raw: Unknown,
    what: &str,
    callbacks: &[&str],
) -> Result<(CreateParams, PreviewRequest)> {
    let create_keys = [fields_of::<CreateSandboxOptions>(), &["signal"], callbacks].concat();
    let preview_keys = [fields_of::<PreviewOptionsJson>(), &["signal"], callbacks].concat();
    let create: CreateSandboxOptions = Json::read_with(env, raw, what, &preview_keys)?;
    let create = create_params(create).map_err(|f| f.into_js(env))?;
    let json: PreviewOptionsJson = Json::read_with(env, raw, what, &create_keys)?;
    if json.repo_url.trim().is_empty() {
        return Err(Rejection::invalid("repoUrl is required").into_js(env));
    }
    Ok((create, json.into_request()))
}

#[napi]
impl Daytona {
    /// Takes a repository to a verified live preview: creates a sandbox, clones the repository
    /// (the token goes in the request, never in the URL or the sandbox's git config), detects
    /// the framework, installs dependencies (`NODE_OPTIONS` sized from the sandbox's memory),
    /// starts the dev server in a session with the detected host and port, and waits until the
    /// preview answers like a working app (two good answers in a row; no fixed sleeps).
    ///
    /// Rejects with a `DaytonaError` whose `step` names the failed step (`create`, `clone`,
    /// `detect`, `install`, `start`, `verify`), with `logTail` (the install's or the dev
    /// server's last lines), and for verification `reason` and `excerpt` (the framework's error
    /// text). The sandbox is deleted on failure unless `keepOnFailure` (then `kept: true`).
    /// `onProgress` gets a `PreviewProgress` at the start and end of every step; `onLog` gets
    /// the install's and then the dev server's output as `PreviewLogLine`s, in order with the
    /// progress events (`cloneAndPreviewEvents` gives both as an async iterator); aborting
    /// `signal` stops the current step (a running install is killed) and cleans up the same way.
    ///
    /// ```js
    /// const r = await daytona.cloneAndPreview({ repoUrl, token, workspaceClass: 'medium', public: true,
    ///   onProgress: (e) => console.log(e.step, e.status, e.stepMs) })
    /// r.previewUrl // verified
    /// ```
    #[napi(
        ts_args_type = "options: CloneAndPreviewOptions",
        ts_return_type = "Promise<PreviewResult>"
    )]
    pub fn clone_and_preview(
        &self,
        env: Env,
        options: Unknown,
    ) -> Result<Pending<Json<core::PreviewResult>>> {
        let what = "cloneAndPreview options";
        if options.get_type()? != ValueType::Object {
            return Err(Rejection::invalid(format!("{what} must be an object")).into_js(&env));
        }
        let raw = options;
        // SAFETY: checked to be an object just above.
        let options: Object = unsafe { options.cast()? };
        let signal = signal_of(Some(&options))?;
        let on_progress: Option<ProgressCallback> =
            callback_option(&env, Some(&options), "onProgress")?;
        let on_log: Option<LogLineCallback> = callback_option(&env, Some(&options), "onLog")?;
        let (create, mut req) = preview_inputs(&env, raw, what, &["onProgress", "onLog"])?;
        let inner = self.inner.clone();
        spawn_promise(&env, signal, move |cancel| async move {
            let client = inner.client().await?;
            let child = cancel.child_token();
            // Progress and lines share one ordered queue; the commands are followed only when
            // someone reads their lines.
            let (sink, rx) = log_channel(LOG_CAPACITY);
            if on_log.is_some() {
                req.log = sink.clone();
            }
            let pump = EventPump::start(rx, on_progress, on_log, child.clone());
            let report = move |p: Progress| sink.progress(p);
            let r = core::clone_and_preview(&client, &create, &req, &report, &call_options(child))
                .await;
            drop((report, req));
            settle(r, pump.finish().await)
        })
    }

    /// Step 1 on its own: creates a sandbox and waits until it is started. Returns
    /// `{ sandboxId, state, public, memoryGib, elapsedMs }` (JSON-serialisable, for
    /// `step.run`). With `idempotencyKey` (e.g. `${event.id}:create-sandbox`) a retried step
    /// returns the sandbox the first attempt made instead of making a second one.
    #[napi(
        ts_args_type = "options?: CreateSandboxOptions | null, opts?: StepOptions",
        ts_return_type = "Promise<CreatedSandbox>"
    )]
    pub fn create_sandbox(
        &self,
        env: Env,
        options: Option<Unknown>,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Created>>> {
        let options = read_options(&env, options, "createSandbox options")?;
        let params = create_params(options).map_err(|f| f.into_js(&env))?;
        let inner = self.inner.clone();
        spawn_promise(&env, signal_of(opts.as_ref())?, move |cancel| async move {
            let client = inner.client().await?;
            let r = core::create_sandbox(&client, &params, &call_options(cancel)).await;
            Json::of(&r.map_err(IntoRejection::into_rejection)?)
        })
    }

    /// Step 2: clones a repository into the sandbox (default folder `workspace/project`,
    /// shallow). `token` is sent as the password of `username` (default `x-access-token`).
    #[napi(
        ts_args_type = "input: CloneRepositoryInput, opts?: StepOptions",
        ts_return_type = "Promise<ClonedRepository>"
    )]
    pub fn clone_repository(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Cloned>>> {
        let input: core::CloneInput = Json::read(&env, input, "cloneRepository input")?;
        self.step(env, opts, move |client, call| async move {
            core::clone_repository(&client, &input, &call).await
        })
    }

    /// Step 3: detects the framework of the cloned repository (two round trips). Returns the
    /// same `FrameworkDetection` as `detectFramework`, with the dev command already carrying
    /// the sandbox's preview host.
    #[napi(
        ts_args_type = "input: DetectFrameworkInput, opts?: StepOptions",
        ts_return_type = "Promise<FrameworkDetection>"
    )]
    pub fn detect_framework(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<forge_detect::Detection>>> {
        let input: core::DetectInput = Json::read(&env, input, "detectFramework input")?;
        self.step(env, opts, move |client, call| async move {
            core::detect_framework(&client, &input, &call).await
        })
    }

    /// Step 4: installs dependencies (detected command unless `command` is given), killed
    /// after `timeoutMs` (default 900 000). Rejects with `PREVIEW_INSTALL_FAILED`, `exitCode`
    /// and `logTail` on a non-zero exit. `opts.onLog` gets the install's output line by line.
    #[napi(
        ts_args_type = "input: InstallDependenciesInput, opts?: StreamingStepOptions",
        ts_return_type = "Promise<InstalledDependencies>"
    )]
    pub fn install_dependencies(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Installed>>> {
        let input: core::InstallInput = Json::read(&env, input, "installDependencies input")?;
        self.streamed_step(env, opts, move |client, log, call| async move {
            core::install_dependencies(&client, &input, &log, &call).await
        })
    }

    /// Step 5: starts the dev server in its own session and returns at once with
    /// `{ sessionId, commandId, port, command }`; `verifyPreview` waits for it. `opts.onLog`
    /// gets the lines the server printed before this returns (often none); `verifyPreview`'s
    /// `onLog` streams its output from its start (replayed) through verification.
    #[napi(
        ts_args_type = "input: StartDevServerInput, opts?: StreamingStepOptions",
        ts_return_type = "Promise<StartedDevServer>"
    )]
    pub fn start_dev_server(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Started>>> {
        let input: core::StartInput = Json::read(&env, input, "startDevServer input")?;
        self.streamed_step(env, opts, move |client, log, call| async move {
            core::start_dev_server(&client, &input, &log, &call).await
        })
    }

    /// Step 6: waits until the preview answers like a working app. Rejects with
    /// `PREVIEW_VERIFY_FAILED` and `reason` (`FRAMEWORK_ERROR`, `PROCESS_EXITED`, `CRASHED`,
    /// `AUTH_REDIRECT`, `BLOCKED_HOST`, `WARNING_PAGE`, `TIMEOUT`, ...), `excerpt` and `logTail`.
    /// With `sessionId` and `commandId`, `opts.onLog` gets the dev server's output line by line
    /// from its start (the log is replayed: lines `startDevServer` delivered come again)
    /// through verification.
    #[napi(
        ts_args_type = "input: VerifyPreviewInput, opts?: StreamingStepOptions",
        ts_return_type = "Promise<VerifiedPreview>"
    )]
    pub fn verify_preview(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Verified>>> {
        let input: core::VerifyInput = Json::read(&env, input, "verifyPreview input")?;
        self.streamed_step(env, opts, move |client, log, call| async move {
            core::verify_preview(&client, &input, &log, &call).await
        })
    }

    /// The guide's health check: `{ isAlive, state, preview }`. An unknown sandbox answers
    /// `isAlive: false` instead of rejecting; with `port`, one quick probe of its preview.
    #[napi(
        ts_args_type = "input: CheckHealthInput, opts?: StepOptions",
        ts_return_type = "Promise<SandboxHealth>"
    )]
    pub fn check_health(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Health>>> {
        let input: core::HealthInput = Json::read(&env, input, "checkHealth input")?;
        self.step(env, opts, move |client, call| async move {
            core::check_health(&client, &input, &call).await
        })
    }

    /// The guide's auto-restart: starts the sandbox if needed, stops the old dev server
    /// (`sessionId`), starts it again and verifies the preview.
    #[napi(
        ts_args_type = "input: RestartPreviewInput, opts?: StepOptions",
        ts_return_type = "Promise<RestartedPreview>"
    )]
    pub fn restart_preview(
        &self,
        env: Env,
        input: Unknown,
        opts: Option<Object>,
    ) -> Result<Pending<Json<core::Restarted>>> {
        let input: core::RestartInput = Json::read(&env, input, "restartPreview input")?;
        self.step(env, opts, move |client, call| async move {
            core::restart_preview(&client, &input, &call).await
        })
    }
}

impl Daytona {
    /// Runs one step whose command's output goes to `opts.onLog`, line by line (see
    /// [`EventPump`]); without it, like [`Daytona::step`].
    fn streamed_step<T, F, Fut>(
        &self,
        env: Env,
        opts: Option<Object>,
        work: F,
    ) -> Result<Pending<Json<T>>>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(forge_daytona::Client, LogSink, CallOptions) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = std::result::Result<T, forge_preview::PreviewError>>
            + Send
            + 'static,
    {
        let on_log: Option<LogLineCallback> = callback_option(&env, opts.as_ref(), "onLog")?;
        let inner = self.inner.clone();
        spawn_promise(&env, signal_of(opts.as_ref())?, move |cancel| async move {
            let client = inner.client().await?;
            let child = cancel.child_token();
            let Some(on_log) = on_log else {
                let r = work(client, LogSink::none(), call_options(child)).await;
                return settle(r, None);
            };
            let (sink, rx) = log_channel(LOG_CAPACITY);
            let pump = EventPump::start(rx, None, Some(on_log), child.clone());
            let r = work(client, sink, call_options(child)).await;
            settle(r, pump.finish().await)
        })
    }

    /// Runs one step with the client and the call's cancellation.
    fn step<T, F, Fut>(&self, env: Env, opts: Option<Object>, work: F) -> Result<Pending<Json<T>>>
    where
        T: Serialize + 'static,
        F: FnOnce(forge_daytona::Client, CallOptions) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = std::result::Result<T, forge_preview::PreviewError>>
            + Send
            + 'static,
    {
        let inner = self.inner.clone();
        spawn_promise(&env, signal_of(opts.as_ref())?, move |cancel| async move {
            let client = inner.client().await?;
            let v = work(client, call_options(cancel))
                .await
                .map_err(IntoRejection::into_rejection)?;
            Json::of(&v)
        })
    }
}

/// Closes the headless browser that the browser check (`browser: true`) keeps warm between
/// checks (it closes by itself after a minute without one, and with the process). For hosts
/// that freeze an idle process, or a benchmark's cold start.
#[napi]
pub async fn close_preview_browser() {
    forge_preview::browser::shutdown().await;
}

// The TypeScript of the JSON inputs and outputs above is generated from their Rust types
// (`typings.rs`); this one is not JSON.

/// The optional last argument of every step: `{ signal }`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct StepOptions {
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<serde_json::Value>,
}

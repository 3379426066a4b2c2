//! `sandbox.process`: commands, code and sessions inside a sandbox.
//!
//! Timeouts: `executeCommand`, `exec` and `executeSessionCommand` take **seconds** (as the
//! guide and Daytona do); `codeRun` takes **milliseconds**, as the guide's example does
//! (`5000 // 5 second timeout`), rounded up to whole seconds on the wire.

use crate::client::{into, read_options};
use crate::dto::ExecuteResponse;
use crate::error::{Code, Rejection};
use crate::logs::{stream_to_callbacks, LogCallback, SessionLogStream};
use crate::promise::{spawn_promise, Pending};
use crate::sandbox::SandboxCore;
use crate::toolbox_dto::{
    CodeRunParams, CodeRunResult, ExecOptions, ExecResult, SessionCommandLogs,
    SessionCommandStatus, SessionExecuteRequest, SessionExecuteResponse, SessionInfo,
};
use forge_daytona::shell::quote;
use forge_daytona::{CallOptions, CancellationToken, ExecOptions as CoreExecOptions, Toolbox};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs `work` with the sandbox's toolbox as a promise (see [`spawn_promise`]): the one shape
/// of every `fs` / `git` / `process` method.
pub(crate) fn toolbox_call<T, F, Fut>(
    env: &Env,
    core: &Arc<SandboxCore>,
    signal: Option<Object>,
    work: F,
) -> Result<Pending<T>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce(Toolbox, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, Rejection>> + Send + 'static,
{
    spawn_promise(env, signal, with_toolbox(core, work))
}

/// `work` given the sandbox's toolbox (resolved once per handle).
fn with_toolbox<T, F, Fut>(
    core: &Arc<SandboxCore>,
    work: F,
) -> impl FnOnce(
    CancellationToken,
) -> std::pin::Pin<Box<dyn Future<Output = std::result::Result<T, Rejection>> + Send>>
where
    T: Send + 'static,
    F: FnOnce(Toolbox, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, Rejection>> + Send + 'static,
{
    let core = core.clone();
    move |cancel| {
        Box::pin(async move {
            let tb = core.toolbox().await?;
            work(tb, cancel).await
        })
    }
}

/// Whole seconds (0 = none) as a duration.
fn seconds(t: Option<u32>) -> Option<Duration> {
    t.filter(|t| *t > 0)
        .map(|t| Duration::from_secs(u64::from(t)))
}

/// Call options with a cancel token and an optional timeout in seconds.
fn call_opts(cancel: CancellationToken, timeout: Option<u32>) -> CallOptions {
    let opts = CallOptions::new().with_cancel(cancel);
    match seconds(timeout) {
        Some(t) => opts.with_timeout(t),
        None => opts,
    }
}

/// Removes the daemon's stream markers (`\x01\x01\x01`, `\x02\x02\x02`) from combined output.
fn strip_markers(s: String) -> String {
    if s.contains('\u{1}') || s.contains('\u{2}') {
        s.replace("\u{1}\u{1}\u{1}", "")
            .replace("\u{2}\u{2}\u{2}", "")
    } else {
        s
    }
}

/// Process execution inside a sandbox (`sandbox.process`).
#[napi]
pub struct SandboxProcess {
    pub(crate) core: Arc<SandboxCore>,
}

impl SandboxProcess {
    pub(crate) fn new(core: Arc<SandboxCore>) -> Self {
        SandboxProcess { core }
    }
}

#[napi]
impl SandboxProcess {
    /// Runs a shell command and waits for it: `{ exitCode, result }` with stdout and stderr
    /// combined, as Daytona returns them. `cwd` defaults to the sandbox work dir (relative
    /// paths resolve against it); `env` adds variables; `timeout` is in **seconds** and kills
    /// the command (rejecting with `DAYTONA_TIMEOUT`).
    #[napi(ts_return_type = "Promise<ExecuteResponse>")]
    pub fn execute_command(
        &self,
        env: &Env,
        command: String,
        cwd: Option<String>,
        #[napi(ts_arg_type = "Record<string, string>")] env_vars: Option<HashMap<String, String>>,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<ExecuteResponse>> {
        let core = self.core.clone();
        // With a signal the command is sent killable, so that aborting also stops it inside
        // the sandbox; without one it goes as it is (no wrapper cost).
        let killable = signal.is_some();
        spawn_promise(env, signal, move |cancel| async move {
            let tb = core.toolbox().await?;
            let o = CoreExecOptions {
                cwd,
                env: env_vars.unwrap_or_default().into_iter().collect(),
                timeout: timeout
                    .filter(|t| *t > 0)
                    .map(|t| Duration::from_secs(u64::from(t))),
            };
            let call = CallOptions::new().with_cancel(cancel);
            let process = tb.process();
            let r = if killable {
                process.execute_killable(&command, &o, &call).await
            } else {
                process.execute(&command, &o, &call).await
            }
            .map_err(into)?;
            Ok::<_, Rejection>(ExecuteResponse {
                exit_code: r.exit_code,
                result: r.result,
            })
        })
    }

    /// The guide's `exec`: `{ stdout, stderr, exitCode }` with the two streams really
    /// separate (run as a session command). `timeout` is in **seconds**; past it, or when
    /// `signal` aborts, the command is killed and the call rejects (`DAYTONA_TIMEOUT` /
    /// `DAYTONA_ABORTED`).
    #[napi(
        ts_args_type = "command: string, options?: ExecOptions | null, signal?: AbortSignal",
        ts_return_type = "Promise<ExecResult>"
    )]
    pub fn exec(
        &self,
        env: &Env,
        command: String,
        options: Option<Unknown>,
        signal: Option<Object>,
    ) -> Result<Pending<ExecResult>> {
        let o: ExecOptions = read_options(env, options, "exec options")?;
        let exec = CoreExecOptions {
            cwd: o.cwd,
            env: o.env.unwrap_or_default().into_iter().collect(),
            timeout: seconds(o.timeout),
        };
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            // Spawned: an abort drops this future, but the exec itself must see the cancel
            // and delete its session, which kills the command.
            let run = tokio::spawn(async move {
                tb.process()
                    .exec(&command, &exec, &CallOptions::new().with_cancel(cancel))
                    .await
            });
            let r = run
                .await
                .map_err(|e| Rejection::of(Code::Internal, format!("exec task failed: {e}")))?
                .map_err(into)?;
            Ok(ExecResult {
                stdout: r.stdout,
                stderr: r.stderr,
                exit_code: r.exit_code,
            })
        })
    }

    /// Runs a code snippet with the sandbox's language (TypeScript/JavaScript on its node):
    /// `{ exitCode, result }`. `params.argv` become `process.argv[2..]`, `params.env` extra
    /// variables. `timeout` is in **milliseconds** (as in the guide), rounded up to whole
    /// seconds; past it the run is killed and the call rejects with `DAYTONA_TIMEOUT`.
    #[napi(
        ts_args_type = "code: string, params?: CodeRunParams | null, timeout?: number | undefined | null, signal?: AbortSignal",
        ts_return_type = "Promise<CodeRunResult>"
    )]
    pub fn code_run(
        &self,
        env: &Env,
        code: String,
        params: Option<Unknown>,
        timeout: Option<u32>,
        signal: Option<Object>,
    ) -> Result<Pending<CodeRunResult>> {
        let p: CodeRunParams = read_options(env, params, "codeRun params")?;
        let run = forge_daytona::CodeRunParams {
            argv: p.argv.unwrap_or_default(),
            env: p.env.unwrap_or_default().into_iter().collect(),
            timeout: timeout
                .filter(|t| *t > 0)
                .map(|t| Duration::from_millis(u64::from(t))),
        };
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let r = tb
                .process()
                .code_run(&code, &run, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)?;
            Ok(CodeRunResult {
                exit_code: r.exit_code,
                result: r.result,
            })
        })
    }

    /// Creates a background session: a shell whose directory and exported variables last
    /// from one command to the next.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_session(&self, env: &Env, session_id: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.process().create_session(&session_id).await.map_err(into)
        })
    }

    /// A session and its commands.
    #[napi(ts_return_type = "Promise<SessionInfo>")]
    pub fn get_session(&self, env: &Env, session_id: String) -> Result<Pending<SessionInfo>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let s = tb.process().get_session(&session_id).await.map_err(into)?;
            Ok(SessionInfo::from(s))
        })
    }

    /// Every session of the sandbox.
    #[napi(ts_return_type = "Promise<Array<SessionInfo>>")]
    pub fn list_sessions(&self, env: &Env) -> Result<Pending<Vec<SessionInfo>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let list = tb.process().list_sessions().await.map_err(into)?;
            Ok(list.into_iter().map(SessionInfo::from).collect())
        })
    }

    /// Deletes a session, killing whatever still runs in it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_session(&self, env: &Env, session_id: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.process().delete_session(&session_id).await.map_err(into)
        })
    }

    /// Runs a command in a session. With `runAsync: true` it resolves at once with
    /// `{ cmdId }`; otherwise when the command has exited, with its `exitCode` and output.
    /// `cwd` applies to this command only (it runs in a subshell there). `timeout` (seconds)
    /// bounds the wait of a synchronous command.
    #[napi(ts_return_type = "Promise<SessionExecuteResponse>")]
    pub fn execute_session_command(
        &self,
        env: &Env,
        session_id: String,
        request: SessionExecuteRequest,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<SessionExecuteResponse>> {
        let run_async = request.run_async.or(request.legacy_async).unwrap_or(false);
        let command = match &request.cwd {
            Some(cwd) => quote(cwd)
                // Newlines, not `;`: a trailing `# comment` in the command must not swallow
                // the closing parenthesis.
                .map(|q| format!("(cd {q} || exit\n{}\n)", request.command))
                .map_err(into),
            None => Ok(request.command),
        };
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let command = command?;
            let r = tb
                .process()
                .execute_session_command(
                    &session_id,
                    &command,
                    run_async,
                    &call_opts(cancel, timeout),
                )
                .await
                .map_err(into)?;
            Ok(SessionExecuteResponse {
                cmd_id: r.cmd_id,
                exit_code: r.exit_code,
                output: r.output.map(strip_markers),
                stdout: r.stdout,
                stderr: r.stderr,
            })
        })
    }

    /// The guide's `getSessionCommandStatus`: `{ id, command, exitCode?, isRunning }`.
    #[napi(ts_return_type = "Promise<SessionCommandStatus>")]
    pub fn get_session_command_status(
        &self,
        env: &Env,
        session_id: String,
        command_id: String,
    ) -> Result<Pending<SessionCommandStatus>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let c = tb
                .process()
                .get_session_command(&session_id, &command_id)
                .await
                .map_err(into)?;
            Ok(SessionCommandStatus {
                id: c.id,
                command: c.command,
                is_running: c.exit_code.is_none(),
                exit_code: c.exit_code,
            })
        })
    }

    /// The official SDK's name of `getSessionCommandStatus`.
    #[napi(ts_return_type = "Promise<SessionCommandStatus>")]
    pub fn get_session_command(
        &self,
        env: &Env,
        session_id: String,
        command_id: String,
    ) -> Result<Pending<SessionCommandStatus>> {
        self.get_session_command_status(env, session_id, command_id)
    }

    /// Without callbacks: the command's output so far, `{ stdout, stderr }`.
    ///
    /// With `onStdout` / `onStderr`: follows the output live until the command exits, calling
    /// each callback with pieces of text in order (a piece may hold several lines or part of
    /// one), waiting for each call (and for the promise it returns, if any) before reading
    /// more, so a slow callback loses nothing. Resolves with empty `stdout`/`stderr` (the
    /// text went to the callbacks). A callback that throws (or whose promise rejects) stops
    /// the stream and rejects with `code: 'DAYTONA_CALLBACK_ERROR'`.
    #[napi(ts_return_type = "Promise<SessionCommandLogs>")]
    pub fn get_session_command_logs(
        &self,
        env: &Env,
        session_id: String,
        command_id: String,
        #[napi(ts_arg_type = "(chunk: string) => unknown")] on_stdout: Option<LogCallback>,
        #[napi(ts_arg_type = "(chunk: string) => unknown")] on_stderr: Option<LogCallback>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<SessionCommandLogs>> {
        let follow = on_stdout.is_some() || on_stderr.is_some();
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            if follow {
                let stream = tb
                    .process()
                    .stream_session_command_logs(
                        &session_id,
                        &command_id,
                        &CallOptions::new().with_cancel(cancel),
                    )
                    .await
                    .map_err(into)?;
                stream_to_callbacks(stream, on_stdout, on_stderr).await?;
                return Ok(SessionCommandLogs::default());
            }
            let logs = tb
                .process()
                .get_session_command_logs(&session_id, &command_id)
                .await
                .map_err(into)?;
            Ok(SessionCommandLogs {
                stdout: logs.stdout,
                stderr: logs.stderr,
            })
        })
    }

    /// The live output of a command as an async iterator of `{ stream, data }` chunks,
    /// ending when the command exits: `for await (const c of process.streamSessionCommandLogs(id, cmdId))`.
    /// Nothing is read ahead beyond a small bounded buffer; `break` closes the stream.
    #[napi]
    pub fn stream_session_command_logs(
        &self,
        session_id: String,
        command_id: String,
    ) -> SessionLogStream {
        SessionLogStream::new(self.core.clone(), session_id, command_id)
    }

    /// Writes `data` to the command's stdin.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_session_command_input(
        &self,
        env: &Env,
        session_id: String,
        command_id: String,
        data: String,
    ) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.process()
                .send_session_command_input(&session_id, &command_id, &data)
                .await
                .map_err(into)
        })
    }

    /// The guide's `killSessionCommand`: kills the command's whole process group. Daytona's
    /// own API lacks this route (it answers `DAYTONA_NOT_FOUND`); `deleteSession` works there.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn kill_session_command(
        &self,
        env: &Env,
        session_id: String,
        command_id: String,
    ) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.process()
                .kill_session_command(&session_id, &command_id)
                .await
                .map_err(into)
        })
    }
}

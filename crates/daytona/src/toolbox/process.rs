//! `sandbox.process`: one-shot execute, code run, sessions and their logs
//! (daytona-wire.md §7).

use super::killable::{self, KillOutcome};
use super::logs::{self, LogStream};
use super::Toolbox;
use crate::call::{CallOptions, Deadline};
use crate::client::seg;
use crate::error::{ApiError, Error, Result};
use crate::fetch::Method;
use crate::http::parse_json;
use crate::retry::RetryClass;
use crate::shell::{env_name, quote};
use forge_wire::{
    CodeRunRequest, CodeRunResponse, CreateSessionRequest, ExecuteRequest, ExecuteResponse,
    Session, SessionCommand, SessionCommandLogsResponse, SessionExecuteRequest,
    SessionExecuteResponse, SessionSendInputRequest, StringMap,
};
use std::time::Duration;

/// Options of [`Process::execute`] and [`Process::exec`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOptions {
    /// Working directory; relative paths resolve against the sandbox's work dir.
    pub cwd: Option<String>,
    /// Extra environment (wire field `envs`).
    pub env: StringMap,
    /// Kill the command after this long (sent in whole seconds, rounded up).
    pub timeout: Option<Duration>,
}

/// `exec`'s answer: the two streams really separate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Options of [`Process::code_run`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeRunParams {
    pub argv: Vec<String>,
    pub env: StringMap,
    /// Whole seconds, rounded up.
    pub timeout: Option<Duration>,
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn require(name: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::InvalidArgument(format!("{name} must not be empty")));
    }
    Ok(())
}

/// The process sub-handle of a [`Toolbox`].
#[derive(Clone, Debug)]
pub struct Process {
    pub(crate) tb: Toolbox,
}

impl Process {
    /// This handle with a deadline / cancel token for its calls without their own options.
    pub fn with_options(&self, opts: CallOptions) -> Process {
        Process {
            tb: self.tb.with_options(opts),
        }
    }

    /// `POST /process/execute`: stdout and stderr combined in `result`. Sent once (never
    /// retried after it may have reached the server). A server-side timeout is `DAYTONA_TIMEOUT`.
    pub async fn execute(
        &self,
        command: &str,
        o: &ExecOptions,
        opts: &CallOptions,
    ) -> Result<ExecuteResponse> {
        require("command", command)?;
        let body = ExecuteRequest {
            command: command.to_string(),
            cwd: o.cwd.clone(),
            envs: if o.env.is_empty() {
                None
            } else {
                Some(o.env.clone())
            },
            timeout: o.timeout.map(secs),
        };
        let req = self
            .tb
            .req(Method::POST, "/process/execute", "execute")
            .json(&body)?
            .class(RetryClass::Once);
        let deadline = self.tb.command_deadline(opts, o.timeout);
        self.tb.transport().json(req, &deadline).await
    }

    /// [`execute`](Self::execute) for a caller that can cancel (`opts.cancel`): the command is
    /// sent wrapped (see [`killable`](super::killable); output and exit code unchanged) so
    /// that, when the call is cancelled, the command is killed inside the sandbox with one more
    /// `POST /process/execute` instead of running on unseen. Daytona has no other way to stop a
    /// one-shot command.
    pub async fn execute_killable(
        &self,
        command: &str,
        o: &ExecOptions,
        opts: &CallOptions,
    ) -> Result<ExecuteResponse> {
        require("command", command)?;
        let token = killable::new_token();
        let wrapped = killable::wrap(command, &token)?;
        let r = self.execute(&wrapped, o, opts).await;
        if matches!(r, Err(Error::Aborted)) {
            let cleanup = CallOptions::new()
                .with_timeout(Duration::from_secs(10))
                .deadline(None);
            if let Err(e) = self.run_kill_script(&[token.as_str()], &cleanup).await {
                tracing::debug!(error = %e, "could not kill the aborted command");
            }
        }
        r
    }

    /// `POST /process/code-run` in the sandbox's `code-toolbox-language` (TypeScript when the
    /// label is missing).
    pub async fn code_run(
        &self,
        code: &str,
        p: &CodeRunParams,
        opts: &CallOptions,
    ) -> Result<CodeRunResponse> {
        let body = CodeRunRequest {
            code: code.to_string(),
            language: self
                .tb
                .language
                .clone()
                .unwrap_or_else(|| "typescript".into()),
            argv: if p.argv.is_empty() {
                None
            } else {
                Some(p.argv.clone())
            },
            envs: if p.env.is_empty() {
                None
            } else {
                Some(p.env.clone())
            },
            timeout: p.timeout.map(secs),
        };
        let req = self
            .tb
            .req(Method::POST, "/process/code-run", "code run")
            .json(&body)?
            .class(RetryClass::Once);
        let deadline = self.tb.command_deadline(opts, p.timeout);
        self.tb.transport().json(req, &deadline).await
    }

    /// `POST /process/session`.
    pub async fn create_session(&self, session_id: &str) -> Result<()> {
        self.create_session_within(session_id, &self.tb.default_deadline())
            .await
    }

    async fn create_session_within(&self, session_id: &str, deadline: &Deadline) -> Result<()> {
        require("session id", session_id)?;
        let req = self
            .tb
            .req(Method::POST, "/process/session", "create session")
            .json(&CreateSessionRequest {
                session_id: session_id.to_string(),
            })?;
        self.tb.transport().empty(req, deadline).await
    }

    /// `GET /process/session/{id}`.
    pub async fn get_session(&self, session_id: &str) -> Result<Session> {
        require("session id", session_id)?;
        let req = self.tb.req(
            Method::GET,
            &format!("/process/session/{}", seg(session_id)),
            "get session",
        );
        self.tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await
    }

    /// `GET /process/session`.
    pub async fn list_sessions(&self) -> Result<Vec<Session>> {
        let req = self
            .tb
            .req(Method::GET, "/process/session", "list sessions");
        self.tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await
    }

    /// `DELETE /process/session/{id}`: kills whatever still runs in it.
    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        self.delete_session_within(session_id, &self.tb.default_deadline())
            .await
    }

    async fn delete_session_within(&self, session_id: &str, deadline: &Deadline) -> Result<()> {
        require("session id", session_id)?;
        if let Err(e) = self.kill_wrapped_within(session_id, deadline).await {
            tracing::debug!(error = %e, "could not kill the session's background commands");
        }
        let req = self
            .tb
            .req(
                Method::DELETE,
                &format!("/process/session/{}", seg(session_id)),
                "delete session",
            )
            .accept("*/*");
        self.tb.transport().empty(req, deadline).await
    }

    /// `POST /process/session/{id}/exec`: `{cmdId}` when `run_async`, the output otherwise.
    /// Sent once. A `run_async` command is sent wrapped so that
    /// [`kill_session_command`](Self::kill_session_command) can kill it on the real Daytona API
    /// (see [`killable`](super::killable)): its output and exit code are unchanged, but a `cd`
    /// or `export` inside it does not carry over to later commands of the session. Foreground
    /// commands are sent as they are.
    pub async fn execute_session_command(
        &self,
        session_id: &str,
        command: &str,
        run_async: bool,
        opts: &CallOptions,
    ) -> Result<SessionExecuteResponse> {
        let command = if run_async {
            require("command", command)?;
            killable::wrap(command, &killable::new_token())?
        } else {
            command.to_string()
        };
        self.session_exec_within(session_id, &command, run_async, &self.tb.deadline(opts))
            .await
    }

    async fn session_exec_within(
        &self,
        session_id: &str,
        command: &str,
        run_async: bool,
        deadline: &Deadline,
    ) -> Result<SessionExecuteResponse> {
        require("session id", session_id)?;
        require("command", command)?;
        let body = SessionExecuteRequest {
            command: command.to_string(),
            run_async: run_async.then_some(true),
            ..Default::default()
        };
        let req = self
            .tb
            .req(
                Method::POST,
                &format!("/process/session/{}/exec", seg(session_id)),
                "session exec",
            )
            .json(&body)?
            .class(RetryClass::Once);
        self.tb.transport().json(req, deadline).await
    }

    fn command_path(session_id: &str, command_id: &str) -> Result<String> {
        require("session id", session_id)?;
        require("command id", command_id)?;
        Ok(format!(
            "/process/session/{}/command/{}",
            seg(session_id),
            seg(command_id)
        ))
    }

    /// `GET /process/session/{sid}/command/{cid}`: `exit_code` is `None` while it runs.
    pub async fn get_session_command(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<SessionCommand> {
        self.command_within(session_id, command_id, &self.tb.default_deadline())
            .await
    }

    async fn command_within(
        &self,
        session_id: &str,
        command_id: &str,
        deadline: &Deadline,
    ) -> Result<SessionCommand> {
        let req = self.tb.req(
            Method::GET,
            &Self::command_path(session_id, command_id)?,
            "get session command",
        );
        self.tb.transport().json(req, deadline).await
    }

    /// `GET .../logs`: a snapshot of the output, split into stdout and stderr (also from an
    /// old daemon's `text/plain` answer, demuxed here).
    pub async fn get_session_command_logs(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<SessionCommandLogsResponse> {
        self.logs_within(session_id, command_id, &self.tb.default_deadline())
            .await
    }

    async fn logs_within(
        &self,
        session_id: &str,
        command_id: &str,
        deadline: &Deadline,
    ) -> Result<SessionCommandLogsResponse> {
        let path = format!("{}/logs", Self::command_path(session_id, command_id)?);
        let req = self
            .tb
            .req(Method::GET, &path, "session command logs")
            .accept("application/json,text/plain");
        self.tb
            .transport()
            .call(req, deadline, |status, body| {
                let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
                if trimmed == Some(&b'{') {
                    parse_json(status, &body)
                } else {
                    let (stdout, stderr) = logs::demux_all(&body);
                    Ok(SessionCommandLogsResponse {
                        output: String::from_utf8_lossy(&body).into_owned(),
                        stdout,
                        stderr,
                    })
                }
            })
            .await
    }

    /// Live logs over WebSocket (`.../logs?follow=true`), ending when the command exits.
    #[cfg(not(target_family = "wasm"))]
    pub async fn stream_session_command_logs(
        &self,
        session_id: &str,
        command_id: &str,
        opts: &CallOptions,
    ) -> Result<LogStream> {
        let path = format!(
            "{}/logs?follow=true",
            Self::command_path(session_id, command_id)?
        );
        let url = logs::ws_url(&format!("{}{}", self.tb.base_url(), path));
        let t = self.tb.transport();
        logs::open(&url, t.headers(), t.secrets().to_vec(), opts).await
    }

    /// Live logs in the WebAssembly build, which has no WebSocket: the command's state and
    /// its output so far, polled until it exits (`logs::polled`). Unknown ids fail here, as
    /// the WebSocket's opening does natively.
    #[cfg(target_family = "wasm")]
    pub async fn stream_session_command_logs(
        &self,
        session_id: &str,
        command_id: &str,
        opts: &CallOptions,
    ) -> Result<LogStream> {
        self.command_within(session_id, command_id, &self.tb.default_deadline())
            .await?;
        let (this, sid, cid) = (self.clone(), session_id.to_owned(), command_id.to_owned());
        let poll = move || {
            let (this, sid, cid) = (this.clone(), sid.clone(), cid.clone());
            async move {
                let deadline = this.tb.default_deadline();
                // The state first: output written before the exit is in the snapshot after it.
                let exited = this
                    .command_within(&sid, &cid, &deadline)
                    .await?
                    .exit_code
                    .is_some();
                let logs = this.logs_within(&sid, &cid, &deadline).await?;
                Ok(logs::Polled {
                    stdout: logs.stdout,
                    stderr: logs.stderr,
                    exited,
                })
            }
        };
        Ok(logs::polled(poll, opts.deadline(None)))
    }

    /// `POST .../input`: writes to the command's stdin (410 once it has ended).
    pub async fn send_session_command_input(
        &self,
        session_id: &str,
        command_id: &str,
        data: &str,
    ) -> Result<()> {
        let path = format!("{}/input", Self::command_path(session_id, command_id)?);
        let req = self
            .tb
            .req(Method::POST, &path, "session command input")
            .json(&SessionSendInputRequest {
                data: data.to_string(),
            })?
            .class(RetryClass::Once);
        self.tb
            .transport()
            .empty(req, &self.tb.default_deadline())
            .await
    }

    /// The guide's `killSessionCommand`: kills the command's whole process group, on the real
    /// Daytona API too, which has no route for it (daytona-wire.md §7).
    ///
    /// A command started in the background by this library (`run_async`, [`spawn`](Self::spawn))
    /// recorded its process group id in the sandbox (see [`killable`](super::killable)); it is
    /// found from `GET .../command/{cmdId}` (no client state, so another process can kill it)
    /// and killed through [`kill_session_command_via_execute`](Self::kill_session_command_via_execute).
    /// Any other command goes to `DELETE /process/session/{sid}/command/{cid}`, which only the
    /// embedded backend serves (`DAYTONA_NOT_FOUND` on Daytona; delete the session instead).
    /// A command that has already ended is `DAYTONA_GONE`.
    pub async fn kill_session_command(&self, session_id: &str, command_id: &str) -> Result<()> {
        let deadline = self.tb.default_deadline();
        let cmd = self
            .command_within(session_id, command_id, &deadline)
            .await?;
        if cmd.exit_code.is_some() {
            return Err(already_completed(command_id));
        }
        if killable::token_of(&cmd.command).is_some() {
            return self
                .kill_session_command_via_execute(session_id, command_id)
                .await;
        }
        let req = self
            .tb
            .req(
                Method::DELETE,
                &Self::command_path(session_id, command_id)?,
                "kill session command",
            )
            .accept("*/*");
        self.tb.transport().empty(req, &deadline).await
    }

    /// Kills a command started wrapped (`run_async` or [`spawn`](Self::spawn)) with
    /// `POST /process/execute`: `kill -TERM -<pgid>`, then `KILL` after
    /// 5 s if the group is still there. Uses only routes the Daytona API has.
    /// `DAYTONA_INVALID_ARGUMENT` for a command that was not started wrapped.
    pub async fn kill_session_command_via_execute(
        &self,
        session_id: &str,
        command_id: &str,
    ) -> Result<()> {
        let deadline = self.tb.default_deadline();
        let cmd = self
            .command_within(session_id, command_id, &deadline)
            .await?;
        if cmd.exit_code.is_some() {
            return Err(already_completed(command_id));
        }
        let Some(token) = killable::token_of(&cmd.command) else {
            return Err(Error::InvalidArgument(format!(
                "command {command_id} was not started in the background by this client, so it \
                 cannot be killed alone; delete its session instead"
            )));
        };
        if let Some(KillOutcome::Killed | KillOutcome::Gone) =
            self.run_kill_script(&[token], &deadline).await?.first()
        {
            Ok(())
        } else {
            let again = self
                .command_within(session_id, command_id, &deadline)
                .await?;
            if again.exit_code.is_some() {
                Err(already_completed(command_id))
            } else {
                Err(Error::BadResponse {
                    message: format!(
                        "command {command_id} runs but recorded no process group id \
                         (is `setsid` missing in the sandbox?)"
                    ),
                    status: None,
                })
            }
        }
    }

    async fn run_kill_script(
        &self,
        tokens: &[&str],
        deadline: &Deadline,
    ) -> Result<Vec<KillOutcome>> {
        let body = ExecuteRequest {
            command: killable::kill_script(tokens),
            ..Default::default()
        };
        let req = self
            .tb
            .req(Method::POST, "/process/execute", "kill session command")
            .json(&body)?
            .class(RetryClass::Once);
        let res: ExecuteResponse = self.tb.transport().json(req, deadline).await?;
        Ok(killable::parse_outcomes(&res.result))
    }

    /// Kills the still running wrapped commands of a session, before the session is deleted:
    /// they left the session's process group, so deleting it would not stop them.
    async fn kill_wrapped_within(&self, session_id: &str, deadline: &Deadline) -> Result<()> {
        let req = self.tb.req(
            Method::GET,
            &format!("/process/session/{}", seg(session_id)),
            "get session",
        );
        let session: Session = self.tb.transport().json(req, deadline).await?;
        let tokens: Vec<&str> = session
            .commands
            .iter()
            .filter(|c| c.exit_code.is_none())
            .filter_map(|c| killable::token_of(&c.command))
            .collect();
        if !tokens.is_empty() {
            self.run_kill_script(&tokens, deadline).await?;
        }
        Ok(())
    }

    /// The integration guide's `process.exec`: like [`execute`](Self::execute) but with stdout
    /// and stderr separate. Runs the command in a throw-away session (see [`spawn`](Self::spawn)),
    /// waits for its exit code, reads the split logs and deletes the session, which also kills
    /// the command when the timeout passes (`DAYTONA_TIMEOUT`).
    pub async fn exec(
        &self,
        command: &str,
        o: &ExecOptions,
        opts: &CallOptions,
    ) -> Result<ExecResult> {
        let opts = match (opts.timeout, o.timeout) {
            (None, Some(t)) => CallOptions {
                timeout: Some(t),
                cancel: opts.cancel.clone(),
            },
            _ => opts.clone(),
        };
        let deadline = self.tb.deadline(&opts);
        let spawned = self.spawn_within(command, o, &deadline).await?;
        let result = async {
            let exit_code = spawned.wait_within(&deadline).await?;
            let logs = self
                .logs_within(&spawned.session_id, &spawned.cmd_id, &deadline)
                .await?;
            Ok(ExecResult {
                stdout: logs.stdout,
                stderr: logs.stderr,
                exit_code,
            })
        }
        .await;
        spawned.kill().await;
        result
    }

    /// Starts `command` (with `cwd` and `env` applied as quoted shell words) in a new
    /// throw-away session and returns at once. Follow it with [`Spawned::logs`], wait with
    /// [`Spawned::wait`], stop it and free the session with [`Spawned::kill`]. `o.timeout` is
    /// not applied here: give [`Spawned::wait`] a deadline.
    pub async fn spawn(
        &self,
        command: &str,
        o: &ExecOptions,
        opts: &CallOptions,
    ) -> Result<Spawned> {
        self.spawn_within(command, o, &self.tb.deadline(opts)).await
    }

    async fn spawn_within(
        &self,
        command: &str,
        o: &ExecOptions,
        deadline: &Deadline,
    ) -> Result<Spawned> {
        require("command", command)?;
        let mut script = String::new();
        if let Some(cwd) = &o.cwd {
            script.push_str(&format!("cd {} && ", quote(cwd)?));
        }
        for (k, v) in &o.env {
            script.push_str(&format!("{}={} ", env_name(k)?, quote(v)?));
        }
        script.push_str(&format!("sh -c {}", quote(command)?));
        let script = killable::wrap(&script, &killable::new_token())?;
        let session_id = format!("forge-exec-{:016x}", rand::random::<u64>());
        self.create_session_within(&session_id, deadline).await?;
        let mut spawned = Spawned {
            process: self.clone(),
            session_id,
            cmd_id: String::new(),
        };
        match self
            .session_exec_within(&spawned.session_id, &script, true, deadline)
            .await
        {
            Ok(r) => {
                spawned.cmd_id = r.cmd_id;
                Ok(spawned)
            }
            Err(e) => {
                spawned.kill().await;
                Err(e)
            }
        }
    }
}

fn already_completed(command_id: &str) -> Error {
    Error::Gone(ApiError {
        status: 410,
        message: format!("command {command_id} has already completed"),
        code: Some("COMMAND_ALREADY_COMPLETED".into()),
        source: None,
    })
}

/// A command started by [`Process::spawn`] in its own session.
#[derive(Debug, Clone)]
pub struct Spawned {
    process: Process,
    pub session_id: String,
    pub cmd_id: String,
}

impl Spawned {
    /// Live output until the command exits.
    pub async fn logs(&self, opts: &CallOptions) -> Result<LogStream> {
        self.process
            .stream_session_command_logs(&self.session_id, &self.cmd_id, opts)
            .await
    }

    /// The output so far, split.
    pub async fn output(&self) -> Result<SessionCommandLogsResponse> {
        self.process
            .get_session_command_logs(&self.session_id, &self.cmd_id)
            .await
    }

    /// Waits for the exit code ([`crate::wait::Backoff::COMMAND`]).
    pub async fn wait(&self, opts: &CallOptions) -> Result<i32> {
        self.wait_within(&self.process.tb.deadline(opts)).await
    }

    async fn wait_within(&self, deadline: &Deadline) -> Result<i32> {
        let exited = crate::wait::from_fn(crate::wait::Backoff::COMMAND, || async {
            let c = self
                .process
                .command_within(&self.session_id, &self.cmd_id, deadline)
                .await?;
            Ok(c.exit_code)
        });
        deadline.wait("exec", exited).await
    }

    /// Deletes the session, killing the command if it still runs. Best effort, with its own
    /// 10 s deadline so that it runs even after the call's deadline has passed.
    pub async fn kill(&self) {
        let cleanup = CallOptions::new()
            .with_timeout(Duration::from_secs(10))
            .deadline(None);
        if let Err(e) = self
            .process
            .delete_session_within(&self.session_id, &cleanup)
            .await
        {
            tracing::debug!(error = %e, "could not delete the exec session");
        }
    }
}

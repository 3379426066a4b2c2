//! `forge list`, `forge logs <id> [-f]`, `forge rm <id>...`: the sandboxes a preview left
//! running (on Daytona, on a `forge local`, or kept in the embedded backend's home).

use crate::backend::{Backend, Purpose};
use crate::output::{err, out, say, success, Failure};
use forge_daytona::wire::Sandbox;
use forge_daytona::{CallOptions, ListQuery, LogStreamKind};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct ListArgs {}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// The sandbox.
    id: String,
    /// Keep printing new output until the command exits (or Ctrl-C).
    #[arg(short, long)]
    follow: bool,
    /// The session to read (default: the dev server's, i.e. the last session whose command
    /// still runs, else the last session).
    #[arg(long)]
    session: Option<String>,
    /// The command of that session (default: its last).
    #[arg(long, requires = "session")]
    command: Option<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// The sandboxes to delete.
    #[arg(required = true)]
    ids: Vec<String>,
}

/// Runs `work` against the backend; an interrupt ends it with exit 130.
async fn with_backend<T>(
    json: bool,
    cancel: &CancellationToken,
    work: impl AsyncFnOnce(&Backend) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let backend = tokio::select! {
        b = Backend::open(Purpose::Inspect, json) => b?,
        () = cancel.cancelled() => return Err(Failure::cancelled("interrupted")),
    };
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Failure::cancelled("interrupted")),
        r = work(&backend) => r,
    };
    backend.close().await;
    r
}

/// What `forge list` says of a sandbox (not its env, which may hold secrets).
fn summary(s: &Sandbox) -> serde_json::Value {
    json!({
        "id": s.id,
        "name": s.name,
        "state": s.state.as_str(),
        "public": s.public,
        "labels": s.labels,
        "cpu": s.cpu,
        "memory": s.memory,
        "disk": s.disk,
        "createdAt": s.created_at,
    })
}

pub async fn list(_args: ListArgs, json: bool, cancel: CancellationToken) -> Result<(), Failure> {
    let call = CallOptions::new().with_cancel(cancel.clone());
    let all = with_backend(json, &cancel, async |b| {
        Ok(b.client.list_all(&ListQuery::default(), &call).await?)
    })
    .await?;
    let mut text = String::new();
    if !all.is_empty() {
        text.push_str(&format!("{:<40} {:<12} NAME\n", "ID", "STATE"));
    }
    for s in &all {
        text.push_str(&format!(
            "{:<40} {:<12} {}\n",
            s.id,
            s.state.as_str(),
            s.name
        ));
    }
    if all.is_empty() && !json {
        say("no sandboxes");
    }
    success(
        json,
        json!({ "sandboxes": all.iter().map(summary).collect::<Vec<_>>() }),
        &text,
    );
    Ok(())
}

pub async fn rm(args: RmArgs, json: bool, cancel: CancellationToken) -> Result<(), Failure> {
    let call = CallOptions::new().with_cancel(cancel.clone());
    let (deleted, failed) = with_backend(json, &cancel, async |b| {
        let mut deleted = Vec::new();
        let mut failed = Vec::new();
        for id in &args.ids {
            match b.client.delete(id, true, &call).await {
                Ok(()) => deleted.push(id.clone()),
                Err(e) => failed.push((id.clone(), Failure::from(e))),
            }
        }
        Ok((deleted, failed))
    })
    .await?;
    if let Some((id, first)) = failed.first() {
        let list: Vec<_> = failed
            .iter()
            .map(|(id, f)| json!({ "id": id, "code": f.code, "message": f.message }))
            .collect();
        return Err(Failure {
            message: format!("could not delete {id}: {}", first.message),
            code: first.code.clone(),
            details: serde_json::Map::new(),
            exit: first.exit,
        }
        .with("deleted", deleted)
        .with("failed", list));
    }
    let text: String = deleted.iter().map(|id| format!("deleted {id}\n")).collect();
    success(json, json!({ "deleted": deleted }), &text);
    Ok(())
}

pub async fn logs(args: LogsArgs, json: bool, cancel: CancellationToken) -> Result<(), Failure> {
    if args.follow && json {
        return Err(Failure::usage(
            "--follow prints the output as it comes; it has no --json form (drop one of them)",
        ));
    }
    let follow = CallOptions::new().with_cancel(cancel.clone());
    let backend = tokio::select! {
        b = Backend::open(Purpose::Inspect, json) => b?,
        () = cancel.cancelled() => return Err(Failure::cancelled("interrupted")),
    };
    let r = tokio::select! {
        // Checked first: the log stream, watching the same token, ends with an abort error
        // at the same moment, and following is meant to end with Ctrl-C (exit 0).
        biased;
        () = cancel.cancelled() => if args.follow {
            Ok(())
        } else {
            Err(Failure::cancelled("interrupted"))
        },
        r = print_logs(&backend, &args, json, &follow) => r,
    };
    // The select above is not enough on its own: on the multi-threaded runtime the signal's
    // task can cancel the token between the select's two polls, so the stream's abort error
    // wins (seen twice in loaded full runs: exit 130 after Ctrl-C). Once the token is
    // cancelled, a follow ends as it is meant to, whatever the stream said.
    let r = if args.follow && cancel.is_cancelled() {
        Ok(())
    } else {
        r
    };
    backend.close().await;
    r
}

async fn print_logs(
    b: &Backend,
    args: &LogsArgs,
    json: bool,
    call: &CallOptions,
) -> Result<(), Failure> {
    let tb = b.client.toolbox_for(&args.id).await?;
    let process = tb.process();
    let (session, command) = if let (Some(s), Some(c)) = (&args.session, &args.command) {
        (s.clone(), c.clone())
    } else {
        let sessions = process.list_sessions().await?;
        pick(&sessions, args.session.as_deref()).ok_or_else(|| {
            Failure::new(
                "DAYTONA_NOT_FOUND",
                match &args.session {
                    Some(s) => format!("session {s} of sandbox {} has no command", args.id),
                    None => format!("sandbox {} has no session command to show", args.id),
                },
            )
        })?
    };
    if args.follow {
        let mut stream = process
            .stream_session_command_logs(&session, &command, call)
            .await?;
        while let Some(chunk) = stream.next_chunk().await {
            let chunk = chunk?;
            match chunk.stream {
                LogStreamKind::Stdout => out(&chunk.data),
                LogStreamKind::Stderr => err(&chunk.data),
            }
        }
        return Ok(());
    }
    let logs = process.get_session_command_logs(&session, &command).await?;
    if json {
        success(
            true,
            json!({
                "sandboxId": args.id,
                "sessionId": session,
                "commandId": command,
                "stdout": logs.stdout,
                "stderr": logs.stderr,
            }),
            "",
        );
    } else {
        out(&logs.stdout);
        err(&logs.stderr);
    }
    Ok(())
}

/// The (session, command) to show: in `session` if given, else the dev server's (the last
/// command still running, in the last session that has one), else the last command there is.
fn pick(
    sessions: &[forge_daytona::wire::Session],
    session: Option<&str>,
) -> Option<(String, String)> {
    let candidates = sessions
        .iter()
        .filter(|s| session.is_none_or(|name| s.session_id == name));
    let mut last = None;
    let mut running = None;
    for s in candidates {
        for c in &s.commands {
            last = Some((s.session_id.clone(), c.id.clone()));
            if c.exit_code.is_none() {
                running.clone_from(&last);
            }
        }
    }
    running.or(last)
}

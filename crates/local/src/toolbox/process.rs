//! One-shot commands: `POST /process/execute` and `POST /process/code-run`.
//!
//! Like the daemon: the sandbox's bash reads the command from its stdin (so no argument-size
//! limit applies, and a command that reads stdin reads the rest of the script, as there), in
//! the requested cwd (never created: a missing one is exit code -1 and the chdir error),
//! stdout and stderr written to one pipe (so `result` keeps their interleaving), and a timeout
//! (seconds) that kills the command's whole tree and answers 408.
//!
//! Python code that imports matplotlib runs under a small wrapper (`charts.py`, the code on its
//! fd 3) that turns every figure the code shows into a chart in `artifacts.charts`, as the
//! daemon's code-run does.

use super::{Sbx, Spawn};
use crate::container::process::{KillOnDrop, Output, Spec};
use crate::error::Failure;
use crate::procs;
use crate::store::WORK_DIR;
use crate::util::JsonBody;
use axum::http::StatusCode;
use axum::Json;
use forge_wire::{
    CodeRunArtifacts, CodeRunRequest, CodeRunResponse, ExecuteRequest, ExecuteResponse, StringMap,
};
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Largest `result` kept (the rest of the output is read and dropped).
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How long to keep reading after the shell exited, for output of background children that
/// still hold the pipe.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The wrapper Python code that uses matplotlib runs under (see the module docs).
const CHARTS: &str = include_str!("charts.py");

/// The daemon's artifact lines in a code-run's output.
const ARTIFACT_MARKER: &str = "dtn_artifact_k39fd2:";

/// Whether Python code imports matplotlib (outside comments), as the daemon decides to look
/// for charts.
fn uses_matplotlib(code: &str) -> bool {
    code.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("");
        line.contains("matplotlib")
            && (line.contains("import")
                || line.contains("sys.modules")
                || line.contains("load_module"))
    })
}

/// Takes the artifact lines out of a code-run's output: the output without them, and the
/// charts they carry.
fn take_artifacts(output: &str) -> (String, Vec<serde_json::Value>) {
    let mut charts = Vec::new();
    let mut kept = Vec::new();
    for line in output.split('\n') {
        match line.strip_prefix(ARTIFACT_MARKER) {
            Some(payload) => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(payload.trim()) {
                    if v["type"] == "chart" && v["value"].is_object() {
                        charts.push(v["value"].clone());
                    }
                }
            }
            None => kept.push(line),
        }
    }
    (kept.join("\n"), charts)
}

pub async fn execute(
    sbx: Sbx,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, Failure> {
    if req.command.trim().is_empty() {
        return Err(Failure::bad_request("command is required"));
    }
    let envs = req.envs.unwrap_or_default();
    check_env(&envs)?;
    let cwd = sbx.root.resolve(req.cwd.as_deref().unwrap_or(WORK_DIR))?;
    let out = run(
        &sbx,
        "bash",
        &[],
        &sbx.cmd_path(&cwd),
        &envs,
        req.timeout,
        Feed::Stdin(req.command.into_bytes()),
    )
    .await?;
    Ok(Json(ExecuteResponse {
        exit_code: out.exit_code,
        result: out.result,
    }))
}

/// Refuses environment names a shell could not set, as the daemon does (400).
pub fn check_env(envs: &StringMap) -> Result<(), Failure> {
    for k in envs.keys() {
        let mut chars = k.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Failure::bad_request(format!(
                "invalid environment variable name {k:?}: letters, digits and _ only, not starting with a digit"
            )));
        }
    }
    Ok(())
}

/// `POST /process/code-run`: JavaScript / TypeScript on this machine's node (TypeScript through
/// `tsx` or `ts-node` when on PATH, else node's type stripping on node ≥ 22), Python on
/// `python3`. The timeout is in seconds.
pub async fn code_run(
    sbx: Sbx,
    JsonBody(req): JsonBody<CodeRunRequest>,
) -> Result<Json<CodeRunResponse>, Failure> {
    if req.language.trim().is_empty() {
        return Err(Failure::bad_request(
            "language is required: javascript, typescript or python",
        ));
    }
    let language = req.language.clone();
    let argv = req.argv.clone().unwrap_or_default();
    let charts = matches!(language.as_str(), "python" | "py") && uses_matplotlib(&req.code);
    let (program, mut args) = match language.as_str() {
        "javascript" | "js" => ("node".to_string(), vec!["-e".into(), req.code.clone()]),
        "typescript" | "ts" => typescript_runner(&sbx, &req.code).await?,
        "python" | "py" if charts => ("python3".to_string(), vec!["-c".into(), CHARTS.into()]),
        "python" | "py" => ("python3".to_string(), vec!["-c".into(), req.code.clone()]),
        other => {
            return Err(Failure::bad_request(format!(
                "unsupported language {other}: use javascript, typescript or python"
            )))
        }
    };
    if program != "python3" && args.iter().any(|a| a == "-e") {
        // As for a script (`node file.js a b`) and Daytona's own runner: the user's first
        // argument is `process.argv[2]`, after a stand-in for the script name.
        args.push("--".into());
        args.push("[eval]".into());
    }
    args.extend(argv);
    let cwd = sbx.cmd_path(&sbx.root.resolve(WORK_DIR)?);
    let mut envs = req.envs.unwrap_or_default();
    if program == "npx" {
        // Keep npm's own chatter out of the result.
        for (k, v) in [
            ("NPM_CONFIG_UPDATE_NOTIFIER", "false"),
            ("NPM_CONFIG_FUND", "false"),
        ] {
            envs.entry(k.into()).or_insert_with(|| v.into());
        }
    }
    // The wrapped code reaches its wrapper as an in-memory file on fd 3.
    let feed = if charts {
        Feed::Fd3(
            super::git::memory_file(req.code.as_bytes())
                .map_err(|e| Failure::internal(format!("cannot pass the code: {e}")))?,
        )
    } else {
        Feed::Nothing
    };
    let mut out = run(&sbx, &program, &args, &cwd, &envs, req.timeout, feed).await?;
    if charts {
        let (result, found) = take_artifacts(&out.result);
        out.result = result;
        if !found.is_empty() {
            out.artifacts = Some(CodeRunArtifacts { charts: found });
        }
    }
    Ok(Json(out))
}

/// Picks how to run TypeScript here: `tsx` / `ts-node` when on PATH; node's own type
/// stripping on node ≥ 22.6 (the code goes to a file in the sandbox's `/tmp`); else `tsx`
/// fetched by `npx` (needs the npm registry once; cached in the sandbox's home).
async fn typescript_runner(sbx: &Sbx, code: &str) -> Result<(String, Vec<String>), Failure> {
    for tool in ["tsx", "ts-node"] {
        if on_path(tool) {
            return Ok((tool.to_string(), vec!["-e".into(), code.to_string()]));
        }
    }
    if node_version().await >= (22, 6) {
        let file = sbx
            .for_create(&format!(
                "/tmp/forge-code-{}.ts",
                crate::util::random_token(12)
            ))
            .await?;
        {
            use std::io::Write;
            let mut f = file.create_new(0o644)?;
            f.write_all(code.as_bytes())
                .map_err(|e| Failure::from_io(&e, &file.shown))?;
            let _ = sbx.state.runtime.give_fd(std::os::fd::AsFd::as_fd(&f));
        }
        return Ok((
            "node".to_string(),
            vec![
                "--experimental-strip-types".into(),
                "--no-warnings".into(),
                sbx.cmd_path(&file),
            ],
        ));
    }
    Ok((
        "npx".to_string(),
        vec![
            "--yes".into(),
            "--quiet".into(),
            "tsx".into(),
            "-e".into(),
            code.to_string(),
        ],
    ))
}

/// This machine's node (major, minor); (0, 0) when unknown.
async fn node_version() -> (u32, u32) {
    static VERSION: tokio::sync::OnceCell<(u32, u32)> = tokio::sync::OnceCell::const_new();
    *VERSION
        .get_or_init(|| async {
            let out = tokio::process::Command::new("node")
                .arg("--version")
                .output()
                .await;
            let text = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let mut parts = text.trim().trim_start_matches('v').split('.');
            let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            (next(), next())
        })
        .await
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// What a one-shot command is given besides its arguments (its stdin is /dev/null otherwise).
pub enum Feed {
    Nothing,
    /// An open file as its fd 3.
    Fd3(OwnedFd),
    /// These bytes on its stdin, which is then closed.
    Stdin(Vec<u8>),
}

/// Runs `program args` for the sandbox (fed `feed`) and answers like the daemon's execute.
async fn run(
    sbx: &Sbx,
    program: &str,
    args: &[String],
    cwd: &str,
    envs: &StringMap,
    timeout: Option<u64>,
    feed: Feed,
) -> Result<CodeRunResponse, Failure> {
    let _slot = procs::command_slot(&sbx.state.commands)?;
    match run_combined(sbx, program, args, cwd, envs, timeout, feed).await? {
        Outcome::Exited { code, output } => Ok(CodeRunResponse {
            exit_code: code,
            result: output,
            artifacts: None,
        }),
        Outcome::TimedOut => Err(Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "command execution timeout: killed after {} seconds",
                timeout.unwrap_or(0)
            ),
        )
        .with_code("PROCESS_EXECUTION_TIMEOUT")),
        // The daemon answers a command that cannot start with 200 and exit code -1.
        Outcome::NotStarted(why) => Ok(CodeRunResponse {
            exit_code: -1,
            result: why,
            artifacts: None,
        }),
    }
}

pub enum Outcome {
    Exited { code: i32, output: String },
    TimedOut,
    NotStarted(String),
}

/// Runs with stdout and stderr on one pipe and collects the combined output.
pub async fn run_combined(
    sbx: &Sbx,
    program: &str,
    args: &[String],
    cwd: &str,
    envs: &StringMap,
    timeout: Option<u64>,
    feed: Feed,
) -> Result<Outcome, Failure> {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().cloned());
    let (fd3, input) = match feed {
        Feed::Nothing => (None, None),
        Feed::Fd3(fd) => (Some(fd), None),
        Feed::Stdin(bytes) => (None, Some(bytes)),
    };
    let spec = Spec {
        argv,
        cwd: cwd.to_string(),
        env: sbx.env(cwd, envs),
        stdin: input.is_some(),
        output: Output::Combined,
        fd3,
    };
    let mut child = match sbx.spawn(spec).await {
        Ok(c) => c,
        Err(Spawn::Sandbox(f)) => return Err(f),
        Err(Spawn::Command(e)) => {
            let what = if e.stage == "chdir" {
                format!("chdir {cwd}")
            } else {
                format!("{} {program}", e.stage)
            };
            return Ok(Outcome::NotStarted(format!("{what}: {}", e.error)));
        }
    };
    let killer = child.killer();
    // Killed with its tree if the client goes away mid-command.
    let guard = KillOnDrop(Some(killer.clone()));
    if let (Some(bytes), Some(mut pipe)) = (input, child.stdin.take()) {
        // Written while the output is read (a long script must not wait on a full pipe), then
        // closed: the shell ends at its end. A command that exits early just stops reading.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let reader = child.stdout.take();
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = output.clone();
    let (done_tx, done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Some(mut r) = reader {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut out) = sink.lock() {
                            let room = MAX_OUTPUT.saturating_sub(out.len());
                            out.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
            }
        }
        let _ = done_tx.send(());
    });
    let waited = match timeout.filter(|t| *t > 0) {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), child.wait())
            .await
            .ok(),
        None => Some(child.wait().await),
    };
    let Some(code) = waited else {
        let _ = killer.kill(libc::SIGKILL).await;
        guard.disarm();
        return Ok(Outcome::TimedOut);
    };
    guard.disarm();
    // Output of background children that still hold the pipe: read for a short while more.
    let _ = tokio::time::timeout(DRAIN_GRACE, done).await;
    let bytes = output.lock().map(|o| o.clone()).unwrap_or_default();
    Ok(Outcome::Exited {
        code,
        output: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matplotlib_is_found_as_the_daemon_finds_it() {
        assert!(uses_matplotlib("import matplotlib.pyplot as plt"));
        assert!(uses_matplotlib("x = 1\nfrom matplotlib import pyplot"));
        assert!(!uses_matplotlib("# import matplotlib\nprint(1)"));
        assert!(!uses_matplotlib("print('matplotlib')"));
    }

    #[test]
    fn artifact_lines_become_charts() {
        let out = "a\ndtn_artifact_k39fd2:{\"type\":\"chart\",\"value\":{\"type\":\"line\"}}\nb\ndtn_artifact_k39fd2:not json\n";
        let (rest, charts) = take_artifacts(out);
        assert_eq!(rest, "a\nb\n");
        assert_eq!(charts, vec![serde_json::json!({"type": "line"})]);
    }
}

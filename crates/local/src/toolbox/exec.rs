//! One-shot commands: `POST /process/execute` and `POST /process/code-run`.
//!
//! Like the daemon: `sh -c` in the requested cwd, stdout and stderr written to one pipe (so
//! `result` keeps their interleaving), the process in its own group, and a timeout (seconds)
//! that kills the whole group and answers 408.

use super::Sbx;
use crate::error::Failure;
use crate::procs;
use crate::store::WORK_DIR;
use crate::util::JsonBody;
use axum::http::StatusCode;
use axum::Json;
use forge_wire::{CodeRunRequest, ExecuteRequest, ExecuteResponse, StringMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest `result` kept (the rest of the output is read and dropped).
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How long to keep reading after the shell exited, for output of background children that
/// still hold the pipe.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

pub async fn execute(
    sbx: Sbx,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, Failure> {
    let cwd = sbx.root.resolve(req.cwd.as_deref().unwrap_or(WORK_DIR))?;
    // A missing cwd is created (inside the root), so `executeCommand(cmd, 'workspace')` works
    // on a fresh sandbox; a cwd that is a file fails like a spawn failure (200, exit -1).
    if !cwd.host.exists() {
        let _ = tokio::fs::create_dir_all(&cwd.host).await;
    }
    if !cwd.host.is_dir() {
        return Ok(Json(ExecuteResponse {
            exit_code: -1,
            result: format!("working directory {} is not a directory", cwd.shown),
        }));
    }
    let envs = req.envs.unwrap_or_default();
    let args = vec!["-c".to_string(), req.command];
    run(&sbx, "sh", &args, cwd.host, &envs, req.timeout).await
}

/// `POST /process/code-run`: JavaScript / TypeScript on this machine's node (TypeScript through
/// `tsx` or `ts-node` when on PATH, else node's type stripping on node ≥ 22), Python on
/// `python3`. The timeout is in seconds.
pub async fn code_run(
    sbx: Sbx,
    JsonBody(req): JsonBody<CodeRunRequest>,
) -> Result<Json<ExecuteResponse>, Failure> {
    let language = if req.language.is_empty() {
        sbx.label("code-toolbox-language")
            .await
            .unwrap_or_else(|| "python".into())
    } else {
        req.language.clone()
    };
    let argv = req.argv.clone().unwrap_or_default();
    let (program, mut args) = match language.as_str() {
        "javascript" | "js" => ("node".to_string(), vec!["-e".into(), req.code.clone()]),
        "typescript" | "ts" => typescript_runner(&sbx, &req.code).await?,
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
    let cwd = sbx.root.resolve(WORK_DIR)?;
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
    run(&sbx, &program, &args, cwd.host, &envs, req.timeout).await
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
        let file = sbx.root.resolve(&format!(
            "/tmp/forge-code-{}.ts",
            crate::util::random_token(12)
        ))?;
        if let Some(parent) = file.host.parent() {
            let _ = tokio::fs::create_dir_all(parent).await;
        }
        tokio::fs::write(&file.host, code)
            .await
            .map_err(|e| Failure::from_io(&e, &file.shown))?;
        return Ok((
            "node".to_string(),
            vec![
                "--experimental-strip-types".into(),
                "--no-warnings".into(),
                file.host.to_string_lossy().into_owned(),
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
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs `program args` for the sandbox and answers like the daemon's execute.
async fn run(
    sbx: &Sbx,
    program: &str,
    args: &[String],
    cwd: PathBuf,
    envs: &StringMap,
    timeout: Option<u64>,
) -> Result<Json<ExecuteResponse>, Failure> {
    let _slot = procs::command_slot(&sbx.state.commands)?;
    match run_combined(sbx, program, args, cwd, envs, timeout).await {
        Ok(Outcome::Exited { code, output }) => Ok(Json(ExecuteResponse {
            exit_code: code,
            result: output,
        })),
        Ok(Outcome::TimedOut) => Err(Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "command execution timeout: killed after {} seconds",
                timeout.unwrap_or(0)
            ),
        )
        .with_code("PROCESS_EXECUTION_TIMEOUT")),
        // The daemon answers a spawn failure with 200 and exit code -1.
        Err(e) => Ok(Json(ExecuteResponse {
            exit_code: -1,
            result: format!("failed to start {program}: {e}"),
        })),
    }
}

pub enum Outcome {
    Exited { code: i32, output: String },
    TimedOut,
}

/// Spawns with stdout and stderr on one pipe and collects the combined output.
pub async fn run_combined(
    sbx: &Sbx,
    program: &str,
    args: &[String],
    cwd: PathBuf,
    envs: &StringMap,
    timeout: Option<u64>,
) -> std::io::Result<Outcome> {
    let (mut reader, writer) = std::io::pipe()?;
    let writer2 = writer.try_clone()?;
    let mut cmd = procs::command(program, &sbx.penv, &cwd, envs);
    cmd.args(args).stdout(writer).stderr(writer2);
    // Spawned and dropped there: the Command holds our copies of the pipe's write end, and
    // dropping them lets EOF come.
    let mut child = procs::spawn(cmd).await?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    sbx.state.groups.add(&sbx.id, pgid);

    let output = Arc::new(Mutex::new(Vec::new()));
    let sink = output.clone();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut out) = sink.lock() {
                        let room = MAX_OUTPUT.saturating_sub(out.len());
                        out.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
            }
        }
        let _ = done_tx.send(());
    });

    let waited = match timeout.filter(|t| *t > 0) {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), child.wait()).await,
        None => Ok(child.wait().await),
    };
    let status = match waited {
        Ok(status) => status?,
        Err(_) => {
            procs::kill_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
            sbx.state.groups.release_if_empty(&sbx.id, pgid);
            return Ok(Outcome::TimedOut);
        }
    };
    let _ = tokio::time::timeout(DRAIN_GRACE, &mut done_rx).await;
    sbx.state.groups.release_if_empty(&sbx.id, pgid);
    let bytes = output.lock().map(|o| o.clone()).unwrap_or_default();
    Ok(Outcome::Exited {
        code: procs::exit_code(status),
        output: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

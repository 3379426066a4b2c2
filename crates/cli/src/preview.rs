//! `forge preview <git-url | folder> [--branch B] [--keep] [--json]`: the whole pipeline from
//! the terminal. A line per step with its time (a spinner while a step runs, on a terminal),
//! and the verified URL at the end.
//!
//! It uses Daytona when `DAYTONA_API_KEY` is set (then it exits, leaving the sandbox running)
//! and the embedded backend otherwise (then it keeps serving the preview until Ctrl-C, and
//! deletes the sandbox unless `--keep`). It says which. A folder is uploaded (without
//! `node_modules`, `.git` and framework caches) instead of cloned.

use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, WorkspaceClass};
use forge_preview::pipeline::{
    clone_and_preview, CloneInput, PreviewRequest, Progress, ProgressStatus, Step,
};
use forge_preview::PreviewError;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// A git URL (https://github.com/owner/repo) or a local folder.
    source: String,
    /// Branch to clone.
    #[arg(long)]
    branch: Option<String>,
    /// Keep the sandbox (on failure, and after Ctrl-C on the embedded backend).
    #[arg(long)]
    keep: bool,
    /// Print one JSON line (the result, or the error) instead of progress lines.
    #[arg(long)]
    json: bool,
    /// Port of the dev server instead of the framework's default.
    #[arg(long)]
    port: Option<u16>,
    /// `small`, `medium` (default) or `large`.
    #[arg(long, default_value = "medium")]
    class: String,
    /// Public preview (no token needed).
    #[arg(long)]
    public: bool,
    /// Exit once verified even on the embedded backend (which then stops with it).
    #[arg(long)]
    no_wait: bool,
}

pub fn run(args: Args) -> ExitCode {
    crate::block_on("preview", preview(args))
}

/// The client: Daytona when `DAYTONA_API_KEY` is set, else the embedded backend.
async fn client(json: bool) -> Result<(Client, Option<forge_local::LocalBackend>), String> {
    if std::env::var_os("DAYTONA_API_KEY").is_some() {
        let c = Client::new(DaytonaConfig::from_env()).map_err(|e| e.to_string())?;
        if !json {
            eprintln!(
                "backend: Daytona at {} (DAYTONA_API_KEY is set)",
                c.api_url()
            );
        }
        return Ok((c, None));
    }
    let backend = forge_local::LocalBackend::start(forge_local::LocalConfig::from_env())
        .await
        .map_err(|e| format!("{e} ({})", e.code()))?;
    let config = DaytonaConfig::new()
        .with_api_key(backend.api_key())
        .with_api_url(backend.api_url());
    let c = Client::new(config).map_err(|e| e.to_string())?;
    if !json {
        eprintln!(
            "backend: embedded local backend at {} (home {}; set DAYTONA_API_KEY to use Daytona)",
            backend.api_url(),
            backend.home().display()
        );
    }
    Ok((c, Some(backend)))
}

/// Prints progress: a line per finished step, a spinner with the running time meanwhile.
struct Printer {
    tty: bool,
    running: Mutex<Option<(Step, Instant)>>,
}

impl Printer {
    fn event(&self, p: &Progress) {
        let mut out = std::io::stderr().lock();
        match p.status {
            ProgressStatus::Started => {
                if let Ok(mut r) = self.running.lock() {
                    *r = Some((p.step, Instant::now()));
                }
                if !self.tty {
                    let _ = writeln!(out, "  {:<8} …", p.step.as_str());
                }
            }
            ProgressStatus::Finished | ProgressStatus::Failed => {
                if let Ok(mut r) = self.running.lock() {
                    *r = None;
                }
                let mark = if p.status == ProgressStatus::Finished {
                    "✓"
                } else {
                    "✗"
                };
                let ms = p.step_ms.unwrap_or(0);
                let msg = p.message.as_deref().unwrap_or("");
                let clear = if self.tty { "\r\x1b[2K" } else { "" };
                let _ = writeln!(
                    out,
                    "{clear}{mark} {:<8} {:>7} ms  {msg}",
                    p.step.as_str(),
                    ms
                );
            }
        }
    }

    fn tick(&self, frame: usize) {
        const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let running = self.running.lock().ok().and_then(|r| *r);
        if let Some((step, since)) = running {
            let _ = write!(
                std::io::stderr().lock(),
                "\r\x1b[2K{} {:<8} {:>5.1} s",
                FRAMES[frame % FRAMES.len()],
                step.as_str(),
                since.elapsed().as_secs_f64()
            );
        }
    }
}

fn request(args: &Args) -> Result<PreviewRequest, String> {
    let folder = PathBuf::from(&args.source);
    let looks_remote = args.source.contains("://") || args.source.starts_with("git@");
    let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
    if !looks_remote && !folder.is_dir() {
        return Err(format!("{} is neither a git URL nor a folder", args.source));
    }
    Ok(PreviewRequest {
        clone: CloneInput {
            repo_url: if looks_remote {
                args.source.clone()
            } else {
                String::new()
            },
            branch: args.branch.clone(),
            token: if looks_remote { token } else { None },
            ..Default::default()
        },
        upload_from: (!looks_remote).then_some(folder),
        keep_on_failure: args.keep,
        port: args.port,
        ..Default::default()
    })
}

fn error_json(e: &PreviewError) -> serde_json::Value {
    let mut v = serde_json::json!({ "ok": false, "code": e.code(), "message": e.to_string() });
    if let PreviewError::Step(f) = e {
        v["step"] = f.step.as_str().into();
        v["sandboxId"] = f.sandbox_id.clone().into();
        v["reason"] = f.reason().map(|r| r.code()).into();
        v["excerpt"] = f.excerpt.clone().into();
        v["logTail"] = f.log_tail.clone().into();
        v["kept"] = f.kept.into();
    }
    v
}

async fn preview(args: Args) -> ExitCode {
    let req = match request(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("forge preview: {e}");
            return ExitCode::from(2);
        }
    };
    let workspace_class = match WorkspaceClass::parse(&args.class) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forge preview: {e}");
            return ExitCode::from(2);
        }
    };
    let (client, backend) = match client(args.json).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forge preview: {e}");
            return ExitCode::FAILURE;
        }
    };
    let create = CreateParams {
        workspace_class: Some(workspace_class),
        public: Some(args.public),
        ..Default::default()
    };
    let printer = Arc::new(Printer {
        tty: !args.json && std::io::stderr().is_terminal(),
        running: Mutex::new(None),
    });
    let spinner = printer.tty.then(|| {
        let p = printer.clone();
        tokio::spawn(async move {
            for frame in 0.. {
                p.tick(frame);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let on_progress = {
        let p = printer.clone();
        let quiet = args.json;
        move |e: Progress| {
            if !quiet {
                p.event(&e);
            }
        }
    };
    let result = clone_and_preview(&client, &create, &req, &on_progress, &CallOptions::new()).await;
    if let Some(s) = spinner {
        s.abort();
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                println!("{}", error_json(&e));
            } else {
                eprintln!("\nforge preview failed ({}): {e}", e.code());
                if let PreviewError::Step(f) = &e {
                    for l in &f.log_tail {
                        eprintln!("  | {l}");
                    }
                }
            }
            if let Some(b) = backend {
                b.shutdown().await;
            }
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else {
        let t = &r.timings;
        println!(
            "\npreview: {}{}\nframework {} on port {} · total {} ms (install {} ms, verify {} ms)",
            r.preview_url,
            r.token
                .as_ref()
                .map_or("", |_| "  (private: send the preview token, see --json)"),
            r.framework.as_deref().unwrap_or("?"),
            r.port,
            t.total,
            t.of(Step::Install),
            t.of(Step::Verify)
        );
    }
    let Some(backend) = backend else {
        return ExitCode::SUCCESS;
    };
    if !args.no_wait {
        if !args.json {
            eprintln!("serving the preview from the embedded backend; Ctrl-C to stop");
        }
        let _ = tokio::signal::ctrl_c().await;
    }
    if !args.keep {
        let _ = client
            .delete(
                &r.sandbox_id,
                false,
                &CallOptions::new().with_timeout(Duration::from_secs(30)),
            )
            .await;
    }
    backend.shutdown().await;
    ExitCode::SUCCESS
}

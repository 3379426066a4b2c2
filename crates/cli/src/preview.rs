//! `forge preview <git-url | folder> [options]`: the whole pipeline from the terminal. A line
//! per step with its time (a spinner while a step runs, on a terminal), and at the end a URL
//! that opens in a browser: for a private sandbox a signed preview link (the token is in the
//! link, valid 24 h), since a browser cannot send the preview token header.
//!
//! It uses Daytona when `DAYTONA_API_KEY` is set (then it exits, leaving the sandbox running:
//! `forge rm <id>` deletes it) and the embedded backend otherwise (then it keeps serving the
//! preview until Ctrl-C, and deletes the sandbox unless `--keep`). It says which. A folder is
//! uploaded instead of cloned: what git would track (`.gitignore` honoured), without
//! `node_modules`, framework caches and `.env*` files (unless `--include-env`).
//!
//! Ctrl-C / SIGTERM during a step stops it (a running install or dev server is killed), deletes
//! the sandbox unless `--keep`, says so and exits 130.

use crate::backend::{Backend, Purpose};
use crate::output::{err, say, success, Failure};
use forge_daytona::{CallOptions, CreateParams, WorkspaceClass};
use forge_preview::browser::{BrowserCheck, BrowserOptions};
use forge_preview::pipeline::{
    clone_and_preview, CloneInput, PreviewRequest, PreviewResult, Progress, ProgressStatus, Step,
    Upload,
};
use forge_preview::PreviewError;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long the printed link of a private preview opens it (Daytona's longest).
const LINK_TTL: Duration = Duration::from_hours(24);

#[derive(clap::Args)]
pub struct Args {
    /// A git URL (https://github.com/owner/repo) or a local folder.
    source: String,
    /// Branch to clone.
    #[arg(long)]
    branch: Option<String>,
    /// Token for a private repository (a GitHub token, or any HTTPS git password); default
    /// $GITHUB_TOKEN, which is better: a command line is visible to every user of the machine
    /// (ps). Sent in the clone request, never put in the URL or the sandbox's git config.
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Install command instead of the detected one (e.g. `pnpm install --frozen-lockfile`).
    #[arg(long)]
    install_command: Option<String>,
    /// Dev server command instead of the detected one (it must listen on --port).
    #[arg(long)]
    dev_command: Option<String>,
    /// The app folder of a monorepo (relative to the repository), instead of the automatic pick.
    #[arg(long)]
    root: Option<String>,
    /// Port of the dev server instead of the framework's default.
    #[arg(long)]
    port: Option<u16>,
    /// Keep the sandbox (on failure, after Ctrl-C, and when the embedded backend stops).
    #[arg(long)]
    keep: bool,
    /// Upload `.env*` files of a folder too (never sent otherwise).
    #[arg(long)]
    include_env: bool,
    /// `small`, `medium` (default) or `large`.
    #[arg(long, default_value = "medium")]
    class: String,
    /// Public preview (no token needed).
    #[arg(long)]
    public: bool,
    /// Exit once verified even on the embedded backend (which then stops with it).
    #[arg(long)]
    no_wait: bool,
    /// Also load the preview in a headless Chromium (found on PATH): a page that throws or
    /// renders nothing fails; the screenshot is written to --screenshot.
    #[arg(long)]
    browser: bool,
    /// Where --browser writes the screenshot (PNG).
    #[arg(long, default_value = "forge-preview.png", requires = "browser")]
    screenshot: PathBuf,
}

/// Prints progress: a line per finished step, a spinner with the running time meanwhile.
struct Printer {
    tty: bool,
    running: Mutex<Option<(Step, Instant)>>,
}

impl Printer {
    fn event(&self, p: &Progress) {
        match p.status {
            ProgressStatus::Started => {
                if let Ok(mut r) = self.running.lock() {
                    *r = Some((p.step, Instant::now()));
                }
                if !self.tty {
                    say(&format!("  {:<8} …", p.step.as_str()));
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
                say(&format!(
                    "{clear}{mark} {:<8} {:>7} ms  {msg}",
                    p.step.as_str(),
                    ms
                ));
            }
        }
    }

    fn tick(&self, frame: usize) {
        const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let running = self.running.lock().ok().and_then(|r| *r);
        if let Some((step, since)) = running {
            err(&format!(
                "\r\x1b[2K{} {:<8} {:>5.1} s",
                FRAMES[frame % FRAMES.len()],
                step.as_str(),
                since.elapsed().as_secs_f64()
            ));
        }
    }
}

fn request(args: &Args) -> Result<PreviewRequest, Failure> {
    let folder = PathBuf::from(&args.source);
    let looks_remote = args.source.contains("://") || args.source.starts_with("git@");
    if !looks_remote && !folder.is_dir() {
        return Err(Failure::usage(format!(
            "{} is neither a git URL nor a folder",
            args.source
        )));
    }
    let token = args.token.clone().filter(|t| !t.is_empty());
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
        upload_from: (!looks_remote).then_some(Upload {
            folder,
            include_env: args.include_env,
        }),
        keep_on_failure: args.keep,
        root: args.root.clone(),
        port: args.port,
        install_command: args.install_command.clone(),
        dev_command: args.dev_command.clone(),
        browser: args.browser.then(BrowserOptions::default),
        ..Default::default()
    })
}

/// A failed pipeline: its code and message, with the step's details.
fn failure_of(e: &PreviewError) -> Failure {
    let mut f = Failure::new(e.code(), e.to_string());
    if let PreviewError::Step(s) = e {
        f = f
            .with("step", s.step.as_str())
            .with("sandboxId", s.sandbox_id.clone())
            .with("reason", s.reason().map(|r| r.code()))
            .with("excerpt", s.excerpt.clone())
            .with("logTail", s.log_tail.clone())
            .with("kept", s.kept);
    }
    f
}

/// The failure of a pipeline the user interrupted: what ran, and what became of the sandbox.
fn interrupted(e: &PreviewError, cleaned: Option<bool>) -> Failure {
    let PreviewError::Step(s) = e else {
        return Failure::cancelled("interrupted");
    };
    let step = s.step.as_str();
    let fate = match (s.sandbox_id.as_deref(), s.kept, cleaned) {
        (None, _, _) => "no sandbox was left".to_owned(),
        (Some(id), true, _) => format!("sandbox {id} kept (--keep): `forge rm {id}` deletes it"),
        (Some(id), false, Some(false)) => {
            format!("sandbox {id} could NOT be deleted: `forge rm {id}`")
        }
        (Some(id), false, _) => format!("sandbox {id} deleted"),
    };
    Failure::cancelled(format!("interrupted during {step}; {fate}"))
        .with("step", step)
        .with("sandboxId", s.sandbox_id.clone())
        .with("kept", s.kept)
}

pub async fn run(args: Args, json: bool, cancel: CancellationToken) -> Result<(), Failure> {
    let req = request(&args)?;
    let workspace_class = WorkspaceClass::parse(&args.class)?;
    let backend = tokio::select! {
        b = Backend::open(Purpose::Preview, json) => b?,
        () = cancel.cancelled() => return Err(Failure::cancelled("interrupted before a sandbox was made")),
    };
    let create = CreateParams {
        workspace_class: Some(workspace_class),
        public: Some(args.public),
        ..Default::default()
    };
    let printer = Arc::new(Printer {
        tty: !json && std::io::stderr().is_terminal(),
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
    // Whether the pipeline's own cleanup deleted the sandbox (for the interrupted message).
    let cleaned = Arc::new(Mutex::new(None));
    let on_progress = {
        let p = printer.clone();
        let cleaned = cleaned.clone();
        move |e: Progress| {
            if e.step == Step::Cleanup {
                if let Ok(mut c) = cleaned.lock() {
                    *c = Some(e.status == ProgressStatus::Finished);
                }
            }
            if !json {
                p.event(&e);
            }
        }
    };
    let call = CallOptions::new().with_cancel(cancel.clone());
    let result = clone_and_preview(&backend.client, &create, &req, &on_progress, &call).await;
    if let Some(s) = spinner {
        s.abort();
    }
    if args.browser {
        // One check per command: no reason to keep the browser warm.
        forge_preview::browser::shutdown().await;
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            let f = if cancel.is_cancelled() {
                let f = interrupted(&e, cleaned.lock().ok().and_then(|c| *c));
                if json {
                    // stdout carries the JSON error; a person at the terminal reads stderr.
                    say(&format!("forge preview: {}", f.message));
                }
                f
            } else {
                if !json {
                    if let PreviewError::Step(f) = &e {
                        for l in &f.log_tail {
                            say(&format!("  | {l}"));
                        }
                    }
                }
                failure_of(&e)
            };
            backend.close().await;
            return Err(f);
        }
    };
    let link = browser_link(&backend, &r).await;
    let mut value = serde_json::to_value(&r).unwrap_or_default();
    value["browserUrl"] = link.clone().unwrap_or_else(|| r.preview_url.clone()).into();
    let mut text = human(&r, link.as_deref());
    if let Some(check) = &r.verify.browser {
        let (line, path) = write_screenshot(check, &args.screenshot);
        text.push_str(&line);
        if let Some(shot) = value.pointer_mut("/verify/browser/screenshot") {
            // The file instead of its base64 on stdout.
            shot["png"] = serde_json::Value::Null;
            shot["path"] = path.map(|p| p.display().to_string()).into();
        }
    }
    success(json, value, &text);
    let Some(embedded) = backend.embedded.as_ref() else {
        if !json {
            say(&format!(
                "the sandbox keeps running: `forge logs {0}` shows the dev server, `forge rm {0}` deletes it",
                r.sandbox_id
            ));
        }
        return Ok(());
    };
    if !args.no_wait {
        if !json {
            say(&format!(
                "serving the preview from the embedded backend (home {}); Ctrl-C to stop",
                embedded.home().display()
            ));
        }
        cancel.cancelled().await;
    }
    if args.keep {
        say(&format!(
            "sandbox {0} kept (--keep): `forge rm {0}` deletes it",
            r.sandbox_id
        ));
    } else {
        let deleted = backend
            .client
            .delete(
                &r.sandbox_id,
                false,
                &CallOptions::new().with_timeout(Duration::from_secs(30)),
            )
            .await;
        if let Err(e) = deleted {
            say(&format!(
                "forge preview: could not delete sandbox {}: {e}",
                r.sandbox_id
            ));
        } else if !json {
            say(&format!("sandbox {} deleted", r.sandbox_id));
        }
    }
    backend.close().await;
    Ok(())
}

/// Writes the browser check's screenshot to `to`: the line that says so (or why not) and the
/// file's absolute path.
fn write_screenshot(check: &BrowserCheck, to: &std::path::Path) -> (String, Option<PathBuf>) {
    let report = match check {
        BrowserCheck::Skipped(s) => {
            return (format!("browser check skipped: {}\n", s.skipped), None)
        }
        BrowserCheck::Ran(r) => r,
    };
    let Some(png) = report
        .screenshot
        .as_ref()
        .and_then(forge_preview::browser::Screenshot::bytes)
    else {
        return ("browser check: no screenshot\n".into(), None);
    };
    let line = |p: &std::path::Path| {
        format!(
            "browser: {} \"{}\" in {} ms · screenshot {}\n",
            report.reason.code(),
            report.title,
            report.timings.total_ms,
            p.display()
        )
    };
    match std::fs::write(to, png) {
        Ok(()) => {
            let abs = std::path::absolute(to).unwrap_or_else(|_| to.to_path_buf());
            (line(&abs), Some(abs))
        }
        Err(e) => (
            format!("browser check: could not write {}: {e}\n", to.display()),
            None,
        ),
    }
}

/// A URL of the preview that opens in a browser: the preview URL itself for a public sandbox;
/// for a private one a signed link (the token in the link; a browser cannot send the token
/// header, and the bare URL answers 307 there). `None` when the backend gives no signed link.
async fn browser_link(backend: &Backend, r: &PreviewResult) -> Option<String> {
    r.token.as_ref()?;
    match backend
        .client
        .signed_preview_url(&r.sandbox_id, r.port, Some(LINK_TTL))
        .await
    {
        Ok(s) => Some(s.url),
        Err(e) => {
            say(&format!(
                "forge preview: no signed link for the browser ({e}); the preview needs its token in the `X-Daytona-Preview-Token` header"
            ));
            None
        }
    }
}

fn human(r: &PreviewResult, link: Option<&str>) -> String {
    let t = &r.timings;
    let url = link.unwrap_or(&r.preview_url);
    let note = match (&r.token, link) {
        (Some(_), Some(_)) => format!(
            "\n  (private: this link signs you in for 24 h; without it: {} with the token of --json in the X-Daytona-Preview-Token header)",
            r.preview_url
        ),
        (Some(_), None) => "  (private: send the preview token, see --json)".to_owned(),
        (None, _) => String::new(),
    };
    format!(
        "\npreview: {url}{note}\nframework {} on port {} · sandbox {} · total {} ms (install {} ms, verify {} ms)\n",
        r.framework.as_deref().unwrap_or("?"),
        r.port,
        r.sandbox_id,
        t.total,
        t.of(Step::Install),
        t.of(Step::Verify)
    )
}

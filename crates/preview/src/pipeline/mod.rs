//! The clone → preview pipeline: create → clone → detect → install → start → verify, each
//! step timed and reported, with no fixed sleep anywhere. On failure the error names the step
//! and carries the relevant log tail, and the sandbox is deleted unless the caller keeps it.
//!
//! The steps are also public on their own ([`steps`], one file each) with JSON-serialisable
//! input and output.

mod failure;
pub mod log_lines;
pub mod steps;

pub use failure::{tail_lines, Step, StepError, StepFailure};
pub use log_lines::{log_channel, LogLine, LogReceiver, LogSink, OutputStream, PipelineEvent};
pub use steps::clone::{clone_repository, upload_list, CloneInput, Cloned, Upload};
pub use steps::create::{create_sandbox, Created};
pub use steps::detect::{detect_framework, DetectInput};
pub use steps::health::{check_health, Health, HealthInput};
pub use steps::install::{install_dependencies, InstallInput, Installed};
pub use steps::restart::{restart_preview, RestartInput, Restarted};
pub use steps::start::{fill_start, start_dev_server, StartInput, Started};
pub use steps::verify::{verify_preview, Verified, VerifyInput};
pub use steps::{node_options, DEFAULT_PATH};

use crate::PreviewError;
use failure::AtStep;
use forge_daytona::{CallOptions, Client, CreateParams};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// The whole pipeline's input besides the sandbox's creation parameters.
#[derive(Debug, Clone, Default)]
pub struct PreviewRequest {
    /// Repository URL, token, branch, target folder.
    pub clone: CloneInput,
    /// Upload this local folder instead of cloning `clone.repo_url` (the CLI's
    /// `forge preview <folder>`).
    pub upload_from: Option<Upload>,
    /// Keep the sandbox when a step fails (for debugging); deleted otherwise.
    pub keep_on_failure: bool,
    /// The app folder of a monorepo, instead of the automatic pick.
    pub root: Option<String>,
    /// Use this port instead of the framework's default.
    pub port: Option<u16>,
    /// Override detection's commands.
    pub install_command: Option<String>,
    pub dev_command: Option<String>,
    /// Extra environment of the install and the dev server.
    pub env_vars: BTreeMap<String, String>,
    pub install_timeout: Option<Duration>,
    pub verify_timeout: Option<Duration>,
    /// `Some(false)`: never use the embedded backend's dependency cache (a second preview of
    /// the same repository and lockfile restores `node_modules` instead of installing).
    pub dependency_cache: Option<bool>,
    /// Also check the preview in a headless browser (see [`crate::browser`]); `None`: not.
    pub browser: Option<crate::browser::BrowserOptions>,
    /// Where the install's and the dev server's output go, line by line (see [`log_lines`]):
    /// the install (and the workspace prepare command) while it runs, the dev server from its
    /// start through its verification. Inactive by default (nothing is followed).
    pub log: LogSink,
}

/// What happens, as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewProgress"))]
pub struct Progress {
    pub step: Step,
    pub status: ProgressStatus,
    /// Milliseconds since the pipeline started.
    pub elapsed_ms: u64,
    /// How long the step took (`finished` and `failed`).
    pub step_ms: Option<u64>,
    /// One line for humans (`cloned into workspace/project`, `detected Vite on port 5173`).
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "PreviewProgressStatus")
)]
pub enum ProgressStatus {
    Started,
    Finished,
    Failed,
}

/// Milliseconds per step (JSON: `{ create, clone, detect, install, start, verify, total }`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewTimings"))]
pub struct Timings {
    #[serde(flatten)]
    pub steps: BTreeMap<Step, u64>,
    pub total: u64,
}

impl Timings {
    /// The milliseconds `step` took (0 when it did not run).
    pub fn of(&self, step: Step) -> u64 {
        self.steps.get(&step).copied().unwrap_or_default()
    }
}

/// One finished step, for the record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewStepRecord"))]
pub struct StepRecord {
    pub step: Step,
    pub elapsed_ms: u64,
    pub message: String,
}

/// A verified preview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewResult"))]
pub struct PreviewResult {
    pub sandbox_id: String,
    pub preview_url: String,
    /// Preview token of a private sandbox; `None` for public ones.
    pub token: Option<String>,
    /// Framework id (`nextjs`, `vite-react`, `node`, …); `None` when only a command was given.
    pub framework: Option<String>,
    pub port: u16,
    /// The dev server's session, for logs, health checks and `restart_preview`.
    pub session_id: String,
    pub command_id: String,
    pub path: String,
    pub timings: Timings,
    pub steps: Vec<StepRecord>,
    pub verify: crate::verify::VerifyReport,
}

struct Run<'a> {
    t0: Instant,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
    steps: Vec<StepRecord>,
    timings: Timings,
}

impl<'a> Run<'a> {
    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn emit(
        &self,
        step: Step,
        status: ProgressStatus,
        step_ms: Option<u64>,
        message: Option<String>,
    ) {
        (self.progress)(Progress {
            step,
            status,
            elapsed_ms: self.ms(),
            step_ms,
            message,
        });
    }

    /// Runs one step: announces it, times it, records it, and reports a failure.
    ///
    /// The step's future is boxed here, before anything holds it: the steps' futures are
    /// large (the verify loop, the log WebSocket), and an `async fn` keeps its arguments
    /// inline, so taking `fut` by value would have put every step in the pipeline's future
    /// (big enough to overflow a worker thread's stack in debug builds) and every caller's.
    fn step<'s, T, F, D>(
        &'s mut self,
        step: Step,
        fut: F,
        describe: D,
    ) -> impl Future<Output = Result<T, PreviewError>> + use<'s, 'a, T, F, D>
    where
        F: Future<Output = Result<T, PreviewError>>,
        D: FnOnce(&T) -> String,
    {
        self.timed(step, Box::pin(fut), describe)
    }

    /// [`step`](Self::step) on its boxed future.
    async fn timed<T>(
        &mut self,
        step: Step,
        fut: Pin<Box<impl Future<Output = Result<T, PreviewError>>>>,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<T, PreviewError> {
        self.emit(step, ProgressStatus::Started, None, None);
        let t = Instant::now();
        let r = fut.await;
        let took = t.elapsed().as_millis() as u64;
        match &r {
            Ok(v) => {
                let message = describe(v);
                self.emit(
                    step,
                    ProgressStatus::Finished,
                    Some(took),
                    Some(message.clone()),
                );
                self.steps.push(StepRecord {
                    step,
                    elapsed_ms: took,
                    message,
                });
                self.timings.steps.insert(step, took);
            }
            Err(e) => self.emit(
                step,
                ProgressStatus::Failed,
                Some(took),
                Some(e.to_string()),
            ),
        }
        r
    }
}

/// How long deleting a failed sandbox may take; it runs even after an abort.
const CLEANUP_TIMEOUT: Duration = Duration::from_mins(1);

/// Runs the whole pipeline. `progress` is called (synchronously, keep it cheap) at the start
/// and end of every step. Cancelling `call.cancel` stops the current step (killing a running
/// install) and deletes the sandbox unless `keep_on_failure`.
pub async fn clone_and_preview(
    client: &Client,
    create: &CreateParams,
    req: &PreviewRequest,
    progress: &(dyn Fn(Progress) + Send + Sync),
    call: &CallOptions,
) -> Result<PreviewResult, PreviewError> {
    let mut run = Run {
        t0: Instant::now(),
        progress,
        steps: Vec::new(),
        timings: Timings::default(),
    };
    let (created, sandbox) = run
        .step(
            Step::Create,
            steps::create::run(client, create, call),
            |c| format!("sandbox {} {}", c.0.sandbox_id, c.0.state),
        )
        .await?;
    let sid = created.sandbox_id.clone();
    let outcome = after_create(client, &mut run, &created, &sandbox, req, call).await;
    match outcome {
        Ok(mut result) => {
            result.timings = run.timings.clone();
            result.timings.total = run.ms();
            result.steps = std::mem::take(&mut run.steps);
            Ok(result)
        }
        Err(e) => {
            let mut e = match e {
                PreviewError::Step(f) => PreviewError::Step(f),
                other => Err::<(), _>(other).at(Step::Create, &sid).unwrap_err(),
            };
            let kept = req.keep_on_failure;
            if !kept {
                let cleanup = CallOptions::new().with_timeout(CLEANUP_TIMEOUT);
                let t = Instant::now();
                let deleted = client.delete(&sid, false, &cleanup).await;
                run.emit(
                    Step::Cleanup,
                    if deleted.is_ok() {
                        ProgressStatus::Finished
                    } else {
                        ProgressStatus::Failed
                    },
                    Some(t.elapsed().as_millis() as u64),
                    Some(match deleted {
                        Ok(()) => format!("deleted sandbox {sid}"),
                        Err(d) => format!("could not delete sandbox {sid}: {d}"),
                    }),
                );
            }
            if let PreviewError::Step(f) = &mut e {
                f.kept = kept;
                f.sandbox_id.get_or_insert(sid);
            }
            Err(e)
        }
    }
}

async fn after_create(
    client: &Client,
    run: &mut Run<'_>,
    created: &Created,
    sandbox: &forge_wire::Sandbox,
    req: &PreviewRequest,
    call: &CallOptions,
) -> Result<PreviewResult, PreviewError> {
    let sid = &created.sandbox_id;
    let tb = client.toolbox(sandbox).await.at(Step::Clone, sid)?;
    let mut clone = req.clone.clone();
    clone.sandbox_id = sid.clone();
    // The preview domain (for the dev server's allowed hosts) is fetched while cloning.
    let fetch = async {
        match &req.upload_from {
            Some(from) => {
                let path = clone.path.as_deref().unwrap_or(DEFAULT_PATH);
                steps::clone::upload(&tb, sid, from, path, call).await
            }
            None => steps::clone::run(&tb, &clone, call).await,
        }
    };
    let (cloned, domain) = tokio::join!(
        run.step(Step::Clone, fetch, |c| format!(
            "{} into {}",
            if req.upload_from.is_some() {
                "uploaded"
            } else {
                "cloned"
            },
            c.path
        )),
        steps::detect::preview_domain(client, sid)
    );
    let cloned = cloned?;
    let detect_input = DetectInput {
        sandbox_id: sid.clone(),
        path: Some(cloned.path.clone()),
        root: req.root.clone(),
        port: req.port,
        allowed_hosts: Some(domain.into_iter().collect()),
    };
    let detection = run
        .step(
            Step::Detect,
            steps::detect::run(client, &tb, &detect_input, call),
            |d| match &d.framework {
                Some(f) => format!(
                    "{} in {} (port {})",
                    f.name,
                    d.root,
                    d.port.map_or_else(|| "?".into(), |p| p.to_string())
                ),
                None => "no framework recognised".into(),
            },
        )
        .await?;
    let install = steps::install::Params {
        sandbox_id: sid.clone(),
        path: cloned.path.clone(),
        install_root: detection.install_root.clone(),
        command: req
            .install_command
            .clone()
            .or_else(|| detection.install_command.clone()),
        memory_gib: Some(created.memory_gib),
        timeout: req
            .install_timeout
            .unwrap_or(steps::install::DEFAULT_INSTALL_TIMEOUT),
        env_vars: req.env_vars.clone(),
        install_env: BTreeMap::new(),
        package_manager: None,
        prepare_command: None,
        log: req.log.clone(),
        cache_scope: if req.dependency_cache == Some(false) {
            None
        } else {
            match &req.upload_from {
                Some(from) => Some(format!("folder:{}", from.folder.display())),
                None => steps::install::scope_of(&req.clone.repo_url),
            }
        },
    }
    .with_detection(&detection);
    let (installed, fresh) = run
        .step(
            Step::Install,
            steps::install::install(client, &tb, &install, call),
            |(i, _)| {
                let restored = i
                    .notes
                    .iter()
                    .any(|n| n.starts_with(steps::install::RESTORED));
                let mut m = match &i.command {
                    // The command did not run: the notes say where node_modules came from.
                    Some(_) if restored => String::new(),
                    Some(c) => format!("`{c}` done"),
                    None => "nothing to install".into(),
                };
                for n in &i.notes {
                    if !m.is_empty() {
                        m.push_str("; ");
                    }
                    m.push_str(n);
                }
                m
            },
        )
        .await?;
    // The install's record (for a retry) is kept while the dev server starts and is
    // verified: nothing of the preview waits for it.
    let record = async {
        if fresh {
            steps::install::record(&tb, &install, &installed, call).await;
        }
    };
    let serve = start_and_verify(client, run, &tb, &cloned, &detection, created, req, call);
    let (served, ()) = tokio::join!(serve, record);
    served
}

/// The start and verify steps of [`after_create`].
#[allow(clippy::too_many_arguments)]
async fn start_and_verify(
    client: &Client,
    run: &mut Run<'_>,
    tb: &forge_daytona::Toolbox,
    cloned: &Cloned,
    detection: &forge_detect::Detection,
    created: &Created,
    req: &PreviewRequest,
    call: &CallOptions,
) -> Result<PreviewResult, PreviewError> {
    let sid = &created.sandbox_id;
    let mut start = StartInput {
        sandbox_id: sid.clone(),
        path: Some(cloned.path.clone()),
        command: req.dev_command.clone(),
        port: req.port,
        env_vars: Some(req.env_vars.clone()),
        memory_gib: Some(created.memory_gib),
        ..Default::default()
    };
    fill_start(&mut start, detection);
    let started = run
        .step(Step::Start, steps::start::run(tb, &start, call), |s| {
            format!("`{}` on port {}", s.command, s.port)
        })
        .await?;
    let mut verify = steps::verify::Params::after(&started, req.verify_timeout);
    verify.browser.clone_from(&req.browser);
    // The dev server's output, from its start (the log is replayed) through verification.
    let verifying = log_lines::follow_while(
        tb,
        &started.session_id,
        &started.command_id,
        Step::Start,
        &req.log,
        call,
        steps::verify::run(client, tb, &verify, call),
    );
    let verified = run
        .step(Step::Verify, verifying, |v| {
            format!(
                "{} answered {}",
                v.preview_url,
                v.report.status.unwrap_or(0)
            )
        })
        .await?;
    Ok(PreviewResult {
        sandbox_id: sid.clone(),
        preview_url: verified.preview_url.clone(),
        // A public sandbox needs no token: don't hand one out to be leaked.
        token: verified.token.clone().filter(|_| !created.public),
        framework: started.framework.clone(),
        port: verified.report.port,
        session_id: started.session_id.clone(),
        command_id: started.command_id.clone(),
        path: cloned.path.clone(),
        timings: Timings::default(),
        steps: Vec::new(),
        verify: verified.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_keyed_by_step_and_read_as_before() {
        let mut t = Timings::default();
        t.steps.insert(Step::Install, 7);
        t.steps.insert(Step::Create, 3);
        t.total = 12;
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({ "create": 3, "install": 7, "total": 12 })
        );
        assert_eq!(t.of(Step::Verify), 0);
    }

    #[test]
    fn step_errors_carry_their_codes_and_one_meaning_each() {
        let install = StepFailure::new(
            Step::Install,
            StepError::InstallFailed { exit_code: 2 },
            "npm ci exited with code 2",
        );
        assert_eq!(install.code(), "PREVIEW_INSTALL_FAILED");
        assert_eq!(install.reason(), None);
        let verify = StepFailure::new(
            Step::Verify,
            StepError::VerifyFailed {
                reason: crate::Reason::FrameworkError,
                http_status: Some(500),
            },
            "overlay",
        );
        assert_eq!(verify.code(), "PREVIEW_VERIFY_FAILED");
        assert_eq!(verify.reason(), Some(crate::Reason::FrameworkError));
        let under = Err::<(), _>(forge_daytona::Error::Aborted)
            .at(Step::Clone, "sbx")
            .unwrap_err();
        assert_eq!(under.code(), "DAYTONA_ABORTED");
    }
}

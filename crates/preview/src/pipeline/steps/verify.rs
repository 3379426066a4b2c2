//! Step 6, `verify`: the preview answers like a working app (see [`crate::verify`]).

use super::start::Started;
use super::toolbox;
use crate::browser::{BrowserOptions, BrowserSetting, SCREENSHOT_PATH};
use crate::pipeline::failure::{AtStep, Step, StepError, StepFailure};
use crate::pipeline::log_lines::{follow_while, LogSink};
use crate::verify::{verify_preview as run_verify, DevProcess, VerifyOptions, VerifyReport};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client, Toolbox, UploadItem};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long verification waits for a dev server by default, and for frameworks that build
/// everything on the first request ([`SLOW_FIRST_BUILD`]).
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_mins(1);
pub const SLOW_VERIFY_TIMEOUT: Duration = Duration::from_mins(3);
/// Framework ids (or id prefixes) whose first page compiles the whole app on demand.
pub const SLOW_FIRST_BUILD: &[&str] = &["nextjs", "angular", "nuxt", "gatsby", "docusaurus"];

/// What to verify. With `sessionId` and `commandId` (from
/// [`start_dev_server`](super::start::start_dev_server)) verification
/// also reads the dev server's log (its announced port, its last lines) and stops early when it
/// exits.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "VerifyPreviewInput", optional_fields = nullable))]
pub struct VerifyInput {
    pub sandbox_id: String,
    pub port: u16,
    pub session_id: Option<String>,
    pub command_id: Option<String>,
    /// The page to request; `/` by default.
    pub path: Option<String>,
    /// Overall deadline; 60 s, or 180 s for frameworks in [`SLOW_FIRST_BUILD`].
    pub timeout_ms: Option<u64>,
    pub framework: Option<String>,
    /// Also load the page in a headless browser once it answers over HTTP: `true`, or where
    /// and how (default `false`). A page that throws, fails to load a script or renders
    /// nothing then fails with `BROWSER_ERROR` / `BLANK_PAGE`; the report's `browser` has the
    /// errors and a screenshot (`{ skipped: 'no browser' }` where no browser is found).
    pub browser: Option<BrowserSetting>,
}

/// The verification as the step runs it: the input with its defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub sandbox_id: String,
    pub port: u16,
    /// The dev server's command, when known (its log and its exit are watched).
    pub dev: Option<DevProcess>,
    /// The page to request.
    pub path: String,
    pub timeout: Duration,
    /// The browser check's options, when asked for.
    pub browser: Option<BrowserOptions>,
}

impl From<&VerifyInput> for Params {
    fn from(i: &VerifyInput) -> Self {
        Params {
            sandbox_id: i.sandbox_id.clone(),
            port: i.port,
            dev: match (&i.session_id, &i.command_id) {
                (Some(s), Some(c)) => Some(DevProcess {
                    session_id: s.clone(),
                    command_id: c.clone(),
                }),
                _ => None,
            },
            path: i.path.clone().unwrap_or_else(|| "/".into()),
            timeout: i.timeout_ms.map_or_else(
                || deadline_for(i.framework.as_deref()),
                Duration::from_millis,
            ),
            browser: i.browser.as_ref().and_then(BrowserSetting::options),
        }
    }
}

impl Params {
    /// The verification that follows a start (`timeout` or the framework's deadline).
    pub(crate) fn after(s: &Started, timeout: Option<Duration>) -> Params {
        Params {
            sandbox_id: s.sandbox_id.clone(),
            port: s.port,
            dev: Some(DevProcess {
                session_id: s.session_id.clone(),
                command_id: s.command_id.clone(),
            }),
            path: "/".into(),
            timeout: timeout.unwrap_or_else(|| deadline_for(s.framework.as_deref())),
            browser: None,
        }
    }
}

/// A verified preview: the report plus the URL and token to hand to a browser.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "VerifiedPreview"))]
pub struct Verified {
    #[serde(flatten)]
    pub report: VerifyReport,
    pub sandbox_id: String,
    pub preview_url: String,
    /// The preview token of a private sandbox (send it as `X-Daytona-Preview-Token`).
    pub token: Option<String>,
}

/// The default deadline for a framework: long for those in [`SLOW_FIRST_BUILD`].
fn deadline_for(framework: Option<&str>) -> Duration {
    match framework {
        Some(id) if SLOW_FIRST_BUILD.iter().any(|p| id.starts_with(p)) => SLOW_VERIFY_TIMEOUT,
        _ => DEFAULT_VERIFY_TIMEOUT,
    }
}

/// Waits until the preview answers like a working app (see [`crate::verify`]). Fails with
/// `PREVIEW_VERIFY_FAILED`, the reason, the framework's error excerpt and the dev server's
/// last log lines otherwise. With `sessionId` and `commandId`, `log` gets the dev server's
/// output, line by line, from its start (the log is replayed) through verification.
pub async fn verify_preview(
    client: &Client,
    input: &VerifyInput,
    log: &LogSink,
    call: &CallOptions,
) -> Result<Verified, PreviewError> {
    let tb = toolbox(client, &input.sandbox_id, Step::Verify).await?;
    let params = Params::from(input);
    let verify = run(client, &tb, &params, call);
    let mut verified = match &params.dev {
        Some(dev) => {
            let (session, cmd) = (&dev.session_id, &dev.command_id);
            follow_while(&tb, session, cmd, Step::Start, log, call, verify).await
        }
        None => verify.await,
    }?;
    // A public sandbox needs no token: don't hand one out to be leaked (the same answer as
    // `clone_and_preview`'s).
    if verified.token.is_some() && client.get(&input.sandbox_id).await.is_ok_and(|s| s.public) {
        verified.token = None;
    }
    Ok(verified)
}

/// The step inside the pipeline, with the sandbox's toolbox.
pub(crate) async fn run(
    client: &Client,
    tb: &Toolbox,
    params: &Params,
    call: &CallOptions,
) -> Result<Verified, PreviewError> {
    let sid = &params.sandbox_id;
    let opts = VerifyOptions {
        port: params.port,
        path: params.path.clone(),
        deadline: params.timeout,
        browser: params.browser.clone(),
        ..VerifyOptions::default()
    };
    let verify = run_verify(client, sid, tb, params.dev.as_ref(), &opts);
    let report = match &call.cancel {
        Some(c) => tokio::select! {
            r = verify => r,
            () = c.cancelled() => Err(forge_daytona::Error::Aborted.into()),
        },
        None => verify.await,
    }
    .at(Step::Verify, sid)?;
    if params
        .browser
        .as_ref()
        .is_some_and(|b| b.save_screenshot == Some(true))
    {
        save_screenshot(tb, &report, call).await;
    }
    if !report.ok {
        let mut f = StepFailure::new(
            Step::Verify,
            StepError::VerifyFailed {
                reason: report.reason,
                http_status: report.status,
            },
            format!(
                "the preview of port {} did not answer like a working app: {}{}",
                report.port,
                report.reason.code(),
                report
                    .excerpt
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        )
        .in_sandbox(sid);
        f.excerpt.clone_from(&report.excerpt);
        f.log_tail.clone_from(&report.log_tail);
        return Err(f.into_error());
    }
    let link = client
        .preview_url(sid, report.port)
        .await
        .at(Step::Verify, sid)?;
    Ok(Verified {
        sandbox_id: sid.clone(),
        preview_url: report.url.clone(),
        token: (!link.token.is_empty()).then_some(link.token),
        report,
    })
}

/// Stores the browser check's screenshot in the sandbox (see [`SCREENSHOT_PATH`]), for
/// `check_health` to return; a failure costs only that, so it is logged, not returned.
async fn save_screenshot(tb: &Toolbox, report: &VerifyReport, call: &CallOptions) {
    let Some(png) = report
        .browser
        .as_ref()
        .and_then(|b| b.report())
        .and_then(|r| r.screenshot.as_ref())
        .and_then(crate::browser::Screenshot::bytes)
    else {
        return;
    };
    let item = UploadItem {
        source: png.into(),
        destination: SCREENSHOT_PATH.into(),
    };
    if let Err(e) = tb.fs().upload(vec![item], call).await {
        tracing::debug!(code = e.code(), "could not store the preview's screenshot");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_frameworks_get_the_long_deadline() {
        let mut v = VerifyInput {
            framework: Some("nextjs".into()),
            ..Default::default()
        };
        assert_eq!(Params::from(&v).timeout, SLOW_VERIFY_TIMEOUT);
        v.framework = Some("vite-react".into());
        assert_eq!(Params::from(&v).timeout, DEFAULT_VERIFY_TIMEOUT);
        v.timeout_ms = Some(5);
        assert_eq!(Params::from(&v).timeout, Duration::from_millis(5));
    }
}

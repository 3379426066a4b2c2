//! How a pipeline step fails: which step, a typed error with a stable code, and the evidence
//! (the tail of the relevant log, the verification excerpt).

use crate::{PreviewError, Reason};
use serde::Serialize;

/// The steps of the pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewStep"))]
pub enum Step {
    Create,
    Clone,
    Detect,
    Install,
    Start,
    Verify,
    Cleanup,
}

impl Step {
    /// The name used in errors, progress events and timings.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Clone => "clone",
            Step::Detect => "detect",
            Step::Install => "install",
            Step::Start => "start",
            Step::Verify => "verify",
            Step::Cleanup => "cleanup",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in a step: the step's own failures, or the error underneath. The step's
/// own codes are written once per variant (`#[strum(serialize)]`); [`StepError::codes`] lists
/// them for the binding's typings.
#[derive(Debug, strum::IntoStaticStr, strum::VariantNames)]
pub enum StepError {
    /// The control plane, detection or the transport failed underneath (its code is kept,
    /// so that retry decisions keep working).
    #[strum(disabled)] // no code of its own: `code()` gives the source's
    Source(Box<PreviewError>),
    /// The install command exited with a non-zero code.
    #[strum(serialize = "PREVIEW_INSTALL_FAILED")]
    InstallFailed { exit_code: i32 },
    /// Detection found no way to start the app.
    #[strum(serialize = "PREVIEW_NO_DEV_COMMAND")]
    NoDevCommand,
    /// Something already listened on the dev server's port in the sandbox before it started.
    #[strum(serialize = "PREVIEW_PORT_IN_USE")]
    PortInUse { port: u16 },
    /// The preview did not answer like a working app.
    #[strum(serialize = "PREVIEW_VERIFY_FAILED")]
    VerifyFailed {
        reason: Reason,
        /// The HTTP status of the last probe that got an answer.
        http_status: Option<u16>,
    },
}

impl StepError {
    /// The stable code: the step's own (`PREVIEW_INSTALL_FAILED`, `PREVIEW_NO_DEV_COMMAND`,
    /// `PREVIEW_VERIFY_FAILED`) or the underlying error's (`DAYTONA_NOT_FOUND`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            StepError::Source(e) => e.code(),
            own => own.into(),
        }
    }

    /// The step's own codes (those of [`StepError::Source`], which has none of its own, are
    /// its crate's).
    pub fn codes() -> impl Iterator<Item = &'static str> {
        <StepError as strum::VariantNames>::VARIANTS
            .iter()
            .copied()
            .filter(|c| c.starts_with("PREVIEW_"))
    }
}

/// A failed step: which, why ([`StepError`]), and the evidence (the log tail, the framework's
/// error text) so that the caller can show the user why without a second round trip.
#[derive(Debug)]
pub struct StepFailure {
    pub step: Step,
    pub error: StepError,
    pub message: String,
    pub sandbox_id: Option<String>,
    /// The last lines of the log that explains the failure (install output, dev server output).
    pub log_tail: Vec<String>,
    /// The framework's error text, when verification saw one.
    pub excerpt: Option<String>,
    /// Whether the sandbox was kept (`keepOnFailure`) rather than deleted.
    pub kept: bool,
}

impl StepFailure {
    pub(crate) fn new(step: Step, error: StepError, message: impl Into<String>) -> Self {
        StepFailure {
            step,
            error,
            message: message.into(),
            sandbox_id: None,
            log_tail: Vec::new(),
            excerpt: None,
            kept: false,
        }
    }

    /// In sandbox `id`.
    pub(crate) fn in_sandbox(mut self, id: &str) -> Self {
        self.sandbox_id = Some(id.to_owned());
        self
    }

    /// As a [`PreviewError`].
    pub(crate) fn into_error(self) -> PreviewError {
        PreviewError::Step(Box::new(self))
    }

    /// See [`StepError::code`].
    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// Verification's reason, when verification failed.
    pub fn reason(&self) -> Option<Reason> {
        match self.error {
            StepError::VerifyFailed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The error underneath, when there was one.
    pub fn source(&self) -> Option<&PreviewError> {
        match &self.error {
            StepError::Source(e) => Some(e),
            _ => None,
        }
    }

    /// Whether retrying the whole step may help (the underlying transport said so).
    pub fn retryable(&self) -> bool {
        matches!(self.source(), Some(PreviewError::Daytona(e)) if e.retryable())
    }
}

/// The last `n` non-empty lines of `text`, without the daemon's stream markers
/// (`\x01\x01\x01` / `\x02\x02\x02` in combined session output).
pub fn tail_lines(text: &str, n: usize) -> Vec<String> {
    let clean = text
        .replace("\u{1}\u{1}\u{1}", "")
        .replace("\u{2}\u{2}\u{2}", "");
    let lines: Vec<&str> = clean.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(500).collect())
        .collect()
}

/// Lifts any error of a step into a [`PreviewError::Step`] naming it.
pub(crate) trait AtStep<T> {
    fn at(self, step: Step, sandbox: &str) -> Result<T, PreviewError>;
}

impl<T, E: Into<PreviewError>> AtStep<T> for Result<T, E> {
    fn at(self, step: Step, sandbox: &str) -> Result<T, PreviewError> {
        self.map_err(|e| match e.into() {
            PreviewError::Step(f) => PreviewError::Step(f),
            other => {
                let message = other.to_string();
                let mut f = StepFailure::new(step, StepError::Source(Box::new(other)), message);
                f.sandbox_id = (!sandbox.is_empty()).then(|| sandbox.to_owned());
                f.into_error()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail_lines("a\n\nb\nc\n\n", 2), vec!["b", "c"]);
        assert_eq!(tail_lines("", 3), Vec::<String>::new());
        assert_eq!(
            tail_lines("\u{1}\u{1}\u{1}up to date\n\u{2}\u{2}\u{2}warn\n", 5),
            vec!["up to date", "warn"]
        );
    }
}

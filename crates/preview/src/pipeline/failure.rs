//! How a pipeline step fails: which step, a stable code, and the evidence (the tail of the
//! relevant log, the verification reason and excerpt) so that the caller can show the user
//! why without a second round trip.

use crate::PreviewError;
use serde::Serialize;

/// The steps of the pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// A failed step. `code` is the step's own code (`PREVIEW_INSTALL_FAILED`, …) or, when the
/// control plane failed underneath, that error's code (`DAYTONA_NOT_FOUND`, …) so that
/// retry decisions keep working.
#[derive(Debug)]
pub struct StepFailure {
    pub step: Step,
    pub code: &'static str,
    pub message: String,
    pub sandbox_id: Option<String>,
    /// The last lines of the log that explains the failure (install output, dev server output).
    pub log_tail: Vec<String>,
    /// Verification's reason code (`FRAMEWORK_ERROR`, `PROCESS_EXITED`, …).
    pub reason: Option<String>,
    /// HTTP status of the last probe, or the exit code of a failed command.
    pub status: Option<i64>,
    /// The framework's error text, when verification saw one.
    pub excerpt: Option<String>,
    /// Whether the sandbox was kept (`keepOnFailure`) rather than deleted.
    pub kept: bool,
    pub source: Option<Box<PreviewError>>,
}

impl StepFailure {
    pub(crate) fn new(step: Step, code: &'static str, message: impl Into<String>) -> Self {
        StepFailure {
            step,
            code,
            message: message.into(),
            sandbox_id: None,
            log_tail: Vec::new(),
            reason: None,
            status: None,
            excerpt: None,
            kept: false,
            source: None,
        }
    }

    /// Whether retrying the whole step may help (the underlying transport said so).
    pub fn retryable(&self) -> bool {
        matches!(self.source.as_deref(), Some(PreviewError::Daytona(e)) if e.retryable())
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
                let mut f = StepFailure::new(step, other.code(), other.to_string());
                f.sandbox_id = (!sandbox.is_empty()).then(|| sandbox.to_owned());
                f.source = Some(Box::new(other));
                PreviewError::Step(Box::new(f))
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

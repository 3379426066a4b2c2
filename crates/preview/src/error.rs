//! The crate's one error enum; codes are those of the crate that failed.

/// Why a pipeline step failed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The sandbox could not be reached or answered with an error.
    #[error(transparent)]
    Daytona(#[from] forge_daytona::Error),
    /// Detection refused the input (e.g. the folder does not exist).
    #[error(transparent)]
    Detect(#[from] forge_detect::DetectError),
    /// A pipeline step failed; carries the step, the evidence and the underlying error.
    #[error("{} failed: {}", .0.step, .0.message)]
    Step(Box<crate::pipeline::StepFailure>),
}

impl PreviewError {
    /// The stable code (`DAYTONA_*` or `DETECT_*`).
    pub fn code(&self) -> &'static str {
        match self {
            PreviewError::Daytona(e) => e.code(),
            PreviewError::Detect(e) => e.code(),
            PreviewError::Step(f) => f.code(),
        }
    }
}

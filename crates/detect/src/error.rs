//! Typed errors and warnings. Errors stop detection (the folder does not exist, the chosen
//! `root` is not in the repository); everything else wrong with the input (a malformed
//! package.json, a non-UTF-8 config, a walk cut short) becomes a [`Warning`] on the result,
//! so one bad file never hides the answer for the rest of the repository.

use serde::{Deserialize, Serialize};

/// Why detection could not produce an answer at all.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The folder given to a local source does not exist or cannot be opened.
    #[error("folder not found: {path}")]
    NotFound { path: String },
    /// The path given to a local source is a file, not a folder.
    #[error("not a folder: {path}")]
    NotADirectory { path: String },
    /// The `root` option names a folder that is not in the repository.
    #[error("root {root:?} is not a folder of the repository")]
    RootNotFound { root: String },
    /// The `root` option tries to leave the repository (`..`, absolute path).
    #[error("root {root:?} must be a relative path inside the repository")]
    InvalidRoot { root: String },
    /// A file source failed in a way that is not about one file (for example the remote
    /// listing failed).
    #[error("could not read the repository: {message}")]
    Source { message: String },
}

impl DetectError {
    /// A stable string code for programs (and the JS `Error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            DetectError::NotFound { .. } => "DETECT_NOT_FOUND",
            DetectError::NotADirectory { .. } => "DETECT_NOT_A_DIRECTORY",
            DetectError::RootNotFound { .. } => "DETECT_ROOT_NOT_FOUND",
            DetectError::InvalidRoot { .. } => "DETECT_INVALID_ROOT",
            DetectError::Source { .. } => "DETECT_SOURCE",
        }
    }
}

/// Something about the input that was skipped or guessed; the answer is still given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable code, e.g. `PACKAGE_JSON_INVALID`, `SEVERAL_LOCKFILES`, `WALK_TRUNCATED`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Warning {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

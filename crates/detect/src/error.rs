//! Typed errors and warnings. Errors stop detection (the folder does not exist, the chosen
//! `root` is not in the repository); everything else wrong with the input (a malformed
//! package.json, a non-UTF-8 config, a walk cut short) becomes a [`Warning`] on the result,
//! so one bad file never hides the answer for the rest of the repository.

use serde::{Deserialize, Serialize};

/// Why detection could not produce an answer at all. Each variant's code is written once
/// (`#[strum(serialize)]`); [`DetectError::CODES`] lists them for the binding's typings.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames)]
pub enum DetectError {
    /// The folder given to a local source does not exist or cannot be opened.
    #[error("folder not found: {path}")]
    #[strum(serialize = "DETECT_NOT_FOUND")]
    NotFound { path: String },
    /// The path given to a local source is a file, not a folder.
    #[error("not a folder: {path}")]
    #[strum(serialize = "DETECT_NOT_A_DIRECTORY")]
    NotADirectory { path: String },
    /// The `root` option names a folder that is not in the repository.
    #[error("root {root:?} is not a folder of the repository")]
    #[strum(serialize = "DETECT_ROOT_NOT_FOUND")]
    RootNotFound { root: String },
    /// The `root` option tries to leave the repository (`..`, absolute path).
    #[error("root {root:?} must be a relative path inside the repository")]
    #[strum(serialize = "DETECT_INVALID_ROOT")]
    InvalidRoot { root: String },
    /// A file source failed in a way that is not about one file (for example the remote
    /// listing failed).
    #[error("could not read the repository: {message}")]
    #[strum(serialize = "DETECT_SOURCE")]
    Source { message: String },
}

impl DetectError {
    /// A stable string code for programs (and the JS `Error.code`).
    pub fn code(&self) -> &'static str {
        self.into()
    }

    /// Every code [`DetectError::code`] can give.
    pub const CODES: &'static [&'static str] = <DetectError as strum::VariantNames>::VARIANTS;
}

/// Something about the input that was skipped or guessed; the answer is still given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DetectionWarning"))]
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

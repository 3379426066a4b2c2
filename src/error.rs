//! The one place where core errors become JS errors.
//!
//! Every rejection is a real JS `Error` whose `code` is a stable string (`DAYTONA_NOT_FOUND`,
//! `DAYTONA_ABORTED`, ...), with `status` (HTTP status when there was one) and `retryable`, so
//! that an Inngest function can decide between rethrowing and `NonRetriableError`. Messages
//! come from the core crates, which never put secrets in them.

use napi::bindgen_prelude::*;

/// A core error, flattened to what JS sees.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub retryable: bool,
    /// The server's own code when it gave one (`GIT_AUTH_FAILED`, `FILE_NOT_FOUND`, ...).
    pub server_code: Option<String>,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Failure {
            code: code.to_owned(),
            message: message.into(),
            status: None,
            retryable: false,
            server_code: None,
        }
    }

    /// The call was cancelled through its `AbortSignal`.
    pub fn aborted() -> Self {
        Failure::new("DAYTONA_ABORTED", "The operation was aborted")
    }

    /// Bad arguments from JS.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new("DAYTONA_INVALID_ARGUMENT", message)
    }

    /// Builds the JS error object. Its `name` is `DaytonaError` (or `AbortError` for aborts,
    /// as `fetch` users expect).
    pub fn into_js(self, env: &Env) -> Error {
        match self.build(env) {
            Ok(err) => err,
            Err(e) => e,
        }
    }

    fn build(self, env: &Env) -> Result<Error> {
        let name = if self.code == "DAYTONA_ABORTED" {
            "AbortError"
        } else {
            "DaytonaError"
        };
        let mut obj = env.create_error(Error::new(Status::GenericFailure, self.message))?;
        obj.set_named_property("name", name)?;
        obj.set_named_property("code", self.code)?;
        obj.set_named_property("retryable", self.retryable)?;
        match self.status {
            Some(s) => obj.set_named_property("status", s as u32)?,
            None => obj.set_named_property("status", Null)?,
        }
        if let Some(sc) = self.server_code {
            obj.set_named_property("serverCode", sc)?;
        }
        Ok(Error::from(obj.to_unknown()))
    }
}

/// Converts a core error into a [`Failure`]. Implemented once per core crate.
pub(crate) trait IntoFailure {
    fn into_failure(self) -> Failure;
}

impl IntoFailure for Failure {
    fn into_failure(self) -> Failure {
        self
    }
}

impl IntoFailure for forge_daytona::Error {
    fn into_failure(self) -> Failure {
        Failure {
            code: self.code().to_owned(),
            status: self.status(),
            retryable: self.retryable(),
            server_code: self.daemon_code().map(str::to_owned),
            message: self.to_string(),
        }
    }
}

impl IntoFailure for forge_preview::PreviewError {
    fn into_failure(self) -> Failure {
        match self {
            forge_preview::PreviewError::Daytona(e) => e.into_failure(),
            forge_preview::PreviewError::Detect(e) => e.into_failure(),
        }
    }
}

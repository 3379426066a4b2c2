//! What a step records in the sandbox about the work it did, so that the same step run again
//! (a workflow engine's retry) recognises its own work: the clone it made, the install whose
//! lockfile and `node_modules` are unchanged, the dev server it started on a port.
//!
//! One small JSON file per step and subject, `.forge/steps/<step>/<hash of the subject>.json`
//! under the sandbox's work dir (outside the repository, so neither git nor detection sees it).
//! Nothing secret goes in: repository URLs are stored without credentials.

use forge_daytona::{CallOptions, Error, Toolbox, UploadItem};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Where the records live, relative to the sandbox's work dir.
pub const DIR: &str = ".forge/steps";

fn path(step: &str, subject: &str) -> String {
    // The subject (a path, a port) hashed: any length and any character make one file name.
    let name = forge_daytona::idempotency::key_label(subject).unwrap_or_else(|_| "_".into());
    format!("{DIR}/{step}/{name}.json")
}

/// The record of `step` about `subject`; `None` when there is none (or it is not one of ours:
/// unreadable as `T`). Other failures are the caller's: acting without knowing could repeat
/// a side effect.
pub(crate) async fn read<T: DeserializeOwned>(
    tb: &Toolbox,
    step: &str,
    subject: &str,
    call: &CallOptions,
) -> Result<Option<T>, Error> {
    match tb.fs().download(&path(step, subject), call).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records `value` as what `step` did about `subject`.
pub(crate) async fn write<T: Serialize>(
    tb: &Toolbox,
    step: &str,
    subject: &str,
    value: &T,
    call: &CallOptions,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::InvalidArgument(format!("step record: {e}")))?;
    tb.fs()
        .upload(
            vec![UploadItem {
                source: bytes.into(),
                destination: path(step, subject),
            }],
            call,
        )
        .await
}

/// [`write`] where a failure only costs a retry its shortcut (the step then repeats work that
/// is safe to repeat): logged, not returned.
pub(crate) async fn write_best_effort<T: Serialize>(
    tb: &Toolbox,
    step: &str,
    subject: &str,
    value: &T,
    call: &CallOptions,
) {
    if let Err(e) = write(tb, step, subject, value, call).await {
        tracing::debug!(code = e.code(), step, "could not record the step's work");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_are_one_file_per_step_and_subject() {
        let a = super::path("clone", "workspace/project");
        let name = a
            .strip_prefix(".forge/steps/clone/")
            .and_then(|n| n.strip_suffix(".json"));
        assert!(name.is_some_and(|n| n.len() == 32), "{a}");
        assert_ne!(a, super::path("clone", "workspace/other"));
        assert_ne!(a, super::path("install", "workspace/project"));
        assert!(!super::path("start", &"x/".repeat(500)).contains("x/"));
    }
}

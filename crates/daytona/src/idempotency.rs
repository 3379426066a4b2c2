//! Idempotent creates, and the cleanup that goes with them.
//!
//! Workflow engines (Inngest, Temporal) run a step at least once: a step that created a
//! sandbox and then failed (or whose answer was lost) runs again. With an idempotency key the
//! second run finds the sandbox the first one made instead of making another:
//!
//! - the sandbox carries the label [`IDEMPOTENCY_LABEL`] = the key's SHA-256 (hex, 128 bits:
//!   the key itself may be long or hold characters a label value may not), so it is found by
//!   listing with a label filter, on Daytona as on the embedded backend;
//! - unless the caller names it, its name is `forge-<that hash>`. Names are unique per
//!   organisation, so two concurrent creates with one key cannot both succeed: the loser gets
//!   409 and adopts the winner's sandbox (the name is the lock, the server holds it);
//! - a sandbox of the key that is stopped or archived is started; one in `error` or
//!   `build_failed` is our own broken leftover: it is deleted and a new one made, so that a
//!   retry is never made permanent by it.
//!
//! [`Client::cleanup`] deletes what was made under a key (or any labels): the `onFailure`
//! handler of a workflow whose run failed.

use crate::call::{CallOptions, Deadline};
use crate::client::{Client, CreateParams, ListQuery, DEFAULT_LIFECYCLE_TIMEOUT};
use crate::error::{Error, Result};
use crate::wait::{self, Backoff};
use forge_wire::{Sandbox, SandboxState, StringMap};

/// The label that ties a sandbox to the idempotency key it was created under (its value is
/// [`key_label`] of the key).
pub const IDEMPOTENCY_LABEL: &str = "forge.idempotency-key";

/// The [`IDEMPOTENCY_LABEL`] value of `key`: the first 128 bits of its SHA-256, in hex.
pub fn key_label(key: &str) -> Result<String> {
    if key.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "idempotencyKey must be a non-empty string".into(),
        ));
    }
    let digest = sha256(key.as_bytes());
    Ok(digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(not(target_family = "wasm"))]
fn sha256(bytes: &[u8]) -> impl AsRef<[u8]> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

/// ring's C code is not built for wasm here (it needs clang); the same hash in Rust.
#[cfg(target_family = "wasm")]
fn sha256(bytes: &[u8]) -> impl AsRef<[u8]> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
}

/// What [`Client::cleanup`] deletes: the sandboxes made under `key`, and/or those carrying
/// every one of `labels`. At least one of them must be given (an empty filter would match
/// every sandbox of the organisation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cleanup {
    pub key: Option<String>,
    pub labels: StringMap,
}

impl Cleanup {
    /// The label filter: `labels`, plus the key's label.
    fn filter(&self) -> Result<StringMap> {
        let mut labels = self.labels.clone();
        if let Some(key) = &self.key {
            labels.insert(IDEMPOTENCY_LABEL.into(), key_label(key)?);
        }
        if labels.is_empty() {
            return Err(Error::InvalidArgument(
                "cleanup needs a key or at least one label: an empty filter would match every sandbox".into(),
            ));
        }
        Ok(labels)
    }
}

/// States of a sandbox that is gone or going: never adopted, never counted.
const GONE: &[SandboxState] = &[SandboxState::Destroyed, SandboxState::Destroying];
/// States of a sandbox that will never start: a key's sandbox in one of them is replaced.
const BROKEN: &[SandboxState] = &[SandboxState::Error, SandboxState::BuildFailed];

/// One look for the key's sandbox.
enum Found {
    /// Made by this call.
    Made(Sandbox),
    /// Made earlier (or concurrently) under the same key.
    Existing(Sandbox),
}

impl Client {
    /// The sandboxes carrying every label of `labels` that are not gone, oldest first.
    async fn labelled(&self, labels: StringMap, opts: &CallOptions) -> Result<Vec<Sandbox>> {
        let query = ListQuery {
            labels: Some(labels),
            ..Default::default()
        };
        let mut found: Vec<Sandbox> = self
            .list_all(&query, opts)
            .await?
            .into_iter()
            .filter(|s| !GONE.contains(&s.state))
            .collect();
        found.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(found)
    }

    /// The sandbox made under `key`, if there is one (in whatever state).
    pub async fn find_by_idempotency_key(
        &self,
        key: &str,
        opts: &CallOptions,
    ) -> Result<Option<Sandbox>> {
        let labels = StringMap::from_iter([(IDEMPOTENCY_LABEL.to_owned(), key_label(key)?)]);
        Ok(self.labelled(labels, opts).await?.into_iter().next())
    }

    /// [`create`](Client::create) with a key: the key's sandbox, made now or found (see the
    /// module's doc).
    pub(crate) async fn create_idempotent(
        &self,
        key: &str,
        params: &CreateParams,
        opts: &CallOptions,
    ) -> Result<Sandbox> {
        let label = key_label(key)?;
        let mut fresh = params.clone();
        fresh.idempotency_key = None;
        fresh.labels.insert(IDEMPOTENCY_LABEL.into(), label.clone());
        let name = match fresh.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => format!("forge-{label}"),
        };
        fresh.name = Some(name.clone());
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let ours = |s: &Sandbox| s.labels.get(IDEMPOTENCY_LABEL) == Some(&label);
        let look = wait::from_fn(Backoff::LIFECYCLE, || async {
            let list = CallOptions {
                timeout: deadline.remaining(),
                cancel: opts.cancel.clone(),
            };
            let existing = self
                .labelled(
                    StringMap::from_iter([(IDEMPOTENCY_LABEL.to_owned(), label.clone())]),
                    &list,
                )
                .await?;
            if let Some(s) = existing.into_iter().next() {
                if BROKEN.contains(&s.state) {
                    self.delete(&s.id, true, &list).await.or_else(gone_ok)?;
                    return Ok(None);
                }
                return Ok(Some(Found::Existing(s)));
            }
            match self.create_once(&fresh, opts).await {
                Ok(s) => Ok(Some(Found::Made(s))),
                // The name is taken: by the key's sandbox that a concurrent call is making
                // (adopt it once it shows), or by someone else's (a real conflict).
                Err(Error::Conflict(api)) => match self.get_within(&name, &deadline).await {
                    Ok(s) if ours(&s) && !GONE.contains(&s.state) => Ok(Some(Found::Existing(s))),
                    Ok(s) if ours(&s) => Ok(None),
                    Ok(_) => Err(Error::Conflict(api)),
                    // Reserved but not yet visible (or its create failed): look again.
                    Err(Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        });
        match deadline.wait("create sandbox", look).await? {
            Found::Made(s) => Ok(s),
            Found::Existing(s) => self.adopt(s, &deadline, opts).await,
        }
    }

    /// Brings a sandbox made earlier under the same key to `started`.
    async fn adopt(&self, s: Sandbox, deadline: &Deadline, opts: &CallOptions) -> Result<Sandbox> {
        const WHAT: &str = "create sandbox";
        let s = match s.state {
            SandboxState::Stopping | SandboxState::Archiving | SandboxState::Pausing => {
                self.wait_for(
                    s,
                    &[
                        SandboxState::Stopped,
                        SandboxState::Archived,
                        SandboxState::Paused,
                    ],
                    deadline,
                    WHAT,
                )
                .await?
            }
            _ => s,
        };
        match s.state {
            SandboxState::Started => Ok(s),
            SandboxState::Stopped | SandboxState::Archived | SandboxState::Paused => {
                let opts = CallOptions {
                    timeout: deadline.remaining(),
                    cancel: opts.cancel.clone(),
                };
                self.start(&s.id, &opts).await
            }
            _ => self.wait_started(s, deadline, WHAT).await,
        }
    }

    /// Deletes the sandboxes made under `cleanup.key` and/or carrying every one of
    /// `cleanup.labels`, and waits until they are gone. Returns the ids it deleted (one
    /// already gone is not counted). For a workflow's `onFailure`: nothing the failed run made
    /// stays behind.
    pub async fn cleanup(&self, cleanup: &Cleanup, opts: &CallOptions) -> Result<Vec<String>> {
        let found = self.labelled(cleanup.filter()?, opts).await?;
        let deletes = found.iter().map(|s| async {
            match self.delete(&s.id, true, opts).await {
                Ok(()) => Ok(Some(s.id.clone())),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let results = futures_util::future::join_all(deletes).await;
        let mut deleted = Vec::new();
        for r in results {
            deleted.extend(r?);
        }
        Ok(deleted)
    }
}

/// A delete that found nothing has done its job.
fn gone_ok(e: Error) -> Result<()> {
    match e {
        Error::NotFound(_) => Ok(()),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_labelled_by_its_hash_and_an_empty_one_is_refused() {
        let a = key_label("01HXYZ:create-sandbox").unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, key_label("01HXYZ:create-sandbox").unwrap());
        assert_ne!(a, key_label("01HXYZ:create-sandbox ").unwrap());
        assert_eq!(
            key_label(" ").unwrap_err().code(),
            "DAYTONA_INVALID_ARGUMENT"
        );
    }

    #[test]
    fn cleanup_refuses_a_filter_that_matches_everything() {
        let e = Cleanup::default().filter().unwrap_err();
        assert!(e.to_string().contains("a key or at least one label"), "{e}");
        let f = Cleanup {
            key: Some("k".into()),
            labels: StringMap::from_iter([("project".to_owned(), "p1".to_owned())]),
        }
        .filter()
        .unwrap();
        assert_eq!(f.get("project").map(String::as_str), Some("p1"));
        assert_eq!(f.get(IDEMPOTENCY_LABEL), Some(&key_label("k").unwrap()));
    }
}

//! Sandbox records on disk. Each sandbox is a folder `<home>/sandboxes/<id>/` holding
//! `sandbox.json` (the record, written to a temp file then renamed, so a crash never leaves a
//! half-written record), `root/` (the sandbox's `/`) and `state/` (session state and command
//! logs, outside the root so nothing the sandbox writes can forge them).

use crate::error::{Failure, LocalError};
use crate::spares::{force_remove, make_skeleton, Skeleton, Spares};
use forge_wire::{Sandbox, SandboxState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

pub use crate::container::WORK_DIR;

/// A sandbox's record, in its folder.
pub(crate) const RECORD: &str = "sandbox.json";
/// The file a record is written to before it is renamed to [`RECORD`]; a sandbox folder
/// starts with it empty (see `spares::make_skeleton`), so the first write allocates no inode.
pub(crate) const RECORD_TMP: &str = "sandbox.json.tmp";

/// What we persist per sandbox: the wire record plus the preview token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Record {
    pub sandbox: Sandbox,
    /// The sandbox's preview token (`authToken`): same for every port, new on every start.
    pub preview_token: String,
    /// The port of each preview listener, by sandbox port: a backend started again listens
    /// on the same ones, so preview URLs outlive it.
    #[serde(default)]
    pub previews: BTreeMap<u16, u16>,
    /// The sandbox this one was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// When it was last stopped (its auto-archive and auto-delete count from then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

/// The sandboxes of one backend home.
pub struct Store {
    dir: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
    /// Names reserved by creates still writing their folders (counted against the limit).
    pending: std::sync::Mutex<HashSet<String>>,
    /// Sandbox folders made ahead of time, and deleted ones (see [`Spares`]).
    spares: Arc<Spares>,
    skeleton: Skeleton,
    max: usize,
}

impl Store {
    /// Opens `<home>/sandboxes`, creating it, and loads every readable record. Unreadable
    /// records are skipped with a warning rather than stopping the backend.
    pub async fn open(
        home: &Path,
        runtime: &crate::container::Runtime,
        config: &crate::LocalConfig,
    ) -> Result<Store, LocalError> {
        let dir = home.join("sandboxes");
        let home_err = |source| LocalError::Home {
            path: home.to_path_buf(),
            source,
        };
        tokio::fs::create_dir_all(&dir).await.map_err(home_err)?;
        let mut records = BTreeMap::new();
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(home_err)?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let file = entry.path().join(RECORD);
            let Ok(bytes) = tokio::fs::read(&file).await else {
                continue;
            };
            match serde_json::from_slice::<Record>(&bytes) {
                // A record names its own folder, and ids are UUIDs: anything else (an id with
                // a `/` or `..`, a record moved into another folder) is not trusted.
                Ok(rec)
                    if entry.file_name().to_str() == Some(rec.sandbox.id.as_str())
                        && is_uuid(&rec.sandbox.id) =>
                {
                    records.insert(rec.sandbox.id.clone(), rec);
                }
                Ok(rec) => tracing::warn!(
                    "skipping record {}: its id {:?} is not its folder's name",
                    file.display(),
                    rec.sandbox.id
                ),
                Err(e) => tracing::warn!("skipping unreadable record {}: {e}", file.display()),
            }
        }
        let skeleton = Skeleton {
            entries: runtime.layout().skeleton(),
            uid: runtime.uid,
            gid: runtime.gid,
        };
        let spares = {
            let home = home.to_path_buf();
            let (sk, max) = (skeleton.clone(), config.spare_sandboxes);
            tokio::task::spawn_blocking(move || Spares::open(&home, sk, max))
                .await
                .map_err(|e| home_err(std::io::Error::other(e)))?
                .map_err(home_err)?
        };
        Ok(Store {
            dir,
            records: Mutex::new(records),
            pending: std::sync::Mutex::default(),
            spares,
            skeleton,
            max: config.max_sandboxes,
        })
    }

    /// The folder of a sandbox (record, root, state).
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The host folder for backend-private per-sandbox state (logs, session state).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("state")
    }

    /// Where uploads are written before they are renamed into the root (emptied at start).
    pub fn uploads_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("uploads")
    }

    /// Finds a record by id, else by name.
    pub async fn get(&self, id_or_name: &str) -> Option<Record> {
        let records = self.records.lock().await;
        find(&records, id_or_name).cloned()
    }

    /// Every record, oldest first (then by id), for stable list paging.
    pub async fn all(&self) -> Vec<Record> {
        let records = self.records.lock().await;
        let mut all: Vec<Record> = records.values().cloned().collect();
        all.sort_by(|a, b| {
            (a.sandbox.created_at.as_deref(), &a.sandbox.id)
                .cmp(&(b.sandbox.created_at.as_deref(), &b.sandbox.id))
        });
        all
    }

    /// Adds a new sandbox: creates its folders, then persists the record. Fails with 409
    /// when the name is taken.
    ///
    /// Only the checks and the final insert hold the lock: the name is reserved first, the
    /// folders and the record are written with the lock released (so concurrent creates do
    /// their disk work in parallel and reads are never held up by it), and the record becomes
    /// visible only once it is on disk.
    pub async fn insert(&self, rec: Record) -> Result<Record, Failure> {
        let name = rec.sandbox.name.clone();
        let reservation = {
            let records = self.records.lock().await;
            let mut pending = lock_pending(&self.pending);
            let max = self.max;
            if records.len() + pending.len() >= max {
                // Worded like Daytona's quota errors (400), so clients map it the same way.
                return Err(Failure::bad_request(format!(
                    "Total sandbox limit exceeded. Maximum allowed: {max}."
                )));
            }
            if pending.contains(&name) || records.values().any(|r| r.sandbox.name == name) {
                return Err(Failure::conflict(format!(
                    "Sandbox with name {name} already exists"
                )));
            }
            pending.insert(name.clone());
            Reservation {
                pending: &self.pending,
                name: Some(name),
            }
        };
        let id = rec.sandbox.id.clone();
        let sandbox_dir = self.sandbox_dir(&id);
        let bytes = encode(&rec)?;
        let spare = self.spares.take();
        let has_spare = spare.is_some();
        let skeleton = self.skeleton.clone();
        let place = move || -> Result<(), Failure> {
            // A spare is renamed into place (one rename, no new inodes); without one the
            // folders are made here (if the rename fails, too).
            let placed = spare.is_some_and(|sp| {
                if let Ok(()) = std::fs::rename(&sp, &sandbox_dir) {
                    true
                } else {
                    let _ = force_remove(&sp);
                    false
                }
            });
            if !placed {
                make_skeleton(&sandbox_dir, &skeleton)
                    .map_err(|e| Failure::internal(format!("cannot create sandbox folder: {e}")))?;
            }
            write_file(&sandbox_dir, &bytes)
                .map_err(|e| Failure::internal(format!("cannot write sandbox record: {e}")))
        };
        // With a spare this is two renames and a small write into the page cache, about 40 µs:
        // done here, on the runtime's worker. Handing it to the blocking pool instead cost
        // more than the work: 100 concurrent creates spent a median 3 ms in the handler
        // waiting for pool threads (0.04 ms done here; temporary timestamps in the handler).
        // Making a skeleton (eight `mkdir`s, inode allocation) goes to the pool.
        let written = if has_spare {
            place()
        } else {
            tokio::task::spawn_blocking(place)
                .await
                .map_err(|e| Failure::internal(format!("record writer failed: {e}")))
                .and_then(|r| r)
        };
        if let Err(e) = written {
            let _ = tokio::fs::remove_dir_all(self.sandbox_dir(&id)).await;
            return Err(e);
        }
        let mut records = self.records.lock().await;
        // Name released and record added under both locks: no instant where the name is free.
        let _pending = reservation.release();
        records.insert(id, rec.clone());
        Ok(rec)
    }

    /// Notes activity on a sandbox (its auto-stop counts from the last): in memory, persisted
    /// with its next change.
    pub async fn touch(&self, id: &str) {
        if let Some(r) = self.records.lock().await.get_mut(id) {
            r.sandbox.last_activity_at = Some(crate::error::now_rfc3339());
        }
    }

    /// Applies `change` to a record and persists it. 404 when unknown.
    pub async fn update<F>(&self, id_or_name: &str, change: F) -> Result<Record, Failure>
    where
        F: FnOnce(&mut Record) -> Result<(), Failure>,
    {
        let mut records = self.records.lock().await;
        let id = find(&records, id_or_name)
            .map(|r| r.sandbox.id.clone())
            .ok_or_else(|| not_found(id_or_name))?;
        let mut rec = records[&id].clone();
        change(&mut rec)?;
        rec.sandbox.updated_at = Some(crate::error::now_rfc3339());
        self.persist(&rec).await?;
        records.insert(id, rec.clone());
        Ok(rec)
    }

    /// Forgets a sandbox and moves its folder out of the way; the folder is reused for a
    /// later sandbox when `reusable` (none of its processes is left), else removed, in the
    /// background (see [`Spares`]).
    pub async fn remove(&self, id: &str, reusable: bool) -> Result<(), Failure> {
        let mut records = self.records.lock().await;
        records.remove(id);
        drop(records);
        let dir = self.sandbox_dir(id);
        // One rename into the trash, done here like a create's (see `insert`); removing the
        // folder when it cannot be moved goes to the blocking pool.
        if self.spares.discard(&dir, id, reusable) {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || force_remove(&dir))
            .await
            .map_err(|e| Failure::internal(format!("remover failed: {e}")))?
            .map_err(|e| Failure::internal(format!("cannot remove sandbox folder: {e}")))
    }

    /// Writes `sandbox.json` atomically (see [`write_record`]).
    async fn persist(&self, rec: &Record) -> Result<(), Failure> {
        let dir = self.sandbox_dir(&rec.sandbox.id);
        let bytes = encode(rec)?;
        tokio::task::spawn_blocking(move || write_record(&dir, &bytes))
            .await
            .map_err(|e| Failure::internal(format!("record writer failed: {e}")))?
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.spares.stop();
    }
}

/// A name held for a sandbox being created; freed on drop, so a create whose request was
/// cancelled mid-write does not keep its name taken.
struct Reservation<'a> {
    pending: &'a std::sync::Mutex<HashSet<String>>,
    /// `None` once released.
    name: Option<String>,
}

impl<'a> Reservation<'a> {
    /// Frees the name now; the returned guard keeps the pending set locked until dropped.
    fn release(mut self) -> std::sync::MutexGuard<'a, HashSet<String>> {
        let mut pending = lock_pending(self.pending);
        if let Some(name) = self.name.take() {
            pending.remove(&name);
        }
        pending
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            lock_pending(self.pending).remove(&name);
        }
    }
}

/// The pending-name set; a panic elsewhere cannot leave it unusable.
fn lock_pending(
    m: &std::sync::Mutex<HashSet<String>>,
) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encode(rec: &Record) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec_pretty(rec)
        .map_err(|e| Failure::internal(format!("cannot encode record: {e}")))
}

/// Writes `<dir>/sandbox.json` as a temp file renamed into place, so a backend killed at any
/// instant leaves either the previous record or the new one, never a half-written one.
fn write_record(dir: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .and_then(|()| write_file(dir, bytes))
        .map_err(|e| Failure::internal(format!("cannot write sandbox record: {e}")))
}

/// The temp-file-and-rename write of [`write_record`], the folder known to exist.
///
/// The temp file is overwritten, not truncated: a new sandbox's folder holds it empty (see
/// `spares::make_skeleton`), and on ext4 truncating a file to zero makes its close start the
/// writeback of what was written (`auto_da_alloc`), disk work in the create request (a
/// one-off loop of 300 writes of a 1.5 KB record here: about 50 µs each with truncation,
/// 17 µs without).
fn write_file(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(RECORD_TMP);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&tmp)?;
    f.write_all(bytes)?;
    if f.metadata()?.len() > bytes.len() as u64 {
        f.set_len(bytes.len() as u64)?;
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(RECORD))
}

fn find<'a>(records: &'a BTreeMap<String, Record>, id_or_name: &str) -> Option<&'a Record> {
    records
        .get(id_or_name)
        .or_else(|| records.values().find(|r| r.sandbox.name == id_or_name))
}

/// `8-4-4-4-12` lowercase hex, the shape of every id this backend makes.
fn is_uuid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The API's 404 for an unknown sandbox.
pub fn not_found(id_or_name: &str) -> Failure {
    Failure::not_found(format!("Sandbox with ID or name {id_or_name} not found"))
}

/// True when toolbox calls may run (the daemon only runs in a started sandbox).
pub fn is_running(state: SandboxState) -> bool {
    state == SandboxState::Started
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record's temp file is overwritten in place: whatever it held before (empty in a
    /// fresh sandbox folder, longer after a crash mid-write) leaves nothing behind.
    #[test]
    fn a_record_write_leaves_exactly_the_record() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        for before in [
            &b""[..],
            b"{\"an\": \"older, much longer record than the new one\"}",
        ] {
            std::fs::write(dir.join(RECORD_TMP), before).unwrap();
            write_file(dir, b"{\"id\": \"s1\"}").unwrap();
            assert_eq!(
                std::fs::read(dir.join(RECORD)).unwrap(),
                b"{\"id\": \"s1\"}"
            );
            assert!(!dir.join(RECORD_TMP).exists());
        }
    }
}

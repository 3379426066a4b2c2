//! Sandbox records on disk. Each sandbox is a folder `<home>/sandboxes/<id>/` holding
//! `sandbox.json` (the record, written to a temp file then renamed, so a crash never leaves a
//! half-written record), `root/` (the sandbox's `/`) and `state/` (session state and command
//! logs, outside the root so nothing the sandbox writes can forge them).

use crate::error::{Failure, LocalError};
use forge_wire::{Sandbox, SandboxState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// The sandbox's work dir and the user's home, as seen inside the sandbox.
pub const WORK_DIR: &str = "/home/daytona";

/// What we persist per sandbox: the wire record plus the preview token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Record {
    pub sandbox: Sandbox,
    /// The sandbox's preview token (`authToken`): same for every port, new on every start.
    pub preview_token: String,
}

/// The sandboxes of one backend home.
pub struct Store {
    dir: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
}

impl Store {
    /// Opens `<home>/sandboxes`, creating it, and loads every readable record. Unreadable
    /// records are skipped with a warning rather than stopping the backend.
    pub async fn open(home: &Path) -> Result<Store, LocalError> {
        let dir = home.join("sandboxes");
        let home_err = |source| LocalError::Home {
            path: home.to_path_buf(),
            source,
        };
        tokio::fs::create_dir_all(&dir).await.map_err(home_err)?;
        let mut records = BTreeMap::new();
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(home_err)?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let file = entry.path().join("sandbox.json");
            let Ok(bytes) = tokio::fs::read(&file).await else {
                continue;
            };
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(rec) => {
                    records.insert(rec.sandbox.id.clone(), rec);
                }
                Err(e) => tracing::warn!("skipping unreadable record {}: {e}", file.display()),
            }
        }
        Ok(Store {
            dir,
            records: Mutex::new(records),
        })
    }

    /// The folder of a sandbox (record, root, state).
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The host folder that is the sandbox's `/`.
    pub fn root(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("root")
    }

    /// The host folder for backend-private per-sandbox state (logs, session state).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("state")
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
    pub async fn insert(&self, rec: Record) -> Result<Record, Failure> {
        let mut records = self.records.lock().await;
        let max = max_sandboxes();
        if records.len() >= max {
            // Worded like Daytona's quota errors (400), so clients map it the same way.
            return Err(Failure::bad_request(format!(
                "Total sandbox limit exceeded. Maximum allowed: {max}."
            )));
        }
        if records.values().any(|r| r.sandbox.name == rec.sandbox.name) {
            return Err(Failure::conflict(format!(
                "Sandbox with name {} already exists",
                rec.sandbox.name
            )));
        }
        let id = rec.sandbox.id.clone();
        let work = self.root(&id).join(WORK_DIR.trim_start_matches('/'));
        // `workspace` exists from the start: the integration guide's paths (`workspace/repo`)
        // assume it, as its sample images do.
        for dir in [
            work.join("workspace"),
            self.state_dir(&id),
            self.root(&id).join("tmp"),
        ] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Failure::internal(format!("cannot create sandbox folder: {e}")))?;
        }
        self.persist(&rec).await?;
        records.insert(id, rec.clone());
        Ok(rec)
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

    /// Forgets a sandbox and removes its folder.
    pub async fn remove(&self, id: &str) -> Result<(), Failure> {
        let mut records = self.records.lock().await;
        records.remove(id);
        let dir = self.sandbox_dir(id);
        drop(records);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Failure::internal(format!(
                "cannot remove sandbox folder: {e}"
            ))),
        }
    }

    /// Writes `sandbox.json` atomically: temp file, fsync, rename.
    async fn persist(&self, rec: &Record) -> Result<(), Failure> {
        let dir = self.sandbox_dir(&rec.sandbox.id);
        let bytes = serde_json::to_vec_pretty(rec)
            .map_err(|e| Failure::internal(format!("cannot encode record: {e}")))?;
        let tmp = dir.join("sandbox.json.tmp");
        let dst = dir.join("sandbox.json");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dst)
        })
        .await
        .map_err(|e| Failure::internal(format!("record writer failed: {e}")))?
        .map_err(|e| Failure::internal(format!("cannot write sandbox record: {e}")))
    }
}

/// Most sandboxes one home holds: `FORGE_MAX_SANDBOXES`, default 1000.
fn max_sandboxes() -> usize {
    std::env::var("FORGE_MAX_SANDBOXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn find<'a>(records: &'a BTreeMap<String, Record>, id_or_name: &str) -> Option<&'a Record> {
    records
        .get(id_or_name)
        .or_else(|| records.values().find(|r| r.sandbox.name == id_or_name))
}

/// The API's 404 for an unknown sandbox.
pub fn not_found(id_or_name: &str) -> Failure {
    Failure::not_found(format!("Sandbox with ID or name {id_or_name} not found"))
}

/// True when toolbox calls may run (the daemon only runs in a started sandbox).
pub fn is_running(state: SandboxState) -> bool {
    state == SandboxState::Started
}

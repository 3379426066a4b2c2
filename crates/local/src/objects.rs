//! A folder of objects kept as JSON, one folder each (`<dir>/<id>/record.json`, written to a
//! temp file then renamed), loaded at start: the snapshots and volumes of a backend home.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const RECORD: &str = "record.json";

/// What an object is named by.
pub trait Named {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

pub struct Objects<T> {
    dir: PathBuf,
    map: Mutex<BTreeMap<String, T>>,
}

impl<T: Named + Clone + Serialize + DeserializeOwned> Objects<T> {
    /// Opens `dir` (created), loading every readable record (others are skipped with a
    /// warning).
    pub fn open(dir: PathBuf) -> std::io::Result<Objects<T>> {
        std::fs::create_dir_all(&dir)?;
        let mut map = BTreeMap::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let file = e.path().join(RECORD);
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            match serde_json::from_slice::<T>(&bytes) {
                Ok(o) if e.file_name().to_str() == Some(o.id()) => {
                    map.insert(o.id().to_string(), o);
                }
                _ => tracing::warn!("skipping unreadable record {}", file.display()),
            }
        }
        Ok(Objects {
            dir,
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, T>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The object with this id, else this name.
    pub fn get(&self, id_or_name: &str) -> Option<T> {
        let map = self.lock();
        map.get(id_or_name)
            .or_else(|| map.values().find(|o| o.name() == id_or_name))
            .cloned()
    }

    /// Every object, by id.
    pub fn all(&self) -> Vec<T> {
        self.lock().values().cloned().collect()
    }

    /// The folder an object keeps its data in.
    pub fn folder(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Adds an object whose name must be free (false when it is taken).
    pub fn insert_new(&self, o: T) -> std::io::Result<bool> {
        let mut map = self.lock();
        if map.values().any(|x| x.name() == o.name()) {
            return Ok(false);
        }
        write(&self.dir.join(o.id()), &o)?;
        map.insert(o.id().to_string(), o);
        Ok(true)
    }

    /// Replaces an object (persisted).
    pub fn put(&self, o: T) -> std::io::Result<()> {
        let mut map = self.lock();
        write(&self.dir.join(o.id()), &o)?;
        map.insert(o.id().to_string(), o);
        Ok(())
    }

    /// Forgets an object and removes its folder.
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        self.lock().remove(id);
        crate::spares::force_remove(&self.dir.join(id))
    }
}

fn write<T: Serialize>(dir: &Path, o: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("record.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(o).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, dir.join(RECORD))
}

impl Named for forge_wire::Snapshot {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for forge_wire::Volume {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Copies the tree `from` into `to` (created) as `cp -a` does: modes, owners, times and links
/// kept, links never followed; on file systems that can, blocks are shared (reflink).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--no-target-directory")
        .arg(from)
        .arg(to)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

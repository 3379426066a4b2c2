//! What a sandbox uses: memory, processes and CPU from its cgroup, disk from its folder.
//!
//! Disk is measured (the sum of the blocks of every file under the sandbox's root, links not
//! followed, the machine's toolchain it mounts not counted: those are empty mount points
//! here) and cached for a few seconds, since a walk of a folder with `node_modules` takes a
//! good part of a second; an upload adds its bytes to the cached figure and is refused when
//! it would pass the sandbox's `disk` (GiB).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a disk measurement is reused.
const FRESH: Duration = Duration::from_secs(5);

/// Cached disk measurements, by sandbox id.
#[derive(Default)]
pub struct Disk {
    cache: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Disk {
    /// Bytes the sandbox's files take (measured again when the figure is older than a few
    /// seconds). Blocking: call it off the runtime's workers.
    pub fn bytes(&self, id: &str, root: &Path) -> u64 {
        if let Some((at, bytes)) = self.cache.lock().ok().and_then(|c| c.get(id).copied()) {
            if at.elapsed() < FRESH {
                return bytes;
            }
        }
        let bytes = measure(root);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id.to_string(), (Instant::now(), bytes));
        }
        bytes
    }

    /// Counts `bytes` just written (until the next measurement).
    pub fn add(&self, id: &str, bytes: u64) {
        if let Ok(mut c) = self.cache.lock() {
            if let Some((_, b)) = c.get_mut(id) {
                *b += bytes;
            }
        }
    }

    /// Forgets a sandbox's figure.
    pub fn forget(&self, id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(id);
        }
    }
}

/// The allocated bytes of everything under `root` (one file system, links not followed).
pub fn measure(root: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_measured_and_cached() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), vec![7u8; 100_000]).unwrap();
        let disk = Disk::default();
        let first = disk.bytes("s", t.path());
        assert!(first >= 100_000, "{first}");
        std::fs::write(t.path().join("g"), vec![7u8; 100_000]).unwrap();
        assert_eq!(disk.bytes("s", t.path()), first, "cached");
        disk.add("s", 10);
        assert_eq!(disk.bytes("s", t.path()), first + 10);
        disk.forget("s");
        assert!(disk.bytes("s", t.path()) >= 200_000);
    }
}

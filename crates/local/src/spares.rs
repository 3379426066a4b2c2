//! Sandbox folders made ahead of time, and the folders of deleted sandboxes, looked after by
//! one background thread (the janitor) while the backend is quiet.
//!
//! Why: profiles of creates showed most of their time in the kernel allocating inodes (ext4's
//! `find_inode_bit` / `recently_deleted` scans, ~0.1 ms per `mkdir` once many sandboxes have
//! come and gone; eight per sandbox), and profiles of deletes showed `remove_dir_all` (with
//! this disk's block discards). So a create renames a ready folder into place, a delete
//! renames the sandbox's folder into `<home>/trash`, and the janitor does the slow part later:
//! it scrubs a deleted sandbox's folder back to an empty skeleton (no inode allocated or
//! freed for the skeleton itself) and keeps it as a spare, or removes it, and makes new
//! skeletons when there are too few. Before each piece of work it waits until no create or
//! delete has happened for [`QUIET`], so a burst of creates never competes with it.
//!
//! A folder is only scrubbed for reuse when the delete knew that none of the sandbox's
//! processes was left (a survivor could still write into it); otherwise it is removed.
//! Scrubbing keeps the skeleton's folders (checked to be real folders, their modes reset) and
//! removes everything else. Trash left by a backend that died is removed at the next start,
//! never reused.
//!
//! The pool starts at [`SPARES_MIN`] and doubles (up to `FORGE_SPARE_SANDBOXES`, default
//! [`128`]; 0 turns the pool off) each time a create finds it empty, so a backend that
//! sees bursts of creates keeps enough ready and one that does not stays small.

use crate::container::layout::{Entry, Owner};
use crate::store::{RECORD, RECORD_TMP};
use std::collections::{HashSet, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Spares kept at first.
const SPARES_MIN: usize = 8;
/// How long creates and deletes must have paused before the janitor works.
const QUIET: Duration = Duration::from_millis(50);

/// What a new sandbox folder is made of (see `container::Layout::skeleton`), and the ids
/// on this machine of the sandbox's user.
#[derive(Clone)]
pub(crate) struct Skeleton {
    pub entries: Vec<Entry>,
    pub uid: u32,
    pub gid: u32,
}

/// The pool and the trash of one backend home.
pub(crate) struct Spares {
    dir: PathBuf,
    trash: PathBuf,
    skeleton: Skeleton,
    max: usize,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    ready: Vec<PathBuf>,
    target: usize,
    next: u64,
    /// Deleted sandboxes' folders, and whether they may be reused.
    trash: VecDeque<(PathBuf, bool)>,
    last_activity: Instant,
    /// Making a skeleton failed (disk full, read-only): none is tried until the next create.
    failing: bool,
    stopping: bool,
}

enum Job {
    Make { building: PathBuf, path: PathBuf },
    Recycle { from: PathBuf, path: PathBuf },
    Remove(PathBuf),
}

impl Spares {
    /// Opens `<home>/spare` and `<home>/trash` (creating them) and starts the janitor.
    /// Spares left by an earlier run are reused; half-made ones and any trash are removed.
    pub(crate) fn open(
        home: &Path,
        skeleton: Skeleton,
        max: usize,
    ) -> std::io::Result<Arc<Spares>> {
        let dir = home.join("spare");
        let trash = home.join("trash");
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(&trash)?;
        let mut ready = Vec::new();
        let mut next = 0u64;
        let mut old = VecDeque::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            match entry.file_name().to_string_lossy().parse::<u64>() {
                Ok(n) if ready.len() < max => {
                    next = next.max(n + 1);
                    ready.push(path);
                }
                _ => old.push_back((path, false)),
            }
        }
        for entry in std::fs::read_dir(&trash)?.flatten() {
            old.push_back((entry.path(), false));
        }
        let spares = Arc::new(Spares {
            dir,
            trash,
            skeleton,
            max,
            state: Mutex::new(State {
                target: SPARES_MIN.min(max).max(ready.len()),
                ready,
                next,
                trash: old,
                last_activity: Instant::now(),
                failing: false,
                stopping: false,
            }),
            wake: Condvar::new(),
        });
        let worker = spares.clone();
        std::thread::Builder::new()
            .name("forge-janitor".into())
            .spawn(move || worker.run())?;
        Ok(spares)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A ready folder for a new sandbox, if there is one. An empty pool grows.
    pub(crate) fn take(&self) -> Option<PathBuf> {
        if self.max == 0 {
            return None;
        }
        let mut st = self.lock();
        st.last_activity = Instant::now();
        st.failing = false;
        let spare = st.ready.pop();
        if spare.is_none() {
            st.target = (st.target * 2).clamp(SPARES_MIN, self.max);
        }
        drop(st);
        self.wake.notify_one();
        spare
    }

    /// Moves a deleted sandbox's folder out of the way (one rename) for the janitor to reuse
    /// (`reusable`: none of its processes is left) or remove. False when it could not be
    /// moved: the caller removes it.
    pub(crate) fn discard(&self, folder: &Path, id: &str, reusable: bool) -> bool {
        let mut st = self.lock();
        st.next += 1;
        let to = self.trash.join(format!("{}-{id}", st.next));
        st.last_activity = Instant::now();
        drop(st);
        if std::fs::rename(folder, &to).is_err() {
            return false;
        }
        self.lock().trash.push_back((to, reusable));
        self.wake.notify_one();
        true
    }

    /// Ends the janitor after its current piece of work.
    pub(crate) fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    /// The janitor: one piece of work at a time, each after a quiet moment.
    fn run(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            if st.stopping {
                return;
            }
            // Folders on their way back from the trash count: a new one is made only when
            // recycling cannot fill the pool (making costs inode allocations, recycling none).
            let coming = st.trash.iter().filter(|(_, reusable)| *reusable).count();
            let short = self.max > 0 && !st.failing && st.ready.len() + coming < st.target;
            if st.trash.is_empty() && !short {
                st = self
                    .wake
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            let quiet = st.last_activity.elapsed();
            if quiet < QUIET {
                st = match self
                    .wake
                    .wait_timeout(st, QUIET.checked_sub(quiet).unwrap())
                {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
                continue;
            }
            st.next += 1;
            let path = self.dir.join(st.next.to_string());
            let job = match st.trash.pop_front() {
                Some((from, true)) if st.ready.len() < self.max => Job::Recycle { from, path },
                Some((from, _)) => Job::Remove(from),
                None => Job::Make {
                    building: self.dir.join(format!(".building-{}", st.next)),
                    path,
                },
            };
            drop(st);
            let made = self.work(job);
            st = self.lock();
            match made {
                Ok(Some(path)) => st.ready.push(path),
                Ok(None) => {}
                Err(e) => {
                    st.failing = true;
                    tracing::warn!("cannot make a spare sandbox folder: {e}");
                }
            }
        }
    }

    /// Does one job; returns the new spare, if it made one. An error means the disk refused
    /// a new skeleton.
    fn work(&self, job: Job) -> std::io::Result<Option<PathBuf>> {
        match job {
            Job::Make { building, path } => {
                make_skeleton(&building, &self.skeleton)?;
                std::fs::rename(&building, &path)?;
                Ok(Some(path))
            }
            Job::Recycle { from, path } => {
                if let Ok(()) =
                    scrub(&from, &self.skeleton).and_then(|()| std::fs::rename(&from, &path))
                {
                    Ok(Some(path))
                } else {
                    let _ = force_remove(&from);
                    Ok(None)
                }
            }
            Job::Remove(from) => {
                if let Err(e) = force_remove(&from) {
                    tracing::warn!("cannot remove {}: {e}", from.display());
                }
                Ok(None)
            }
        }
    }
}

/// Makes a sandbox's folder at `dir` (its entries, one `mkdir` or `symlink` each) and the
/// record's temp file.
pub(crate) fn make_skeleton(dir: &Path, skeleton: &Skeleton) -> std::io::Result<()> {
    crate::container::make_skeleton(dir, &skeleton.entries, skeleton.uid, skeleton.gid)?;
    std::fs::File::create(dir.join(RECORD_TMP)).map(drop)
}

/// Brings a deleted sandbox's folder back to what [`make_skeleton`] makes: the skeleton's
/// folders stay (each must be a real folder, not a link; its mode and owner are reset), its
/// links stay (each must still be that link), and everything else in them goes, the record
/// included. Any surprise is an error (the caller then removes the folder instead).
fn scrub(dir: &Path, skeleton: &Skeleton) -> std::io::Result<()> {
    let tmp = dir.join(RECORD_TMP);
    // The record becomes the temp file again: its inode is kept, not freed and reallocated.
    let record = dir.join(RECORD);
    if std::fs::symlink_metadata(&record).is_ok_and(|m| m.file_type().is_file()) {
        std::fs::rename(&record, &tmp)?;
    }
    let mut keep: HashSet<PathBuf> = HashSet::new();
    keep.insert(tmp.clone());
    for e in &skeleton.entries {
        keep.insert(dir.join(e.path()));
    }
    let (euid, _) = (unsafe_geteuid(), 0);
    let mut folders = vec![dir.to_path_buf()];
    for e in &skeleton.entries {
        let path = dir.join(e.path());
        let meta = std::fs::symlink_metadata(&path)?;
        match e {
            Entry::Dir { mode, owner, .. } => {
                if !meta.file_type().is_dir() {
                    return Err(std::io::Error::other("not a folder"));
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))?;
                if skeleton.uid != euid {
                    let (u, g) = match owner {
                        Owner::Sandbox => (skeleton.uid, skeleton.gid),
                        Owner::Backend => (euid, unsafe_getegid()),
                    };
                    std::os::unix::fs::lchown(&path, Some(u), Some(g))?;
                }
                folders.push(path);
            }
            Entry::Link { target, .. } => {
                if !meta.file_type().is_symlink() || std::fs::read_link(&path)? != *target {
                    return Err(std::io::Error::other("not the skeleton's link"));
                }
            }
        }
    }
    for d in &folders {
        for entry in std::fs::read_dir(d)? {
            let entry = entry?;
            let path = entry.path();
            if !keep.contains(&path) {
                force_remove(&path)?;
            }
        }
    }
    // Truncated (it is never a link: anything else of that name was removed above).
    std::fs::File::create(&tmp).map(drop)
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

fn unsafe_getegid() -> u32 {
    // SAFETY: getegid(2) cannot fail.
    unsafe { libc::getegid() }
}

/// Removes a file or a folder tree; folders a sandbox made unreadable (`chmod 000`) are
/// opened up first. Links are removed, never followed.
pub(crate) fn force_remove(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_dir() {
        return std::fs::remove_file(path);
    }
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    open_up(path)?;
    std::fs::remove_dir_all(path)
}

/// Gives the owner full access to every folder under `path` (not following links).
fn open_up(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Every path under `dir` with its kind and (for folders) mode, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if m.file_type().is_dir() {
                    out.push(format!("d {rel} {:o}", m.permissions().mode() & 0o7777));
                    stack.push(p);
                } else {
                    out.push(format!("f {rel} {}", m.len()));
                }
            }
        }
        out.sort();
        out
    }

    /// The skeleton of this machine's layout, owned by this user.
    fn sk() -> Skeleton {
        let layout = crate::container::Layout::for_this_machine(Path::new("/nonexistent-etc"));
        Skeleton {
            entries: layout.skeleton(),
            uid: unsafe_geteuid(),
            gid: unsafe_getegid(),
        }
    }

    #[test]
    fn a_used_folder_is_scrubbed_to_a_fresh_skeleton() {
        let t = tempfile::tempdir().unwrap();
        let fresh = t.path().join("fresh");
        make_skeleton(&fresh, &sk()).unwrap();

        let used = t.path().join("used");
        make_skeleton(&used, &sk()).unwrap();
        let ws = used.join("root/home/daytona/workspace");
        std::fs::write(used.join(RECORD), "{}").unwrap();
        std::fs::write(used.join(RECORD_TMP), "half a record").unwrap();
        std::fs::create_dir_all(ws.join("app/node_modules/x")).unwrap();
        std::fs::write(ws.join("app/secret.txt"), "from the last sandbox").unwrap();
        std::fs::create_dir_all(used.join("state/sessions/s1")).unwrap();
        std::fs::write(used.join("root/tmp/f"), "x").unwrap();
        symlink("/etc", used.join("root/etc-link")).unwrap();
        // A folder the sandbox locked: unreadable, with a file in it.
        let locked = ws.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(
            used.join("root/tmp"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();

        scrub(&used, &sk()).unwrap();
        assert_eq!(tree(&used), tree(&fresh));
        assert!(std::fs::metadata("/etc").is_ok(), "links are not followed");
    }

    #[test]
    fn a_skeleton_folder_replaced_by_a_link_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "not the sandbox's").unwrap();
        let used = t.path().join("used");
        make_skeleton(&used, &sk()).unwrap();
        std::fs::remove_dir(used.join("root/tmp")).unwrap();
        symlink(&outside, used.join("root/tmp")).unwrap();
        assert!(scrub(&used, &sk()).is_err());
        force_remove(&used).unwrap();
        assert!(!used.exists());
        assert!(outside.join("keep.txt").exists());
    }

    /// Whether `state` holds within a minute (checked every 10 ms): the janitor is a thread
    /// that a busy machine may keep waiting.
    fn eventually(mut state: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_mins(1);
        while std::time::Instant::now() < deadline {
            if state() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        state()
    }

    #[test]
    fn deleted_folders_come_back_as_spares_when_reusable_and_go_otherwise() {
        let home = tempfile::tempdir().unwrap();
        let spares = Spares::open(home.path(), sk(), 128).unwrap();
        let gone = |p: &Path| eventually(|| !p.exists());
        // Reusable: scrubbed and kept as a spare (the same folder, its inode unchanged).
        use std::os::unix::fs::MetadataExt;
        let a = home.path().join("a");
        make_skeleton(&a, &sk()).unwrap();
        let ino = std::fs::metadata(&a).unwrap().ino();
        std::fs::write(a.join("root/home/daytona/workspace/old.txt"), "old").unwrap();
        assert!(spares.discard(&a, "a", true));
        assert!(!a.exists());
        let trash = home.path().join("trash");
        let in_trash: Vec<_> = std::fs::read_dir(&trash).unwrap().flatten().collect();
        assert_eq!(in_trash.len(), 1);
        assert!(gone(&in_trash[0].path()));
        let spare_dir = home.path().join("spare");
        let reused = std::fs::read_dir(&spare_dir)
            .unwrap()
            .flatten()
            .find(|e| e.metadata().unwrap().ino() == ino)
            .expect("the deleted folder is a spare again");
        let fresh = home.path().join("fresh");
        make_skeleton(&fresh, &sk()).unwrap();
        assert_eq!(tree(&reused.path()), tree(&fresh));
        // The janitor renames the folder into `spare/` and then adds it to the pool: wait for
        // the pool, not the rename (a busy machine once preempted the janitor in between).
        assert!(eventually(|| spares.lock().ready.contains(&reused.path())));
        assert!(spares.take().is_some());
        // Not reusable: removed.
        let b = home.path().join("b");
        make_skeleton(&b, &sk()).unwrap();
        assert!(spares.discard(&b, "b", false));
        let in_trash: Vec<_> = std::fs::read_dir(&trash).unwrap().flatten().collect();
        assert_eq!(in_trash.len(), 1);
        assert!(gone(&in_trash[0].path()));
        spares.stop();
    }

    #[test]
    fn trash_left_by_an_earlier_run_is_removed_at_start() {
        let home = tempfile::tempdir().unwrap();
        let left = home.path().join("trash/7-x");
        std::fs::create_dir(home.path().join("trash")).unwrap();
        make_skeleton(&left, &sk()).unwrap();
        std::fs::write(left.join("root/tmp/f"), "x").unwrap();
        let spares = Spares::open(home.path(), sk(), 128).unwrap();
        assert!(eventually(|| !left.exists()));
        spares.stop();
    }
}

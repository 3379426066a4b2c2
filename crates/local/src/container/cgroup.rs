//! One cgroup per sandbox: the membership no process of the sandbox can leave, and the limits
//! made of its `cpu`, `memory` and (as a process count) its size.
//!
//! cgroup v2 (one hierarchy, `cgroup.controllers` at the mount) where the machine has it,
//! else v1's per-controller hierarchies (`memory`, `pids`, `cpu`), as this kind of machine
//! has. A sandbox's cgroup is `<controller root>/forge/<home tag>/<sandbox id>`. Writing
//! there needs root, or a delegated subtree named by `FORGE_CGROUP_ROOT` (cgroup v2, e.g. a
//! systemd `Delegate=yes` scope); without either the sandboxes run without limits and the
//! backend says so.

use std::path::{Path, PathBuf};

/// Processes per vCPU: a dev server needs a few hundred; a fork bomb stops here.
pub const PIDS_PER_CPU: u64 = 1024;

/// Limits of one sandbox.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub cpu: u64,
    pub memory_gib: u64,
    /// Not a cgroup limit: measured against the sandbox's folder (see `usage`).
    pub disk_gib: u64,
}

impl Limits {
    pub fn pids(&self) -> u64 {
        PIDS_PER_CPU * self.cpu.max(1)
    }
}

/// The controllers a v1 machine gives us: (name, the folder our tree lives in).
#[derive(Clone, Debug)]
pub enum Cgroups {
    /// cgroup v2: the folder that holds one cgroup per sandbox.
    V2(PathBuf),
    /// cgroup v1: per controller, the folder that holds one cgroup per sandbox.
    V1(Vec<(&'static str, PathBuf)>),
    /// No limits here, and why.
    Unavailable(String),
}

/// What a v1 controller limits, and which of its files say so.
const V1_CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];

impl Cgroups {
    /// Finds the cgroups this backend may use, for the home whose tag is `tag`, and makes its
    /// folders (enabling the v2 controllers on the way).
    pub fn detect(tag: &str, delegated: Option<PathBuf>) -> Cgroups {
        let mount = Path::new("/sys/fs/cgroup");
        if mount.join("cgroup.controllers").exists() || delegated.is_some() {
            let top = delegated.unwrap_or_else(|| mount.to_path_buf());
            let base = top.join("forge").join(tag);
            return match make_v2(&top, &base) {
                Ok(()) => Cgroups::V2(base),
                Err(e) => Cgroups::Unavailable(format!(
                    "cannot create cgroups under {} ({e}): run as root or set FORGE_CGROUP_ROOT \
                     to a delegated cgroup",
                    top.display()
                )),
            };
        }
        let mut found = Vec::new();
        for name in V1_CONTROLLERS {
            let root = mount.join(name);
            if !root.join("cgroup.procs").exists() {
                continue;
            }
            let base = root.join("forge").join(tag);
            match std::fs::create_dir_all(&base) {
                Ok(()) => found.push((name, base)),
                Err(e) => {
                    return Cgroups::Unavailable(format!(
                        "cannot create cgroups under {} ({e}): run as root",
                        root.display()
                    ))
                }
            }
        }
        if found.is_empty() {
            return Cgroups::Unavailable("no cgroup controllers are mounted".into());
        }
        Cgroups::V1(found)
    }

    /// How to say what this gives, for the startup report and the sandbox JSON.
    pub fn describe(&self) -> String {
        match self {
            Cgroups::V2(_) => "cgroup v2 (memory, pids, cpu)".into(),
            Cgroups::V1(c) => {
                let names: Vec<&str> = c.iter().map(|(n, _)| *n).collect();
                format!("cgroup v1 ({})", names.join(", "))
            }
            Cgroups::Unavailable(why) => format!("none: {why}"),
        }
    }

    pub fn available(&self) -> bool {
        !matches!(self, Cgroups::Unavailable(_))
    }

    fn dirs(&self, id: &str) -> Vec<(&'static str, PathBuf)> {
        match self {
            Cgroups::V2(base) => vec![("", base.join(id))],
            Cgroups::V1(c) => c.iter().map(|(n, base)| (*n, base.join(id))).collect(),
            Cgroups::Unavailable(_) => Vec::new(),
        }
    }

    /// Makes (or reuses) the sandbox's cgroups with `limits`; returns the `cgroup.procs`
    /// files its init is to be written to.
    pub fn create(&self, id: &str, limits: Limits) -> std::io::Result<Vec<PathBuf>> {
        let mut procs = Vec::new();
        for (controller, dir) in self.dirs(id) {
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            let bytes = limits.memory_gib.max(1) * 1024 * 1024 * 1024;
            let quota = limits.cpu.max(1) * 100_000;
            let writes: Vec<(&str, String)> = match controller {
                "" => vec![
                    ("memory.max", bytes.to_string()),
                    ("memory.swap.max", "0".into()),
                    ("pids.max", limits.pids().to_string()),
                    ("cpu.max", format!("{quota} 100000")),
                ],
                "memory" => vec![("memory.limit_in_bytes", bytes.to_string())],
                "pids" => vec![("pids.max", limits.pids().to_string())],
                "cpu" => vec![
                    ("cpu.cfs_period_us", "100000".into()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
                _ => Vec::new(),
            };
            for (file, value) in writes {
                let path = dir.join(file);
                // memory.swap.max is absent without swap accounting: not an error.
                if let Err(e) = std::fs::write(&path, &value) {
                    if path.exists() {
                        return Err(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", path.display()),
                        ));
                    }
                }
            }
            procs.push(dir.join("cgroup.procs"));
        }
        Ok(procs)
    }

    /// The processes in the sandbox's cgroups (empty when it has none).
    pub fn members(&self, id: &str) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .dirs(id)
            .iter()
            .filter_map(|(_, d)| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// SIGKILL to every member (v2's `cgroup.kill` where the kernel has it).
    pub fn kill_all(&self, id: &str) {
        if let Cgroups::V2(base) = self {
            if std::fs::write(base.join(id).join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for pid in self.members(id) {
            // SAFETY: kill(2) on a pid read from the sandbox's own cgroup.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// Freezes or thaws every process of the sandbox, and waits until the kernel says so.
    pub fn freeze(&self, id: &str, frozen: bool) -> std::io::Result<()> {
        for (controller, dir) in self.dirs(id) {
            let (file, value, done) = match controller {
                "" => ("cgroup.freeze", if frozen { "1" } else { "0" }, None),
                "freezer" => (
                    "freezer.state",
                    if frozen { "FROZEN" } else { "THAWED" },
                    Some(if frozen { "FROZEN" } else { "THAWED" }),
                ),
                _ => continue,
            };
            std::fs::write(dir.join(file), value)?;
            for _ in 0..500 {
                let now = match done {
                    Some(_) => std::fs::read_to_string(dir.join("freezer.state"))?,
                    None => std::fs::read_to_string(dir.join("cgroup.events"))?
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("frozen ").map(|v| {
                                if v.trim() == "1" {
                                    "FROZEN".to_string()
                                } else {
                                    "THAWED".to_string()
                                }
                            })
                        })
                        .unwrap_or_default(),
                };
                let want = if frozen { "FROZEN" } else { "THAWED" };
                if now.trim() == want {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            return Err(std::io::Error::other(
                "the kernel did not freeze the sandbox in time",
            ));
        }
        Err(std::io::Error::other("no freezer controller here"))
    }

    /// Removes the sandbox's (empty) cgroups.
    pub fn remove(&self, id: &str) {
        for (_, dir) in self.dirs(id) {
            let _ = std::fs::remove_dir(&dir);
        }
    }

    /// How many times the kernel's OOM killer has killed a process of the sandbox.
    pub fn oom_kills(&self, id: &str) -> u64 {
        for (controller, dir) in self.dirs(id) {
            let (file, key) = match controller {
                "" => ("memory.events", "oom_kill"),
                "memory" => ("memory.oom_control", "oom_kill"),
                _ => continue,
            };
            if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
                return text
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        0
    }

    /// CPU time the sandbox has used, in microseconds (v2 `cpu.stat`, v1 `cpuacct.usage`).
    pub fn cpu_usage_us(&self, id: &str) -> Option<u64> {
        match self {
            Cgroups::V2(base) => std::fs::read_to_string(base.join(id).join("cpu.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok()),
            Cgroups::V1(c) => {
                let (_, base) = c.iter().find(|(n, _)| *n == "cpuacct")?;
                let ns: u64 = std::fs::read_to_string(base.join(id).join("cpuacct.usage"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some(ns / 1000)
            }
            Cgroups::Unavailable(_) => None,
        }
    }

    /// Bytes of memory the sandbox uses now.
    pub fn memory_bytes(&self, id: &str) -> Option<u64> {
        self.dirs(id).iter().find_map(|(controller, dir)| {
            let file = match *controller {
                "" => "memory.current",
                "memory" => "memory.usage_in_bytes",
                _ => return None,
            };
            std::fs::read_to_string(dir.join(file))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Bytes of the sandbox's memory that are page cache (v2 `file`, v1 `cache` of
    /// `memory.stat`).
    pub fn memory_cache_bytes(&self, id: &str) -> Option<u64> {
        self.dirs(id).iter().find_map(|(controller, dir)| {
            let key = match *controller {
                "" => "file ",
                "memory" => "cache ",
                _ => return None,
            };
            std::fs::read_to_string(dir.join("memory.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        })
    }

    /// Processes in the sandbox now.
    pub fn processes(&self, id: &str) -> Option<u64> {
        self.dirs(id).iter().find_map(|(controller, dir)| {
            if !matches!(*controller, "" | "pids") {
                return None;
            }
            std::fs::read_to_string(dir.join("pids.current"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Times the sandbox's processes were held back by its CPU quota (`nr_throttled`).
    pub fn cpu_throttled(&self, id: &str) -> Option<u64> {
        self.dirs(id).iter().find_map(|(controller, dir)| {
            if !matches!(*controller, "" | "cpu") {
                return None;
            }
            std::fs::read_to_string(dir.join("cpu.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("nr_throttled ")?.trim().parse().ok())
        })
    }

    /// Removes the cgroups of sandboxes not in `keep` (left by a backend that died).
    pub fn sweep(&self, keep: &dyn Fn(&str) -> bool) {
        let bases: Vec<PathBuf> = match self {
            Cgroups::V2(b) => vec![b.clone()],
            Cgroups::V1(c) => c.iter().map(|(_, b)| b.clone()).collect(),
            Cgroups::Unavailable(_) => return,
        };
        for base in bases {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && !keep(&name) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }
}

/// Makes `base` under the v2 hierarchy `top`, enabling the memory, pids and cpu controllers
/// for the children of each folder on the way.
fn make_v2(top: &Path, base: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(base)?;
    let mut dir = top.to_path_buf();
    let rest = base
        .strip_prefix(top)
        .map_err(|_| std::io::Error::other("not under the cgroup root"))?;
    for part in rest.components() {
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
        dir.push(part);
    }
    std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_processes_with_cpus() {
        assert_eq!(
            Limits {
                cpu: 4,
                memory_gib: 8,
                disk_gib: 1
            }
            .pids(),
            4096
        );
        assert_eq!(
            Limits {
                cpu: 0,
                memory_gib: 1,
                disk_gib: 1
            }
            .pids(),
            1024
        );
    }
}

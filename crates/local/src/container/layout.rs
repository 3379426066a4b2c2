//! What a sandbox's file system is made of, as data: the one table that the container's init
//! mounts (`forge-sandbox --mount …`), that a new sandbox folder is made from, and that the
//! file API resolves paths with, so that `/home/daytona/x` or `/usr/bin/node` names the same
//! file for a command in the sandbox and for a file route.
//!
//! A sandbox's `/` is its own folder (`<sandbox>/root`, read-write, its `home/daytona`, `tmp`
//! and anything it creates), with this machine's toolchain mounted over it read-only (`/usr`
//! and the `/bin`, `/lib*`, `/sbin` that merged-usr systems make links into it), an `/etc`
//! that is this machine's with a few files of the sandbox's own on top (`passwd` and `group`
//! with the `daytona` user, `hosts`, `hostname`, `resolv.conf`), and `/proc`, `/sys`, `/dev`
//! of its own. Nothing else of this machine is there: no other home, no `/root`, no `/opt`,
//! no backend folder.

use std::path::{Component, Path, PathBuf};

/// The sandbox user's home and work dir, as seen inside.
pub const WORK_DIR: &str = "/home/daytona";
/// uid and gid of the sandbox user inside (`daytona`).
pub const INNER_ID: u32 = 1000;

/// One mount of the table, at an absolute sandbox path.
#[derive(Clone, Debug, PartialEq)]
pub enum Mount {
    /// A host folder, read-only.
    ReadOnly { at: String, host: PathBuf },
    /// Host folders stacked read-only, the first one's files winning.
    Layers { at: String, layers: Vec<PathBuf> },
    /// A kernel file system of the sandbox's own (`proc`, `sysfs`, `dev`): not served by the
    /// file API.
    Special { at: String, kind: &'static str },
}

impl Mount {
    pub fn at(&self) -> &str {
        match self {
            Mount::ReadOnly { at, .. } | Mount::Layers { at, .. } | Mount::Special { at, .. } => at,
        }
    }

    /// The `--mount` argument of `forge-sandbox`.
    fn arg(&self) -> String {
        match self {
            Mount::ReadOnly { at, host } => format!("ro:{}:{at}", host.display()),
            Mount::Layers { at, layers } => {
                let spec: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
                format!("overlay:{at}:{}", spec.join(":"))
            }
            Mount::Special { at, kind } => format!("{kind}:{at}"),
        }
    }
}

/// Who owns an entry of a new sandbox folder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Owner {
    /// The backend's user: the sandbox cannot change it (when the backend runs as root).
    Backend,
    /// The sandbox user (`daytona` inside).
    Sandbox,
}

/// One entry of a new sandbox folder, relative to `<sandbox>/`.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Dir {
        path: PathBuf,
        mode: u32,
        owner: Owner,
    },
    Link {
        path: PathBuf,
        target: PathBuf,
    },
}

impl Entry {
    pub fn path(&self) -> &Path {
        match self {
            Entry::Dir { path, .. } | Entry::Link { path, .. } => path,
        }
    }
}

/// Where a sandbox path is served from.
#[derive(Debug, PartialEq)]
pub enum Source<'a> {
    /// The sandbox's own folder: read-write.
    Root,
    /// A read-only mount: the host folders to look in (first wins) and the rest of the path.
    ReadOnly(Vec<&'a Path>, String),
    /// A kernel file system of the sandbox's own.
    Special(&'a str),
}

/// The file system layout of every sandbox of one backend.
#[derive(Clone, Debug)]
pub struct Layout {
    pub mounts: Vec<Mount>,
    /// Links at the top of the root (`bin -> usr/bin` on merged-usr systems).
    pub links: Vec<(String, String)>,
}

/// Top-level names that merged-usr systems make links into `/usr`; elsewhere they are
/// folders and are mounted read-only like `/usr`.
const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

impl Layout {
    /// The layout for this machine: its `/usr` and `/etc` (with the files in `etc_top` on top)
    /// read-only, and whatever of `/bin`, `/sbin`, `/lib*` it has, as links or read-only
    /// folders like its own.
    pub fn for_this_machine(etc_top: &Path) -> Layout {
        Layout::for_root(Path::new("/"), etc_top)
    }

    fn for_root(host_root: &Path, etc_top: &Path) -> Layout {
        let mut mounts = vec![Mount::ReadOnly {
            at: "/usr".into(),
            host: host_root.join("usr"),
        }];
        let mut links = Vec::new();
        for name in USR_LINKS {
            let host = host_root.join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&host) {
                        links.push((name.to_string(), target.to_string_lossy().into_owned()));
                    }
                }
                Ok(m) if m.is_dir() => mounts.push(Mount::ReadOnly {
                    at: format!("/{name}"),
                    host,
                }),
                _ => {}
            }
        }
        mounts.push(Mount::Layers {
            at: "/etc".into(),
            layers: vec![etc_top.to_path_buf(), host_root.join("etc")],
        });
        for (at, kind) in [("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "dev")] {
            mounts.push(Mount::Special {
                at: at.into(),
                kind,
            });
        }
        Layout { mounts, links }
    }

    /// The `--mount` arguments for `forge-sandbox start`.
    pub fn mount_args(&self) -> Vec<String> {
        self.mounts.iter().map(Mount::arg).collect()
    }

    /// The entries of a new sandbox folder, parents first: `root/` with a mount point for
    /// every mount, the top-level links, `home/daytona` (and its `workspace`, which the
    /// integration guide's paths assume, as its sample images do), `tmp`, `var/tmp`, `run`;
    /// and, beside `root/`, the backend's own `state/` and `run/` (never mounted anywhere).
    pub fn skeleton(&self) -> Vec<Entry> {
        let dir = |path: &str, mode: u32, owner: Owner| Entry::Dir {
            path: PathBuf::from(path),
            mode,
            owner,
        };
        let mut out = vec![
            dir("root", 0o755, Owner::Backend),
            dir("state", 0o700, Owner::Backend),
            dir("run", 0o700, Owner::Backend),
        ];
        for m in &self.mounts {
            out.push(dir(&format!("root{}", m.at()), 0o755, Owner::Backend));
        }
        for (name, target) in &self.links {
            out.push(Entry::Link {
                path: PathBuf::from("root").join(name),
                target: PathBuf::from(target),
            });
        }
        out.extend([
            dir("root/home", 0o755, Owner::Backend),
            dir("root/home/daytona", 0o755, Owner::Sandbox),
            dir("root/home/daytona/workspace", 0o755, Owner::Sandbox),
            dir("root/tmp", 0o1777, Owner::Backend),
            dir("root/var", 0o755, Owner::Backend),
            dir("root/var/tmp", 0o1777, Owner::Backend),
            dir("root/run", 0o755, Owner::Backend),
        ]);
        out
    }

    /// Where an absolute, normalised sandbox path (no `.`, `..` or links left) is served
    /// from: the mount it falls under, if any, else the sandbox's own folder.
    pub fn source_of<'a>(&'a self, path: &str) -> Source<'a> {
        for m in &self.mounts {
            let at = m.at();
            let rest = match path.strip_prefix(at) {
                Some("") => "",
                Some(r) if r.starts_with('/') => r.trim_start_matches('/'),
                _ => continue,
            };
            return match m {
                Mount::ReadOnly { host, .. } => {
                    Source::ReadOnly(vec![host.as_path()], rest.to_string())
                }
                Mount::Layers { layers, .. } => Source::ReadOnly(
                    layers.iter().map(PathBuf::as_path).collect(),
                    rest.to_string(),
                ),
                Mount::Special { kind, .. } => Source::Special(kind),
            };
        }
        Source::Root
    }
}

/// The files of `/etc` that are the sandbox's own, written once per backend start into
/// `dir` (the top layer of the sandbox's `/etc`). `nameserver` is the resolver the sandbox
/// reaches through its network (the user-mode network's, or this machine's).
pub fn write_etc(dir: &Path, nameservers: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let resolv: String = nameservers
        .iter()
        .map(|n| format!("nameserver {n}\n"))
        .collect();
    let files: [(&str, String); 5] = [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/bash\n\
                 daytona:x:{INNER_ID}:{INNER_ID}:daytona:{WORK_DIR}:/bin/bash\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\ndaytona:x:{INNER_ID}:\nnogroup:x:65534:\n"),
        ),
        (
            "hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into(),
        ),
        ("hostname", "sandbox\n".into()),
        ("resolv.conf", resolv),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// `path` made absolute inside the sandbox (relative to the work dir) and normalised
/// lexically (`.` dropped, `..` never above `/`). Links are not looked at.
pub fn absolute(path: &str) -> String {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(WORK_DIR).join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_host() -> (tempfile::TempDir, Layout) {
        let t = tempfile::tempdir().unwrap();
        let h = t.path();
        for d in ["usr/bin", "usr/lib", "etc", "lib32"] {
            std::fs::create_dir_all(h.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", h.join("bin")).unwrap();
        std::os::unix::fs::symlink("usr/lib", h.join("lib")).unwrap();
        let layout = Layout::for_root(h, &h.join("top"));
        (t, layout)
    }

    #[test]
    fn the_table_follows_the_machine_and_drives_the_mounts() {
        let (t, layout) = fake_host();
        let h = t.path().display().to_string();
        assert_eq!(
            layout.links,
            vec![
                ("bin".to_string(), "usr/bin".to_string()),
                ("lib".to_string(), "usr/lib".to_string())
            ]
        );
        assert_eq!(
            layout.mount_args(),
            vec![
                format!("ro:{h}/usr:/usr"),
                format!("ro:{h}/lib32:/lib32"),
                format!("overlay:/etc:{h}/top:{h}/etc"),
                "proc:/proc".to_string(),
                "sysfs:/sys".to_string(),
                "dev:/dev".to_string(),
            ]
        );
        let sk = layout.skeleton();
        assert!(sk.contains(&Entry::Dir {
            path: "root/lib32".into(),
            mode: 0o755,
            owner: Owner::Backend
        }));
        assert!(sk.contains(&Entry::Link {
            path: "root/bin".into(),
            target: "usr/bin".into()
        }));
        assert!(sk.contains(&Entry::Dir {
            path: "root/home/daytona".into(),
            mode: 0o755,
            owner: Owner::Sandbox
        }));
    }

    #[test]
    fn paths_are_served_where_the_sandbox_sees_them() {
        let (t, layout) = fake_host();
        let h = t.path();
        assert_eq!(layout.source_of("/home/daytona/a"), Source::Root);
        assert_eq!(layout.source_of("/usrx"), Source::Root);
        assert_eq!(
            layout.source_of("/usr/bin/node"),
            Source::ReadOnly(vec![h.join("usr").as_path()], "bin/node".into())
        );
        assert_eq!(
            layout.source_of("/etc/passwd"),
            Source::ReadOnly(
                vec![h.join("top").as_path(), h.join("etc").as_path()],
                "passwd".into()
            )
        );
        assert_eq!(layout.source_of("/proc/1/environ"), Source::Special("proc"));
        assert_eq!(layout.source_of("/dev"), Source::Special("dev"));
    }

    #[test]
    fn absolute_paths_stay_inside() {
        assert_eq!(absolute("a/b"), "/home/daytona/a/b");
        assert_eq!(absolute("../../../../etc/passwd"), "/etc/passwd");
        assert_eq!(absolute("/"), "/");
        assert_eq!(absolute("/tmp/./x/../y"), "/tmp/y");
    }
}

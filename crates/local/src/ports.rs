//! Per-sandbox port numbers without network namespaces.
//!
//! Sandbox processes run on this machine, so two sandboxes whose dev servers want port 3000
//! would collide. Every sandbox command gets `LD_PRELOAD=<home>/libforgeports.so` and
//! `FORGE_PORTS_DIR=<home>/sandboxes/<id>/ports` (outside the sandbox's files). The shim
//! (`shim/forgeports.c`) binds a TCP socket that asks for port P to a free loopback port A
//! instead and publishes `ports/P` = `"A FAMILY INODE"`; the process still sees P
//! (`getsockname`), and its own loopback connects to P reach A. The backend reads the same
//! files here: the preview listener of (sandbox, P) proxies to A, and the toolbox port routes
//! report P. Network namespaces are not an option: dev servers need the network for
//! `npm install`.
//!
//! A mapping is trusted only while the kernel lists a LISTEN socket on A with the
//! recorded inode, so a stale file (server exited, A reused by someone else) is never followed.
//! Without a mapping the real port P is used, as for statically linked servers that the shim
//! cannot reach.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The shim built by `build.rs`; empty when no C compiler was available.
const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libforgeports.so"));

/// File name of the shim in the backend home.
const SHIM_NAME: &str = "libforgeports.so";

/// Where a sandbox's port files live, given its folder (`<home>/sandboxes/<id>`).
pub fn dir(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("ports")
}

/// Writes the shim into the backend home (0755, temp file then rename, so processes already
/// using an older copy keep theirs) and returns its path; `None`, with a log line, when the
/// shim was not built or cannot be used, and sandboxes then share this machine's ports.
pub async fn install(home: &Path) -> Option<PathBuf> {
    install_bytes(home, SHIM).await
}

async fn install_bytes(home: &Path, shim: &'static [u8]) -> Option<PathBuf> {
    if shim.is_empty() {
        tracing::warn!(
            "libforgeports was not built (no C compiler at build time): sandboxes share this machine's ports"
        );
        return None;
    }
    let path = home.join(SHIM_NAME);
    // LD_PRELOAD splits on spaces and colons.
    if path
        .to_str()
        .is_none_or(|p| p.contains([' ', ':', '\t', '\n']))
    {
        tracing::warn!(
            "backend home {} cannot be named in LD_PRELOAD: sandboxes share this machine's ports",
            home.display()
        );
        return None;
    }
    let result = tokio::task::spawn_blocking({
        let path = path.clone();
        move || write_shim(&path, shim)
    })
    .await;
    match result {
        Ok(Ok(())) => Some(path),
        Ok(Err(e)) => {
            tracing::warn!(
                "cannot write {}: {e}: sandboxes share this machine's ports",
                path.display()
            );
            None
        }
        Err(_) => None,
    }
}

fn write_shim(path: &Path, shim: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(path).is_ok_and(|old| old == shim) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("so.{}.tmp", std::process::id()));
    std::fs::write(&tmp, shim)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// How the shim bound the real port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// AF_INET at 127.0.0.1.
    V4,
    /// AF_INET6 at ::1.
    V6,
    /// AF_INET6 at ::ffff:127.0.0.1 (reachable as 127.0.0.1).
    Mapped,
}

/// One published `P → A`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    real: u16,
    family: Family,
    /// The socket's inode; 0 when unknown.
    inode: u64,
}

impl Mapping {
    fn parse(text: &str) -> Option<Mapping> {
        let mut f = text.split_whitespace();
        let real: u16 = f.next()?.parse().ok().filter(|p| *p != 0)?;
        let family = match f.next()? {
            "4" => Family::V4,
            "6" => Family::V6,
            "m" => Family::Mapped,
            _ => return None,
        };
        let inode = f.next().and_then(|i| i.parse().ok()).unwrap_or(0);
        Some(Mapping {
            real,
            family,
            inode,
        })
    }

    fn addr(&self) -> SocketAddr {
        match self.family {
            Family::V6 => SocketAddr::from((Ipv6Addr::LOCALHOST, self.real)),
            Family::V4 | Family::Mapped => SocketAddr::from((Ipv4Addr::LOCALHOST, self.real)),
        }
    }

    /// Whether the real socket is AF_INET6 (v4-mapped included).
    fn v6(&self) -> bool {
        self.family != Family::V4
    }
}

fn read_mapping(dir: &Path, port: u16) -> Option<Mapping> {
    let text = std::fs::read_to_string(dir.join(port.to_string())).ok()?;
    Mapping::parse(&text)
}

/// A LISTEN socket (from sock_diag or `/proc/net/tcp{,6}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listen {
    port: u16,
    inode: u64,
    /// Bound to a loopback or wildcard address (reachable from 127.0.0.1).
    local: bool,
}

/// The LISTEN sockets of one family: from the kernel over `NETLINK_SOCK_DIAG` (a LISTEN-only
/// dump, which skips the established hash), else from `/proc/net/tcp{,6}` (which walks all of
/// it: milliseconds per read on a large machine, too slow for every preview request).
fn listeners(v6: bool) -> Vec<Listen> {
    if let Some(found) = diag::listeners(v6) {
        return found;
    }
    let table = if v6 {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return Vec::new();
    };
    text.lines().skip(1).filter_map(parse_listen).collect()
}

fn parse_listen(line: &str) -> Option<Listen> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if *f.get(3)? != "0A" {
        return None;
    }
    let (addr, port) = f.get(1)?.split_once(':')?;
    let local = addr.chars().all(|c| c == '0')
        || addr == "0100007F"
        || addr == "00000000000000000000000001000000"
        || addr.ends_with("0100007F");
    Some(Listen {
        port: u16::from_str_radix(port, 16).ok()?,
        inode: f.get(9)?.parse().ok()?,
        local,
    })
}

fn live(m: &Mapping) -> bool {
    listeners(m.v6())
        .iter()
        .any(|l| l.port == m.real && (m.inode == 0 || l.inode == m.inode))
}

/// Where sandbox port `port` really listens: the mapped real port when a live listener was
/// published in `dir`, else `None` (then the real port `port` is the answer, as for a
/// statically linked server).
pub fn mapped(dir: &Path, port: u16) -> Option<SocketAddr> {
    read_mapping(dir, port).filter(live).map(|m| m.addr())
}

/// The address the preview of sandbox port `port` connects to.
pub fn upstream(dir: &Path, port: u16) -> SocketAddr {
    mapped(dir, port).unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// The TCP ports a sandbox listens on, as its processes see them: every published port whose
/// listener is alive, plus the other loopback/wildcard listeners of this machine (servers the
/// shim does not reach, as `in-use` counts them) except those held by other sandboxes'
/// processes and the real ports behind this sandbox's published ones.
pub fn listening(dir: &Path, sandbox: &str) -> Vec<u16> {
    let all: Vec<(Listen, bool)> = [false, true]
        .into_iter()
        .flat_map(|v6| listeners(v6).into_iter().map(move |l| (l, v6)))
        .collect();
    let mut ports = Vec::new();
    let mut hidden = socket_inodes(&crate::procs::pids_of_other_sandboxes(sandbox));
    let published: HashMap<u16, Mapping> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u16>().ok())
        .filter_map(|p| Some((p, read_mapping(dir, p)?)))
        .collect();
    for (asked, m) in &published {
        let hit = all.iter().find(|(l, t)| {
            *t == m.v6() && l.port == m.real && (m.inode == 0 || l.inode == m.inode)
        });
        if let Some((l, _)) = hit {
            ports.push(*asked);
            hidden.insert(l.inode);
        }
    }
    ports.extend(
        all.iter()
            .filter(|(l, _)| l.local && !hidden.contains(&l.inode))
            .map(|(l, _)| l.port),
    );
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Inodes of the sockets the given processes hold open.
fn socket_inodes(pids: &[i32]) -> HashSet<u64> {
    let mut out = HashSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(ino) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
            {
                out.insert(ino);
            }
        }
    }
    out
}

/// Elsewhere than Linux there is no sock_diag (and no shim): `/proc` or nothing.
#[cfg(not(target_os = "linux"))]
mod diag {
    pub fn listeners(_v6: bool) -> Option<Vec<super::Listen>> {
        None
    }
}

/// The kernel's socket diagnostics (what `ss -lt` uses), for LISTEN sockets only.
#[cfg(target_os = "linux")]
mod diag {
    use super::Listen;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const TCP_LISTEN: u32 = 10;
    /// `nlmsghdr` (16) + `inet_diag_req_v2` (56).
    const REQ_LEN: usize = 72;
    /// `inet_diag_msg`: family, state, timer, retrans, `inet_diag_sockid` (48), expires,
    /// rqueue, wqueue, uid, inode.
    const MSG_LEN: usize = 72;

    /// Every LISTEN socket of the family; `None` when the kernel does not answer.
    pub fn listeners(v6: bool) -> Option<Vec<Listen>> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: socket(2) with constant arguments; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = [0u8; REQ_LEN];
        req[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
        req[6..8].copy_from_slice(&flags.to_ne_bytes());
        req[16] = family as u8;
        req[17] = libc::IPPROTO_TCP as u8;
        req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        // SAFETY: sends `req`'s bytes; an unconnected netlink socket sends to the kernel.
        let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if sent != REQ_LEN as isize {
            return None;
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: receives into `buf`, within its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            let n = usize::try_from(n).ok().filter(|n| *n > 0)?;
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().ok()?) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().ok()?);
                if len < 16 || at + len > n {
                    return None;
                }
                match i32::from(kind) {
                    libc::NLMSG_DONE => return Some(out),
                    libc::NLMSG_ERROR => return None,
                    _ => {}
                }
                if let Some(l) = buf.get(at + 16..at + len).and_then(|m| parse(m, v6)) {
                    out.push(l);
                }
                at += (len + 3) & !3;
            }
        }
    }

    fn parse(msg: &[u8], v6: bool) -> Option<Listen> {
        if msg.len() < MSG_LEN {
            return None;
        }
        let port = u16::from_be_bytes([msg[4], msg[5]]);
        let src = &msg[8..24];
        let local = if v6 {
            let a = Ipv6Addr::from(<[u8; 16]>::try_from(src).ok()?);
            a.is_loopback()
                || a.is_unspecified()
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
        } else {
            let a = Ipv4Addr::new(src[0], src[1], src[2], src[3]);
            a.is_loopback() || a.is_unspecified()
        };
        let inode = u32::from_ne_bytes(msg[68..72].try_into().ok()?);
        Some(Listen {
            port,
            inode: u64::from(inode),
            local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse_and_reject_garbage() {
        assert_eq!(
            Mapping::parse("41234 m 9876\n"),
            Some(Mapping {
                real: 41234,
                family: Family::Mapped,
                inode: 9876
            })
        );
        assert_eq!(Mapping::parse("80 4").map(|m| m.inode), Some(0));
        assert_eq!(
            Mapping::parse("5 6 1").map(|m| m.addr()),
            Some("[::1]:5".parse().unwrap())
        );
        for bad in ["", "0 4 1", "70000 4 1", "12 x 1", "abc 4", "12"] {
            assert_eq!(Mapping::parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_shim_is_installed_once_or_not_at_all() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        assert_eq!(install_bytes(home.path(), b"").await, None, "not built");
        let spaced = home.path().join("a b");
        std::fs::create_dir(&spaced).unwrap();
        assert_eq!(
            install_bytes(&spaced, b"x").await,
            None,
            "unusable in LD_PRELOAD"
        );
        let path = install_bytes(home.path(), b"x").await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(install_bytes(home.path(), b"y").await, Some(path.clone()));
        assert_eq!(std::fs::read(&path).unwrap(), b"y");
        assert_eq!(
            std::fs::read_dir(home.path()).unwrap().count(),
            2,
            "no temp files left"
        );
    }

    #[test]
    fn the_kernel_lists_our_listeners() {
        let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let p4 = l4.local_addr().unwrap().port();
        let p6 = l6.local_addr().unwrap().port();
        let v4 = diag::listeners(false).expect("sock_diag answers");
        let v6 = diag::listeners(true).expect("sock_diag answers");
        assert!(
            v4.iter().any(|l| l.port == p4 && l.local && l.inode != 0),
            "{v4:?}"
        );
        assert!(v6.iter().any(|l| l.port == p6 && l.local), "{v6:?}");
        assert!(!v4.iter().any(|l| l.port == p6));
        // The same answer as /proc.
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let from_proc: Vec<Listen> = text.lines().skip(1).filter_map(parse_listen).collect();
        assert!(from_proc.contains(v4.iter().find(|l| l.port == p4).unwrap()));
    }

    #[test]
    fn proc_lines_parse() {
        let line = "   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 525902 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_listen(line),
            Some(Listen {
                port: 3000,
                inode: 525902,
                local: true
            })
        );
        let established = line.replace(" 0A ", " 01 ");
        assert_eq!(parse_listen(&established), None);
        let lan = line.replace("0100007F:0BB8", "0A00000A:0BB8");
        assert_eq!(parse_listen(&lan).map(|l| l.local), Some(false));
        assert_eq!(parse_listen("  sl  local_address rem_address   st"), None);
    }

    #[test]
    fn a_missing_or_stale_mapping_means_the_real_port() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            upstream(dir.path(), 3000),
            "127.0.0.1:3000".parse().unwrap()
        );
        // A listener of ours, published under another port number.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let real = l.local_addr().unwrap().port();
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", {
            use std::os::fd::AsRawFd;
            l.as_raw_fd()
        }))
        .unwrap()
        .ino();
        std::fs::write(dir.path().join("3000"), format!("{real} 4 {inode}\n")).unwrap();
        assert_eq!(upstream(dir.path(), 3000).port(), real);
        let ports = listening(dir.path(), "no-such-sandbox");
        assert!(ports.contains(&3000) && !ports.contains(&real), "{ports:?}");
        // Same port, another inode: stale, never followed.
        std::fs::write(dir.path().join("3000"), format!("{real} 4 {}\n", inode + 1)).unwrap();
        assert_eq!(upstream(dir.path(), 3000).port(), 3000);
        drop(l);
        std::fs::write(dir.path().join("3000"), format!("{real} 4 {inode}\n")).unwrap();
        assert_eq!(mapped(dir.path(), 3000), None);
    }
}

//! Which TCP ports a sandbox listens on: the kernel's socket diagnostics (what `ss -lt`
//! uses) asked through a `NETLINK_SOCK_DIAG` socket that the sandbox's init made inside the
//! sandbox's network namespace, so the answer is the sandbox's own listeners and nothing of
//! this machine's or another sandbox's. (An unconfined sandbox shares this machine's network:
//! its answer is every listener here.)

use std::os::fd::{AsRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCP_LISTEN: u32 = 10;
/// `nlmsghdr` (16) + `inet_diag_req_v2` (56).
const REQ_LEN: usize = 72;
/// `inet_diag_msg`: family, state, timer, retrans, `inet_diag_sockid` (48), expires,
/// rqueue, wqueue, uid, inode.
const MSG_LEN: usize = 72;

/// The ports with a LISTEN socket (IPv4 or IPv6), sorted, each once.
pub fn listening_ports(sock: &OwnedFd) -> Vec<u16> {
    let mut ports: Vec<u16> = [false, true]
        .into_iter()
        .filter_map(|v6| listeners(sock, v6))
        .flatten()
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Every LISTEN socket's port of one family; `None` when the kernel does not answer.
fn listeners(sock: &OwnedFd, v6: bool) -> Option<Vec<u16>> {
    let fd = sock.as_raw_fd();
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let mut req = [0u8; REQ_LEN];
    req[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[16] = family as u8;
    req[17] = libc::IPPROTO_TCP as u8;
    req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // SAFETY: sends `req`'s bytes; an unconnected netlink socket sends to the kernel.
    let sent = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
    if sent != REQ_LEN as isize {
        return None;
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: receives into `buf`, within its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
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
            if let Some(msg) = buf.get(at + 16..at + len).filter(|m| m.len() >= MSG_LEN) {
                out.push(u16::from_be_bytes([msg[4], msg[5]]));
            }
            at += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    #[test]
    fn the_kernel_lists_our_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // SAFETY: socket(2) with constant arguments; owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        assert!(listening_ports(&fd).contains(&port));
        // The same socket answers again.
        assert!(listening_ports(&fd).contains(&port));
    }
}

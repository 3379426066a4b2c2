//! How a `domainAllowList` is enforced without trusting the sandbox: the sandbox gets no way
//! out of its network namespace at all (its network tool detached and its relayed host ports
//! refused, as `networkBlockAll` does), and the backend serves, on sockets it makes *inside*
//! that namespace at the resolver's address (`10.0.2.3`, the address `resolv.conf` names):
//!
//! - a resolver (UDP 53) answering the listed names with `10.0.2.3` itself and every other
//!   name NXDOMAIN;
//! - an HTTP proxy (TCP 80) that reads the request head and lets it through only when its
//!   `Host` (and an absolute-form target's or a `CONNECT` target's host) is listed;
//! - a TLS proxy (TCP 443) that reads the ClientHello and lets it through only when its
//!   server name (SNI) is listed.
//!
//! The proxies resolve the name themselves, on this machine, and connect there: the address
//! the sandbox connected to never chooses the destination, so a raw IP, a forged `Host` or a
//! forged SNI reaches nothing else. Ports below 1024 need a capability the sandbox's user
//! does not have in its namespace, so nothing of the sandbox can take these sockets' place.
//! Limits: HTTP on port 80 and TLS on 443 only (other ports and protocols reach nothing);
//! what travels inside a connection once let through is not looked at (a second request of a
//! kept-alive connection, or the `Host` inside TLS, can name another site *of the same
//! server*: on a CDN or shared host that is domain fronting); names resolving to this
//! machine's loopback are refused, as the network tool refuses them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::domains::{self, Pattern};

/// The address the resolver and both proxies have in the sandbox (on its loopback device).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The ports served there: DNS, HTTP, TLS.
pub const PORTS: [u16; 3] = [53, 80, 443];
/// The most bytes read of a request head or a ClientHello before deciding.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client has to send them, and the proxy to connect onward.
const WAIT: Duration = Duration::from_secs(30);

/// Where the proxies connect for a listed name: this machine's resolver, unless the backend's
/// configuration names an address for (name, port) (`LocalConfig::egress_hosts`, for tests
/// and local mirrors; never from a sandbox).
#[derive(Default, Debug)]
pub struct Hosts(pub HashMap<(String, u16), SocketAddr>);

/// The sockets made in a sandbox's namespace: the resolver's (UDP), the HTTP and TLS
/// listeners.
pub struct Sockets {
    pub dns: std::net::UdpSocket,
    pub http: std::net::TcpListener,
    pub tls: std::net::TcpListener,
}

/// The running resolver and proxies of one sandbox; dropped, they stop (their sockets close
/// and the sandbox resolves nothing: it fails closed).
pub struct Filter {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Filter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves `list` on `sockets` until the returned filter is dropped.
pub fn serve(sockets: Sockets, list: Vec<Pattern>, hosts: &Arc<Hosts>) -> std::io::Result<Filter> {
    let list = Arc::new(list);
    sockets.dns.set_nonblocking(true)?;
    sockets.http.set_nonblocking(true)?;
    sockets.tls.set_nonblocking(true)?;
    let dns = UdpSocket::from_std(sockets.dns)?;
    let http = TcpListener::from_std(sockets.http)?;
    let tls = TcpListener::from_std(sockets.tls)?;
    let resolver = {
        let list = list.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, from)) = dns.recv_from(&mut buf).await {
                if let Some(a) = domains::answer(&buf[..n], &list, ADDRESS) {
                    let _ = dns.send_to(&a, from).await;
                }
            }
        })
    };
    let accept = |listener: TcpListener, kind: Kind| {
        let (list, hosts) = (list.clone(), hosts.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (list, hosts) = (list.clone(), hosts.clone());
                tokio::spawn(async move {
                    let decided = tokio::time::timeout(WAIT, proxy(conn, kind, &list, &hosts));
                    if let Ok(Ok(Some((mut a, mut b)))) = decided.await {
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
            }
        })
    };
    Ok(Filter {
        tasks: vec![resolver, accept(http, Kind::Http), accept(tls, Kind::Tls)],
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Http,
    Tls,
}

/// Reads what names the destination, checks it, connects onward and forwards what was read:
/// the two ends to splice, or `None` (refused: answered and closed).
async fn proxy(
    mut conn: TcpStream,
    kind: Kind,
    list: &[Pattern],
    hosts: &Hosts,
) -> std::io::Result<Option<(TcpStream, TcpStream)>> {
    let mut buf = Vec::with_capacity(4096);
    let target = loop {
        let decided = match kind {
            Kind::Http => http_target(&buf),
            Kind::Tls => tls_target(&buf),
        };
        match decided {
            Need::More if buf.len() < MAX_HEAD => {
                let mut chunk = [0u8; 4096];
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Need::More | Need::Bad => {
                refuse(&mut conn, kind, "a request this proxy cannot read").await;
                return Ok(None);
            }
            Need::Done(t) => break t,
        }
    };
    if let Some(name) = target.names.iter().find(|n| !domains::allows(list, n)) {
        let why = format!("{name} is not in this sandbox's domainAllowList");
        refuse(&mut conn, kind, &why).await;
        return Ok(None);
    }
    let Some(up) = dial(&target.host, target.port, hosts).await else {
        refuse(&mut conn, kind, "cannot connect to it").await;
        return Ok(None);
    };
    let mut up = up;
    if target.connect {
        conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        up.write_all(&buf[target.head_len..]).await?;
    } else {
        up.write_all(&buf).await?;
    }
    Ok(Some((conn, up)))
}

/// An answer to a refused client: a 403 for HTTP, nothing for TLS (closed).
async fn refuse(conn: &mut TcpStream, kind: Kind, why: &str) {
    if let Kind::Http = kind {
        let body = format!("forge local: refused: {why}\n");
        let head = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
    }
    let _ = conn.shutdown().await;
}

/// Connects to `host:port` as this machine resolves it (or as `hosts` says), never to its
/// loopback or an unspecified address.
async fn dial(host: &str, port: u16, hosts: &Hosts) -> Option<TcpStream> {
    let host = domains::normalise(host)?;
    if let Some(addr) = hosts.0.get(&(host.clone(), port)) {
        return TcpStream::connect(addr).await.ok();
    }
    let addrs = tokio::net::lookup_host((host.as_str(), port)).await.ok()?;
    for addr in addrs {
        let ip = addr.ip().to_canonical();
        if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
            continue;
        }
        if let Ok(Ok(s)) = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await {
            return Some(s);
        }
    }
    None
}

/// What a client asked for: the host to connect to, its port, every name it gave (each must
/// be listed), whether it is a `CONNECT` (answered by the proxy, the head not forwarded) and
/// the head's length.
#[derive(Debug, PartialEq)]
struct Target {
    host: String,
    port: u16,
    names: Vec<String>,
    connect: bool,
    head_len: usize,
}

#[derive(Debug, PartialEq)]
enum Need {
    More,
    Bad,
    Done(Target),
}

/// A host and optional port (`name`, `name:port`; an IPv6 literal is not a name: refused).
fn split_authority(a: &str, default: u16) -> Option<(String, u16)> {
    match a.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((a.to_string(), default)),
    }
}

/// An HTTP/1 request head: its `Host` (exactly one), and the host of an absolute-form or
/// `CONNECT` target.
fn http_target(buf: &[u8]) -> Need {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Need::More;
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Need::Bad;
    };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let hosts: Vec<&str> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim())
        .collect();
    let mut names = Vec::new();
    let dest = if method.eq_ignore_ascii_case("CONNECT") {
        match split_authority(target, 443) {
            Some(a) => a,
            None => return Need::Bad,
        }
    } else {
        let [host] = hosts.as_slice() else {
            return Need::Bad;
        };
        let Some((h, _)) = split_authority(host, 80) else {
            return Need::Bad;
        };
        names.push(h.clone());
        let absolute = target
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default());
        match absolute.map(|a| split_authority(a, 80)) {
            Some(Some((a, _))) => (a, 80),
            Some(None) => return Need::Bad,
            None => (h, 80),
        }
    };
    names.push(dest.0.clone());
    Need::Done(Target {
        host: dest.0,
        port: dest.1,
        names,
        connect: method.eq_ignore_ascii_case("CONNECT"),
        head_len: end + 4,
    })
}

/// A TLS ClientHello (possibly over several records): its server name. No server name, or
/// not a ClientHello: refused.
fn tls_target(buf: &[u8]) -> Need {
    // The handshake bytes of the records read so far.
    let (mut at, mut hs) = (0usize, Vec::new());
    while let Some(header) = buf.get(at..at + 5) {
        if header[0] != 22 {
            return Need::Bad;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(body) = buf.get(at + 5..at + 5 + len) else {
            break;
        };
        hs.extend_from_slice(body);
        at += 5 + len;
    }
    if hs.len() < 4 {
        return Need::More;
    }
    if hs[0] != 1 {
        return Need::Bad;
    }
    let len = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
    let Some(hello) = hs.get(4..4 + len) else {
        return Need::More;
    };
    match server_name(hello) {
        Some(name) => Need::Done(Target {
            host: name.clone(),
            port: 443,
            names: vec![name],
            connect: false,
            head_len: 0,
        }),
        None => Need::Bad,
    }
}

/// The `server_name` extension's host name of a ClientHello body.
fn server_name(hello: &[u8]) -> Option<String> {
    let u16_at = |b: &[u8], i: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *b.get(i)?,
            *b.get(i + 1)?,
        ])))
    };
    // version (2), random (32), session id, cipher suites, compression methods.
    let mut at = 34;
    at += 1 + usize::from(*hello.get(at)?);
    at += 2 + u16_at(hello, at)?;
    at += 1 + usize::from(*hello.get(at)?);
    let end = at + 2 + u16_at(hello, at)?;
    at += 2;
    let mut found = None;
    while at + 4 <= end {
        let (kind, len) = (u16_at(hello, at)?, u16_at(hello, at + 2)?);
        let data = hello.get(at + 4..at + 4 + len)?;
        if kind == 0 {
            // One server name, of type host_name (0), as RFC 6066 allows.
            if found.is_some() || data.get(2) != Some(&0) {
                return None;
            }
            let n = u16_at(data, 3)?;
            found = Some(String::from_utf8(data.get(5..5 + n)?.to_vec()).ok()?);
        }
        at += 4 + len;
    }
    found
}

/// Makes the resolver's and proxies' sockets inside the network namespace of init `pid`
/// (through its user namespace when this process is not root), bound to [`ADDRESS`] (which
/// the caller put on the sandbox's loopback device). A child process joins the namespaces,
/// makes the sockets, hands them back over a socket pair and exits: a thread of this process
/// cannot join a user namespace.
pub fn sockets_in(pid: i32, program: &std::path::Path) -> Result<Sockets, String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("the sandbox's {ns} namespace: {e}"))
    };
    let (user, netns) = (open("user")?, open("net")?);
    let (mine, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let (u, n, out) = (user.as_raw_fd(), netns.as_raw_fd(), theirs.as_raw_fd());
    // Everything the child needs is made here: after fork it only makes system calls.
    let addrs: Vec<libc::sockaddr_in> = PORTS
        .iter()
        .map(|p| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: p.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ADDRESS).to_be(),
            },
            sin_zero: [0; 8],
        })
        .collect();
    // SAFETY: pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE((PORTS.len() * std::mem::size_of::<i32>()) as u32) };
    let mut control = vec![0u8; space as usize];
    let control_ptr = control.as_mut_ptr() as usize;
    let addrs_ptr = addrs.as_ptr() as usize;
    let mut cmd = std::process::Command::new(program);
    cmd.arg("-V")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only system calls (setns, socket, setsockopt, bind,
    // listen, sendmsg) on memory made before the fork; the descriptors stay open in the
    // parent until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if !root && libc::setns(u, libc::CLONE_NEWUSER) != 0 {
                return fail();
            }
            if libc::setns(n, libc::CLONE_NEWNET) != 0 {
                return fail();
            }
            let addrs = addrs_ptr as *const libc::sockaddr_in;
            let mut fds = [0i32; PORTS.len()];
            for (i, fd) in fds.iter_mut().enumerate() {
                let kind = if i == 0 {
                    libc::SOCK_DGRAM
                } else {
                    libc::SOCK_STREAM
                };
                *fd = libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC, 0);
                if *fd < 0 {
                    return fail();
                }
                let one: libc::c_int = 1;
                libc::setsockopt(
                    *fd,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
                if libc::bind(
                    *fd,
                    addrs.add(i).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                ) != 0
                {
                    return fail();
                }
                if i > 0 && libc::listen(*fd, 1024) != 0 {
                    return fail();
                }
            }
            let mut byte = [0u8; 1];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &raw mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control_ptr as *mut libc::c_void;
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&raw const msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&fds) as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                std::mem::size_of_val(&fds),
            );
            if libc::sendmsg(out, &raw const msg, 0) < 0 {
                return fail();
            }
            Ok(())
        });
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot make the sandbox's resolver and proxy sockets: {e}"))?;
    drop((control, addrs, theirs));
    if !status.success() {
        return Err(format!("the sandbox's socket maker exited with {status}"));
    }
    let mut byte = [0u8; 1];
    let (_, fds) = super::ctl::recv_with_fds(mine.as_raw_fd(), &mut byte)
        .map_err(|e| format!("cannot receive the sandbox's sockets: {e}"))?;
    let [dns, http, tls]: [std::os::fd::OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| "the sandbox's socket maker sent the wrong descriptors".to_string())?;
    Ok(Sockets {
        dns: std::net::UdpSocket::from(dns),
        http: std::net::TcpListener::from(http),
        tls: std::net::TcpListener::from(tls),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_heads_name_every_host_they_reach() {
        assert_eq!(http_target(b"GET / HTTP/1.1\r\nHost: a"), Need::More);
        let Need::Done(t) = http_target(b"GET / HTTP/1.1\r\nHost: A.test:8080\r\n\r\nbody") else {
            panic!()
        };
        assert_eq!((t.host.as_str(), t.port, t.names.len()), ("A.test", 80, 2));
        let Need::Done(t) = http_target(b"GET http://b.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            (t.host.as_str(), t.names),
            ("b.test", vec!["a.test".into(), "b.test".into()])
        );
        let Need::Done(t) =
            http_target(b"CONNECT c.test:443 HTTP/1.1\r\nHost: c.test:443\r\n\r\nx")
        else {
            panic!()
        };
        assert_eq!(
            (t.host.as_str(), t.port, t.connect, t.head_len),
            ("c.test", 443, true, 49)
        );
        assert_eq!(
            http_target(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Need::Bad,
            "two Hosts"
        );
        assert_eq!(http_target(b"GET / HTTP/1.0\r\n\r\n"), Need::Bad, "no Host");
    }

    /// A ClientHello record as a TLS client sends it, with `sni` (if any).
    fn hello(sni: Option<&str>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        let mut ext = vec![0, 0x2b, 0, 3, 2, 3, 4]; // supported_versions
        if let Some(n) = sni {
            let n = n.as_bytes();
            let l = u16::try_from(n.len()).unwrap();
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&(l + 5).to_be_bytes());
            ext.extend_from_slice(&(l + 3).to_be_bytes());
            ext.push(0);
            ext.extend_from_slice(&l.to_be_bytes());
            ext.extend_from_slice(n);
        }
        body.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn client_hellos_name_their_server() {
        let h = hello(Some("allowed.test"));
        let Need::Done(t) = tls_target(&h) else {
            panic!()
        };
        assert_eq!((t.host.as_str(), t.port), ("allowed.test", 443));
        assert_eq!(tls_target(&h[..20]), Need::More);
        assert_eq!(tls_target(&hello(None)), Need::Bad, "no SNI");
        assert_eq!(tls_target(b"GET / HTTP/1.1\r\n"), Need::Bad);
        // Split over two records.
        let hs = &h[5..];
        let mut two = vec![22, 3, 1, 0, 10];
        two.extend_from_slice(&hs[..10]);
        two.extend_from_slice(&[22, 3, 1]);
        two.extend_from_slice(&u16::try_from(hs.len() - 10).unwrap().to_be_bytes());
        two.extend_from_slice(&hs[10..]);
        assert!(matches!(tls_target(&two), Need::Done(t) if t.host == "allowed.test"));
    }
}

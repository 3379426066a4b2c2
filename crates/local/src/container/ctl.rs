//! The backend's side of a sandbox init's control socket (`<sandbox>/run/ctl.sock`, in the
//! backend's folder, never in the sandbox): one request per connection, a frame each way
//! (u32 length, little endian, then the bytes), descriptors attached with `SCM_RIGHTS`. The
//! init's side and the meaning of each op are in `runtime/forge-sandbox.c`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::Interest;

/// How long one request may take (the init answers at once; a stuck one is a dead sandbox).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most descriptors one answer carries.
const MAX_FDS: usize = 8;

/// An init's answer.
pub struct Answer {
    /// 0, or the errno of the failure.
    pub errno: i32,
    pub value: i32,
    pub message: String,
    pub fds: Vec<OwnedFd>,
}

/// The control socket of one sandbox's init.
#[derive(Clone, Debug)]
pub struct Ctl {
    path: PathBuf,
}

/// Ops of the protocol.
pub mod op {
    pub const SPAWN: u8 = b'S';
    pub const KILL: u8 = b'K';
    pub const SIGNAL_ALL: u8 = b'A';
    pub const CONNECT: u8 = b'C';
    pub const NETLINK: u8 = b'N';
    /// A pseudo-terminal of the sandbox's own devpts: u16 cols, u16 rows; answers the
    /// master and the slave.
    pub const PTY: u8 = b'T';
    pub const PING: u8 = b'P';
}

impl Ctl {
    pub fn new(path: PathBuf) -> Ctl {
        Ctl { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and reads its answer (bounded in time).
    pub async fn request(
        &self,
        op: u8,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<Answer> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(op, payload, fds))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "the sandbox's init did not answer")
            })?
    }

    async fn exchange(&self, op: u8, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<Answer> {
        let stream = connect(&self.path).await?;
        let mut frame = Vec::with_capacity(5 + payload.len());
        frame.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
        frame.push(op);
        frame.extend_from_slice(payload);
        let raw: Vec<RawFd> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        let mut sent = 0;
        while sent < frame.len() {
            let attach: &[RawFd] = if sent == 0 { &raw } else { &[] };
            let n = stream
                .async_io(Interest::WRITABLE, || {
                    send_with_fds(stream.as_raw_fd(), &frame[sent..], attach)
                })
                .await?;
            sent += n;
        }
        let mut buf = Vec::new();
        let mut got_fds = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let (n, fds) = stream
                .async_io(Interest::READABLE, || {
                    recv_with_fds(stream.as_raw_fd(), &mut chunk)
                })
                .await?;
            got_fds.extend(fds);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sandbox's init closed the connection",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() >= 4 {
                let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if buf.len() >= 4 + len && len >= 8 {
                    let errno = i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    let value = i32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    let message = String::from_utf8_lossy(&buf[12..4 + len]).into_owned();
                    return Ok(Answer {
                        errno,
                        value,
                        message,
                        fds: got_fds,
                    });
                }
            }
        }
    }
}

/// Connects to a unix socket path of any length (a long one through `/proc/self/fd`).
async fn connect(path: &Path) -> io::Result<tokio::net::UnixStream> {
    if path.as_os_str().len() < 100 {
        return tokio::net::UnixStream::connect(path).await;
    }
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(path.file_name().unwrap_or_default());
    tokio::net::UnixStream::connect(short).await
}

/// Binds the listening socket an init is started with (any path length).
pub fn listen(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(path);
    if path.as_os_str().len() < 100 {
        return std::os::unix::net::UnixListener::bind(path);
    }
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(path.file_name().unwrap_or_default());
    std::os::unix::net::UnixListener::bind(short)
}

fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space =
        unsafe { libc::CMSG_SPACE((fds.len().max(1) * std::mem::size_of::<RawFd>()) as u32) };
    let mut control = vec![0u8; space as usize];
    // SAFETY: an all-zero msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast::<libc::c_void>();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer holds one cmsghdr with room for `fds` (CMSG_SPACE above).
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&raw const msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            // Bytewise: the control buffer gives no alignment promise for the fds.
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                std::mem::size_of_val(fds),
            );
        }
    }
    // SAFETY: msg points at live buffers; MSG_NOSIGNAL turns a dead peer into EPIPE.
    let n = unsafe {
        libc::sendmsg(
            sock,
            &raw const msg,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

pub(crate) fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
        iov_len: buf.len(),
    };
    // SAFETY: pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) };
    let mut control = vec![0u8; space as usize];
    // SAFETY: as in send_with_fds.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast::<libc::c_void>();
    msg.msg_controllen = space as _;
    // SAFETY: msg points at live buffers.
    let n = unsafe {
        libc::recvmsg(
            sock,
            &raw mut msg,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                // `cmsg_len` is a size_t in glibc and a socklen_t (u32) in musl.
                #[allow(clippy::unnecessary_cast)]
                let len = (*c).cmsg_len as usize;
                let count = (len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                // Read with `read_unaligned` below: the cast promises no alignment.
                #[allow(clippy::cast_ptr_alignment)]
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    Ok((n as usize, fds))
}

/// The payload of a SPAWN request: flags (which of the seven descriptors are real, logging),
/// the log bound, then the cwd, argv and environment, each NUL-terminated.
pub fn spawn_payload(
    flags: u32,
    limit: u64,
    cwd: &str,
    argv: &[String],
    env: &[String],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(64 + argv.iter().chain(env).map(|s| s.len() + 1).sum::<usize>());
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&limit.to_le_bytes());
    p.extend_from_slice(&(argv.len() as u32).to_le_bytes());
    p.extend_from_slice(&(env.len() as u32).to_le_bytes());
    for s in std::iter::once(cwd)
        .chain(argv.iter().map(String::as_str))
        .chain(env.iter().map(String::as_str))
    {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    p
}

//! A command started in a sandbox: its pipes, and what its monitor reports on the events
//! pipe (`P <pid>` once started, `F <stage> <errno>` when it could not start, `t` whenever
//! its log grew, `E <code>` when it exited, `D` once its output is drained). The monitor itself
//! ends only when everything the command started is gone too (it is their subreaper), so a
//! kill of the command's tree reaches a `setsid` or `nohup … &` child whose output went
//! elsewhere.

use super::ctl::{op, spawn_payload, Ctl};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::watch;

/// The exit code reported when a command's monitor was killed before it could say (the
/// sandbox was stopped): as for a command killed by SIGKILL.
pub const KILLED: i32 = 128 + 9;

/// Where a command's output goes.
pub enum Output {
    /// stdout and stderr into one pipe, in the order written (`process/execute`).
    Combined,
    /// stdout and stderr into two pipes (git).
    Separate,
    /// Into a log file in the daemon's marked format, at most `limit` bytes of it kept, and
    /// the exit code into `exit_file` (session commands: both outlive the backend).
    Log {
        log: File,
        exit_file: File,
        limit: u64,
    },
    /// A terminal: the slave of a pty made by [`open_pty`] is the command's stdin, stdout and
    /// stderr and its controlling terminal (the command leads a session of its own).
    Terminal(OwnedFd),
}

/// SPAWN flags (see `run_monitor` in the runtime).
const F_LOG: u32 = 1;
const F_TTY: u32 = 2;

/// A pseudo-terminal made in the sandbox's own devpts, `cols` × `rows`: (master, slave). The
/// master stays with the backend (input, output, [`resize`]); the slave goes to the command
/// with [`Output::Terminal`].
pub async fn open_pty(ctl: &Ctl, cols: u16, rows: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut payload = cols.to_le_bytes().to_vec();
    payload.extend_from_slice(&rows.to_le_bytes());
    let answer = ctl.request(op::PTY, &payload, &[]).await?;
    if answer.errno != 0 {
        return Err(std::io::Error::from_raw_os_error(answer.errno));
    }
    let mut fds = answer.fds.into_iter();
    let (Some(master), Some(slave)) = (fds.next(), fds.next()) else {
        return Err(std::io::Error::other("the sandbox's init sent no terminal"));
    };
    // Only terminals: an answer from inside the sandbox is not trusted further than that.
    for fd in [&master, &slave] {
        // SAFETY: isatty(3) on a descriptor we own.
        if unsafe { libc::isatty(fd.as_raw_fd()) } != 1 {
            return Err(std::io::Error::other("the sandbox's init sent no terminal"));
        }
    }
    Ok((master, slave))
}

/// Sets a terminal's window size (`TIOCSWINSZ` on its master): its foreground job gets
/// SIGWINCH.
pub fn resize(master: &impl AsRawFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a live stack value.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What to run.
pub struct Spec {
    /// The program (found on the command's own PATH) and its arguments.
    pub argv: Vec<String>,
    /// The working directory as the command sees it.
    pub cwd: String,
    /// `KEY=VALUE`, the whole environment.
    pub env: Vec<String>,
    /// A pipe for the command's stdin (else /dev/null).
    pub stdin: bool,
    pub output: Output,
    /// Given to the command as its fd 3 (git's credentials).
    pub fd3: Option<OwnedFd>,
}

/// Why a command did not start.
#[derive(Debug)]
pub struct NotStarted {
    /// `chdir`, `exec`, `fork`, `dup`, `tty` (a terminal that could not become the controlling
    /// one), or `request` (the init did not take it).
    pub stage: String,
    pub error: std::io::Error,
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.error)
    }
}

/// A started command.
pub struct Child {
    /// The command's monitor (a pid in the sandbox), which names it for kills.
    pub monitor: i32,
    pub stdin: Option<pipe::Sender>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
    exit: watch::Receiver<Option<i32>>,
    ticks: watch::Receiver<u64>,
    drained: watch::Receiver<bool>,
    ctl: Ctl,
}

fn null() -> std::io::Result<OwnedFd> {
    Ok(File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe()?;
    Ok((r.into(), w.into()))
}

/// Starts `spec` through the sandbox's init and returns once it runs (or why it does not).
pub async fn spawn(ctl: &Ctl, spec: Spec) -> Result<Child, NotStarted> {
    let request_err = |error: std::io::Error| NotStarted {
        stage: "request".into(),
        error,
    };
    let null = null().map_err(request_err)?;
    let terminal = matches!(spec.output, Output::Terminal(_));
    let (stdin_r, stdin_w) = if spec.stdin && !terminal {
        let (r, w) = pipe_pair().map_err(request_err)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (events_r, events_w) = pipe_pair().map_err(request_err)?;
    let mut flags: u32 = 0;
    let mut keep_out = None;
    let mut keep_err = None;
    let mut tty_in = None;
    let (out_w, err_w, log, exit_file, limit, logged) = match spec.output {
        Output::Combined => {
            let (r, w) = pipe_pair().map_err(request_err)?;
            keep_out = Some(r);
            let w2 = w.try_clone().map_err(request_err)?;
            (Some(w), Some(w2), None, None, 0, false)
        }
        Output::Separate => {
            let (r1, w1) = pipe_pair().map_err(request_err)?;
            let (r2, w2) = pipe_pair().map_err(request_err)?;
            keep_out = Some(r1);
            keep_err = Some(r2);
            (Some(w1), Some(w2), None, None, 0, false)
        }
        Output::Log {
            log,
            exit_file,
            limit,
        } => (
            None,
            None,
            Some(OwnedFd::from(log)),
            Some(OwnedFd::from(exit_file)),
            limit,
            true,
        ),
        Output::Terminal(slave) => {
            flags |= F_TTY;
            let out = slave.try_clone().map_err(request_err)?;
            let err = slave.try_clone().map_err(request_err)?;
            tty_in = Some(slave);
            (Some(out), Some(err), None, None, 0, false)
        }
    };
    if logged {
        flags |= F_LOG;
    }
    let slots: [Option<&OwnedFd>; 7] = [
        stdin_r.as_ref().or(tty_in.as_ref()),
        out_w.as_ref(),
        err_w.as_ref(),
        Some(&events_w),
        exit_file.as_ref(),
        log.as_ref(),
        spec.fd3.as_ref(),
    ];
    let mut fds = Vec::with_capacity(7);
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            Some(fd) => {
                flags |= 1 << (8 + i);
                fds.push(fd.as_fd());
            }
            None => fds.push(null.as_fd()),
        }
    }
    let payload = spawn_payload(flags, limit, &spec.cwd, &spec.argv, &spec.env);
    let answer = ctl
        .request(op::SPAWN, &payload, &fds)
        .await
        .map_err(request_err)?;
    if answer.errno != 0 {
        return Err(request_err(std::io::Error::from_raw_os_error(answer.errno)));
    }
    // From here the command runs: if this future is dropped before it returns the `Child`
    // (the request that asked for it went away while its monitor started it), the command is
    // killed, not left running with no one to end it (a loaded run once left a hanging
    // `git clone` behind this way: the caller's guard did not exist yet).
    let guard = KillOnDrop(Some(Killer::new(ctl.clone(), answer.value)));
    // Only the command's ends stay open in the sandbox: EOFs come when it is done.
    drop(fds);
    drop((
        stdin_r, tty_in, out_w, err_w, events_w, log, exit_file, spec.fd3, null,
    ));
    let mut events = pipe::Receiver::from_owned_fd(events_r).map_err(request_err)?;
    let (exit_tx, exit) = watch::channel(None);
    let (tick_tx, ticks) = watch::channel(0u64);
    let (drained_tx, drained) = watch::channel(false);
    // The first word: started, or why not.
    let mut pending = Vec::new();
    let started = read_line(&mut events, &mut pending, &tick_tx).await;
    match started.as_deref().and_then(|l| l.split_once(' ')) {
        Some(("P", _)) => {}
        Some(("F", why)) => {
            // Not started: nothing of it runs.
            guard.disarm();
            let mut words = why.split_whitespace();
            let stage = words.next().unwrap_or("start").to_string();
            let errno = words.next().and_then(|e| e.parse().ok()).unwrap_or(0);
            return Err(NotStarted {
                stage,
                error: std::io::Error::from_raw_os_error(errno),
            });
        }
        _ => {
            guard.disarm();
            return Err(request_err(std::io::Error::other(
                "the command's monitor ended before starting it",
            )));
        }
    }
    tokio::spawn(async move {
        let mut code = None;
        while let Some(line) = read_line(&mut events, &mut pending, &tick_tx).await {
            if let Some(c) = line.strip_prefix("E ") {
                code = c.trim().parse().ok();
                exit_tx.send_replace(code);
            } else if line == "D" {
                tick_tx.send_modify(|t| *t += 1);
                drained_tx.send_replace(true);
            }
        }
        // EOF: the monitor is gone (its last tick is in). Killed before it said: as SIGKILL.
        tick_tx.send_modify(|t| *t += 1);
        if code.is_none() {
            exit_tx.send_replace(Some(KILLED));
        }
        drained_tx.send_replace(true);
    });
    let receiver = |fd: Option<OwnedFd>| fd.and_then(|f| pipe::Receiver::from_owned_fd(f).ok());
    guard.disarm();
    Ok(Child {
        monitor: answer.value,
        stdin: stdin_w.and_then(|w| pipe::Sender::from_owned_fd(w).ok()),
        stdout: receiver(keep_out),
        stderr: receiver(keep_err),
        exit,
        ticks,
        drained,
        ctl: ctl.clone(),
    })
}

/// The next `\n`-terminated event, counting `t` ticks on the way; `None` at EOF.
async fn read_line(
    events: &mut pipe::Receiver,
    pending: &mut Vec<u8>,
    ticks: &watch::Sender<u64>,
) -> Option<String> {
    loop {
        // Ticks are single bytes between the lines.
        let mut i = 0;
        while i < pending.len() && pending[i] == b't' {
            i += 1;
        }
        if i > 0 {
            pending.drain(..i);
            ticks.send_modify(|t| *t += 1);
        }
        if let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&pending[..nl]).into_owned();
            pending.drain(..=nl);
            return Some(line);
        }
        let mut buf = [0u8; 4096];
        match events.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

impl Child {
    /// Waits for the exit code (`KILLED` when the monitor was killed first).
    pub async fn wait(&mut self) -> i32 {
        let code = self
            .exit
            .wait_for(std::option::Option::is_some)
            .await
            .map(|c| *c);
        code.ok().flatten().unwrap_or(KILLED)
    }

    /// A receiver of the exit code, for those who wait elsewhere.
    pub fn exit_watch(&self) -> watch::Receiver<Option<i32>> {
        self.exit.clone()
    }

    /// A receiver that changes whenever the log grew, and once more when the monitor ends.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.ticks.clone()
    }

    /// A receiver that turns true once the command exited and all its output is in (before
    /// the monitor ends, which waits for the command's whole tree).
    pub fn drained(&self) -> watch::Receiver<bool> {
        self.drained.clone()
    }

    /// A handle that signals this command's tree.
    pub fn killer(&self) -> Killer {
        Killer {
            ctl: self.ctl.clone(),
            monitor: self.monitor,
        }
    }
}

/// Signals one command and everything it started.
#[derive(Clone, Debug)]
pub struct Killer {
    ctl: Ctl,
    monitor: i32,
}

/// Kills a command's tree when dropped before [`KillOnDrop::disarm`]: a request whose client
/// went away stops its work instead of running on.
pub struct KillOnDrop(pub Option<Killer>);

impl KillOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            tokio::spawn(async move {
                let _ = k.kill(libc::SIGKILL).await;
            });
        }
    }
}

impl Killer {
    pub fn new(ctl: Ctl, monitor: i32) -> Killer {
        Killer { ctl, monitor }
    }

    /// Sends `signal` to the command's whole tree; how many processes got it.
    pub async fn kill(&self, signal: i32) -> std::io::Result<i32> {
        let mut payload = self.monitor.to_le_bytes().to_vec();
        payload.extend_from_slice(&signal.to_le_bytes());
        let answer = self.ctl.request(op::KILL, &payload, &[]).await?;
        if answer.errno != 0 {
            return Err(std::io::Error::from_raw_os_error(answer.errno));
        }
        Ok(answer.value)
    }
}

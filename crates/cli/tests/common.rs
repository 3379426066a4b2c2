//! Helpers of the CLI's tests: `forge local` as a child process, `forge` runs against it or
//! against an embedded backend in a fresh home, plain HTTP, and this machine's process table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Every wait of these tests ends within this bound.
pub const BOUND: Duration = Duration::from_mins(1);

pub struct Local {
    pub child: Child,
    pub info: serde_json::Value,
    stderr: std::sync::mpsc::Receiver<String>,
    _home: tempfile::TempDir,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Local {
    pub fn addr(&self) -> String {
        let url = self.info["apiUrl"].as_str().unwrap();
        url.trim_start_matches("http://")
            .trim_end_matches("/api")
            .to_string()
    }
    /// What it wrote on stderr until now.
    pub fn stderr(&self) -> String {
        let mut out = String::new();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// `forge local --json ARGS` with `env`, started with the soft open-file limit of a default
/// Linux session (1024), its JSON line read within [`BOUND`].
pub fn local(args: &[&str], env: &[(&str, &str)]) -> Local {
    use std::os::unix::process::CommandExt;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.arg("local")
        .arg("--json")
        .args(args)
        .env("FORGE_HOME", home.path())
        .env("FORGE_STOP_SANDBOXES_ON_EXIT", "1")
        .env_remove("FORGE_LOCAL_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut l: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut l);
            l.rlim_cur = l.rlim_max.min(1024);
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const l);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("forge runs");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let (etx, erx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    let line = rx
        .recv_timeout(BOUND)
        .expect("forge local prints its JSON line");
    let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Local {
        child,
        info,
        stderr: erx,
        _home: home,
    }
}

/// One HTTP/1.1 request on a new connection; the answer's status line (bounded).
pub fn status_of(addr: &str, path: &str, key: &str) -> String {
    let s = send_get(
        addr,
        path,
        "127.0.0.1",
        &format!("Authorization: Bearer {key}\r\n"),
    );
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("an answer within the bound");
    line.trim().to_string()
}

pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

impl Local {
    /// The environment that points `forge` (and the SDKs) at this backend.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "DAYTONA_API_URL",
                self.info["apiUrl"].as_str().unwrap().to_owned(),
            ),
            (
                "DAYTONA_API_KEY",
                self.info["apiKey"].as_str().unwrap().to_owned(),
            ),
        ]
    }
}

/// A `forge` command with a clean environment: no Daytona key or GitHub token of the machine
/// running the tests, and `home` as the embedded backend's folder.
pub fn forge_cmd(args: &[&str], home: &std::path::Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.args(args)
        .env("FORGE_HOME", home)
        .env_remove("DAYTONA_API_KEY")
        .env_remove("DAYTONA_API_URL")
        .env_remove("GITHUB_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `forge` to its end (see [`forge_cmd`]).
pub fn forge_in(args: &[&str], home: &std::path::Path, env: &[(&str, String)]) -> Output {
    forge_cmd(args, home, env).output().expect("forge runs")
}

/// The JSON object a `--json` run printed (its last stdout line).
pub fn json_line(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Sends `GET path` (HTTP/1.1, one request, `extra` header lines) on a new connection whose
/// reads end within [`BOUND`].
fn send_get(addr: &str, path: &str, host: &str, extra: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// `GET url` with no header but `Host` (as a browser's first visit): status and body.
pub fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = send_get(authority, path, authority, "");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("an answer within the bound");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// This machine's processes whose command line contains `text` (sandbox processes are this
/// machine's, whatever namespaces they run in).
pub fn processes_mentioning(text: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && cmdline(pid).contains(text))
        .collect()
}

/// Waits until `check()` holds, polling every 100 ms; panics with `what` after [`BOUND`] × 5
/// (a bound on a hang, not a measurement: a busy machine only makes the wait longer).
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + BOUND * 5;
    while !check() {
        assert!(std::time::Instant::now() < until, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

//! `forge local` as a user runs it (issue 14): where its key comes from, and a backend that
//! half-sent requests cannot make unreachable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Every wait of these tests ends within this bound.
const BOUND: Duration = Duration::from_mins(1);

struct Local {
    child: Child,
    info: serde_json::Value,
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
    fn addr(&self) -> String {
        let url = self.info["apiUrl"].as_str().unwrap();
        url.trim_start_matches("http://")
            .trim_end_matches("/api")
            .to_string()
    }
    /// What it wrote on stderr until now.
    fn stderr(&self) -> String {
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
fn local(args: &[&str], env: &[(&str, &str)]) -> Local {
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
fn status_of(addr: &str, path: &str, key: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("an answer within the bound");
    line.trim().to_string()
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

#[test]
fn the_key_comes_from_the_environment_or_a_file_not_the_command_line() {
    let key = "forge_env_key_0123456789";
    let b = local(&[], &[("FORGE_LOCAL_KEY", key)]);
    assert_eq!(b.info["apiKey"], key);
    assert!(!cmdline(b.child.id()).contains(key));
    assert!(status_of(&b.addr(), "/api/sandbox", key).contains(" 200 "));
    drop(b);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "forge_file_key_0123456789\n").unwrap();
    let b = local(&["--key-file", file.to_str().unwrap()], &[]);
    assert_eq!(b.info["apiKey"], "forge_file_key_0123456789");
    drop(b);

    // A key in argv still works, and is warned about.
    let b = local(&["--key", "forge_argv_key_0123456789"], &[]);
    assert_eq!(b.info["apiKey"], "forge_argv_key_0123456789");
    let stderr = b.stderr();
    assert!(
        stderr.contains("--key") && stderr.contains("FORGE_LOCAL_KEY"),
        "{stderr}"
    );
}

#[test]
fn half_sent_requests_do_not_make_the_api_unreachable() {
    // This test opens more sockets than a default session may: its own limit is raised.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &raw const l);
    }
    let key = "forge_slowloris_key_0123456789";
    let b = local(&[], &[("FORGE_LOCAL_KEY", key)]);
    let addr = b.addr();
    // 1,100 connections that send half a request head and wait (bounded count).
    let mut held = Vec::new();
    for _ in 0..1100 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.write_all(b"GET /api/sandbox HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        held.push(s);
    }
    // The API still answers a whole request.
    let status = status_of(&addr, "/api/sandbox", key);
    assert!(status.contains(" 200 "), "{status}");
    // And a half-sent head is dropped by the server (its header-read timeout), not kept.
    let first = &mut held[0];
    first.set_read_timeout(Some(BOUND)).unwrap();
    let mut rest = Vec::new();
    let ended = first.read_to_end(&mut rest);
    assert!(
        ended.is_ok(),
        "the server still holds a half-sent request after {BOUND:?}: {ended:?}"
    );
}

//! `forge local` as a user runs it (issue 14): where its key comes from, and a backend that
//! half-sent requests cannot make unreachable.

use crate::common::{cmdline, local, status_of, BOUND};
use std::io::{Read, Write};
use std::net::TcpStream;

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

//! Bad input never panics or hangs: symlink loops, non-UTF-8 files, huge and malformed
//! manifests, FIFOs, deep trees and bad `root` options give warnings or typed errors.

use std::path::PathBuf;

use forge_detect::{
    detect_dir, detect_files, detect_source, DetectError, DetectOptions, LocalSource, WalkLimits,
};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forge-detect-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Detects a folder with the default limits and options.
fn detect_local(d: &std::path::Path) -> forge_detect::Detection {
    detect_source(
        &LocalSource::new(d),
        "",
        WalkLimits::default(),
        &DetectOptions::default(),
    )
    .unwrap()
}

fn codes(d: &forge_detect::Detection) -> Vec<&str> {
    d.warnings.iter().map(|w| w.code.as_str()).collect()
}

#[cfg(unix)]
#[test]
fn symlink_loops_and_fifos_are_survived() {
    let d = temp("loop");
    std::fs::write(
        d.join("package.json"),
        r#"{"devDependencies":{"vite":"^7"},"scripts":{"dev":"vite"}}"#,
    )
    .unwrap();
    std::fs::create_dir(d.join("a")).unwrap();
    std::os::unix::fs::symlink(&d, d.join("a/back")).unwrap();
    std::os::unix::fs::symlink(d.join("self"), d.join("self")).unwrap();
    std::os::unix::fs::symlink(d.join("self"), d.join("vite.config.ts")).unwrap();
    let fifo = d.join("server.js");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let r = detect_local(&d);
    assert_eq!(r.framework.unwrap().id, "vite");
    if made {
        assert!(fifo.exists());
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn non_utf8_and_huge_files_become_warnings() {
    let d = temp("bytes");
    std::fs::write(d.join("package.json"), b"{\"name\": \"\xff\xfe\"}").unwrap();
    std::fs::create_dir(d.join("big")).unwrap();
    let mut huge = b"{\"dependencies\":{\"next\":\"15\"},\"x\":\"".to_vec();
    huge.resize(3 << 20, b'a');
    std::fs::write(d.join("big/package.json"), &huge).unwrap();
    std::fs::write(d.join("vite.config.ts"), b"\xff\xff server: { port: 4000 }").unwrap();
    let r = detect_local(&d);
    let c = codes(&r);
    assert!(c.contains(&"PACKAGE_JSON_INVALID"), "{c:?}");
    assert!(c.contains(&"PACKAGE_JSON_TOO_LARGE"), "{c:?}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn deep_and_wide_trees_are_bounded() {
    let d = temp("deep");
    let mut p = d.clone();
    for i in 0..40 {
        p = p.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("package.json"), r#"{"dependencies":{"next":"15"}}"#).unwrap();
    for i in 0..300 {
        std::fs::write(d.join(format!("f{i}.txt")), "x").unwrap();
    }
    std::fs::write(d.join("index.html"), "<h1>x</h1>").unwrap();
    let limits = WalkLimits {
        max_depth: 6,
        max_entries: 200,
    };
    let r = detect_source(&LocalSource::new(&d), "", limits, &DetectOptions::default()).unwrap();
    assert!(codes(&r).contains(&"WALK_TRUNCATED"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn node_modules_and_build_outputs_are_skipped() {
    let d = temp("skip");
    std::fs::write(
        d.join("package.json"),
        r#"{"devDependencies":{"vite":"^7"}}"#,
    )
    .unwrap();
    for skipped in ["node_modules/next", ".git/x", "dist/app", ".next/server"] {
        std::fs::create_dir_all(d.join(skipped)).unwrap();
        std::fs::write(
            d.join(skipped).join("package.json"),
            r#"{"dependencies":{"next":"15"}}"#,
        )
        .unwrap();
    }
    let r = detect_local(&d);
    assert_eq!(r.framework.unwrap().id, "vite");
    assert!(r.monorepo.is_none());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn typed_errors_have_stable_codes() {
    let missing = detect_dir("/definitely/not/here", &DetectOptions::default()).unwrap_err();
    assert_eq!(missing.code(), "DETECT_NOT_FOUND");
    let d = temp("errs");
    std::fs::write(d.join("file"), "x").unwrap();
    assert_eq!(
        detect_dir(d.join("file"), &DetectOptions::default())
            .unwrap_err()
            .code(),
        "DETECT_NOT_A_DIRECTORY"
    );
    let opts = DetectOptions {
        root: Some("../etc".into()),
        ..Default::default()
    };
    assert!(matches!(
        detect_dir(&d, &opts),
        Err(DetectError::InvalidRoot { .. })
    ));
    let opts = DetectOptions {
        root: Some("apps/none".into()),
        ..Default::default()
    };
    assert_eq!(
        detect_files([("package.json", "{}")], &opts)
            .unwrap_err()
            .code(),
        "DETECT_ROOT_NOT_FOUND"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn garbage_maps_never_panic() {
    let cases: Vec<Vec<(&str, &[u8])>> = vec![
        vec![],
        vec![("package.json", b"[]")],
        vec![("package.json", b"null")],
        vec![("package.json", b"{\"dependencies\": [1,2], \"scripts\": \"x\", \"workspaces\": 5}")],
        vec![("package.json", b"{\"workspaces\": [\"**\"]}"), ("a/package.json", b"{\"workspaces\": [\"**\"]}")],
        vec![("pnpm-workspace.yaml", b"packages:\n  - [\n"), ("package.json", b"{}")],
        vec![("../escape/package.json", b"{}"), ("/abs/package.json", b"{}")],
        vec![("package.json", b"{\"scripts\": {\"dev\": \"vite --port\"}, \"devDependencies\": {\"vite\": \"\xff\"}}")],
        vec![("package.json", b"{\"scripts\": {\"dev\": \"vite --port 99999999\"}, \"devDependencies\": {\"vite\": \"7\"}}")],
    ];
    for files in cases {
        let r = detect_files(
            files.iter().map(|(p, c)| (*p, c.to_vec())),
            &DetectOptions::default(),
        );
        assert!(r.is_ok(), "{r:?}");
    }
}

//! `forge preview` as a user runs it: the real binary, the embedded backend, a folder upload and
//! a clone from a git smart-HTTP server on 127.0.0.1 with a token, a failing app.

use crate::common::json_line;
use std::process::{Command, Output};
use std::time::Duration;

const TOKEN: &str = "ghp_Cli0Secret0Token0123456789";

const SERVER: &str = "require('http').createServer((q, s) => s.end('cli preview ok')).listen(process.env.PORT || 3000)\n";

fn forge(args: &[&str], token: Option<&str>) -> Output {
    forge_reaching(args, token, None)
}

/// `forge` with a temp home whose sandboxes are stopped when it exits; its sandboxes may reach
/// `host_port` of this machine (a git server of the test's).
fn forge_reaching(args: &[&str], token: Option<&str>, host_port: Option<u16>) -> Output {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.args(args)
        .env("FORGE_HOME", home.path())
        .env("FORGE_STOP_SANDBOXES_ON_EXIT", "1")
        .env_remove("DAYTONA_API_KEY")
        .env_remove("GITHUB_TOKEN");
    if let Some(t) = token {
        cmd.env("GITHUB_TOKEN", t);
    }
    if let Some(p) = host_port {
        cmd.env("FORGE_SANDBOX_HOST_PORTS", p.to_string());
    }
    cmd.output().expect("forge runs")
}

fn app(dir: &std::path::Path, server: &str) {
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"cli-app","private":true,"scripts":{"dev":"node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("server.js"), server).unwrap();
    std::fs::create_dir_all(dir.join("node_modules/junk")).unwrap();
    std::fs::write(dir.join("node_modules/junk/index.js"), "not uploaded").unwrap();
}

#[test]
fn a_folder_is_uploaded_and_verified_with_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    app(dir.path(), SERVER);
    let out = forge(
        &["preview", dir.path().to_str().unwrap(), "--no-wait"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("embedded local backend"), "{stderr}");
    for step in ["create", "clone", "detect", "install", "start", "verify"] {
        assert!(stderr.contains(&format!("✓ {step}")), "{step}: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("preview: http://127.0.0.1:"), "{stdout}");
}

#[test]
fn a_git_url_is_cloned_with_the_token_and_the_json_result_is_verified() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repos = tempfile::tempdir().unwrap();
    forge_testkit::create_repo(
        repos.path(),
        "app.git",
        "main",
        &[
            (
                "package.json",
                r#"{"name":"cli-app","private":true,"scripts":{"dev":"node server.js"}}"#,
            ),
            ("server.js", SERVER),
        ],
    )
    .unwrap();
    let server = rt
        .block_on(forge_testkit::GitHttpServer::start(
            repos.path(),
            "x-access-token",
            TOKEN,
        ))
        .unwrap();
    let url = server.url("app.git");
    let out = forge_reaching(
        &["preview", &url, "--json", "--no-wait", "--public"],
        Some(TOKEN),
        Some(server.addr().port()),
    );
    let v = json_line(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["framework"], "node");
    assert_eq!(v["port"], 3000);
    assert_eq!(v["verify"]["ok"], true);
    assert!(v["previewUrl"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(TOKEN));

    // A wrong token (given with --token this time) fails at clone, with a JSON error and
    // exit code 1.
    let out = forge_reaching(
        &[
            "preview",
            &url,
            "--json",
            "--no-wait",
            "--token",
            "wrong-token",
        ],
        None,
        Some(server.addr().port()),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["step"], "clone");
    assert!(v["error"]["message"].as_str().is_some(), "{v}");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .ok()
    });
}

#[test]
fn a_crashing_app_fails_at_verify_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    app(
        dir.path(),
        "console.error('boom: cannot start'); process.exit(1)\n",
    );
    let out = forge(
        &[
            "preview",
            dir.path().to_str().unwrap(),
            "--json",
            "--no-wait",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "PREVIEW_VERIFY_FAILED");
    assert_eq!(v["error"]["reason"], "PROCESS_EXITED");
    assert!(
        v["error"]["logTail"]
            .to_string()
            .contains("boom: cannot start"),
        "{v}"
    );
}

#[test]
fn a_path_that_is_neither_url_nor_folder_is_refused() {
    let out = forge(&["preview", "/no/such/folder", "--no-wait"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a git URL nor a folder"));
}

/// A Vite app (vanilla: only `vite` to install) whose entry module runs `main`.
fn vite_app(dir: &std::path::Path, main: &str) {
    let files = [
        (
            "package.json",
            r#"{"name":"cli-vite","private":true,"type":"module","scripts":{"dev":"vite"},"devDependencies":{"vite":"5.4.11"}}"#,
        ),
        (
            "index.html",
            "<!doctype html><html><head><title>cli vite</title></head><body><h1 id=\"app\" style=\"color:#c00\"></h1><script type=\"module\" src=\"/main.js\"></script></body></html>\n",
        ),
        ("main.js", main),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// `forge preview --no-wait --browser --screenshot <shot> [extra]` of a Vite app whose entry
/// runs `main`.
fn preview_in_browser(main: &str, shot: &std::path::Path, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    vite_app(dir.path(), main);
    let mut args = vec![
        "preview",
        dir.path().to_str().unwrap(),
        "--no-wait",
        "--browser",
        "--screenshot",
        shot.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    forge(&args, None)
}

#[test]
fn browser_writes_the_screenshot_and_prints_its_path() {
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("shot.png");
    let out = preview_in_browser(
        "document.getElementById('app').textContent = 'hello from vite'\n",
        &shot,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("browser: OK \"cli vite\" in "), "{stdout}");
    assert!(
        stdout.contains(&format!("screenshot {}\n", shot.display())),
        "the printed line names the file: {stdout}"
    );
    let png = std::fs::read(&shot).expect("the screenshot file");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    assert_eq!((info.width, info.height), (1280, 800));
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(
        pixels.iter().any(|p| p[0] > 150 && p[1] < 80 && p[2] < 80),
        "the red heading is in the screenshot"
    );
}

#[test]
fn browser_fails_an_app_that_throws_in_the_page_with_its_error() {
    let shots = tempfile::tempdir().unwrap();
    let out = preview_in_browser(
        "document.getElementById('app').textContent = 'starting'\nthrow new Error('VITE_API_URL is not set')\n",
        &shots.path().join("shot.png"),
        &["--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_line(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "PREVIEW_VERIFY_FAILED", "{v}");
    assert_eq!(v["error"]["reason"], "BROWSER_ERROR", "{v}");
    let excerpt = v["error"]["excerpt"].as_str().unwrap_or_default();
    assert!(
        excerpt.contains("Error: VITE_API_URL is not set") && excerpt.contains("/main.js"),
        "{v}"
    );
}

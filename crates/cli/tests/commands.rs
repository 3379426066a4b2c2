//! The CLI a user expects (issue 18): Ctrl-C during an install, a folder upload that keeps
//! secrets and ignored files home, a link that opens a private preview in a browser,
//! `list` / `logs` / `rm`, and one `--json` shape for every command's success and failure.
//! Against a real `forge local` over HTTP (the backend's sandbox list is checked there) or the
//! embedded backend in a fresh home.

use crate::common::{
    forge_cmd, forge_in, http_get, json_line, local, processes_mentioning, wait_until,
};
use std::path::Path;
use std::process::Stdio;

/// A marker no other process of this machine has on its command line.
fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("forge-cli-{tag}-{}-{nanos}", std::process::id())
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// An app whose install never ends: npm runs the package's own `install` script, which waits
/// forever with `marker` on its command line.
fn blocking_install_app(dir: &Path, marker: &str) {
    let package = format!(
        r#"{{"name":"blocks","private":true,"scripts":{{"install":"node wait-forever.js {marker}","dev":"node server.js"}}}}"#
    );
    write(
        dir,
        &[
            ("package.json", &package),
            ("wait-forever.js", "setInterval(() => {}, 1000)\n"),
            (
                "server.js",
                "require('http').createServer((q, s) => s.end('never')).listen(process.env.PORT || 3000)\n",
            ),
        ],
    );
}

fn sandboxes(home: &Path, env: &[(&str, String)]) -> Vec<serde_json::Value> {
    let out = forge_in(&["list", "--json"], home, env);
    let v = json_line(&out);
    assert_eq!(v["ok"], true, "{v}");
    v["sandboxes"].as_array().expect("sandboxes").clone()
}

/// `forge ARGS` started, its output captured.
fn spawn(args: &[&str], home: &Path, env: &[(&str, String)]) -> std::process::Child {
    forge_cmd(args, home, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The lines `child` writes on stdout, as they come.
fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    rx
}

/// An app whose dev server has `marker` on its command line, logs `text` when it listens and
/// answers every request with it.
fn marked_server(dir: &Path, marker: &str, text: &str) {
    let package = format!(
        r#"{{"name":"marked","private":true,"scripts":{{"dev":"node server.js {marker}"}}}}"#
    );
    let server = format!(
        "const text = {text:?}\nrequire('http').createServer((q, s) => s.end(text)).listen(process.env.PORT || 3000, () => console.log(text))\n"
    );
    write(dir, &[("package.json", &package), ("server.js", &server)]);
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

#[test]
fn ctrl_c_during_the_install_kills_it_deletes_the_sandbox_and_exits_130() {
    let backend = local(&[], &[]);
    let env = backend.env();
    let home = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    let marker = marker("sigint");
    blocking_install_app(app.path(), &marker);

    let dir = app.path().to_str().unwrap();
    let child = spawn(&["preview", dir, "--no-wait"], home.path(), &env);
    wait_until("the install runs in the sandbox", || {
        !processes_mentioning(&marker).is_empty()
    });
    assert_eq!(sandboxes(home.path(), &env).len(), 1);

    signal(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted during install") && stderr.contains("deleted"),
        "{stderr}"
    );
    assert_eq!(processes_mentioning(&marker), Vec::<u32>::new());
    assert_eq!(
        sandboxes(home.path(), &env),
        Vec::<serde_json::Value>::new()
    );

    // SIGTERM with --keep (and --json): the install is killed all the same, the sandbox stays,
    // and `forge rm` removes it.
    let child = spawn(
        &["preview", dir, "--no-wait", "--keep", "--json"],
        home.path(),
        &env,
    );
    wait_until("the install runs again", || {
        !processes_mentioning(&marker).is_empty()
    });
    signal(child.id(), libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted during install"));
    let v = json_line(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "DAYTONA_ABORTED");
    assert_eq!(v["error"]["step"], "install");
    assert_eq!(v["error"]["kept"], true);
    let id = v["error"]["sandboxId"]
        .as_str()
        .expect("sandboxId")
        .to_owned();
    assert_eq!(processes_mentioning(&marker), Vec::<u32>::new());
    let listed = sandboxes(home.path(), &env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());

    let out = forge_in(&["rm", &id, "--json"], home.path(), &env);
    let v = json_line(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v, serde_json::json!({ "ok": true, "deleted": [id] }));
    assert_eq!(
        sandboxes(home.path(), &env),
        Vec::<serde_json::Value>::new()
    );
}

/// An app whose page says which of the uploaded files it finds.
const FILES_SERVER: &str = r"const fs = require('fs')
const files = ['.env', '.env.local', 'ignored.txt', 'logs/debug.txt', 'kept.txt', 'node_modules/junk/index.js', 'installed-by-flag.txt']
const answer = () => ({ ...Object.fromEntries(files.map((f) => [f, fs.existsSync(f)])), flagged: process.argv.includes('--flagged') })
console.log('upload check listening')
require('http').createServer((q, s) => s.end(JSON.stringify(answer()))).listen(process.env.PORT || 3000)
";

#[test]
fn an_upload_leaves_env_and_ignored_files_home_and_the_printed_link_opens_the_private_preview() {
    let backend = local(&[], &[]);
    let env = backend.env();
    let home = tempfile::tempdir().unwrap();
    let app = tempfile::tempdir().unwrap();
    write(
        app.path(),
        &[
            (
                "package.json",
                r#"{"name":"upload-check","private":true,"scripts":{"dev":"node server.js"}}"#,
            ),
            ("server.js", FILES_SERVER),
            (".gitignore", "ignored.txt\nlogs/\n"),
            (".env", "SECRET=do-not-upload\n"),
            (".env.local", "SECRET=do-not-upload-either\n"),
            ("ignored.txt", "ignored\n"),
            ("logs/debug.txt", "ignored\n"),
            ("kept.txt", "kept\n"),
            ("node_modules/junk/index.js", "not uploaded\n"),
        ],
    );
    let dir = app.path().to_str().unwrap();
    let out = forge_in(&["preview", dir, "--json", "--no-wait"], home.path(), &env);
    let v = json_line(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["ok"], true);
    let id = v["sandboxId"].as_str().unwrap().to_owned();
    let preview = v["previewUrl"].as_str().unwrap();
    let link = v["browserUrl"].as_str().unwrap();
    assert_ne!(link, preview, "a private preview gets a signed link");
    // A browser's first visit to the bare URL is sent to sign in; the link opens the app.
    assert_eq!(http_get(preview).0, 307);
    let (status, body) = http_get(link);
    assert_eq!(status, 200, "{body}");
    let found: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        found,
        serde_json::json!({
            ".env": false, ".env.local": false, "ignored.txt": false, "logs/debug.txt": false,
            "kept.txt": true, "node_modules/junk/index.js": false,
            "installed-by-flag.txt": false, "flagged": false,
        })
    );

    // `forge logs` shows the dev server's output.
    let out = forge_in(&["logs", &id, "--json"], home.path(), &env);
    let logs = json_line(&out);
    assert_eq!(logs["ok"], true, "{logs}");
    assert!(
        logs["stdout"]
            .as_str()
            .unwrap()
            .contains("upload check listening"),
        "{logs}"
    );
    let out = forge_in(&["logs", &id], home.path(), &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("upload check listening"));
    // -f follows the output until Ctrl-C, which ends it with 0 (that is how it stops).
    let mut follow = spawn(&["logs", &id, "-f"], home.path(), &env);
    let rx = stdout_lines(&mut follow);
    // (npm's own lines come first.)
    while !rx
        .recv_timeout(crate::common::BOUND)
        .expect("-f prints the dev server's output")
        .contains("upload check listening")
    {}
    signal(follow.id(), libc::SIGINT);
    // (Its stderr is in the message: under load this once ended 130, cause not yet known.)
    let ended = follow.wait_with_output().unwrap();
    assert_eq!(
        ended.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&ended.stderr)
    );

    // Asked for, the env files go too; and the commands and port given replace detection's.
    let out = forge_in(
        &[
            "preview",
            dir,
            "--json",
            "--no-wait",
            "--include-env",
            "--public",
            "--install-command",
            "touch installed-by-flag.txt",
            "--dev-command",
            "node server.js --flagged",
            "--port",
            "4123",
        ],
        home.path(),
        &env,
    );
    let v = json_line(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["port"], 4123);
    let with_env = v["sandboxId"].as_str().unwrap().to_owned();
    assert_eq!(
        v["browserUrl"], v["previewUrl"],
        "a public preview needs no link"
    );
    let (_, body) = http_get(v["browserUrl"].as_str().unwrap());
    let found: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found[".env"], true, "{found}");
    assert_eq!(found[".env.local"], true, "{found}");
    assert_eq!(found["ignored.txt"], false, "{found}");
    assert_eq!(found["installed-by-flag.txt"], true, "{found}");
    assert_eq!(found["flagged"], true, "{found}");

    let out = forge_in(&["rm", &id, &with_env, "--json"], home.path(), &env);
    assert_eq!(
        json_line(&out),
        serde_json::json!({ "ok": true, "deleted": [id, with_env] })
    );
    assert_eq!(
        sandboxes(home.path(), &env),
        Vec::<serde_json::Value>::new()
    );
}

#[test]
fn every_command_answers_json_in_one_shape() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let app = tempfile::tempdir().unwrap();
    write(
        app.path(),
        &[(
            "package.json",
            r#"{"name":"shape","private":true,"scripts":{"dev":"node server.js"}}"#,
        )],
    );
    let run = |args: &[&str]| {
        let out = forge_in(args, h, &[]);
        (out.status.code(), json_line(&out))
    };
    let error = |v: &serde_json::Value| {
        assert_eq!(v["ok"], false, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        v["error"]["code"].as_str().unwrap().to_owned()
    };

    let (code, v) = run(&["detect", app.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["ok"], true);
    assert_eq!(v["packageManager"]["name"], "npm", "{v}");
    let (code, v) = run(&["detect", "/no/such/folder", "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(error(&v), "DETECT_NOT_FOUND");

    let (code, v) = run(&["preview", "/no/such/folder", "--json"]);
    assert_eq!(code, Some(2));
    assert_eq!(error(&v), "DAYTONA_INVALID_ARGUMENT");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("neither a git URL nor a folder"));

    // The embedded backend of a fresh home: nothing listed, nothing to remove or read.
    let (code, v) = run(&["list", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(v, serde_json::json!({ "ok": true, "sandboxes": [] }));
    let (code, v) = run(&["rm", "no-such-sandbox", "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(error(&v), "DAYTONA_NOT_FOUND");
    assert_eq!(v["error"]["failed"][0]["id"], "no-such-sandbox");
    let (code, v) = run(&["logs", "no-such-sandbox", "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(error(&v), "DAYTONA_NOT_FOUND");

    // Bad arguments are errors of the same shape, exit 2.
    let (code, v) = run(&["list", "--no-such-flag", "--json"]);
    assert_eq!(code, Some(2));
    assert_eq!(error(&v), "DAYTONA_INVALID_ARGUMENT");
    let (code, v) = run(&["logs", "x", "--follow", "--json"]);
    assert_eq!(code, Some(2));
    assert_eq!(error(&v), "DAYTONA_INVALID_ARGUMENT");
}

#[test]
fn help_documents_the_token_variable_and_the_json_shape() {
    let home = tempfile::tempdir().unwrap();
    let out = forge_in(&["preview", "--help"], home.path(), &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "GITHUB_TOKEN",
        "--install-command",
        "--dev-command",
        "--root",
        "--port",
        "--include-env",
        "--keep",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    // The token's value never shows in the help.
    let out = forge_in(
        &["preview", "--help"],
        home.path(),
        &[("GITHUB_TOKEN", "ghp_help0secret".to_owned())],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ghp_help0secret"));
    let out = forge_in(&["--help"], home.path(), &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["\"ok\":true", "\"ok\":false", "130", "DAYTONA_API_KEY"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// Deletes a sandbox of an embedded home when dropped.
struct Removed(std::path::PathBuf, String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = forge_in(&["rm", &self.1], &self.0, &[]);
    }
}

#[test]
fn list_logs_and_rm_find_what_a_preview_kept_in_the_embedded_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let app = tempfile::tempdir().unwrap();
    let marker = marker("kept");
    marked_server(app.path(), &marker, "kept server up");
    // No DAYTONA_API_KEY: the embedded backend, which stops when `forge preview` exits.
    let out = forge_in(
        &[
            "preview",
            app.path().to_str().unwrap(),
            "--json",
            "--no-wait",
            "--keep",
        ],
        h,
        &[],
    );
    let v = json_line(&out);
    assert!(out.status.success(), "{v}");
    let id = v["sandboxId"].as_str().unwrap().to_owned();
    // Its processes outlive `forge`: removed even when an assertion below fails.
    let _guard = Removed(h.to_path_buf(), id.clone());
    assert!(
        !processes_mentioning(&marker).is_empty(),
        "the kept dev server runs on"
    );

    // Another process, another backend over the same home: it finds the sandbox.
    let listed = sandboxes(h, &[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    let logs = json_line(&forge_in(&["logs", &id, "--json"], h, &[]));
    assert!(
        logs["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("kept server up"),
        "{logs}"
    );

    let out = forge_in(&["rm", &id, "--json"], h, &[]);
    assert_eq!(
        json_line(&out),
        serde_json::json!({ "ok": true, "deleted": [id] })
    );
    assert_eq!(sandboxes(h, &[]), Vec::<serde_json::Value>::new());
    assert_eq!(processes_mentioning(&marker), Vec::<u32>::new());
}

#[test]
fn the_printed_url_opens_the_private_preview_until_ctrl_c_ends_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let app = tempfile::tempdir().unwrap();
    let marker = marker("served");
    marked_server(app.path(), &marker, "served by forge");
    // The embedded backend, as a user runs it: text output, serving until Ctrl-C.
    let mut child = spawn(&["preview", app.path().to_str().unwrap()], h, &[]);
    let rx = stdout_lines(&mut child);
    let url = loop {
        let line = rx
            .recv_timeout(crate::common::BOUND * 5)
            .expect("forge preview prints the preview's URL");
        if let Some(url) = line.strip_prefix("preview: ") {
            break url.to_owned();
        }
    };
    // What a browser gets from the printed URL (no header: the sign-in is in the link).
    let (status, body) = http_get(&url);
    assert_eq!(status, 200, "{url}: {body}");
    assert!(body.contains("served by forge"), "{body}");

    signal(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("deleted"), "{stderr}");
    assert_eq!(processes_mentioning(&marker), Vec::<u32>::new());
    assert_eq!(sandboxes(h, &[]), Vec::<serde_json::Value>::new());
}

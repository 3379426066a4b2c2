//! Crash safety (issue 8): the backend runs as a separate process (this test binary re-run as
//! a child that serves a home until it is killed), is `kill -9`ed while uploads and commands
//! are in flight, and is started again on the same home.
//!
//! What a restart after a crash gives (the decision this test pins down): sandboxes outlive
//! their backend, as Daytona's outlive an API restart.
//! - every sandbox that existed is listed, in the state it had;
//! - their containers kept running: session commands (a dev server among them), detached
//!   `setsid` children, and the sessions are found again with their commands and logs; the
//!   dev server answers on the same preview URL as before the crash;
//! - uploads that had finished are intact; one cut by the crash never appears under its name,
//!   and its temp file is removed at the restart;
//! - deleting the sandboxes then leaves no process and no cgroup behind.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const CHILD_HOME: &str = "FORGE_CRASH_TEST_HOME";
const KEY: &str = "crash-test-key";

/// The backend process: serves `$FORGE_CRASH_TEST_HOME`, prints its address, waits forever.
#[tokio::test]
async fn child_backend() {
    let Ok(home) = std::env::var(CHILD_HOME) else {
        return;
    };
    let backend = forge_local::LocalBackend::start(forge_local::LocalConfig {
        home: Some(PathBuf::from(home)),
        api_key: Some(KEY.into()),
        bind: None,
        egress_hosts: forge_local::LocalConfig::from_env().egress_hosts,
        ..Default::default()
    })
    .await
    .expect("backend starts");
    println!("\nFORGE_ADDR={}", backend.addr());
    std::future::pending::<()>().await;
}

struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(home: &Path) -> Proc {
        Proc::start_with(home, &[])
    }

    /// A backend process with `env` added to its environment.
    fn start_with(home: &Path, env: &[(&str, String)]) -> Proc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::child_backend",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_HOME, home)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("FORGE_ADDR=") {
                    let _ = tx.send(a.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_mins(1))
            .expect("the backend process printed its address");
        Proc { child, addr }
    }

    fn kill9(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    http: reqwest::Client,
    addr: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(path)).bearer_auth(KEY);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let s = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn create(&self) -> String {
        let (s, v) = self
            .call(reqwest::Method::POST, "/api/sandbox", Some(json!({})))
            .await;
        assert_eq!(s, 200, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

/// Live (non-zombie) processes whose command line contains `marker`.
fn procs_with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| {
            let zombie = std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            });
            !zombie
                && std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker.as_bytes()))
        })
        .collect()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn files_named(dir: &Path, pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(files_named(&p, pred));
            } else if pred(&e.file_name().to_string_lossy()) {
                out.push(p);
            }
        }
    }
    out
}

/// Starts a multipart upload of `path` over raw TCP that sends `sent` bytes of the file and
/// then stalls (the connection is kept open by the returned stream).
async fn stalled_upload(addr: &str, id: &str, path: &str, sent: usize) -> tokio::net::TcpStream {
    let body_start = format!(
        "--XB\r\nContent-Disposition: form-data; name=\"files[0].path\"\r\n\r\n{path}\r\n--XB\r\nContent-Disposition: form-data; name=\"files[0].file\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let head = format!(
        "POST /toolbox/{id}/files/bulk-upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nContent-Type: multipart/form-data; boundary=XB\r\nContent-Length: {}\r\n\r\n",
        body_start.len() + 50_000_000
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body_start.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b'p'; sent]).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

#[tokio::test]
async fn kill_9_during_uploads_and_execs_then_restart() {
    if std::env::var(CHILD_HOME).is_ok() {
        return;
    }
    tokio::time::timeout(Duration::from_secs(150), scenario())
        .await
        .expect("the crash scenario finished within 150 s");
}

async fn scenario() {
    let home = tempfile::tempdir().unwrap();
    let marker = format!("forge-crash-marker-{}", std::process::id());
    let mut first = Proc::start(home.path());
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_mins(1))
            .build()
            .unwrap(),
        addr: first.addr.clone(),
    };
    let busy = api.create().await;
    let stopped = api.create().await;
    let archived = api.create().await;
    let idle = api.create().await;
    for (id, action) in [
        (&stopped, "stop"),
        (&archived, "stop"),
        (&archived, "archive"),
    ] {
        let (s, v) = api
            .call(
                reqwest::Method::POST,
                &format!("/api/sandbox/{id}/{action}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{action}: {v}");
    }

    // A finished upload (2 MiB of varied bytes).
    let content: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let form = reqwest::multipart::Form::new()
        .text("files[0].path", "done.bin")
        .part(
            "files[0].file",
            reqwest::multipart::Part::bytes(content.clone()).file_name("x"),
        );
    let res = api
        .http
        .post(api.url(&format!("/toolbox/{busy}/files/bulk-upload")))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // Commands running at the crash: a blocking execute, a session command, and a detached
    // child that left the command's process group.
    let blocking = {
        let http = api.http.clone();
        let url = api.url(&format!("/toolbox/{busy}/process/execute"));
        let cmd = format!("sh -c 'sleep 120; true' {marker}-execute");
        tokio::spawn(async move {
            let _ = http
                .post(url)
                .bearer_auth(KEY)
                .json(&json!({ "command": cmd }))
                .send()
                .await;
        })
    };
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/toolbox/{busy}/process/session"),
            Some(json!({"sessionId": "dev"})),
        )
        .await;
    assert!(s < 300, "{v}");
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/toolbox/{busy}/process/session/dev/exec"),
            Some(json!({"command": format!("sh -c 'sleep 120; true' {marker}-session"), "runAsync": true})),
        )
        .await;
    assert!(s < 300, "{v}");
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/toolbox/{idle}/process/execute"),
            Some(json!({"command": format!("setsid sh -c 'sleep 120; true' {marker}-detached > /dev/null 2>&1 < /dev/null & echo ok")})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Two uploads cut by the crash: a new file, and an overwrite of the finished one.
    let root = |id: &str| home.path().join("sandboxes").join(id).join("root");
    let uploads = home
        .path()
        .join("sandboxes")
        .join(&busy)
        .join("state/uploads");
    let _cut_new = stalled_upload(&first.addr, &busy, "partial.bin", 1_000_000).await;
    let _cut_over = stalled_upload(&first.addr, &busy, "done.bin", 1_000_000).await;
    let temp = |n: &str| n.contains("forge-upload");
    wait_for("both uploads to be on disk", || {
        files_named(&uploads, &temp).len() == 2
    })
    .await;
    assert_eq!(
        files_named(&root(&busy), &|n| n.contains("partial") || temp(n)),
        Vec::<PathBuf>::new(),
        "an upload in flight is not visible in the sandbox"
    );
    for k in ["execute", "session", "detached"] {
        wait_for(&format!("the {k} command to run"), || {
            !procs_with_marker(&format!("{marker}-{k}")).is_empty()
        })
        .await;
    }

    // A dev server in a session, and its preview.
    let js = include_bytes!("fixtures/upstream.js").to_vec();
    let form = reqwest::multipart::Form::new()
        .text("files[0].path", "/home/daytona/upstream.js")
        .part(
            "files[0].file",
            reqwest::multipart::Part::bytes(js).file_name("x"),
        );
    let res = api
        .http
        .post(api.url(&format!("/toolbox/{busy}/files/bulk-upload")))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    api.call(
        reqwest::Method::POST,
        &format!("/toolbox/{busy}/process/session"),
        Some(json!({"sessionId": "web"})),
    )
    .await;
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/toolbox/{busy}/process/session/web/exec"),
            Some(json!({"command": "echo serving; node upstream.js 3000", "runAsync": true})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let web_cmd = v["cmdId"].as_str().unwrap().to_string();
    let (_, link) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/sandbox/{busy}/ports/3000/preview-url"),
            None,
        )
        .await;
    let preview = link["url"].as_str().unwrap().to_string();
    let token = link["token"].as_str().unwrap().to_string();
    let http = api.http.clone();
    let hello = || {
        let (http, preview, token) = (http.clone(), preview.clone(), token.clone());
        async move {
            match http
                .get(&preview)
                .header("X-Daytona-Preview-Token", &token)
                .send()
                .await
            {
                Ok(r) if r.status().as_u16() == 200 => r.text().await.unwrap_or_default(),
                _ => String::new(),
            }
        }
    };
    let mut served = false;
    for _ in 0..400 {
        if hello().await.starts_with("hello") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the dev server answers through its preview");

    first.kill9();
    blocking.abort();
    // The crash leaves the commands running: nothing killed them.
    assert!(!procs_with_marker(&marker).is_empty());

    let second = Proc::start(home.path());
    let api = Api {
        addr: second.addr.clone(),
        ..api
    };
    // The sandboxes' processes live on: they belong to their containers, not to the backend.
    for k in ["session", "detached"] {
        assert!(
            !procs_with_marker(&format!("{marker}-{k}")).is_empty(),
            "the {k} command survives the restart"
        );
    }

    // Every sandbox is listed in the state it had.
    let (s, list) = api.call(reqwest::Method::GET, "/api/sandbox", None).await;
    assert_eq!(s, 200);
    let states: std::collections::BTreeMap<String, String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: std::collections::BTreeMap<String, String> = [
        (&busy, "started"),
        (&stopped, "stopped"),
        (&archived, "archived"),
        (&idle, "started"),
    ]
    .into_iter()
    .map(|(k, v)| (k.clone(), v.to_string()))
    .collect();
    assert_eq!(states, expected);

    // The dev server answers on the same preview URL, and its session is found again with
    // the command still running and its log.
    assert!(
        hello().await.starts_with("hello"),
        "same preview URL after the restart"
    );
    let (s, v) = api
        .call(
            reqwest::Method::GET,
            &format!("/toolbox/{busy}/process/session/web"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["commands"][0]["id"], web_cmd.as_str());
    assert!(v["commands"][0]["exitCode"].is_null(), "{v}");
    let (s, v) = api
        .call(
            reqwest::Method::GET,
            &format!("/toolbox/{busy}/process/session/web/command/{web_cmd}/logs"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(v.to_string().contains("serving"), "{v}");

    // The finished upload is intact (not replaced by the cut overwrite); the cut new file is
    // not there under its name; no temp file is left.
    let (s, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/toolbox/{busy}/files/info?path=partial.bin"),
            None,
        )
        .await;
    assert_eq!(s, 404, "a cut upload is not presented");
    let got = api
        .http
        .get(api.url(&format!("/toolbox/{busy}/files/download?path=done.bin")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(
        got.bytes().await.unwrap() == content,
        "finished upload intact"
    );
    assert_eq!(
        files_named(&home.path().join("sandboxes"), &temp),
        Vec::<PathBuf>::new(),
        "temp files of cut uploads are removed at the restart"
    );

    // A command killed after the restart: its exit code is seen through its exit file.
    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/toolbox/{busy}/process/session/web/command/{web_cmd}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let mut code = Value::Null;
    for _ in 0..200 {
        let (_, v) = api
            .call(
                reqwest::Method::GET,
                &format!("/toolbox/{busy}/process/session/web/command/{web_cmd}"),
                None,
            )
            .await;
        code = v["exitCode"].clone();
        if !code.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, json!(137));

    // The sandbox works at once.
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/toolbox/{busy}/process/execute"),
            Some(json!({"command": "cat done.bin | wc -c"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"].as_str().unwrap().trim(), "2097152");

    // Deleting the sandboxes leaves nothing of them running.
    for id in [&busy, &stopped, &archived, &idle] {
        let (s, v) = api
            .call(reqwest::Method::DELETE, &format!("/api/sandbox/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(procs_with_marker(&marker), Vec::<i32>::new(), "no orphan");
    drop(second);
}

/// A sandbox with a `domainAllowList` outlives its backend: killed, the backend's resolver and
/// proxies are gone with it (the sandbox resolves nothing then: closed); started again, the
/// backend serves the list again, and still only the list.
#[tokio::test]
async fn a_domain_allow_list_is_served_again_after_a_restart() {
    if std::env::var(CHILD_HOME).is_ok() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await;
                let _ = c
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nallowed",
                    )
                    .await;
            });
        }
    });
    // Read by the child backends' `LocalConfig::from_env`.
    let env = [(
        "FORGE_EGRESS_HOSTS",
        format!("allowed.test:80=127.0.0.1:{port}"),
    )];
    let home = tempfile::tempdir().unwrap();
    let mut first = Proc::start_with(home.path(), &env);
    let api = Api {
        http: reqwest::Client::new(),
        addr: first.addr.clone(),
    };
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            "/api/sandbox",
            Some(json!({"domainAllowList": "allowed.test"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let run = |api: &Api, command: &str| {
        let body = json!({"command": command, "timeout": 60});
        let path = format!("/toolbox/{id}/process/execute");
        let api = Api {
            http: api.http.clone(),
            addr: api.addr.clone(),
        };
        async move {
            let (s, v) = api.call(reqwest::Method::POST, &path, Some(body)).await;
            assert_eq!(s, 200, "{v}");
            v["result"].as_str().unwrap_or_default().to_string()
        }
    };
    if v["isolation"]["level"] != "container" {
        eprintln!("skipped: sandboxes are not containers here");
        return;
    }
    let fetch =
        "curl -s -m 20 http://allowed.test/; echo; getent hosts other.test || echo unresolved";
    assert_eq!(run(&api, fetch).await, "allowed\nunresolved\n");
    first.kill9();
    let second = Proc::start_with(home.path(), &env);
    let api = Api {
        http: reqwest::Client::new(),
        addr: second.addr.clone(),
    };
    assert_eq!(
        run(&api, fetch).await,
        "allowed\nunresolved\n",
        "served again"
    );
    let (s, v) = api
        .call(reqwest::Method::DELETE, &format!("/api/sandbox/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    drop(second);
}

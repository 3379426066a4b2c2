//! Shared helpers of the integration tests: a backend on a temp home and a small HTTP client.
#![allow(dead_code)]

use forge_local::{LocalBackend, LocalConfig};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub struct Env {
    pub backend: LocalBackend,
    pub home: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

/// A backend on a temp home, its config changed by `change` first.
pub async fn start_with(change: impl FnOnce(&mut LocalConfig)) -> Env {
    let home = tempfile::tempdir().expect("tempdir");
    let mut config = LocalConfig {
        home: Some(home.path().to_path_buf()),
        api_key: Some("test-key".into()),
        bind: None,
        stop_sandboxes_on_exit: true,
        ..Default::default()
    };
    change(&mut config);
    let backend = LocalBackend::start(config).await.expect("backend starts");
    Env {
        backend,
        home,
        http: reqwest::Client::builder()
            .timeout(Duration::from_mins(1))
            .build()
            .unwrap(),
    }
}

impl Env {
    pub fn api(&self, path: &str) -> String {
        format!("{}{}", self.backend.api_url(), path)
    }
    pub fn tb(&self, id: &str, path: &str) -> String {
        format!("http://{}/toolbox/{}{}", self.backend.addr(), id, path)
    }
    pub fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth("test-key")
            .header("X-Daytona-SDK-Version", "0.218.0")
    }
    pub async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    pub async fn create(&self, body: Value) -> Value {
        let (s, v) = self
            .json(reqwest::Method::POST, &self.api("/sandbox"), Some(body))
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
    pub async fn sandbox(&self) -> String {
        let v = self
            .create(json!({"env": {"SBX_VAR": "from-sandbox"}, "labels": {}}))
            .await;
        v["id"].as_str().unwrap().to_string()
    }
    /// `POST /sandbox/{id}/{action}` (`stop`, `start`, `pause`, `archive`, `recover`, with a
    /// query if any): its status and JSON.
    pub async fn lifecycle(&self, id: &str, action: &str) -> (u16, Value) {
        let url = self.api(&format!("/sandbox/{id}/{action}"));
        self.json(reqwest::Method::POST, &url, None).await
    }
    pub async fn exec(&self, id: &str, body: Value) -> (u16, Value) {
        self.json(
            reqwest::Method::POST,
            &self.tb(id, "/process/execute"),
            Some(body),
        )
        .await
    }
    /// Starts the dev server stand-in (`fixtures/upstream.js`) in the sandbox on `port` and
    /// waits until the sandbox listens there.
    pub async fn serve(&self, id: &str, port: u16) {
        let js = include_bytes!("../fixtures/upstream.js").to_vec();
        let (s, v) = upload(self, id, &[("/home/daytona/upstream.js", js)]).await;
        assert_eq!(s, 200, "{v}");
        let sid = format!("serve-{port}");
        self.json(
            reqwest::Method::POST,
            &self.tb(id, "/process/session"),
            Some(json!({"sessionId": sid})),
        )
        .await;
        let (s, v) = self
            .json(
                reqwest::Method::POST,
                &self.tb(id, &format!("/process/session/{sid}/exec")),
                Some(json!({"command": format!("node upstream.js {port}"), "runAsync": true})),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        self.wait_listening(id, port).await;
    }

    /// Waits until something of the sandbox listens on `port`. The bound (2 minutes) only
    /// ends a test that hangs: a loaded machine may take long to start a server, never wrong.
    pub async fn wait_listening(&self, id: &str, port: u16) {
        let deadline = std::time::Instant::now() + Duration::from_mins(2);
        while std::time::Instant::now() < deadline {
            let (_, v) = self
                .json(
                    reqwest::Method::GET,
                    &self.tb(id, &format!("/port/{port}/in-use")),
                    None,
                )
                .await;
            if v["isInUse"] == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nothing of sandbox {id} listens on {port}");
    }

    /// Host path of the sandbox root.
    pub fn root(&self, id: &str) -> PathBuf {
        self.backend.home().join("sandboxes").join(id).join("root")
    }
}

/// `POST /files/bulk-upload` of `(path, content)` pairs: the status and the JSON answer.
pub async fn upload(env: &Env, id: &str, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (i, (path, content)) in files.iter().enumerate() {
        form = form
            .text(format!("files[{i}].path"), path.to_string())
            .part(
                format!("files[{i}].file"),
                reqwest::multipart::Part::bytes(content.clone()).file_name("x"),
            );
    }
    let res = env
        .req(reqwest::Method::POST, &env.tb(id, "/files/bulk-upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

/// Waits (up to a minute) until some process carries `needle` (`present`) or none does
/// (`!present`); returns whether that happened. A process just forked is in `/proc`, but its
/// environment reads empty while it is in `execve`, which a busy machine can make last.
pub async fn procs_become(needle: &str, present: bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    loop {
        if procs_with_env(needle).is_empty() != present {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Live (non-zombie) processes whose environment contains `needle` (`KEY=value`).
pub fn procs_with_env(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|e| e.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

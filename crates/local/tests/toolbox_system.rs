//! The daemon's own routes: `POST /env` (later commands, sessions, PTYs and interpreters
//! see it; a restarted sandbox does not), `GET /system/metrics` (the sandbox's cgroup and
//! limits), `POST /git/credentials` (used by later git operations, never written into the
//! sandbox), `POST /init`, and LSP / computer use answering "not supported".

use crate::common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn result(env: &common::Env, id: &str, command: &str) -> String {
    let (s, v) = env.exec(id, json!({ "command": command })).await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_str().unwrap().trim().to_string()
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(e.path().display().to_string());
                }
            }
        }
    }
    hits
}

/// The stdout of one interpreter execution in the default context.
async fn interpreter_stdout(env: &common::Env, id: &str, code: &str) -> String {
    let url = env
        .tb(id, "/process/interpreter/execute")
        .replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(json!({ "code": code }).to_string().into()))
        .await
        .unwrap();
    let mut out = String::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_mins(1), ws.next()).await {
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "stdout" {
                    out.push_str(v["text"].as_str().unwrap());
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn env_updates_reach_later_commands_until_the_sandbox_restarts() {
    let env = common::start().await;
    let id = env.sandbox().await; // env SBX_VAR=from-sandbox
    let show = "echo \"[${NEW_VAR-}][${SBX_VAR-unset}][${PH-}][${LANG-none}]\"";
    assert_eq!(result(&env, &id, show).await, "[][from-sandbox][][C.UTF-8]");
    // A session that ran before keeps what it had.
    let sess = env.tb(&id, "/process/session");
    let (s, _) = env
        .json(Method::POST, &sess, Some(json!({"sessionId": "s"})))
        .await;
    assert_eq!(s, 201);

    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/env"),
            Some(json!({"set": {"NEW_VAR": "v1 two", "PH": "placeholder:1"}, "unset": ["SBX_VAR", "LANG"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        !v.to_string().contains("v1 two"),
        "values are not echoed: {v}"
    );
    assert_eq!(
        result(&env, &id, show).await,
        "[v1 two][unset][placeholder:1][none]"
    );
    // A request's own envs still win.
    let (_, v) = env
        .exec(&id, json!({"command": show, "envs": {"SBX_VAR": "mine"}}))
        .await;
    assert_eq!(
        v["result"].as_str().unwrap().trim(),
        "[v1 two][mine][placeholder:1][none]"
    );
    // unsetValuePrefix removes by value, sparing what is being set.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/env"),
            Some(json!({"unsetValuePrefix": "placeholder:"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(result(&env, &id, show).await, "[v1 two][unset][][none]");

    // Sessions, PTYs and interpreters started later see it too.
    let (s, v) = env
        .json(
            Method::POST,
            &format!("{sess}/s/exec"),
            Some(json!({"command": "echo \"sess=$NEW_VAR\""})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stdout"].as_str().unwrap().trim(), "sess=v1 two");
    assert_eq!(
        interpreter_stdout(
            &env,
            &id,
            "import os\nprint(os.environ.get('NEW_VAR'), os.environ.get('SBX_VAR'))"
        )
        .await,
        "v1 two None\n"
    );

    // Bad names are refused; nothing of it is in the sandbox's files.
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/env"),
            Some(json!({"set": {"1BAD": "x"}})),
        )
        .await;
    assert_eq!(
        (s, v["source"].as_str()),
        (400, Some("DAYTONA_DAEMON")),
        "{v}"
    );
    assert!(files_containing(&env.root(&id), "v1 two").is_empty());

    // A stopped and started sandbox has a new daemon: the changes are gone.
    let (s, _) = env.lifecycle(&id, "stop").await;
    assert_eq!(s, 200);
    let (s, _) = env.lifecycle(&id, "start").await;
    assert_eq!(s, 200);
    assert_eq!(result(&env, &id, show).await, "[][from-sandbox][][C.UTF-8]");
}

#[tokio::test]
async fn system_metrics_are_the_sandboxes() {
    let env = common::start().await;
    let created = env.create(json!({"cpu": 2, "memory": 3, "disk": 4})).await;
    let id = created["id"].as_str().unwrap().to_string();
    // Something that uses memory and CPU, so the cgroup has figures.
    assert_eq!(
        result(
            &env,
            &id,
            "head -c 20000000 /dev/zero | md5sum > /dev/null && echo ok"
        )
        .await,
        "ok"
    );
    let (s, m) = env
        .json(Method::GET, &env.tb(&id, "/system/metrics"), None)
        .await;
    assert_eq!(s, 200, "{m}");
    const GIB: u64 = 1 << 30;
    assert_eq!(m["cpuCount"], 2);
    assert_eq!(m["memTotal"].as_u64(), Some(3 * GIB));
    assert_eq!(m["diskTotal"].as_u64(), Some(4 * GIB));
    for k in [
        "memUsed",
        "memCache",
        "diskUsed",
        "diskFree",
        "timestampUnix",
        "cpuCount",
    ] {
        assert!(m[k].is_u64(), "{k} is a whole number: {m}");
    }
    assert!(m["cpuUsedPct"].is_number());
    assert!(m["diskUsed"].as_u64().unwrap() > 0, "the home's files: {m}");
    assert_eq!(
        m["diskFree"].as_u64().unwrap(),
        4 * GIB - m["diskUsed"].as_u64().unwrap()
    );
    assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    let limited = created["isolation"]["limits"]
        .as_str()
        .is_some_and(|l| !l.contains("none") && !l.contains("cannot"));
    if limited {
        assert!(m["memUsed"].as_u64().unwrap() > 0, "{m}");
    }
}

#[tokio::test]
async fn stored_git_credentials_are_used_and_never_in_the_sandbox() {
    const USER: &str = "alice";
    const TOKEN: &str = "tok-st0red-98765";
    let repos = tempfile::tempdir().unwrap();
    forge_testkit::create_repo(repos.path(), "app.git", "main", &[("README.md", "hi\n")]).unwrap();
    let server = forge_testkit::GitHttpServer::start(repos.path(), USER, TOKEN)
        .await
        .unwrap();
    let env = common::start_with(|c| c.host_ports = vec![server.addr().port()]).await;
    let id = env.sandbox().await;
    let url = server.url("app.git");
    let host = format!("127.0.0.1:{}", server.addr().port());

    // Without credentials: refused.
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/clone"),
            Some(json!({"url": url, "path": "a"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("GIT_AUTH_FAILED")),
        "{v}"
    );

    // Stored for another host: still refused.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/credentials"),
            Some(json!({"username": USER, "password": TOKEN})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/clone"),
            Some(json!({"url": url, "path": "b"})),
        )
        .await;
    assert_eq!(s, 401);

    // A wrong one for this host: refused, and the secret is not in the answer.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/credentials"),
            Some(json!({"username": USER, "password": "wrong-s3cret-1", "host": host, "protocol": "http"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/clone"),
            Some(json!({"url": url, "path": "c"})),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert!(!v.to_string().contains("wrong-s3cret-1"));

    // The right one replaces it: clone and pull work without credentials in the request.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/credentials"),
            Some(json!({"username": USER, "password": TOKEN, "host": host, "protocol": "http"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/clone"),
            Some(json!({"url": url, "path": "repo"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        std::fs::read_to_string(env.root(&id).join("home/daytona/repo/README.md")).unwrap(),
        "hi\n"
    );
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/pull"),
            Some(json!({"path": "repo"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Never in the sandbox's files nor in any of its processes' environment.
    assert!(files_containing(&env.root(&id), TOKEN).is_empty());
    assert!(files_containing(&env.root(&id), "wrong-s3cret-1").is_empty());
    assert_eq!(
        result(&env, &id, &format!("env | grep -c {TOKEN} || true")).await,
        "0"
    );

    // Bad requests.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/credentials"),
            Some(json!({"username": USER})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/git/credentials"),
            Some(json!({"username": USER, "password": "p", "host": "evil/host\n"})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn init_and_what_is_not_supported() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/init"),
            Some(json!({"token": "some-token-1"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(!v.to_string().contains("some-token-1"));
    let (s, _) = env
        .json(Method::POST, &env.tb(&id, "/init"), Some(json!({})))
        .await;
    assert_eq!(s, 400);

    for (method, path) in [
        (Method::POST, "/lsp/start"),
        (Method::POST, "/lsp/completions"),
        (
            Method::GET,
            "/lsp/document-symbols?languageId=python&pathToProject=.&uri=x",
        ),
        (Method::GET, "/computeruse/status"),
        (Method::POST, "/computeruse/start"),
        (Method::POST, "/computeruse/mouse/click"),
        (Method::GET, "/computeruse/screenshot"),
    ] {
        let (s, v) = env
            .json(method.clone(), &env.tb(&id, path), Some(json!({})))
            .await;
        assert_eq!(s, 400, "{method} {path}: {v}");
        assert_eq!(v["source"], "DAYTONA_DAEMON", "{v}");
        assert_eq!(v["code"], "NOT_SUPPORTED", "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("not supported"),
            "{v}"
        );
        assert_eq!(v["path"], path.split('?').next().unwrap());
    }
}

//! The control plane over real HTTP: lifecycle, persistence, paging, auth and error shapes.

use crate::common;

use forge_local::{LocalBackend, LocalConfig};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn lifecycle_and_persistence_across_restart() {
    let env = common::start().await;
    let (s, vol) = env
        .json(
            reqwest::Method::POST,
            &env.api("/volumes"),
            Some(json!({"name": "v1"})),
        )
        .await;
    assert_eq!(s, 200, "{vol}");
    let v = env
        .create(json!({
            "name": "life",
            "buildInfo": {"dockerfileContent": "FROM node:22-bookworm\n"},
            "env": {"NODE_ENV": "development"},
            "labels": {"project": "p1", "code-toolbox-language": "javascript"},
            "public": true, "cpu": 4, "memory": 16, "disk": 10,
            "autoStopInterval": 30, "target": "eu",
            "volumes": [{"volumeId": "v1", "mountPath": "/data"}]
        }))
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "started");
    assert_eq!(v["name"], "life");
    assert_eq!(v["env"]["NODE_ENV"], "development");
    assert_eq!(v["public"], true);
    assert_eq!(v["cpu"], 4.0);
    assert_eq!(v["memory"], 16.0);
    assert_eq!(v["target"], "eu");
    assert_eq!(v["autoStopInterval"], 30.0);
    assert_eq!(v["buildInfo"]["snapshotRef"], "node:22-bookworm");
    assert_eq!(v["volumes"][0]["mountPath"], "/data");
    assert_eq!(
        v["toolboxProxyUrl"],
        format!("http://{}/toolbox", env.backend.addr())
    );
    for key in [
        "organizationId",
        "user",
        "labels",
        "networkBlockAll",
        "gpu",
        "disk",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }

    // by id and by name
    let (s, got) = env
        .json(Method::GET, &env.api(&format!("/sandbox/{id}")), None)
        .await;
    assert_eq!((s, got["id"].as_str()), (200, Some(id.as_str())));
    let (s, got) = env.json(Method::GET, &env.api("/sandbox/life"), None).await;
    assert_eq!((s, got["id"].as_str()), (200, Some(id.as_str())));

    // settings the SDK can change
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{id}/autostop/45")),
            None,
        )
        .await;
    assert_eq!((s, v["autoStopInterval"].as_f64()), (200, Some(45.0)));
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{id}/autodelete/-1")),
            None,
        )
        .await;
    assert_eq!((s, v["autoDeleteInterval"].as_f64()), (200, Some(-1.0)));
    let (s, _) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{id}/autoarchive/x")),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{id}/resize")),
            Some(json!({"cpu": 8, "memory": 32})),
        )
        .await;
    assert_eq!(
        (s, v["cpu"].as_f64(), v["memory"].as_f64()),
        (200, Some(8.0), Some(32.0))
    );
    // A started sandbox only grows cpu and memory; disk needs a stopped one; nothing shrinks
    // while started; an empty resize is refused.
    for body in [
        json!({"disk": 20}),
        json!({"cpu": 1}),
        json!({}),
        json!({"cpu": 0}),
    ] {
        let (s, _) = env
            .json(
                Method::POST,
                &env.api(&format!("/sandbox/{id}/resize")),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, 400, "{body}");
    }
    let (s, v) = env
        .json(
            Method::PUT,
            &env.api(&format!("/sandbox/{id}/labels")),
            Some(json!({"labels": {"project": "p1", "x": "y"}})),
        )
        .await;
    assert_eq!((s, v["labels"]["x"].as_str()), (200, Some("y")));

    // archive needs stopped
    let (s, _) = env.lifecycle(&id, "archive").await;
    assert_eq!(s, 400);
    let (s, v) = env.lifecycle(&id, "stop?force=false").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("stopped")));
    // toolbox refuses while stopped
    let (s, _) = env.exec(&id, json!({"command": "true"})).await;
    assert_eq!(s, 409);
    let (s, v) = env.lifecycle(&id, "start").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("started")));
    let (s, v) = env.lifecycle(&id, "stop").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("stopped")));
    let (s, v) = env.lifecycle(&id, "archive").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("archived")));

    // a file written before the restart survives it, and so does the record
    std::fs::write(env.root(&id).join("home/daytona/keep.txt"), "kept").unwrap();
    let home = env.home.path().to_path_buf();
    env.backend.shutdown().await;
    let again = LocalBackend::start(LocalConfig {
        home: Some(home),
        api_key: Some("test-key".into()),
        bind: None,
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let got: serde_json::Value = http
        .get(format!("{}/sandbox/{id}", again.api_url()))
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["state"], "archived");
    assert_eq!(got["labels"]["project"], "p1");
    assert_eq!(
        got["toolboxProxyUrl"],
        format!("http://{}/toolbox", again.addr())
    );
    let res = http
        .post(format!("{}/sandbox/{id}/start", again.api_url()))
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = http
        .post(format!(
            "http://{}/toolbox/{id}/process/execute",
            again.addr()
        ))
        .bearer_auth("test-key")
        .json(&json!({"command": "cat keep.txt"}))
        .send()
        .await
        .unwrap();
    let out: serde_json::Value = res.json().await.unwrap();
    assert_eq!(out["result"], "kept");

    // delete removes the folder; the id is then unknown
    let res = http
        .delete(format!("{}/sandbox/{id}", again.api_url()))
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(!again.home().join("sandboxes").join(&id).exists());
    let res = http
        .get(format!("{}/sandbox/{id}", again.api_url()))
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    again.shutdown().await;
}

#[tokio::test]
async fn list_pages_with_cursor_and_filters_by_labels_and_states() {
    let env = common::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let v = env
            .create(
                json!({"labels": {"group": if i % 2 == 0 { "even" } else { "odd" }}, "env": {}}),
            )
            .await;
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // page through everything two at a time
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = env.api("/sandbox?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (s, page) = env.json(Method::GET, &url, None).await;
        assert_eq!(s, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(sorted_seen, sorted_ids, "every sandbox exactly once");

    let labels = url_encode(r#"{"group":"even"}"#);
    let (_, page) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox?labels={labels}")),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    env.lifecycle(&ids[0], "stop").await;
    let (_, page) = env
        .json(
            Method::GET,
            &env.api("/sandbox?states=stopped&states=archived"),
            None,
        )
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"].as_str(), Some(ids[0].as_str()));

    let (s, _) = env
        .json(Method::GET, &env.api("/sandbox?limit=500"), None)
        .await;
    assert_eq!(s, 400);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_in_both_shapes() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let http = reqwest::Client::new();
    for auth in [None, Some("wrong")] {
        let mut r = http.get(env.api("/sandbox"));
        if let Some(k) = auth {
            r = r.bearer_auth(k);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["statusCode"], 401);
        assert_eq!(v["error"], "Unauthorized");
        assert!(v["path"].as_str().unwrap().starts_with("/api/sandbox"));
        assert!(!v.to_string().contains("test-key"));

        let mut r = http.get(env.tb(&id, "/work-dir"));
        if let Some(k) = auth {
            r = r.bearer_auth(k);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["code"], "UNAUTHORIZED");
        assert_eq!(v["source"], "DAYTONA_DAEMON");
        assert_eq!(v["path"], "/work-dir");
    }
    // the preview token opens the toolbox, as the Daytona proxy allows
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/3000/preview-url")),
            None,
        )
        .await;
    let token = link["token"].as_str().unwrap();
    assert_eq!(link["sandboxId"].as_str(), Some(id.as_str()));
    assert!(link["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    // A preview token opens the preview only, never the toolbox (issue 14).
    let res = http
        .get(env.tb(&id, "/work-dir"))
        .header("X-Daytona-Preview-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_json_is_400() {
    let env = common::start().await;
    for (m, p) in [
        (Method::GET, "/sandbox/nope"),
        (Method::POST, "/sandbox/nope/start"),
        (Method::POST, "/sandbox/nope/stop"),
        (Method::POST, "/sandbox/nope/archive"),
        (Method::DELETE, "/sandbox/nope"),
        (Method::GET, "/sandbox/nope/toolbox-proxy-url"),
        (Method::GET, "/sandbox/nope/ports/3000/preview-url"),
    ] {
        let (s, v) = env.json(m, &env.api(p), None).await;
        assert_eq!(s, 404, "{p}");
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["error"], "Not Found");
        assert!(v["message"].as_str().unwrap().contains("nope"));
    }
    let (s, v) = env.exec("nope", json!({"command": "true"})).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("NOT_FOUND")));

    let res = env
        .req(Method::POST, &env.api("/sandbox"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["statusCode"], 400);
    assert_eq!(v["error"], "Bad Request");

    let id = env.sandbox().await;
    let res = env
        .req(Method::POST, &env.tb(&id, "/process/execute"))
        .header("content-type", "application/json")
        .body("[1,")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["code"], "BAD_REQUEST");
    assert_eq!(v["method"], "POST");

    let (s, _) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/0/preview-url")),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"snapshot": "x", "cpu": 2, "env": {}})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn debug_output_holds_no_key() {
    let config = LocalConfig {
        home: None,
        api_key: Some("super-secret-key".into()),
        bind: None,
        stop_sandboxes_on_exit: true,
        ..Default::default()
    };
    assert!(!format!("{config:?}").contains("super-secret-key"));
    let env = common::start().await;
    assert!(!format!("{:?}", env.backend).contains("test-key"));
}

#[tokio::test]
async fn a_preview_token_opens_no_toolbox_or_api_route() {
    let env = common::start().await;
    let a = env.sandbox().await;
    let b = env.sandbox().await;
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{a}/ports/3000/preview-url")),
            None,
        )
        .await;
    let token = link["token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let res = http
        .get(env.tb(&b, "/work-dir"))
        .header("X-Daytona-Preview-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = http
        .get(format!(
            "{}?DAYTONA_SANDBOX_AUTH_KEY={token}",
            env.tb(&a, "/work-dir")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        401,
        "not even its own sandbox's toolbox"
    );
    // and never the control plane
    let res = http
        .get(env.api("/sandbox"))
        .header("X-Daytona-Preview-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

/// Waits (bounded: 60 s, for a loaded machine) until `dir` holds no entry.
async fn emptied(dir: &std::path::Path) -> bool {
    for _ in 0..3000 {
        if std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none()) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_deleted_sandboxs_folder_is_reused_empty_or_removed() {
    use std::os::unix::fs::MetadataExt;
    let env = common::start().await;
    let trash = env.home.path().join("trash");

    // A sandbox that only got files: its folder comes back as a spare, emptied.
    let a = env.sandbox().await;
    let (s, _) = common::upload(
        &env,
        &a,
        &[("workspace/secret.txt", b"sandbox a's secret".to_vec())],
    )
    .await;
    assert_eq!(s, 200);
    // Its container is up (create answers while it may still be starting): the delete below
    // stops a running sandbox, as a user's would.
    let (s, v) = env.exec(&a, json!({"command": "true"})).await;
    assert_eq!(s, 200, "{v}");
    let ino = std::fs::metadata(env.root(&a)).unwrap().ino();
    let (s, _) = env
        .json(Method::DELETE, &env.api(&format!("/sandbox/{a}")), None)
        .await;
    assert_eq!(s, 200);
    assert!(emptied(&trash).await, "trash emptied");
    let mut reused = None;
    for _ in 0..40 {
        let id = env.sandbox().await;
        let root = env.root(&id);
        assert!(!root.join("home/daytona/workspace/secret.txt").exists());
        assert!(root.join("home/daytona/workspace").is_dir() && root.join("tmp").is_dir());
        if std::fs::metadata(&root).unwrap().ino() == ino {
            reused = Some(id);
        }
    }
    let reused = reused.expect("the deleted sandbox's folder was handed to a new sandbox");
    let (s, v) = env
        .exec(
            &reused,
            json!({"command": "ls -A /home/daytona/workspace /tmp"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(!v["result"].as_str().unwrap().contains("secret"), "{v}");

    // A sandbox that ran a command: deleted, then its folder is reused or removed, and no
    // later sandbox sees what it wrote.
    let b = env.sandbox().await;
    let (s, _) = env
        .exec(&b, json!({"command": "echo b > /tmp/b-was-here"}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .json(Method::DELETE, &env.api(&format!("/sandbox/{b}")), None)
        .await;
    assert_eq!(s, 200);
    assert!(emptied(&trash).await, "trash emptied");
    for _ in 0..40 {
        let id = env.sandbox().await;
        assert!(!env.root(&id).join("tmp/b-was-here").exists());
    }
}

/// A stop that comes while the sandbox's container is still starting (right after create)
/// waits for that start, then stops what it started: once it found nothing to stop yet,
/// killed the cgroup under the init being started, and the start then recorded that dead
/// init; after the next `start`, every command failed with "connection refused" (the init's
/// control socket had no listener). Seen once in a loaded `npm test` (the official SDK's
/// resize test: create, resize, stop at once). Repeated: the window is a few milliseconds.
#[tokio::test]
async fn a_stop_during_the_start_leaves_a_sandbox_that_starts_again() {
    let env = common::start().await;
    for _ in 0..20 {
        let id = env.sandbox().await;
        let (s, v) = env.lifecycle(&id, "stop").await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = env.lifecycle(&id, "start").await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = env.exec(&id, json!({"command": "echo up"})).await;
        assert_eq!((s, v["result"].as_str()), (200, Some("up\n")), "{v}");
        let (s, _) = env
            .json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
            .await;
        assert_eq!(s, 200);
    }
}

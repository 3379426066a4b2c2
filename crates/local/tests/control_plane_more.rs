//! The control-plane operations beyond the lifecycle: snapshots (from an image name, from a
//! sandbox, built from a Dockerfile), volumes, fork, pause and resume, network block-all,
//! the sandboxes' timers, and "not supported" answers.

use crate::common;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn sh(env: &common::Env, id: &str, command: &str) -> (i64, String) {
    let (s, v) = env
        .exec(id, json!({"command": command, "timeout": 120}))
        .await;
    assert_eq!(s, 200, "{v}");
    (
        v["exitCode"].as_i64().unwrap(),
        v["result"].as_str().unwrap_or("").to_string(),
    )
}

async fn state(env: &common::Env, id: &str) -> (u16, Value) {
    env.json(Method::GET, &env.api(&format!("/sandbox/{id}")), None)
        .await
}

/// Waits (bounded) until the snapshot leaves its building states.
async fn settled(env: &common::Env, name: &str) -> Value {
    for _ in 0..1200 {
        let (_, v) = env
            .json(Method::GET, &env.api(&format!("/snapshots/{name}")), None)
            .await;
        if !["building", "pending", "snapshotting"].contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("snapshot {name} did not settle");
}

#[tokio::test]
async fn snapshots_from_an_image_a_sandbox_and_a_dockerfile() {
    let env = common::start().await;
    // An unknown snapshot is a 404, never a silent success.
    let (s, v) = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"snapshot": "nope"})),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    // From an image name: active at once.
    let (s, v) = env
        .json(
            Method::POST,
            &env.api("/snapshots"),
            Some(json!({"name": "node22", "imageName": "node:22-bookworm"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("active")), "{v}");
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/snapshots"),
            Some(json!({"name": "node22", "imageName": "x"})),
        )
        .await;
    assert_eq!(s, 409);
    let v = env.create(json!({"snapshot": "node22"})).await;
    assert_eq!(v["snapshot"], "node22");

    // From a sandbox: a new sandbox made from it has its files.
    let a = env.sandbox().await;
    sh(&env, &a, "mkdir -p app && echo kept > app/f.txt").await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{a}/snapshot")),
            Some(json!({"name": "from-a"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let snap = settled(&env, "from-a").await;
    assert_eq!(snap["state"], "active", "{snap}");
    assert_eq!(snap["sourceSandboxId"], a.as_str());
    let b = env.create(json!({"snapshot": "from-a"})).await;
    let b = b["id"].as_str().unwrap();
    assert_eq!(
        sh(&env, b, "cat app/f.txt; stat -c %U app/f.txt").await.1,
        "kept\ndaytona\n"
    );

    // Built from a Dockerfile: RUN, ENV, WORKDIR over the machine's toolchain, logged.
    let dockerfile = "FROM python:3.12-slim\nENV GREETING=hello\nWORKDIR /home/daytona/site\nRUN echo \"$GREETING built\" > made.txt && python3 -c 'print(6*7)'\n";
    let (s, v) = env
        .json(
            Method::POST,
            &env.api("/snapshots"),
            Some(json!({"name": "built", "buildInfo": {"dockerfileContent": dockerfile}})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("building")), "{v}");
    let snap = settled(&env, "built").await;
    assert_eq!(snap["state"], "active", "{snap}");
    let (_, url) = env
        .json(
            Method::GET,
            &env.api("/snapshots/built/build-logs-url"),
            None,
        )
        .await;
    let logs = env
        .req(Method::GET, url["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        logs.contains("42") && logs.contains("Snapshot built"),
        "{logs}"
    );
    let c = env.create(json!({"snapshot": "built"})).await;
    let c = c["id"].as_str().unwrap();
    assert_eq!(
        sh(&env, c, "cat site/made.txt; echo $GREETING").await.1,
        "hello built\nhello\n"
    );
    // A COPY of a file no uploaded context has: the build fails and says which.
    let (_, _) = env
        .json(
            Method::POST,
            &env.api("/snapshots"),
            Some(json!({"name": "copying", "buildInfo": {"dockerfileContent": "FROM x\nCOPY missing.txt /x\n"}})),
        )
        .await;
    let snap = settled(&env, "copying").await;
    assert_eq!(snap["state"], "build_failed");
    assert!(snap["errorReason"]
        .as_str()
        .unwrap()
        .contains("COPY missing.txt"));
    // A context the request names but nobody uploaded: refused before anything runs.
    let (_, _) = env
        .json(
            Method::POST,
            &env.api("/snapshots"),
            Some(json!({"name": "no-context", "buildInfo": {"dockerfileContent": "FROM x\nCOPY a /a\n", "contextHashes": ["0123456789abcdef0123456789abcdef"]}})),
        )
        .await;
    let snap = settled(&env, "no-context").await;
    assert_eq!(snap["state"], "build_failed");
    assert!(
        snap["errorReason"]
            .as_str()
            .unwrap()
            .contains("0123456789abcdef0123456789abcdef was not uploaded"),
        "{snap}"
    );
    // Listed, paginated; deactivated ones cannot be used; deleted ones are gone.
    let (_, list) = env
        .json(Method::GET, &env.api("/snapshots?limit=2&page=1"), None)
        .await;
    assert_eq!(
        (
            list["total"].as_u64(),
            list["items"].as_array().unwrap().len()
        ),
        (Some(5), 2)
    );
    let (s, _) = env
        .json(Method::POST, &env.api("/snapshots/node22/deactivate"), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"snapshot": "node22"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(Method::DELETE, &env.api("/snapshots/node22"), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .json(Method::GET, &env.api("/snapshots/node22"), None)
        .await;
    assert_eq!(s, 404);
    // The build's own sandbox is not the caller's.
    let (_, all) = env.json(Method::GET, &env.api("/sandbox"), None).await;
    assert!(!all.to_string().contains("snapshot-build"));
}

#[tokio::test]
async fn volumes_are_shared_between_sandboxes() {
    let env = common::start().await;
    let (s, vol) = env
        .json(
            Method::POST,
            &env.api("/volumes"),
            Some(json!({"name": "data"})),
        )
        .await;
    assert_eq!((s, vol["state"].as_str()), (200, Some("ready")), "{vol}");
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/volumes"),
            Some(json!({"name": "data"})),
        )
        .await;
    assert_eq!(s, 409);
    let (_, by_name) = env
        .json(Method::GET, &env.api("/volumes/by-name/data"), None)
        .await;
    assert_eq!(by_name["id"], vol["id"]);
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"volumes": [{"volumeId": "missing", "mountPath": "/data"}]})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"volumes": [{"volumeId": "data", "mountPath": "/usr/x"}]})),
        )
        .await;
    assert_eq!(s, 400, "not over the machine's toolchain");
    let a = env
        .create(json!({"volumes": [{"volumeId": "data", "mountPath": "/mnt/data"}]}))
        .await;
    let a = a["id"].as_str().unwrap().to_string();
    let b = env
        .create(json!({"volumes": [{"volumeId": vol["id"], "mountPath": "/home/daytona/shared", "subpath": "sub"}]}))
        .await;
    let b = b["id"].as_str().unwrap().to_string();
    assert_eq!(
        sh(
            &env,
            &a,
            "mkdir -p /mnt/data/sub && echo from-a > /mnt/data/sub/x && echo ok"
        )
        .await
        .1,
        "ok\n"
    );
    assert_eq!(sh(&env, &b, "cat shared/x").await.1, "from-a\n");
    // A link a sandbox puts in a shared volume never carries another sandbox's mount out of
    // it: a subpath through `link -> /etc` is refused, the machine's /etc is not mounted.
    assert_eq!(
        sh(
            &env,
            &a,
            "ln -s /etc /mnt/data/link && mkdir -p /mnt/data/real && echo ok"
        )
        .await
        .1,
        "ok\n"
    );
    let evil = env
        .create(json!({"volumes": [{"volumeId": vol["id"], "mountPath": "/home/daytona/etc", "subpath": "link"}]}))
        .await;
    let evil = evil["id"].as_str().unwrap().to_string();
    // Its start fails: the sandbox ends in a recoverable `error` naming the link as the
    // sandbox sees it (no host path), and its toolbox refuses.
    let mut shown = Value::Null;
    for _ in 0..600 {
        shown = state(&env, &evil).await.1;
        if shown["state"] == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown["state"], "error", "{shown}");
    assert_eq!(shown["recoverable"], true);
    assert_eq!(
        shown["errorReason"],
        "cannot mount a volume at /home/daytona/etc: link of the volume is a symbolic link"
    );
    let (s, v) = env
        .exec(
            &evil,
            json!({"command": "cat /home/daytona/etc/hostname /home/daytona/etc/passwd"}),
        )
        .await;
    assert_ne!(
        s, 200,
        "the sandbox started with a mount through a link: {v}"
    );
    env.json(Method::DELETE, &env.api(&format!("/sandbox/{evil}")), None)
        .await;
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.api(&format!("/volumes/{}", vol["id"].as_str().unwrap())),
            None,
        )
        .await;
    assert_eq!(s, 409, "in use");
    for id in [&a, &b] {
        env.json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
            .await;
    }
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.api(&format!("/volumes/{}", vol["id"].as_str().unwrap())),
            None,
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn fork_pause_resume_and_network_block() {
    let env = common::start().await;
    let a = env.sandbox().await;
    sh(&env, &a, "echo original > f.txt").await;
    let (s, f) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{a}/fork")),
            Some(json!({"name": "the-fork"})),
        )
        .await;
    assert_eq!((s, f["state"].as_str()), (200, Some("started")), "{f}");
    let f = f["id"].as_str().unwrap().to_string();
    assert_eq!(
        sh(&env, &f, "cat f.txt; echo changed > f.txt").await.1,
        "original\n"
    );
    assert_eq!(
        sh(&env, &a, "cat f.txt").await.1,
        "original\n",
        "a fork is a copy"
    );

    // Pause freezes every process; resume continues them (the same process).
    sh(&env, &a, "nohup sleep 600 >/dev/null 2>&1 & echo $! > pid").await;
    let (s, v) = env.lifecycle(&a, "pause").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("paused")), "{v}");
    let (s, _) = env.exec(&a, json!({"command": "true"})).await;
    assert_eq!(s, 409, "no toolbox while paused");
    let (s, v) = env.lifecycle(&a, "start").await;
    assert_eq!((s, v["state"].as_str()), (200, Some("started")), "{v}");
    assert_eq!(
        sh(&env, &a, "kill -0 $(cat pid) && echo alive").await.1,
        "alive\n"
    );

    // Network block-all: no internet; unblocked again on a running sandbox.
    let probe = "getent hosts registry.npmjs.org >/dev/null && curl -s -m 20 -o /dev/null -w %{http_code} https://registry.npmjs.org/ || echo none";
    let blocked = env.create(json!({"networkBlockAll": true})).await;
    let blocked = blocked["id"].as_str().unwrap().to_string();
    assert_eq!(sh(&env, &blocked, probe).await.1, "none\n");
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{blocked}/network-settings")),
            Some(json!({"networkBlockAll": false})),
        )
        .await;
    assert_eq!(
        (s, v["networkBlockAll"].as_bool()),
        (200, Some(false)),
        "{v}"
    );
    let mut out = String::new();
    for _ in 0..100 {
        out = sh(&env, &blocked, probe).await.1;
        if out == "200" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(out, "200", "the network is attached again");

    // networkAllowList: only the listed addresses are reachable (the resolver still answers),
    // changed and lifted on the running sandbox, and in place before a new one runs anything;
    // the sandbox's user cannot route around it.
    let code = "curl -s -m 20 -o /dev/null -w %{http_code} https://registry.npmjs.org/; true";
    let registry = sh(
        &env,
        &blocked,
        "getent hosts registry.npmjs.org | cut -d' ' -f1",
    )
    .await
    .1
    .trim()
    .to_string();
    assert!(!registry.is_empty());
    let set = |id: String, list: String| {
        let env = &env;
        async move {
            env.json(
                Method::POST,
                &env.api(&format!("/sandbox/{id}/network-settings")),
                Some(json!({ "networkAllowList": list })),
            )
            .await
        }
    };
    let (s, v) = set(blocked.clone(), "198.51.100.7/24".into()).await;
    assert_eq!(
        (s, v["networkAllowList"].as_str()),
        (200, Some("198.51.100.0/24")),
        "{v}"
    );
    assert_eq!(sh(&env, &blocked, code).await.1, "000");
    let escape = "ip route replace default via 10.0.2.2 dev tap0 2>/dev/null; ip route add 0.0.0.0/1 via 10.0.2.2 2>/dev/null; curl -s -m 20 -o /dev/null -w %{http_code} https://registry.npmjs.org/; true";
    assert_eq!(
        sh(&env, &blocked, escape).await.1,
        "000",
        "the sandbox changed its routes"
    );
    let (s, v) = set(blocked.clone(), format!("198.51.100.0/24,{registry}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sh(&env, &blocked, code).await.1, "200");
    let (s, v) = set(blocked.clone(), String::new()).await;
    assert_eq!((s, v.get("networkAllowList")), (200, None), "lifted: {v}");
    assert_eq!(sh(&env, &blocked, code).await.1, "200");
    let (s, v) = set(blocked.clone(), "example.com".into()).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("example.com"),
        "{v}"
    );
    let listed = env
        .create(json!({"networkAllowList": "198.51.100.0/24"}))
        .await;
    assert_eq!(listed["networkAllowList"], "198.51.100.0/24");
    let listed = listed["id"].as_str().unwrap().to_string();
    assert_eq!(sh(&env, &listed, code).await.1, "000");
    // Blocked and unblocked again, the list goes back on with the network.
    for block in [true, false] {
        let (s, v) = env
            .json(
                Method::POST,
                &env.api(&format!("/sandbox/{listed}/network-settings")),
                Some(json!({"networkBlockAll": block})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(sh(&env, &listed, code).await.1, "000");

    // Not supported here: a 400 with a message, never a 200.
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/sandbox/{a}/ssh-access")),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("not supported"));
    let (s, _) = env.lifecycle(&a, "recover").await;
    assert_eq!(s, 400, "only an errored sandbox recovers");
}

#[tokio::test]
async fn the_sandboxes_timers_act() {
    // A "minute" of 200 ms, so the timers can be seen acting.
    let env = common::start_with(|c| c.lifecycle_minute = Duration::from_millis(200)).await;
    let v = env
        .create(json!({"autoStopInterval": 1, "autoDeleteInterval": 0}))
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for _ in 0..300 {
        let (s, v) = state(&env, &id).await;
        let now = if s == 404 {
            "gone".to_string()
        } else {
            v["state"].as_str().unwrap_or("").to_string()
        };
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == "gone" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.first().map(String::as_str), Some("started"));
    assert_eq!(seen.last().map(String::as_str), Some("gone"), "{seen:?}");
    // An interval of 0 for auto-archive is the maximum, as the API makes it.
    let v = env.create(json!({"autoArchiveInterval": 0})).await;
    assert_eq!(v["autoArchiveInterval"], 43200);
}

//! `process/execute` and `process/code-run` over real HTTP with real processes.

use crate::common;

use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn exec_uses_cwd_env_and_combines_streams() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .exec(&id, json!({"command": "echo $SBX_VAR $EXTRA; echo err 1>&2; exit 3", "envs": {"EXTRA": "1"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exitCode"], 3);
    assert_eq!(v["result"], "from-sandbox 1\nerr\n");

    // relative cwd resolves against /home/daytona, absolute stays inside the sandbox: the
    // command sees the sandbox's paths, the same files as the backend's folder holds
    let (_, v) = env
        .exec(
            &id,
            json!({"command": "pwd; touch here", "cwd": "workspace"}),
        )
        .await;
    assert_eq!(v["result"], "/home/daytona/workspace\n");
    assert!(env.root(&id).join("home/daytona/workspace/here").is_file());
    let (_, v) = env
        .exec(&id, json!({"command": "pwd", "cwd": "/../../tmp"}))
        .await;
    assert_eq!(v["result"], "/tmp\n");
    let (_, v) = env
        .exec(&id, json!({"command": "echo $HOME; whoami; id -u"}))
        .await;
    assert_eq!(v["result"], "/home/daytona\ndaytona\n1000\n");
    // bash, as the daemon runs it
    let (_, v) = env
        .exec(
            &id,
            json!({"command": "set -o pipefail; [[ 1 == 1 ]] && echo {1..3}"}),
        )
        .await;
    assert_eq!(v["result"], "1 2 3\n");
    // the backend's own secrets do not leak into commands
    let (_, v) = env.exec(&id, json!({"command": "env"})).await;
    assert!(!v["result"].as_str().unwrap().contains("test-key"));

    // a missing cwd is never created: exit code -1 and the chdir error, as the daemon does;
    // a file as cwd fails the same way
    let (s, v) = env
        .exec(&id, json!({"command": "pwd", "cwd": "not/made"}))
        .await;
    assert_eq!((s, v["exitCode"].as_i64()), (200, Some(-1)), "{v}");
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("chdir /home/daytona/not/made"),
        "{v}"
    );
    assert!(!env.root(&id).join("home/daytona/not").exists());
    std::fs::write(env.root(&id).join("home/daytona/afile"), "x").unwrap();
    let (s, v) = env
        .exec(&id, json!({"command": "true", "cwd": "afile"}))
        .await;
    assert_eq!((s, v["exitCode"].as_i64()), (200, Some(-1)));
}

#[tokio::test]
async fn timeout_kills_the_group_and_answers_408() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let marker = format!("FORGE_TEST_MARKER=t{}", std::process::id());
    // The sleeps outlast any wait of this test: an answer that waited for them never comes
    // (the bounded wait fails), and processes left alive are seen below.
    let (s, v) = tokio::time::timeout(
        Duration::from_mins(5),
        env.exec(
            &id,
            json!({"command": "sleep 600 & sleep 600; echo never", "timeout": 1,
                   "envs": {"FORGE_TEST_MARKER": marker.trim_start_matches("FORGE_TEST_MARKER=")}}),
        ),
    )
    .await
    .expect("the timeout answers before the command's processes end by themselves");
    assert_eq!(s, 408, "{v}");
    assert_eq!(v["code"], "PROCESS_EXECUTION_TIMEOUT");
    // nothing carrying the marker is left (bounded wait for the kernel to reap)
    assert!(common::procs_become(&marker, false).await);
}

#[tokio::test]
async fn stop_kills_every_process_of_the_sandbox() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let marker = format!("FORGE_STOP_MARKER=s{}", std::process::id());
    // a background process that leaves its group with setsid
    let (s, _) = env
        .exec(
            &id,
            json!({"command": "setsid sleep 60 > /dev/null 2>&1 < /dev/null & (sleep 60 > /dev/null 2>&1 &) ; echo ok",
                   "envs": {"FORGE_STOP_MARKER": marker.trim_start_matches("FORGE_STOP_MARKER=")}}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(common::procs_become(&marker, true).await);
    let (s, _) = env.lifecycle(&id, "stop").await;
    assert_eq!(s, 200);
    assert!(common::procs_with_env(&marker).is_empty());
}

#[tokio::test]
async fn code_run_runs_javascript_on_node() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/code-run"),
            Some(json!({"code": "console.log(process.argv.slice(2).join(','), process.env.X)",
                        "language": "javascript", "argv": ["a", "b"], "envs": {"X": "y"}, "timeout": 30})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exitCode"], 0);
    assert_eq!(v["result"], "a,b y\n");
}

#[tokio::test]
async fn work_dir_and_port_in_use() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (_, v) = env
        .json(Method::GET, &env.tb(&id, "/user-home-dir"), None)
        .await;
    assert_eq!(v["dir"], "/home/daytona");
    // A listener of this machine is not the sandbox's.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let in_use = |port: u16| {
        let env = &env;
        let id = id.clone();
        async move {
            let (_, v) = env
                .json(
                    Method::GET,
                    &env.tb(&id, &format!("/port/{port}/in-use")),
                    None,
                )
                .await;
            v["isInUse"] == true
        }
    };
    assert!(!in_use(host_port).await);
    // One of the sandbox's own, on the same port number as the machine's.
    let (s, v) = env
        .exec(
            &id,
            json!({"command": format!("nohup node -e \"require('net').createServer().listen({host_port}, '127.0.0.1')\" >/dev/null 2>&1 &")}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut listening = false;
    for _ in 0..2400 {
        if in_use(host_port).await {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(listening, "the sandbox's listener is reported");
    let (_, v) = env.json(Method::GET, &env.tb(&id, "/port"), None).await;
    assert_eq!(v["ports"], json!([host_port]));
    drop(host);
}

#[tokio::test]
async fn dropping_the_backend_kills_its_processes() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let marker = format!("FORGE_DROP_MARKER=d{}", std::process::id());
    let (s, _) = env
        .exec(
            &id,
            json!({"command": "sleep 60 > /dev/null 2>&1 & echo started",
                   "envs": {"FORGE_DROP_MARKER": marker.trim_start_matches("FORGE_DROP_MARKER=")}}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(common::procs_become(&marker, true).await);
    drop(env);
    assert!(common::procs_become(&marker, false).await);
}

#[tokio::test]
async fn code_run_runs_typescript() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/code-run"),
            Some(json!({"code": "const n: number = 41; console.log(n + 1)", "language": "typescript", "timeout": 120})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exitCode"], 0, "{v}");
    assert_eq!(v["result"], "42\n");
}

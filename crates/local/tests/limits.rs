//! Limits, host checks and crash safety.

use crate::common;

use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn sandbox_and_command_limits_answer_4xx() {
    let env = common::start_with(|c| {
        c.max_sandboxes = 2;
        c.max_commands = 1;
    })
    .await;
    let id = env.sandbox().await;
    env.sandbox().await;
    let (s, v) = env
        .json(Method::POST, &env.api("/sandbox"), Some(json!({"env": {}})))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("Maximum allowed: 2"));

    let slow = {
        let http = env.http.clone();
        let url = env.tb(&id, "/process/execute");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth("test-key")
                .json(&json!({"command": "sleep 2"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    // wait until the slow command holds the only slot
    let marker = format!("DAYTONA_SANDBOX_ID={id}");
    assert!(common::procs_become(&marker, true).await);
    let (s, v) = env.exec(&id, json!({"command": "true"})).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(slow.await.unwrap().unwrap(), 200);
    let (s, _) = env.exec(&id, json!({"command": "true"})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn foreign_host_names_are_refused() {
    let env = common::start().await;
    let id = env.sandbox().await;
    for url in [env.api("/sandbox"), env.tb(&id, "/work-dir")] {
        let res = env
            .http
            .get(&url)
            .bearer_auth("test-key")
            .header("Host", "attacker.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 403, "{url}");
        let res = env
            .http
            .get(&url)
            .bearer_auth("test-key")
            .header("Host", format!("localhost:{}", env.backend.addr().port()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{url}");
    }
}

#[tokio::test]
async fn a_cut_upload_leaves_no_file() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let body_start = "--XBOUND\r\nContent-Disposition: form-data; name=\"files[0].path\"\r\n\r\n/home/daytona/cut.bin\r\n--XBOUND\r\nContent-Disposition: form-data; name=\"files[0].file\"; filename=\"cut.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    let head = format!(
        "POST /toolbox/{id}/files/bulk-upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-key\r\nContent-Type: multipart/form-data; boundary=XBOUND\r\nContent-Length: 10000000\r\n\r\n"
    );
    let mut tcp = tokio::net::TcpStream::connect(env.backend.addr())
        .await
        .unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body_start.as_bytes()).await.unwrap();
    tcp.write_all(&vec![7u8; 300_000]).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(tcp); // the client goes away mid-file
    let home = env.root(&id).join("home/daytona");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let names: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "workspace")
            .collect();
        if names.is_empty() {
            break;
        }
        assert!(
            !names.iter().any(|n| n == "cut.bin"),
            "partial file presented: {names:?}"
        );
        assert!(
            Instant::now() < deadline,
            "temp file left behind: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // a complete upload over raw HTTP still works
    let full = format!("{body_start}hello\r\n--XBOUND--\r\n");
    let head = format!(
        "POST /toolbox/{id}/files/bulk-upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-key\r\nContent-Type: multipart/form-data; boundary=XBOUND\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        full.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(env.backend.addr())
        .await
        .unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(full.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(std::fs::read(home.join("cut.bin")).unwrap(), b"hello");
}

/// A sandbox's `memory` (GiB) is its cgroup's limit: a command that allocates 3 GiB in a
/// 1 GiB sandbox is killed by the kernel (exit 137), the backend lives on and the sandbox's
/// JSON reports the kill (`usage.oomKills`).
#[tokio::test]
async fn memory_is_limited_and_an_oom_kill_is_reported() {
    let env = common::start().await;
    assert!(
        !env.backend.isolation().limits.starts_with("none"),
        "cgroups are needed here: {:?}",
        env.backend.isolation()
    );
    let v = env.create(json!({"memory": 1, "cpu": 1})).await;
    let id = v["id"].as_str().unwrap();
    let (s, v) = env
        .exec(
            id,
            json!({"command": "node -e \"const a = []; for (let i = 0; i < 48; i++) a.push(Buffer.alloc(64 << 20, 1)); console.log('allocated 3 GiB')\"", "timeout": 120}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exitCode"], 137, "{v}");
    // Never printed (bash, reading the command from stdin as the daemon's does, reports the
    // killed command with its text: `bash: line 1: … Killed node -e "…"`).
    let result = v["result"].as_str().unwrap();
    assert!(!result.lines().any(|l| l == "allocated 3 GiB"), "{v}");
    assert!(result.contains("Killed"), "{v}");
    let (s, v) = env
        .json(Method::GET, &env.api(&format!("/sandbox/{id}")), None)
        .await;
    assert_eq!(s, 200);
    assert!(v["usage"]["oomKills"].as_u64().unwrap() >= 1, "{v}");
    let (s, v) = env.exec(id, json!({"command": "echo alive"})).await;
    assert_eq!((s, v["result"].as_str()), (200, Some("alive\n")));
}

/// The process limit (1024 per vCPU) stops a bounded fork loop.
#[tokio::test]
async fn processes_are_limited() {
    let env = common::start().await;
    let v = env.create(json!({"memory": 2, "cpu": 1})).await;
    let id = v["id"].as_str().unwrap();
    let script = "import os, time\nn = 0\nwhile n < 3000:\n    try:\n        pid = os.fork()\n    except OSError:\n        print('limited at', n)\n        break\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\nelse:\n    print('not limited', n)\n";
    std::fs::write(env.root(id).join("home/daytona/forks.py"), script).unwrap();
    let (s, v) = env
        .exec(id, json!({"command": "python3 forks.py", "timeout": 120}))
        .await;
    assert_eq!(s, 200, "{v}");
    let out = v["result"].as_str().unwrap();
    let n: u64 = out
        .trim()
        .strip_prefix("limited at ")
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!((900..=1024).contains(&n), "{out}");
    // Stopping the sandbox ends every one of them.
    let (s, _) = env.lifecycle(id, "stop").await;
    assert_eq!(s, 200);
    let marker = format!("DAYTONA_SANDBOX_ID={id}");
    assert!(common::procs_with_env(&marker).is_empty());
}

/// `cpu` is the cgroup's CPU quota: two busy processes in a 1-vCPU sandbox get at most about
/// one CPU between them (a ceiling: a busy machine only lowers it).
#[tokio::test]
async fn cpu_is_limited() {
    let env = common::start().await;
    let v = env.create(json!({"memory": 1, "cpu": 1})).await;
    let id = v["id"].as_str().unwrap();
    let url = env.api(&format!("/sandbox/{id}"));
    let usage = || async {
        let (_, v) = env.json(Method::GET, &url, None).await;
        v["usage"]["cpuSeconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("no cpuSeconds while the container runs: {v}"))
    };
    // Create answers `started` while the container may still be starting (a busy machine):
    // a command runs only in the running container, so its cgroup is there after it.
    let (s, v) = env.exec(id, json!({"command": "true"})).await;
    assert_eq!(s, 200, "{v}");
    let before = usage().await;
    let started = Instant::now();
    let (s, v) = env
        .exec(
            id,
            json!({"command": "timeout 3 sh -c 'while :; do :; done' & timeout 3 sh -c 'while :; do :; done' & wait", "timeout": 60}),
        )
        .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(s, 200, "{v}");
    let used = usage().await - before;
    assert!(used > 0.5, "the loops ran: {used} s");
    assert!(
        used <= wall * 1.25,
        "two busy processes used {used:.2} s of CPU in {wall:.2} s with 1 vCPU"
    );
}

/// `disk` (GiB) is measured (`usage.diskBytes`) and an upload past it is refused (413,
/// `DISK_LIMIT_EXCEEDED`) without leaving a file.
#[tokio::test]
async fn disk_is_measured_and_uploads_past_it_are_refused() {
    let env = common::start().await;
    let v = env.create(json!({"disk": 1})).await;
    let id = v["id"].as_str().unwrap();
    let (_, v) = env
        .exec(
            id,
            json!({"command": "fallocate -l 1000M big.bin && echo ok"}),
        )
        .await;
    assert_eq!(v["result"], "ok\n", "{v}");
    let (_, v) = env
        .json(Method::GET, &env.api(&format!("/sandbox/{id}")), None)
        .await;
    assert!(
        v["usage"]["diskBytes"].as_u64().unwrap() >= 1000 << 20,
        "{v}"
    );
    let (s, v) = common::upload(&env, id, &[("more.bin", vec![1u8; 48 << 20])]).await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("disk is full"), "{v}");
    assert!(!env.root(id).join("home/daytona/more.bin").exists());
    // Room again once the big file is gone (a delete through the file API is counted at once).
    let (s, _) = env
        .json(Method::DELETE, &env.tb(id, "/files?path=big.bin"), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = common::upload(&env, id, &[("more.bin", vec![1u8; 48 << 20])]).await;
    assert_eq!(s, 200, "{v}");
    assert!(env.root(id).join("home/daytona/more.bin").exists(), "{v}");
}

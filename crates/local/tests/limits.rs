//! Limits, host checks and crash safety.

mod common;

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
    let deadline = Instant::now() + Duration::from_secs(10);
    let marker = format!("DAYTONA_SANDBOX_ID={id}");
    while common::procs_with_env(&marker).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
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

//! Sessions over real HTTP and WebSocket: sync/async commands, kept state, stdin, live logs.

use crate::common;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn session(env: &common::Env, id: &str, sid: &str) {
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(id, "/process/session"),
            Some(json!({"sessionId": sid})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

async fn run(env: &common::Env, id: &str, sid: &str, body: Value) -> (u16, Value) {
    env.json(
        Method::POST,
        &env.tb(id, &format!("/process/session/{sid}/exec")),
        Some(body),
    )
    .await
}

async fn wait_exit(env: &common::Env, id: &str, sid: &str, cid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let (_, v) = env
            .json(
                Method::GET,
                &env.tb(id, &format!("/process/session/{sid}/command/{cid}")),
                None,
            )
            .await;
        if v.get("exitCode").is_some_and(|c| !c.is_null()) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each sync command's answer means its state is the session's: the very next command sees
/// it, every time. Once, the answer was sent when the exit code was seen, racing the task that
/// saves the state; a busy machine made the next command start from the state before (the
/// chained steps make the window many times wider than one step would).
#[tokio::test]
async fn the_next_command_always_sees_the_state_the_last_one_left() {
    let env = common::start().await;
    let id = env.sandbox().await;
    session(&env, &id, "chain").await;
    for i in 0..40 {
        let (s, v) = run(
            &env,
            &id,
            "chain",
            json!({"command": format!("[ \"${{N:-none}}\" = {prev} ] && export N={i}", prev = if i == 0 { "none".to_string() } else { (i - 1).to_string() })}),
        )
        .await;
        assert_eq!((s, &v["exitCode"]), (200, &json!(0)), "step {i}: {v}");
    }
    let (_, v) = run(&env, &id, "chain", json!({"command": "echo $N"})).await;
    assert_eq!(v["stdout"], "39\n", "{v}");
}

#[tokio::test]
async fn sync_and_async_commands_keep_session_state() {
    let env = common::start().await;
    let id = env.sandbox().await;
    session(&env, &id, "s1").await;
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/session"),
            Some(json!({"sessionId": "s1"})),
        )
        .await;
    assert_eq!(s, 409);

    let (s, v) = run(
        &env,
        &id,
        "s1",
        json!({"command": "echo out; echo err >&2; exit 4"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stdout"], "out\n");
    assert_eq!(v["stderr"], "err\n");
    assert_eq!(v["exitCode"], 4);
    assert!(v["output"].as_str().unwrap().contains("\u{1}\u{1}\u{1}out"));

    // Its answer is checked too: a load-dependent failure once showed only the next command's
    // output (state not kept), so the step that sets the state must say what it saw.
    let (s, v) = run(
        &env,
        &id,
        "s1",
        json!({"command": "mkdir -p sub && cd sub && export A=1 && B=2"}),
    )
    .await;
    assert_eq!((s, &v["exitCode"]), (200, &json!(0)), "{v}");
    let (_, v) = run(
        &env,
        &id,
        "s1",
        json!({"command": "echo $A$B $SBX_VAR; pwd"}),
    )
    .await;
    let out = v["stdout"].as_str().unwrap();
    assert!(out.starts_with("12 from-sandbox\n"), "{out}");
    assert!(out.trim_end().ends_with("/home/daytona/sub"), "{out}");

    let (s, v) = run(
        &env,
        &id,
        "s1",
        json!({"command": "sleep 1; echo later", "runAsync": true}),
    )
    .await;
    assert_eq!(s, 202);
    let cid = v["cmdId"].as_str().unwrap().to_string();
    let c = wait_exit(&env, &id, "s1", &cid).await;
    assert_eq!(c["exitCode"], 0);
    assert_eq!(c["command"], "sleep 1; echo later");
    let (_, logs) = env
        .json(
            Method::GET,
            &env.tb(&id, &format!("/process/session/s1/command/{cid}/logs")),
            None,
        )
        .await;
    assert_eq!(logs["stdout"], "later\n");
    assert_eq!(logs["stderr"], "");

    // old clients get plain text
    let res = env
        .http
        .get(env.tb(&id, &format!("/process/session/s1/command/{cid}/logs")))
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "later\n");

    let (_, v) = env
        .json(Method::GET, &env.tb(&id, "/process/session/s1"), None)
        .await;
    assert_eq!(v["sessionId"], "s1");
    assert_eq!(v["commands"].as_array().unwrap().len(), 4);
    let (_, v) = env
        .json(Method::GET, &env.tb(&id, "/process/session"), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);

    let (s, _) = env
        .json(Method::DELETE, &env.tb(&id, "/process/session/s1"), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/process/session/s1"), None)
        .await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test]
async fn input_reaches_the_command_and_delete_kills_what_is_left() {
    let env = common::start().await;
    let id = env.sandbox().await;
    session(&env, &id, "io").await;
    let (_, v) = run(
        &env,
        &id,
        "io",
        json!({"command": "read x; echo got $x", "runAsync": true}),
    )
    .await;
    let cid = v["cmdId"].as_str().unwrap().to_string();
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, &format!("/process/session/io/command/{cid}/input")),
            Some(json!({"data": "hello\n"})),
        )
        .await;
    assert_eq!(s, 204);
    wait_exit(&env, &id, "io", &cid).await;
    let (_, logs) = env
        .json(
            Method::GET,
            &env.tb(&id, &format!("/process/session/io/command/{cid}/logs")),
            None,
        )
        .await;
    // The input is echoed into the log (the daemon's echo), then the command's answer.
    assert_eq!(logs["stdout"], "hello\ngot hello\n");
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, &format!("/process/session/io/command/{cid}/input")),
            Some(json!({"data": "late\n"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (410, Some("COMMAND_ALREADY_COMPLETED"))
    );

    // background children and a long command, then delete the session
    run(
        &env,
        &id,
        "io",
        json!({"command": "sleep 60 & sleep 60", "runAsync": true}),
    )
    .await;
    let marker = format!("DAYTONA_SANDBOX_ID={id}");
    let deadline = Instant::now() + Duration::from_mins(1);
    while common::procs_with_env(&marker).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!common::procs_with_env(&marker).is_empty());
    let (s, _) = env
        .json(Method::DELETE, &env.tb(&id, "/process/session/io"), None)
        .await;
    assert_eq!(s, 204);
    assert!(common::procs_become(&marker, false).await);
}

fn demux(raw: &[u8]) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut cur: Option<bool> = None;
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(&[1, 1, 1]) {
            cur = Some(true);
            i += 3;
        } else if raw[i..].starts_with(&[2, 2, 2]) {
            cur = Some(false);
            i += 3;
        } else {
            match cur {
                Some(true) => out.push(raw[i]),
                Some(false) => err.push(raw[i]),
                None => {}
            }
            i += 1;
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn websocket_streams_every_line_once_in_order() {
    let env = common::start().await;
    let id = env.sandbox().await;
    session(&env, &id, "ws").await;
    let n = 5000;
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do echo \"out $i\"; echo \"err $i\" >&2; if [ $((i % 1000)) -eq 0 ]; then sleep 0.2; fi; i=$((i+1)); done"
    );
    let (s, v) = run(
        &env,
        &id,
        "ws",
        json!({"command": script, "runAsync": true}),
    )
    .await;
    assert_eq!(s, 202);
    let cid = v["cmdId"].as_str().unwrap().to_string();

    let url = format!(
        "ws://{}/toolbox/{id}/process/session/ws/command/{cid}/logs?follow=true",
        env.backend.addr()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    req.headers_mut()
        .insert("X-Daytona-SDK-Version", "0.218.0".parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .unwrap()
    .unwrap();
    let mut raw = Vec::new();
    let mut close_code = None;
    let deadline = Instant::now() + Duration::from_mins(1);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
        match msg.unwrap() {
            Message::Binary(b) => raw.extend_from_slice(&b),
            Message::Close(frame) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(close_code, Some(1000));
    let (out, err) = demux(&raw);
    let want_out: String = (0..n).map(|i| format!("out {i}\n")).collect();
    let want_err: String = (0..n).map(|i| format!("err {i}\n")).collect();
    assert!(out == want_out, "stdout lines differ");
    assert!(
        err == want_err,
        "stderr lines differ: {} vs {} bytes, first {:?}",
        err.len(),
        want_err.len(),
        err.lines().zip(want_err.lines()).find(|(a, b)| a != b)
    );
    let c = wait_exit(&env, &id, "ws", &cid).await;
    assert_eq!(c["exitCode"], 0);

    // a finished command without follow: everything, then close
    let url = format!(
        "ws://{}/toolbox/{id}/process/session/ws/command/{cid}/logs",
        env.backend.addr()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut raw2 = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_mins(1), ws.next()).await {
        match msg {
            Message::Binary(b) => raw2.extend_from_slice(&b),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(raw2, raw);

    // no key, no stream
    let url = format!(
        "ws://{}/toolbox/{id}/process/session/ws/command/{cid}/logs",
        env.backend.addr()
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

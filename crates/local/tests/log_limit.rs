//! The session log bound: kept by the command's monitor in the sandbox, which punches out
//! the oldest part of the log file.

use crate::common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn oldest_output_is_cut_and_the_answer_says_so() {
    let env = common::start_with(|c| c.session_log_limit = 8192).await;
    let id = env.sandbox().await;
    env.json(
        Method::POST,
        &env.tb(&id, "/process/session"),
        Some(json!({"sessionId": "big"})),
    )
    .await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/session/big/exec"),
            Some(
                json!({"command": "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    let cid = v["cmdId"].as_str().unwrap();
    let out = v["stdout"].as_str().unwrap();
    assert!(out.len() <= 8192);
    assert!(out.ends_with("line-2999\n"));
    assert!(!out.contains("line-0\n"));
    let res = env
        .req(
            Method::GET,
            &env.tb(&id, &format!("/process/session/big/command/{cid}/logs")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-forge-log-truncated"], "true");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["truncated"], true);
    // what is kept starts at a line boundary
    assert!(v["stdout"].as_str().unwrap().starts_with("line-"));
}

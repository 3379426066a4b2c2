//! The daemon's and the API's semantics that clients rely on: validation of execute and
//! code-run, session input as a line echoed into the log, list sort / order / filters, and
//! integers where the API has integers.

use crate::common;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn execute_and_code_run_validate_as_the_daemon() {
    let env = common::start().await;
    let id = env.sandbox().await;
    for (body, what) in [
        (json!({"command": "  "}), "command is required"),
        (
            json!({"command": "true", "envs": {"1BAD": "x"}}),
            "invalid environment variable name",
        ),
        (
            json!({"command": "true", "envs": {"A-B": "x"}}),
            "invalid environment variable name",
        ),
    ] {
        let (s, v) = env.exec(&id, body).await;
        assert_eq!(s, 400, "{v}");
        assert!(v["message"].as_str().unwrap().contains(what), "{v}");
    }
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/code-run"),
            Some(json!({"code": "print(1)", "language": ""})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("language is required"));
}

/// As the daemon: the shell reads the command from its stdin. A command larger than one
/// argument may be (128 KiB on Linux) runs, and a `read` in it reads the script's next line.
#[tokio::test]
async fn execute_gives_the_command_to_the_shell_on_stdin() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let big = "x".repeat(200 * 1024);
    let (s, v) = env
        .exec(&id, json!({"command": format!("v={big}; echo ${{#v}}")}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exitCode"], 0, "{v}");
    assert_eq!(v["result"], "204800\n");
    let (s, v) = env
        .exec(
            &id,
            json!({"command": "read line\nthe script's own next line\necho \"got: $line\""}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], "got: the script's own next line\n", "{v}");
    // The exit code is the script's, its last command's by default.
    let (_, v) = env
        .exec(&id, json!({"command": "false\ntrue\nexit 3"}))
        .await;
    assert_eq!(v["exitCode"], 3, "{v}");
}

#[tokio::test]
async fn session_input_is_a_line_echoed_into_the_log() {
    let env = common::start().await;
    let id = env.sandbox().await;
    env.json(
        Method::POST,
        &env.tb(&id, "/process/session"),
        Some(json!({"sessionId": "s"})),
    )
    .await;
    for (suppress, want) in [(false, "hello\ngot hello\n"), (true, "got hello\n")] {
        let (s, v) = env
            .json(
                Method::POST,
                &env.tb(&id, "/process/session/s/exec"),
                Some(json!({"command": "read x; echo got $x", "runAsync": true, "suppressInputEcho": suppress})),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let cid = v["cmdId"].as_str().unwrap().to_string();
        // No trailing newline sent: the command waiting on `read` still gets its line.
        let (s, v) = env
            .json(
                Method::POST,
                &env.tb(&id, &format!("/process/session/s/command/{cid}/input")),
                Some(json!({"data": "hello"})),
            )
            .await;
        assert_eq!(s, 204, "{v}");
        let mut logs = Value::Null;
        for _ in 0..400 {
            let (_, c) = env
                .json(
                    Method::GET,
                    &env.tb(&id, &format!("/process/session/s/command/{cid}")),
                    None,
                )
                .await;
            if !c["exitCode"].is_null() {
                logs = env
                    .json(
                        Method::GET,
                        &env.tb(&id, &format!("/process/session/s/command/{cid}/logs")),
                        None,
                    )
                    .await
                    .1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(logs["stdout"], want, "suppressInputEcho {suppress}: {logs}");
    }
}

#[tokio::test]
async fn list_sorts_and_filters_as_the_api() {
    let env = common::start().await;
    let mut ids = Vec::new();
    for (name, cpu, public) in [("b", 2, false), ("a", 1, true), ("c", 4, false)] {
        let v = env
            .create(json!({"name": name, "cpu": cpu, "public": public}))
            .await;
        ids.push(v["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Default: last activity, newest first.
    let (_, v) = env.json(Method::GET, &env.api("/sandbox"), None).await;
    assert_eq!(names(&v), ["c", "a", "b"]);
    let (_, v) = env
        .json(Method::GET, &env.api("/sandbox?sort=name&order=asc"), None)
        .await;
    assert_eq!(names(&v), ["a", "b", "c"]);
    let (_, v) = env
        .json(
            Method::GET,
            &env.api("/sandbox?sort=cpu&order=desc&minCpu=2"),
            None,
        )
        .await;
    assert_eq!(names(&v), ["c", "b"]);
    let (_, v) = env
        .json(Method::GET, &env.api("/sandbox?isPublic=true"), None)
        .await;
    assert_eq!(names(&v), ["a"]);
    let (_, v) = env
        .json(Method::GET, &env.api("/sandbox?name=B"), None)
        .await;
    assert_eq!(names(&v), ["b"], "name prefix is case-insensitive");
    // Paging keeps the order.
    let (_, p1) = env
        .json(
            Method::GET,
            &env.api("/sandbox?sort=name&order=asc&limit=2"),
            None,
        )
        .await;
    let cursor = p1["nextCursor"].as_str().unwrap().to_string();
    let (_, p2) = env
        .json(
            Method::GET,
            &env.api(&format!(
                "/sandbox?sort=name&order=asc&limit=2&cursor={cursor}"
            )),
            None,
        )
        .await;
    assert_eq!(
        (names(&p1), names(&p2)),
        (vec!["a".into(), "b".into()], vec!["c".to_string()])
    );
    let (s, _) = env
        .json(Method::GET, &env.api("/sandbox?sort=bogus"), None)
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn integers_where_the_api_has_integers() {
    let env = common::start().await;
    let res = env
        .req(Method::POST, &env.api("/sandbox"))
        .json(&json!({"cpu": 2, "memory": 3, "disk": 4}))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    for field in [
        "\"cpu\":2,",
        "\"memory\":3,",
        "\"disk\":4,",
        "\"gpu\":0,",
        "\"autoStopInterval\":15",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
}

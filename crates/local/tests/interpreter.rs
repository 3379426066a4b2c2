//! The code interpreter over real WebSockets, as the official SDK's `CodeInterpreter` speaks
//! it: Python in the sandbox keeping its state between executions, stdout / stderr streamed
//! (subprocesses too), errors with name, value and the user's traceback, contexts, timeouts.

use crate::common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// What one execution sent back.
#[derive(Debug, Default)]
struct Run {
    stdout: String,
    stderr: String,
    errors: Vec<Value>,
    controls: Vec<String>,
    close: Option<(u16, String)>,
}

/// Runs `request` (the first frame) on `/process/interpreter/execute` and reads until the
/// close (bounded: 120 s).
async fn run(env: &common::Env, id: &str, request: Value) -> Run {
    let url = env
        .tb(id, "/process/interpreter/execute")
        .replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    let mut out = Run::default();
    let deadline = tokio::time::Instant::now() + Duration::from_mins(2);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out: {out:?}"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                let chunk: Value = serde_json::from_str(&t).unwrap();
                // Every field is there, as the daemon sends them.
                for k in ["type", "text", "name", "value", "traceback"] {
                    assert!(chunk.get(k).is_some(), "{chunk}");
                }
                let text = chunk["text"].as_str().unwrap().to_string();
                match chunk["type"].as_str().unwrap() {
                    "stdout" => out.stdout.push_str(&text),
                    "stderr" => out.stderr.push_str(&text),
                    "error" => out.errors.push(chunk),
                    "control" => out.controls.push(text),
                    other => panic!("unexpected chunk type {other}"),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                out.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                return out;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return out,
        }
    }
}

fn code(c: &str) -> Value {
    json!({ "code": c })
}

#[tokio::test]
async fn state_is_kept_and_output_streams() {
    let env = common::start().await;
    let id = env.sandbox().await;

    let r = run(&env, &id, code("x = 41")).await;
    assert_eq!(r.controls, ["completed"], "{r:?}");
    assert_eq!(r.close, Some((1000, String::new())));
    assert!(r.stdout.is_empty() && r.errors.is_empty(), "{r:?}");

    let r = run(
        &env,
        &id,
        code(
            "import os, subprocess, sys\n\
             print(x + 1)\n\
             sys.stderr.write('careful\\n')\n\
             os.write(1, b'raw\\n')\n\
             subprocess.run(['sh', '-c', 'echo from-child; echo child-err >&2'])\n\
             print('done', end='')",
        ),
    )
    .await;
    assert_eq!(r.controls, ["completed"], "{r:?}");
    assert_eq!(r.stdout, "42\nraw\nfrom-child\ndone");
    assert_eq!(r.stderr, "careful\nchild-err\n");

    // Per-execution envs, the sandbox's user and folder; input() reads nothing.
    let r = run(
        &env,
        &id,
        json!({"code": "import os, getpass\nprint(os.environ['GREET'], getpass.getuser(), os.getcwd())\ntry:\n    input()\nexcept EOFError:\n    print('no stdin')", "envs": {"GREET": "hey"}}),
    )
    .await;
    assert_eq!(r.stdout, "hey daytona /home/daytona\nno stdin\n", "{r:?}");
    let r = run(&env, &id, code("import os\nprint(os.environ.get('GREET'))")).await;
    assert_eq!(r.stdout, "None\n", "envs last one execution");
}

#[tokio::test]
async fn errors_and_contexts() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let ctx_url = env.tb(&id, "/process/interpreter/context");

    let r = run(
        &env,
        &id,
        code("def f():\n    raise ValueError('boom')\nprint('before')\nf()"),
    )
    .await;
    assert_eq!(r.controls, ["completed"]);
    assert_eq!(r.stdout, "before\n");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    let e = &r.errors[0];
    assert_eq!(
        (&e["name"], &e["value"]),
        (&json!("ValueError"), &json!("boom"))
    );
    let tb = e["traceback"].as_str().unwrap();
    assert!(
        tb.starts_with("Traceback (most recent call last):\n"),
        "{tb}"
    );
    assert!(tb.contains("File \"<stdin>\", line 4"), "{tb}");
    assert!(
        tb.contains("File \"<stdin>\", line 2, in f\n    raise ValueError('boom')"),
        "{tb}"
    );
    assert!(tb.ends_with("ValueError: boom\n"), "{tb}");
    assert!(
        !tb.contains("interpreter") && !tb.contains("forge"),
        "only the user's frames: {tb}"
    );
    let r = run(&env, &id, code("print(1 +)")).await;
    assert_eq!(r.errors[0]["name"], "SyntaxError", "{r:?}");

    // A context of its own: its own namespace, its own folder.
    let (s, v) = env
        .json(Method::POST, &ctx_url, Some(json!({"cwd": "/tmp"})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["cwd"], &v["language"], &v["active"]),
        (&json!("/tmp"), &json!("python"), &json!(true))
    );
    assert!(v["createdAt"].is_string());
    let ctx = v["id"].as_str().unwrap().to_string();
    let r = run(
        &env,
        &id,
        json!({"code": "import os\ny = os.getcwd()", "contextId": ctx}),
    )
    .await;
    assert_eq!(r.controls, ["completed"]);
    let r = run(&env, &id, json!({"code": "print(y)", "contextId": ctx})).await;
    assert_eq!(r.stdout, "/tmp\n");
    let r = run(&env, &id, code("print(y)")).await;
    assert_eq!(
        (&r.errors[0]["name"], &r.errors[0]["value"]),
        (&json!("NameError"), &json!("name 'y' is not defined"))
    );

    let (s, v) = env.json(Method::GET, &ctx_url, None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ctx.as_str()], "the default context is not listed");

    let (s, _) = env
        .json(
            Method::POST,
            &ctx_url,
            Some(json!({"language": "javascript"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(Method::POST, &ctx_url, Some(json!({"cwd": "/no/such/dir"})))
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(Method::DELETE, &format!("{ctx_url}/default"), None)
        .await;
    assert_eq!(s, 400);
    let (s, v) = env
        .json(Method::DELETE, &format!("{ctx_url}/{ctx}"), None)
        .await;
    assert_eq!(
        (s, &v["message"]),
        (200, &json!("Context deleted successfully"))
    );
    let (s, _) = env
        .json(Method::DELETE, &format!("{ctx_url}/{ctx}"), None)
        .await;
    assert_eq!(s, 404);
    let r = run(&env, &id, json!({"code": "print(1)", "contextId": ctx})).await;
    assert_eq!(r.close.as_ref().map(|c| c.0), Some(1008), "{r:?}");
    assert!(r.close.unwrap().1.contains("context not found"));

    // Refused requests: the daemon's close codes.
    let r = run(&env, &id, json!({"code": ""})).await;
    assert_eq!(r.close.map(|c| c.0), Some(1008));
    let r = run(&env, &id, json!({"code": "1", "timeout": -1})).await;
    assert_eq!(r.close.map(|c| c.0), Some(1008));
    let r = run(&env, &id, json!("not an object")).await;
    assert_eq!(r.close.map(|c| c.0), Some(1002));

    // Code that ends its process: an error, and a new worker for the next execution.
    let r = run(&env, &id, code("import os\nos._exit(3)")).await;
    assert_eq!(r.errors[0]["name"], "WorkerProcessError", "{r:?}");
    assert_eq!(r.close.map(|c| c.0), Some(1001));
    let r = run(&env, &id, code("print('fresh')")).await;
    assert_eq!(r.stdout, "fresh\n");
}

#[tokio::test]
async fn a_timeout_interrupts_the_code() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let r = run(&env, &id, code("kept = 'yes'")).await;
    assert_eq!(r.controls, ["completed"]);

    // ^C: the code stops, the worker and its state stay; the close says timeout (4008).
    // The timeouts leave the code seconds to reach its loop (print, install its handler)
    // on a loaded machine: the loops never end, so only the timeout can end them.
    let r = run(
        &env,
        &id,
        json!({"code": "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.05)", "timeout": 5}),
    )
    .await;
    assert_eq!(r.stdout, "started\n");
    assert_eq!(r.controls, ["interrupted"], "{r:?}");
    assert_eq!(r.close.map(|c| c.0), Some(4008));
    let r = run(&env, &id, code("print(kept)")).await;
    assert_eq!(r.stdout, "yes\n");

    // Code that ignores ^C: its worker is killed (4008, no control), the next one is new.
    let r = run(
        &env,
        &id,
        json!({"code": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)", "timeout": 5}),
    )
    .await;
    assert!(r.controls.is_empty(), "{r:?}");
    assert_eq!(r.close.map(|c| c.0), Some(4008));
    let r = run(&env, &id, code("print('kept' in globals())")).await;
    assert_eq!(r.stdout, "False\n");
}

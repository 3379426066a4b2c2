//! PTY sessions over real WebSockets, as the official SDK's `PtyHandle` drives them: a bash on
//! a terminal of the sandbox's own devpts, input and output, resize (SIGWINCH), ^C to the
//! foreground job, exit codes in control messages and close frames, kill, lazy start,
//! create-connect with envs in a subprotocol.

use crate::common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const EXIT_CONTROL: &str = "X-Daytona-Pty-Exit-Control";

/// A WebSocket to a toolbox path, offering `protocols`; the selected one.
async fn open_ws(
    env: &common::Env,
    id: &str,
    path: &str,
    protocols: &[&str],
) -> (Ws, Option<String>) {
    let url = env.tb(id, path).replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().unwrap(),
        );
    }
    let (ws, res) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("connect in time")
    .expect("upgrade");
    let selected = res
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (ws, selected)
}

/// What a client saw: the terminal's output, control messages, the close frame.
#[derive(Default)]
struct Seen {
    output: String,
    controls: Vec<Value>,
    close: Option<(u16, String)>,
}

/// Reads until `done(seen)` holds or the socket closes (bounded: 60 s without it is a failure).
async fn read_until(ws: &mut Ws, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while !done(seen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; output so far: {:?}", seen.output));
        match msg {
            Some(Ok(Message::Binary(b))) => seen.output.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("control JSON");
                seen.controls.push(v);
            }
            Some(Ok(Message::Close(frame))) => {
                seen.close = Some(frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                }));
                return;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return,
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Binary(text.as_bytes().to_vec().into()))
        .await
        .unwrap();
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_pty_is_bash_on_a_terminal_of_the_sandbox() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/pty"),
            Some(json!({"id": "term", "cols": 100, "rows": 30, "envs": {"FOO": "bar"}})),
        )
        .await;
    assert_eq!((s, &v), (201, &json!({"sessionId": "term"})));
    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/process/pty"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let info = &v["sessions"][0];
    assert_eq!(
        (&info["id"], &info["active"], &info["cols"], &info["rows"]),
        (&json!("term"), &json!(true), &json!(100), &json!(30)),
        "{v}"
    );
    assert_eq!(info["envs"]["TERM"], "xterm-256color");
    assert_eq!(info["cwd"], "/home/daytona");

    let (mut ws, selected) = open_ws(&env, &id, "/process/pty/term/connect", &[EXIT_CONTROL]).await;
    assert_eq!(selected.as_deref(), Some(EXIT_CONTROL));
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    assert_eq!(
        seen.controls[0],
        json!({"type": "control", "status": "connected"})
    );

    // The terminal is the sandbox's own (its devpts), the shell's controlling terminal.
    send(
        &mut ws,
        "echo \"[$FOO] $(stty size) $(id -un) $(tty) $(ls /dev/pts | tr '\\n' ,)\"\n",
    )
    .await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("[bar] 30 100")).await;
    assert!(
        seen.output
            .contains("[bar] 30 100 daytona /dev/pts/0 0,ptmx,"),
        "{:?}",
        seen.output
    );

    // Resize: the terminal's size changes (TIOCSWINSZ on the master).
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/pty/term/resize"),
            Some(json!({"cols": 120, "rows": 40})),
        )
        .await;
    assert_eq!(
        (s, &v["cols"], &v["rows"]),
        (200, &json!(120), &json!(40)),
        "{v}"
    );
    send(&mut ws, "echo \"size=$(stty size)\"\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("size=40 120")).await;
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/pty/term/resize"),
            Some(json!({"cols": 1001, "rows": 40})),
        )
        .await;
    assert_eq!(s, 400);

    // ^C reaches the foreground job through the terminal; the shell lives on.
    send(&mut ws, "sleep 600\n").await;
    // The job runs when the shell has started it: wait for it in the sandbox.
    for _ in 0..1200 {
        let (_, v) = env
            .exec(&id, json!({"command": "pgrep -x sleep || true"}))
            .await;
        if !v["result"].as_str().unwrap_or("").trim().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    send(&mut ws, "\u{3}").await;
    // (An interactive bash drops the rest of a line whose job got ^C: ask for $? apart.)
    read_until(&mut ws, &mut seen, |s| s.output.contains("^C")).await;
    send(&mut ws, "echo \"after=$?\"\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("after=130")).await;

    // A second client sees the same terminal.
    let (mut other, _) = open_ws(&env, &id, "/process/pty/term/connect", &[EXIT_CONTROL]).await;
    let mut seen2 = Seen::default();
    read_until(&mut other, &mut seen2, |s| !s.controls.is_empty()).await;
    send(&mut ws, "echo two-$((40+2))\n").await;
    read_until(&mut other, &mut seen2, |s| s.output.contains("two-42")).await;

    // Exit: the code in the `exited` control message and the close frame.
    send(&mut ws, "exit 3\n").await;
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    let exited = seen
        .controls
        .iter()
        .find(|c| c["status"] == "exited")
        .expect("exited control");
    assert_eq!(
        exited,
        &json!({"type": "control", "status": "exited", "exitCode": 3, "exitReason": "(non-zero exit)"})
    );
    let (code, reason) = seen.close.clone().unwrap();
    assert_eq!(code, 1011);
    assert_eq!(
        serde_json::from_str::<Value>(&reason).unwrap(),
        json!({"exitCode": 3, "exitReason": "non-zero exit"})
    );
    read_until(&mut other, &mut seen2, |s| s.close.is_some()).await;
    assert_eq!(seen2.close.as_ref().map(|c| c.0), Some(1011));

    // Gone once exited.
    let (s, _) = env
        .json(Method::GET, &env.tb(&id, "/process/pty/term"), None)
        .await;
    assert_eq!(s, 404);
    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/process/pty"), None)
        .await;
    assert_eq!((s, &v["sessions"]), (200, &json!([])));
}

#[tokio::test]
async fn kill_lazy_start_and_errors() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let pty = |p: &str| env.tb(&id, &format!("/process/pty{p}"));

    let (s, v) = env
        .json(Method::POST, &pty(""), Some(json!({"cols": 80})))
        .await;
    assert_eq!(
        (s, v["source"].as_str()),
        (400, Some("DAYTONA_DAEMON")),
        "{v}"
    );
    let (s, _) = env
        .json(
            Method::POST,
            &pty(""),
            Some(json!({"id": "big", "cols": 2000})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(
            Method::POST,
            &pty(""),
            Some(json!({"id": "x", "cwd": "/no/such/dir"})),
        )
        .await;
    assert_eq!(s, 400);

    // Lazy: nothing runs until the first client.
    let (s, _) = env
        .json(
            Method::POST,
            &pty(""),
            Some(json!({"id": "lazy", "lazyStart": true})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = env
        .json(Method::POST, &pty(""), Some(json!({"id": "lazy"})))
        .await;
    assert_eq!(s, 409);
    let (s, v) = env.json(Method::GET, &pty("/lazy"), None).await;
    assert_eq!(
        (s, &v["active"], &v["lazyStart"]),
        (200, &json!(false), &json!(true))
    );
    let (s, _) = env
        .json(
            Method::POST,
            &pty("/lazy/resize"),
            Some(json!({"cols": 90, "rows": 20})),
        )
        .await;
    assert_eq!(s, 410);
    let (mut ws, _) = open_ws(&env, &id, "/process/pty/lazy/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    assert_eq!(seen.controls[0]["status"], "connected");
    let (_, v) = env.json(Method::GET, &pty("/lazy"), None).await;
    assert_eq!(v["active"], true);
    send(&mut ws, "echo ready-$((6*7))\n").await;
    read_until(&mut ws, &mut seen, |s| s.output.contains("ready-42")).await;

    // Kill: SIGKILL, exit code 137, to every client; then gone.
    let (s, v) = env.json(Method::DELETE, &pty("/lazy"), None).await;
    assert_eq!((s, &v), (200, &json!({"message": "PTY session deleted"})));
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    let exited = seen
        .controls
        .iter()
        .find(|c| c["status"] == "exited")
        .unwrap();
    assert_eq!(
        (&exited["exitCode"], &exited["exitReason"]),
        (&json!(137), &json!("(SIGKILL)"))
    );
    assert_eq!(seen.close.as_ref().map(|c| c.0), Some(1011));
    let (s, _) = env.json(Method::GET, &pty("/lazy"), None).await;
    assert_eq!(s, 404);
    let (s, _) = env.json(Method::DELETE, &pty("/lazy"), None).await;
    assert_eq!(s, 404);
    let (s, _) = env
        .json(
            Method::POST,
            &pty("/lazy/resize"),
            Some(json!({"cols": 90, "rows": 20})),
        )
        .await;
    assert_eq!(s, 410);

    // An unknown session: the daemon's error control message, then a close.
    let (mut ws, _) = open_ws(&env, &id, "/process/pty/nope/connect", &[EXIT_CONTROL]).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert_eq!(seen.controls[0]["status"], "error");
    assert!(seen.controls[0]["error"]
        .as_str()
        .unwrap()
        .contains("PTY session not found"));
}

#[tokio::test]
async fn create_connect_takes_envs_from_the_subprotocol() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let envs = base64url(br#"{"GREETING":"hi there"}"#);
    let (mut ws, selected) = open_ws(
        &env,
        &id,
        "/process/pty/create-connect?id=cc&cols=90&rows=20&cwd=/tmp",
        &[&format!("X-Daytona-Pty-Envs~{envs}"), EXIT_CONTROL],
    )
    .await;
    assert_eq!(selected.as_deref(), Some(EXIT_CONTROL));
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    assert_eq!(seen.controls[0]["status"], "connected");
    send(&mut ws, "echo \"<$GREETING> $(stty size) $PWD\"; exit\n").await;
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert!(
        seen.output.contains("<hi there> 20 90 /tmp"),
        "{:?}",
        seen.output
    );
    let exited = seen
        .controls
        .iter()
        .find(|c| c["status"] == "exited")
        .unwrap();
    assert_eq!(
        exited,
        &json!({"type": "control", "status": "exited", "exitCode": 0})
    );
    let (code, reason) = seen.close.unwrap();
    assert_eq!(
        (code, serde_json::from_str::<Value>(&reason).unwrap()),
        (1000, json!({"exitCode": 0}))
    );

    // Without the exit-control subprotocol: no `exited` message, only the close frame.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/pty"),
            Some(json!({"id": "plain"})),
        )
        .await;
    assert_eq!(s, 201);
    let (mut ws, selected) = open_ws(&env, &id, "/process/pty/plain/connect", &[]).await;
    assert_eq!(selected, None);
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| !s.controls.is_empty()).await;
    send(&mut ws, "exit 0\n").await;
    read_until(&mut ws, &mut seen, |s| s.close.is_some()).await;
    assert!(seen.controls.iter().all(|c| c["status"] != "exited"));
    assert_eq!(seen.close.map(|c| c.0), Some(u16::from(CloseCode::Normal)));

    // A taken id is refused before the upgrade.
    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/pty"),
            Some(json!({"id": "taken", "lazyStart": true})),
        )
        .await;
    assert_eq!(s, 201);
    let url = env
        .tb(&id, "/process/pty/create-connect?id=taken")
        .replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer test-key".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 409);
        }
        other => panic!("expected 409, got {:?}", other.map(|r| r.1.status())),
    }
}

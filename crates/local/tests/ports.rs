//! Per-sandbox ports (each sandbox has its own network namespace) with real Node and Python
//! servers inside sandboxes: two sandboxes on the same port at once, EADDRINUSE within one
//! sandbox, loopback connects inside a sandbox, in-use per sandbox, restarts, WebSocket and
//! chunked bodies through the preview, `fetch` and curl on the preview URL, cleanup on delete.

use crate::common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A dev server stand-in with no npm packages: `node server.js PORT NAME [HOST] [retry]`.
/// `/` names the sandbox and the port the server believes it has, `/stream` answers in chunks,
/// an upgrade gets a hand-made WebSocket echo (text frames under 126 bytes).
const SERVER_JS: &str = r"
const http = require('http');
const crypto = require('crypto');
const [port, name, host, mode] = [+process.argv[2], process.argv[3], process.argv[4] || undefined, process.argv[5]];
function start(p) {
  const s = http.createServer((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const t = setInterval(() => { res.write('chunk' + i + ';'); if (++i === 5) { clearInterval(t); res.end(); } }, 5);
      return;
    }
    res.end('hello from ' + name + ' port ' + s.address().port);
  });
  s.on('upgrade', (req, sock) => {
    const accept = crypto.createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
    sock.on('data', (buf) => {
      if ((buf[0] & 0x0f) === 8) { sock.end(); return; }
      const len = buf[1] & 0x7f, mask = buf.subarray(2, 6);
      const data = Buffer.alloc(len);
      for (let i = 0; i < len; i++) data[i] = buf[6 + i] ^ mask[i % 4];
      const out = Buffer.from('echo:' + data.toString());
      sock.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
    });
    sock.on('error', () => {});
  });
  s.once('error', (e) => {
    if (e.code === 'EADDRINUSE' && mode === 'retry') {
      console.log('Port ' + p + ' is in use, trying another one...');
      start(p + 1);
    } else { console.log('ERR ' + e.code); process.exit(3); }
  });
  s.listen(p, host, () => console.log('Local: http://localhost:' + s.address().port + ' ' + JSON.stringify(s.address())));
}
start(port);
";

/// A sandbox with `server.js` in its home.
async fn sandbox(env: &common::Env, public: bool) -> String {
    let v = env.create(json!({"public": public, "env": {}})).await;
    let id = v["id"].as_str().unwrap().to_string();
    std::fs::write(
        env.root(&id).join("home/daytona/server.js"),
        SERVER_JS.as_bytes(),
    )
    .unwrap();
    id
}

/// Starts `command` in the background in a new session `sid`.
async fn spawn(env: &common::Env, id: &str, sid: &str, command: &str) {
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(id, "/process/session"),
            Some(json!({"sessionId": sid})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(id, &format!("/process/session/{sid}/exec")),
            Some(json!({"command": command, "runAsync": true})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
}

/// Stops everything started in session `sid`.
async fn kill(env: &common::Env, id: &str, sid: &str) {
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.tb(id, &format!("/process/session/{sid}")),
            None,
        )
        .await;
    assert_eq!(s, 204);
}

async fn in_use(env: &common::Env, id: &str, port: u16) -> bool {
    let (s, v) = env
        .json(
            Method::GET,
            &env.tb(id, &format!("/port/{port}/in-use")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["isInUse"].as_bool().unwrap()
}

/// Polls in-use until it says `want` (bounded).
async fn wait_in_use(env: &common::Env, id: &str, port: u16, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_use(env, id, port).await != want {
        assert!(
            Instant::now() < deadline,
            "port {port} of {id} never became in-use={want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The preview URL and token of a sandbox port.
async fn preview(env: &common::Env, id: &str, port: u16) -> (String, String) {
    let (s, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{link}");
    (
        link["url"].as_str().unwrap().to_string(),
        link["token"].as_str().unwrap().to_string(),
    )
}

async fn get(url: &str, token: &str) -> (u16, String) {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(url)
        .header("X-Daytona-Preview-Token", token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// `GET /port` of a sandbox.
async fn listed(env: &common::Env, id: &str) -> Vec<u16> {
    let (s, v) = env.json(Method::GET, &env.tb(id, "/port"), None).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v["ports"].clone()).unwrap()
}

/// Runs a command in the sandbox and returns (exit code, output).
async fn exec(env: &common::Env, id: &str, command: &str) -> (i64, String) {
    let (s, v): (u16, Value) = env
        .exec(id, json!({"command": command, "timeout": 30}))
        .await;
    assert_eq!(s, 200, "{v}");
    (
        v["exitCode"].as_i64().unwrap(),
        v["result"].as_str().unwrap_or("").to_string(),
    )
}

/// Runs a program on the host (not in a sandbox) and returns its stdout.
async fn host(program: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(program).args(args).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{program} {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn two_sandboxes_serve_the_same_port_at_once() {
    let env = common::start().await;
    let a = sandbox(&env, false).await;
    let b = sandbox(&env, false).await;
    let idle = sandbox(&env, false).await;
    spawn(&env, &a, "dev", "node server.js 3000 a").await;
    spawn(&env, &b, "dev", "node server.js 3000 b 0.0.0.0").await;
    wait_in_use(&env, &a, 3000, true).await;
    wait_in_use(&env, &b, 3000, true).await;
    assert!(!in_use(&env, &idle, 3000).await, "a sandbox with no server");

    // Both previews answer with their own sandbox's server, which believes it has port 3000.
    let (url_a, token_a) = preview(&env, &a, 3000).await;
    let (url_b, token_b) = preview(&env, &b, 3000).await;
    assert_eq!(
        get(&url_a, &token_a).await,
        (200, "hello from a port 3000".into())
    );
    assert_eq!(
        get(&url_b, &token_b).await,
        (200, "hello from b port 3000".into())
    );
    // The token is enforced per sandbox: b's token does not open a's preview.
    assert_eq!(get(&url_a, &token_b).await.0, 307);
    // Nothing listens on 3000 in the idle sandbox: 502, not someone else's server.
    let (url_idle, token_idle) = preview(&env, &idle, 3000).await;
    assert_eq!(get(&url_idle, &token_idle).await.0, 502);

    // Node's fetch and curl on the preview URL, from outside.
    let fetched = host(
        "node",
        &[
            "-e",
            "fetch(process.argv[1], {headers: {'X-Daytona-Preview-Token': process.argv[2]}})\
             .then(r => r.text()).then(t => process.stdout.write(t))",
            &url_a,
            &token_a,
        ],
    )
    .await;
    assert_eq!(fetched, "hello from a port 3000");
    let curled = host(
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            &format!("{url_b}/?DAYTONA_SANDBOX_AUTH_KEY={token_b}"),
        ],
    )
    .await;
    assert_eq!(curled, "hello from b port 3000");

    // Inside a sandbox, localhost:3000 is that sandbox's server, over v4 and v6.
    let (code, out) = exec(&env, &a, "curl -sS --max-time 10 http://localhost:3000/").await;
    assert_eq!((code, out.as_str()), (0, "hello from a port 3000"));
    let (code, out) = exec(&env, &a, "curl -sS --max-time 10 -g 'http://[::1]:3000/'").await;
    assert_eq!((code, out.as_str()), (0, "hello from a port 3000"));
    let (code, out) = exec(
        &env,
        &b,
        "node -e \"fetch('http://127.0.0.1:3000').then(r => r.text()).then(t => process.stdout.write(t))\"",
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "hello from b port 3000"));

    // A second bind of 3000 in the same sandbox fails as it would natively...
    let (code, out) = exec(&env, &a, "node server.js 3000 again").await;
    assert_eq!((code, out.trim()), (3, "ERR EADDRINUSE"));
    // ...but not in a sandbox where 3000 is free (bound, then exits at once).
    let (code, out) = exec(
        &env,
        &idle,
        "node -e \"const s = require('net').createServer().listen(3000, () => { console.log(s.address().port); s.close(); })\"",
    )
    .await;
    assert_eq!((code, out.trim()), (0, "3000"));

    // GET /port shows the sandbox's own listeners only.
    let ports = listed(&env, &a).await;
    assert_eq!(ports, vec![3000]);

    // WebSocket and chunked bodies from a server inside the sandbox, through the preview.
    let (_, body) = get(&format!("{url_a}/stream"), &token_a).await;
    assert_eq!(body, "chunk0;chunk1;chunk2;chunk3;chunk4;");
    let mut req = format!("{}/hmr", url_a.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Daytona-Preview-Token", token_a.parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .unwrap()
    .unwrap();
    ws.send(Message::Text("ping".into())).await.unwrap();
    let got = tokio::time::timeout(Duration::from_mins(1), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::Text("echo:ping".into()));
    drop(ws);

    // A restarted server is reached again.
    kill(&env, &a, "dev").await;
    wait_in_use(&env, &a, 3000, false).await;
    assert_eq!(get(&url_a, &token_a).await.0, 502);
    assert_eq!(get(&url_b, &token_b).await.0, 200, "b is untouched");
    spawn(&env, &a, "dev2", "node server.js 3000 a-again").await;
    wait_in_use(&env, &a, 3000, true).await;
    assert_eq!(
        get(&url_a, &token_a).await,
        (200, "hello from a-again port 3000".into())
    );

    // Delete leaves no files behind.
    for id in [&a, &b, &idle] {
        let (s, _) = env
            .json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
            .await;
        assert_eq!(s, 200);
        assert!(!env.backend.home().join("sandboxes").join(id).exists());
    }
}

#[tokio::test]
async fn ipv6_python_and_port_retry_servers() {
    let env = common::start().await;
    let six = sandbox(&env, true).await;
    let py = sandbox(&env, true).await;
    let vite = sandbox(&env, true).await;
    spawn(&env, &six, "dev", "node server.js 8080 six ::").await;
    spawn(
        &env,
        &py,
        "dev",
        "exec python3 -m http.server 8080 --bind 127.0.0.1",
    )
    .await;
    // Two servers that move to the next port when theirs is taken, like Vite.
    spawn(
        &env,
        &vite,
        "one",
        "node server.js 5173 first localhost retry",
    )
    .await;
    wait_in_use(&env, &vite, 5173, true).await;
    spawn(
        &env,
        &vite,
        "two",
        "node server.js 5173 second localhost retry",
    )
    .await;
    wait_in_use(&env, &six, 8080, true).await;
    wait_in_use(&env, &py, 8080, true).await;
    wait_in_use(&env, &vite, 5174, true).await;

    // Public sandboxes: no token needed.
    let (url, _) = preview(&env, &six, 8080).await;
    assert_eq!(
        get(&url, "").await,
        (200, "hello from six port 8080".into())
    );
    let (url, _) = preview(&env, &py, 8080).await;
    let (status, body) = get(&url, "").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("server.js"),
        "python's directory listing: {body}"
    );
    let (url, _) = preview(&env, &vite, 5173).await;
    assert_eq!(
        get(&url, "").await,
        (200, "hello from first port 5173".into())
    );
    let (url, _) = preview(&env, &vite, 5174).await;
    assert_eq!(
        get(&url, "").await,
        (200, "hello from second port 5174".into())
    );
    let (_, logs) = env
        .json(Method::GET, &env.tb(&vite, "/process/session/two"), None)
        .await;
    let cid = logs["commands"][0]["id"].as_str().unwrap().to_string();
    let res = env
        .req(
            Method::GET,
            &env.tb(&vite, &format!("/process/session/two/command/{cid}/logs")),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        res.contains("Port 5173 is in use, trying another one...")
            && res.contains("Local: http://localhost:5174"),
        "{res}"
    );
    let ports = listed(&env, &vite).await;
    assert_eq!(ports, vec![5173, 5174]);
}

/// Less common socket paths, from Python inside a sandbox: `SO_REUSEPORT` sockets share a
/// port, a plain second bind gets `EADDRINUSE`, a listener inherited across `exec` keeps its
/// port, and port 0 binds get a free port.
const EDGES_PY: &str = r#"
import errno, os, socket, sys
if len(sys.argv) > 1:
    s = socket.socket(fileno=int(sys.argv[1]))
    print("inherited", s.getsockname()[1])
    sys.exit(0)
a = socket.socket(); a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
b = socket.socket(); b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
a.bind(("127.0.0.1", 8000)); a.listen()
b.bind(("127.0.0.1", 8000)); b.listen()
print("reuseport", a.getsockname()[1], b.getsockname()[1])
c = socket.socket()
try:
    c.bind(("127.0.0.1", 8000)); print("second bind succeeded")
except OSError as e:
    print("second bind", errno.errorcode[e.errno])
z = socket.socket(); z.bind(("127.0.0.1", 0))
print("port zero kept", z.getsockname()[1] != 0)
a.set_inheritable(True)
sys.stdout.flush()
os.execv(sys.executable, [sys.executable, sys.argv[0], str(a.fileno())])
"#;

#[tokio::test]
async fn reuseport_inherited_listeners_and_port_zero() {
    let env = common::start().await;
    let id = sandbox(&env, false).await;
    std::fs::write(env.root(&id).join("home/daytona/edges.py"), EDGES_PY).unwrap();
    let (code, out) = exec(&env, &id, "python3 edges.py").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "reuseport 8000 8000",
            "second bind EADDRINUSE",
            "port zero kept True",
            "inherited 8000"
        ],
        "{out}"
    );
}

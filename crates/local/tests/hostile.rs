//! Hostile input against a running backend (issue 14): each test is an attack that hurt the
//! backend or another sandbox before, bounded in time and count, waiting for states (never
//! racing the machine's speed).

use crate::common;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Every call of these tests must answer within this bound; a hang is a failure.
const BOUND: Duration = Duration::from_mins(1);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?} (the backend hangs)"))
}

/// Runs `command` (bash) in sandbox `id`, expecting exit code 0; answers its output.
async fn sh(env: &common::Env, id: &str, command: &str) -> String {
    let (s, v) = env
        .exec(id, json!({"command": command, "timeout": 60}))
        .await;
    assert_eq!(
        (s, v["exitCode"].as_i64()),
        (200, Some(0)),
        "{command}: {v}"
    );
    v["result"].as_str().unwrap_or_default().to_string()
}

/// The preview URL and token of (sandbox, port).
async fn preview(env: &common::Env, id: &str, port: u16) -> (String, String) {
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    (
        link["url"].as_str().unwrap().to_string(),
        link["token"].as_str().unwrap().to_string(),
    )
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(BOUND)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_preview_cookie_never_crosses_to_another_preview() {
    let env = common::start().await;
    let (a, b) = (env.sandbox().await, env.sandbox().await);
    env.serve(&a, 3000).await;
    env.serve(&b, 3000).await;
    let (url_a, token_a) = preview(&env, &a, 3000).await;
    let (url_b, token_b) = preview(&env, &b, 3000).await;
    let http = no_redirects();

    // A's cookie, as a browser gets it from A's preview.
    let res = http
        .get(format!("{url_a}/?DAYTONA_SANDBOX_AUTH_KEY={token_a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let cookie_a = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie_a.starts_with(&format!("daytona-sandbox-auth-{a}=")));

    // The browser sends it to B's preview too (same host, cookies ignore ports): B's dev
    // server must never see it, nor any other preview cookie; its own cookies pass.
    let cookie_b = format!("daytona-sandbox-auth-{b}={token_b}");
    let res = http
        .get(format!("{url_b}/headers"))
        .header("Cookie", format!("theme=dark; {cookie_a}; {cookie_b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let seen: Value = res.json().await.unwrap();
    let cookie_seen = seen["cookie"].as_str().unwrap_or_default();
    assert_eq!(cookie_seen, "theme=dark", "B's server saw: {seen}");
    assert!(!seen.to_string().contains(&token_a));

    // A's cookie alone does not open B's preview.
    let res = http
        .get(&url_b)
        .header("Cookie", &cookie_a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 307);

    // A page of B's preview (same site as A's) cannot use A's cookie to act on A.
    let res = http
        .get(&url_a)
        .header("Cookie", &cookie_a)
        .header("Sec-Fetch-Site", "same-site")
        .header("Origin", url_b.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 307);
    // A's own pages still can.
    let res = http
        .get(&url_a)
        .header("Cookie", &cookie_a)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // The API key as a bearer in any case of the scheme: accepted, never forwarded.
    let res = http
        .get(format!("{url_b}/headers"))
        .header("Authorization", "bearer test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let seen: Value = res.json().await.unwrap();
    assert!(seen.get("authorization").is_none(), "{seen}");

    // The token in a percent-encoded query key: accepted, never forwarded.
    let res = http
        .get(format!(
            "{url_b}/?a=1&DAYTONA%5FSANDBOX%5FAUTH%5FKEY={token_b}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.text().await.unwrap(), "hello leaked=false query=a=1");

    // The preview listener checks Host as the API does (DNS rebinding).
    let res = http
        .get(&url_b)
        .header("Host", "attacker.example")
        .header("X-Daytona-Preview-Token", &token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn a_preview_token_opens_no_toolbox_route() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (_, token) = preview(&env, &id, 3000).await;
    let http = no_redirects();
    let by_header = http
        .post(env.tb(&id, "/process/execute"))
        .header("X-Daytona-Preview-Token", &token)
        .json(&json!({"command": "echo owned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status().as_u16(), 401);
    let by_query = http
        .get(format!(
            "{}?path=/home/daytona&DAYTONA_SANDBOX_AUTH_KEY={token}",
            env.tb(&id, "/files")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status().as_u16(), 401);
    let as_bearer = http
        .get(env.tb(&id, "/files?path=/home/daytona"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status().as_u16(), 401);
    // The API key still works, in any case of the scheme.
    let ok = http
        .get(env.tb(&id, "/files?path=/home/daytona"))
        .header("Authorization", "BEARER test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn a_fifo_named_like_a_file_is_refused_and_blocks_nothing() {
    let env = common::start().await;
    let id = env.sandbox().await;
    sh(
        &env,
        &id,
        "mkfifo package.json && mkdir -p app && mkfifo app/index.js && echo hi > app/ok.txt",
    )
    .await;
    // More requests than the blocking pool has threads: each one used to hold a thread
    // forever on open(2) of the FIFO.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let (s, v) = bounded(
            "download",
            env.json(
                Method::GET,
                &env.tb(&id, "/files/download?path=package.json"),
                None,
            ),
        )
        .await;
        answers.push((s, v));
    }
    for (s, v) in &answers {
        assert_eq!(*s, 400, "{v}");
        assert_eq!(v["code"], "NOT_A_REGULAR_FILE", "{v}");
        assert!(v["message"].as_str().unwrap().contains("FIFO"), "{v}");
    }
    let (s, v) = bounded(
        "replace",
        env.json(
            Method::POST,
            &env.tb(&id, "/files/replace"),
            Some(
                json!({"files": ["package.json", "app/ok.txt"], "pattern": "hi", "newValue": "ho"}),
            ),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["success"], false, "{v}");
    assert!(v[0]["error"].as_str().unwrap().contains("FIFO"), "{v}");
    assert_eq!(v[1]["success"], true, "{v}");
    let res = bounded(
        "bulk-download",
        env.req(Method::POST, &env.tb(&id, "/files/bulk-download"))
            .json(&json!({"paths": ["app/index.js", "app/ok.txt"]}))
            .send(),
    )
    .await
    .unwrap();
    let body = bounded("bulk-download body", res.text()).await.unwrap();
    assert!(body.contains("NOT_A_REGULAR_FILE"), "{body}");
    assert!(body.contains("ho\n"), "{body}");
    let (s, v) = bounded(
        "find",
        env.json(
            Method::GET,
            &env.tb(&id, "/files/find?path=app&pattern=ho"),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    // And the file API still answers for everyone.
    let (s, _) = bounded(
        "info",
        env.json(
            Method::GET,
            &env.tb(&id, "/files/info?path=app/ok.txt"),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_pattern_bomb_is_answered_and_capped() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let long = "a".repeat(200);
    sh(
        &env,
        &id,
        &format!("mkdir -p bomb && touch bomb/{long} bomb/x.b"),
    )
    .await;
    let (s, v) = bounded(
        "search",
        env.json(
            Method::GET,
            &env.tb(
                &id,
                "/files/search?path=bomb&pattern=*a*a*a*a*a*a*a*a*a*a*a*a*b",
            ),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["files"], json!([]), "{v}");
    let (s, v) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files/search?path=bomb&pattern=*.b"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["files"].clone()),
        (200, json!(["/home/daytona/bomb/x.b"]))
    );
    let stars = "*a".repeat(40);
    let (s, v) = env
        .json(
            Method::GET,
            &env.tb(&id, &format!("/files/search?path=bomb&pattern={stars}")),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "INVALID_PATTERN", "{v}");
    assert!(v["message"].as_str().unwrap().contains("wildcards"), "{v}");
}

#[tokio::test]
async fn a_64_mib_path_field_is_refused_unread() {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let env = common::start().await;
    let id = env.sandbox().await;
    // The field is made as it is sent: the client never holds it, and counts what the
    // server pulled.
    const FIELD: u64 = 64 * 1024 * 1024;
    const PIECE: usize = 64 * 1024;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let pieces = futures_util::stream::iter(0..FIELD / PIECE as u64).map(move |_| {
        counter.fetch_add(PIECE as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(vec![b'a'; PIECE])
    });
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(pieces), FIELD);
    let form = reqwest::multipart::Form::new()
        .part("files[0].path", part)
        .part(
            "files[0].file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x"),
        );
    let res = bounded(
        "upload",
        env.req(Method::POST, &env.tb(&id, "/files/bulk-upload"))
            .multipart(form)
            .send(),
    )
    .await;
    // The server answers 400 as soon as the field passes its cap and stops reading: the
    // client may see the answer or a reset connection, never a 200.
    if let Ok(res) = res {
        assert_eq!(res.status().as_u16(), 400);
        let v: Value = res.json().await.unwrap_or(Value::Null);
        let errors = v["errors"].to_string();
        assert!(
            errors.contains("files[0].path") && errors.contains("too large"),
            "{v}"
        );
    }
    let sent = pulled.load(Ordering::Relaxed);
    assert!(
        sent < FIELD / 2,
        "the server read {sent} bytes of a {FIELD}-byte path field"
    );
}

#[tokio::test]
async fn a_symlink_swap_race_never_reaches_this_machines_files() {
    let env = common::start().await;
    let id = env.sandbox().await;
    // A folder of this machine, outside every sandbox, with a file the race aims at.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host-secret\n").unwrap();
    let target = outside.path().display().to_string();
    // In the sandbox: `d/secret` (a decoy) and `l`, a link to the host folder's path; a
    // loop swaps the two names (renameat2 RENAME_EXCHANGE) as fast as it can, for a bounded
    // number of swaps.
    sh(
        &env,
        &id,
        &format!("mkdir -p d && echo decoy > d/secret && ln -sfn {target} l"),
    )
    .await;
    let swapper = r"
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir('/home/daytona')
end = time.time() + 300
while time.time() < end:
    libc.renameat2(-100, b'd', -100, b'l', 2)
";
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/session"),
            Some(json!({"sessionId": "race"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let up = common::upload(&env, &id, &[("/home/daytona/swap.py", swapper.into())]).await;
    assert_eq!(up.0, 200, "{:?}", up.1);
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/process/session/race/exec"),
            Some(json!({"command": "python3 swap.py", "runAsync": true})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    // Bounded: 150 rounds of a read and a write through the racing name.
    for round in 0..150 {
        let res = env
            .req(
                Method::GET,
                &env.tb(&id, "/files/download?path=/home/daytona/d/secret"),
            )
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap_or_default();
        assert!(
            !body.contains("host-secret"),
            "round {round}: a host file was read through the swapped folder"
        );
        let _ = common::upload(
            &env,
            &id,
            &[("/home/daytona/d/secret", b"overwritten\n".to_vec())],
        )
        .await;
        let host = std::fs::read_to_string(outside.path().join("secret")).unwrap();
        assert_eq!(
            host, "host-secret\n",
            "round {round}: a host file was written through the swapped folder"
        );
    }
    assert!(
        std::fs::read_dir(outside.path()).unwrap().count() == 1,
        "nothing was created in the host folder"
    );
}

/// How many processes of sandbox `id` run `sleep <n>`.
async fn sleeps(env: &common::Env, id: &str, n: u32) -> usize {
    // `[x]` keeps the pattern from matching this grep's own command line.
    let digits = n.to_string();
    let (last, head) = (&digits[digits.len() - 1..], &digits[..digits.len() - 1]);
    let out = sh(
        env,
        id,
        &format!(
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep {head}[{last}]' || true"
        ),
    )
    .await;
    out.trim().parse().unwrap_or(0)
}

/// Waits (bounded) until `want(count)` holds for `sleep <n>` processes of the sandbox.
async fn wait_sleeps(env: &common::Env, id: &str, n: u32, want: impl Fn(usize) -> bool) -> bool {
    for _ in 0..600 {
        if want(sleeps(env, id, n).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn session_exec(env: &common::Env, id: &str, sid: &str, command: &str) -> String {
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(id, &format!("/process/session/{sid}/exec")),
            Some(json!({"command": command, "runAsync": true})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    v["cmdId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_killed_command_takes_its_wrapped_and_detached_children_with_it() {
    let env = common::start().await;
    let id = env.sandbox().await;
    for sid in ["k", "d"] {
        let (s, v) = env
            .json(
                Method::POST,
                &env.tb(&id, "/process/session"),
                Some(json!({"sessionId": sid})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    // killSessionCommand: a `timeout`-wrapped child (its own process group) ...
    let wrapped = session_exec(&env, &id, "k", "timeout 300 sleep 1234").await;
    // ... and one that detached (`setsid`, output elsewhere) from a command that has exited.
    let detached = session_exec(
        &env,
        &id,
        "k",
        "setsid sleep 2345 > /dev/null 2>&1 < /dev/null &",
    )
    .await;
    assert!(wait_sleeps(&env, &id, 1234, |n| n == 1).await);
    assert!(wait_sleeps(&env, &id, 2345, |n| n == 1).await);
    for cmd in [&wrapped, &detached] {
        let res = env
            .req(
                Method::DELETE,
                &env.tb(&id, &format!("/process/session/k/command/{cmd}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "{cmd}");
    }
    assert!(
        wait_sleeps(&env, &id, 1234, |n| n == 0).await,
        "the timeout-wrapped child outlived killSessionCommand"
    );
    assert!(
        wait_sleeps(&env, &id, 2345, |n| n == 0).await,
        "the setsid child outlived killSessionCommand"
    );

    // deleteSession: a `nohup … &` child of a command that has exited.
    session_exec(&env, &id, "d", "nohup sleep 3456 > /dev/null 2>&1 &").await;
    session_exec(&env, &id, "d", "setsid timeout 300 sleep 4567").await;
    assert!(wait_sleeps(&env, &id, 3456, |n| n == 1).await);
    assert!(wait_sleeps(&env, &id, 4567, |n| n == 1).await);
    let res = env
        .req(Method::DELETE, &env.tb(&id, "/process/session/d"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert!(
        wait_sleeps(&env, &id, 3456, |n| n == 0).await,
        "the nohup child outlived deleteSession"
    );
    assert!(
        wait_sleeps(&env, &id, 4567, |n| n == 0).await,
        "the setsid+timeout child outlived deleteSession"
    );
}

/// A sandbox sharing a volume swaps a folder of it for a link to `/`, over and over, while
/// other sandboxes that mount that folder (`subpath`) start. A check of the path followed by
/// a mount of the same path (what the backend did) loses this race now and then: the starting
/// sandbox gets this machine's `/` read-write. Mounting the folder that was opened without
/// following links (`openat2`, `/proc/self/fd/N`) leaves nothing to race.
#[tokio::test]
async fn a_volume_subpath_swapped_for_a_link_never_mounts_this_machines_root() {
    const VICTIMS: usize = 40;
    let env = common::start().await;
    let (s, vol) = env
        .json(
            Method::POST,
            &env.api("/volumes"),
            Some(json!({"name": "raced"})),
        )
        .await;
    assert_eq!(s, 200, "{vol}");
    let volume = vol["id"].as_str().unwrap().to_string();
    let attacker = env
        .create(json!({"volumes": [{"volumeId": volume, "mountPath": "/mnt/v"}]}))
        .await;
    let attacker = attacker["id"].as_str().unwrap().to_string();
    // Bounded: it stops at the stop file or after 10 million swaps.
    sh(
        &env,
        &attacker,
        "cd /mnt/v && nohup bash -c 'i=0; while [ ! -e stop ] && [ $i -lt 10000000 ]; do rm -rf sub; mkdir sub; rmdir sub; ln -s / sub; i=$((i+1)); echo $i > count; done' >/dev/null 2>&1 &",
    )
    .await;
    // Wait for the loop to be swapping (a state, not a duration).
    for _ in 0..600 {
        if sh(&env, &attacker, "cat /mnt/v/count 2>/dev/null || echo 0")
            .await
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            > 10
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut started, mut refused) = (0, 0);
    for _ in 0..VICTIMS {
        let victim = bounded(
            "create",
            env.json(
                Method::POST,
                &env.api("/sandbox"),
                Some(json!({"volumes": [{"volumeId": volume, "mountPath": "/home/daytona/v", "subpath": "sub"}]})),
            ),
        )
        .await;
        if victim.0 != 200 {
            refused += 1;
            continue;
        }
        let id = victim.1["id"].as_str().unwrap().to_string();
        let (s, v) = bounded(
            "exec",
            env.exec(
                &id,
                json!({"command": "if [ -e /home/daytona/v/etc/passwd ] || [ -d /home/daytona/v/usr/bin ]; then echo ESCAPED; else echo contained; fi"}),
            ),
        )
        .await;
        if s == 200 {
            started += 1;
            assert_eq!(
                v["result"].as_str().unwrap_or_default(),
                "contained\n",
                "a sandbox started with this machine's / mounted as its volume"
            );
        } else {
            refused += 1;
        }
        env.json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
            .await;
    }
    sh(&env, &attacker, "touch /mnt/v/stop").await;
    eprintln!("volume race: {started} started with the volume's folder, {refused} refused");
    assert_eq!(started + refused, VICTIMS);
}

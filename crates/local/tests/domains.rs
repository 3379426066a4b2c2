//! `domainAllowList`, attacked from inside the sandbox: two servers on this machine's
//! loopback stand for `allowed.test` and `other.test` (the backend's proxies are told where
//! they are through `egress_hosts`, as a local mirror would be); the sandbox reaches the
//! listed one by name, and nothing of the other: not by name, not by a raw address (the
//! other server's port is even relayed into sandboxes, as `FORGE_SANDBOX_HOST_PORTS` does for
//! a local git server), not with a forged `Host`, absolute-form target, `CONNECT` or TLS
//! server name sent to the allowed name's proxy.

use crate::common;
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on 127.0.0.1 that keeps the first bytes of every connection and answers an HTTP
/// request with its name (anything else, a TLS ClientHello, is kept and the connection
/// closed).
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn recorder(name: &'static str) -> Recorder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // Until a whole request head, or the client has nothing more to say for now.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_millis(500), conn.read(&mut buf))
                        .await
                    {
                        Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let http = got.windows(4).any(|w| w == b"\r\n\r\n");
                kept.lock().unwrap().push(got);
                if http {
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                        name.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    Recorder { addr, seen }
}

async fn sh(env: &common::Env, id: &str, command: &str) -> String {
    let (s, v) = env
        .exec(id, json!({"command": command, "timeout": 60}))
        .await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_domain_allow_list_lets_through_its_names_and_nothing_else() {
    let (allowed, other) = (recorder("allowed").await, recorder("other").await);
    let env = common::start_with(|c| {
        c.host_ports = vec![other.addr.port()];
        for (name, port, to) in [
            ("allowed.test", 80, allowed.addr),
            ("allowed.test", 443, allowed.addr),
            ("a.wild.test", 80, allowed.addr),
            ("other.test", 80, other.addr),
            ("other.test", 443, other.addr),
        ] {
            c.egress_hosts.insert((name.into(), port), to);
        }
    })
    .await;
    if env.backend.isolation().level != "container" {
        eprintln!("skipped: sandboxes are not containers here");
        return;
    }
    let sbx = env
        .create(json!({"domainAllowList": "Allowed.test, *.wild.test"}))
        .await;
    assert_eq!(sbx["domainAllowList"], "allowed.test,*.wild.test");
    let id = sbx["id"].as_str().unwrap().to_string();
    let other_port = other.addr.port();

    // Listed names resolve (to the proxy) and are reached.
    assert!(
        sh(&env, &id, "getent hosts allowed.test")
            .await
            .starts_with("10.0.2.3 "),
        "the backend's resolver answers a listed name"
    );
    assert_eq!(
        sh(&env, &id, "curl -s -m 20 http://allowed.test/").await,
        "allowed"
    );
    assert_eq!(
        sh(&env, &id, "curl -s -m 20 http://a.wild.test/").await,
        "allowed"
    );
    sh(
        &env,
        &id,
        "curl -sk -m 10 https://allowed.test/ >/dev/null; true",
    )
    .await;
    assert!(
        allowed
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.first() == Some(&22) && c.windows(12).any(|w| w == b"allowed.test")),
        "a TLS ClientHello for allowed.test reached its server"
    );

    // Everything else fails, and reaches nothing.
    let attacks = [
        // DNS for another name.
        "getent hosts other.test || echo unresolved",
        "curl -s -m 10 http://other.test/; echo \" exit $?\"",
        // A raw address: the other server's port relayed into sandboxes, and the host's
        // address through the network tool's gateway.
        &format!("curl -s -m 10 http://127.0.0.1:{other_port}/; echo \" exit $?\""),
        &format!("curl -s -m 10 http://10.0.2.2:{other_port}/; echo \" exit $?\""),
        // The allowed name's proxy, asked for the other.
        "curl -s -m 20 -H 'Host: other.test' http://allowed.test/; echo \" exit $?\"",
        "curl -s -m 20 -x http://allowed.test:80 http://other.test/; echo \" exit $?\"",
        "curl -s -m 20 -p -x http://allowed.test:80 http://other.test/; echo \" exit $?\"",
        "curl -sk -m 20 --connect-to other.test:443:allowed.test:443 https://other.test/; echo \" exit $?\"",
        // Its resolver's and proxies' ports cannot be taken over by the sandbox.
        "python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 81)); print(\"bound\")' 2>&1 | tail -1",
    ];
    // Every attack is tried (a vulnerable build shows which got through), then judged.
    let mut breaches = Vec::new();
    for attack in attacks {
        let out = sh(&env, &id, attack).await;
        if (out.contains("other") && !out.contains("refused")) || out.contains("bound") {
            breaches.push(format!("{attack}\n  => {out}"));
        }
    }
    let reached = other.seen.lock().unwrap().len();
    assert!(
        breaches.is_empty() && reached == 0,
        "{reached} connections reached the other server; attacks that got through:\n{}",
        breaches.join("\n")
    );
    assert_eq!(
        sh(&env, &id, "getent hosts other.test || echo unresolved").await,
        "unresolved\n"
    );
    assert!(sh(
        &env,
        &id,
        "curl -s -m 20 -H 'Host: other.test' http://allowed.test/"
    )
    .await
    .contains("other.test is not in this sandbox's domainAllowList"),);
    // Changed on the running sandbox: the other name now, the first one no longer.
    let set = |body: serde_json::Value| {
        let env = &env;
        let id = id.clone();
        async move {
            env.json(
                Method::POST,
                &env.api(&format!("/sandbox/{id}/network-settings")),
                Some(body),
            )
            .await
        }
    };
    let (s, v) = set(json!({"domainAllowList": "other.test"})).await;
    assert_eq!(
        (s, v["domainAllowList"].as_str()),
        (200, Some("other.test")),
        "{v}"
    );
    assert_eq!(
        sh(&env, &id, "curl -s -m 20 http://other.test/").await,
        "other"
    );
    assert_eq!(
        sh(&env, &id, "getent hosts allowed.test || echo unresolved").await,
        "unresolved\n"
    );
    // Both kinds of list at once are refused by name; a malformed entry is named.
    let (s, v) = set(json!({"networkAllowList": "10.0.0.0/8"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("domainAllowList"),
        "{v}"
    );
    let (s, v) = set(json!({"domainAllowList": "http://x.test/"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("http://x.test/"),
        "{v}"
    );
    // Lifted: the sandbox routes by itself again (the relayed port answers).
    let (s, v) = set(json!({"domainAllowList": ""})).await;
    assert_eq!((s, v.get("domainAllowList")), (200, None), "{v}");
    let mut out = String::new();
    for _ in 0..100 {
        out = sh(
            &env,
            &id,
            &format!("curl -s -m 5 http://127.0.0.1:{other_port}/"),
        )
        .await;
        if out == "other" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(out, "other", "the network is attached again");
}

/// Without a network tool (`FORGE_SANDBOX_NETWORK=none`, or no slirp4netns on this machine) a
/// domain list still works: the sandbox reaches its names through the backend only anyway.
#[tokio::test]
async fn a_domain_allow_list_needs_no_network_tool() {
    let allowed = recorder("allowed").await;
    let env = common::start_with(|c| {
        c.network = Some("none".into());
        c.egress_hosts
            .insert(("allowed.test".into(), 80), allowed.addr);
    })
    .await;
    if env.backend.isolation().level != "container" {
        eprintln!("skipped: sandboxes are not containers here");
        return;
    }
    let id = env.create(json!({"domainAllowList": "allowed.test"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sh(
            &env,
            &id,
            "curl -s -m 20 http://allowed.test/; echo; getent hosts other.test || echo unresolved"
        )
        .await,
        "allowed\nunresolved\n"
    );
}

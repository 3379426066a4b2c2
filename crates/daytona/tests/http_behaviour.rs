//! Error mapping, retries, deadlines and cancellation against a scripted HTTP server on
//! 127.0.0.1 that counts the requests it gets.

use crate::common;

use common::{bounded, json, raw, sandbox_json, Scripted};
use forge_daytona::{CallOptions, CancellationToken, CreateParams, Error, RetryConfig};
use serde_json::json as j;
use std::time::Duration;

#[tokio::test]
async fn error_shapes_map_to_codes() {
    bounded(async {
        let cases: Vec<(u16, serde_json::Value, &str)> = vec![
            (404, j!({"path":"/api/sandbox/x","statusCode":404,"error":"Not Found","message":"Sandbox with ID or name x not found"}), "DAYTONA_NOT_FOUND"),
            (401, j!({"statusCode":401,"message":"Unauthorized","code":"UNAUTHORIZED","source":"DAYTONA_API"}), "DAYTONA_AUTH"),
            (403, j!({"statusCode":403,"message":"forbidden"}), "DAYTONA_FORBIDDEN"),
            (400, j!({"statusCode":400,"message":"Total memory limit exceeded. Maximum allowed: 8."}), "DAYTONA_QUOTA_EXCEEDED"),
            (400, j!({"statusCode":400,"message":["name must be a string"]}), "DAYTONA_BAD_REQUEST"),
            (408, j!({"statusCode":408,"message":"timeout","code":"REQUEST_TIMEOUT"}), "DAYTONA_TIMEOUT"),
            (409, j!({"statusCode":409,"message":"Sandbox state change in progress"}), "DAYTONA_CONFLICT"),
            (410, j!({"statusCode":410,"message":"session ended","code":"SESSION_ENDED"}), "DAYTONA_GONE"),
            (500, j!({"statusCode":500,"message":"boom"}), "DAYTONA_SERVER_ERROR"),
        ];
        for (status, body, code) in cases {
            let b = body.clone();
            let srv = Scripted::start(move |_, _| json(status, b.clone())).await;
            let e = srv.client_with("k-test", RetryConfig::none()).get("x").await.unwrap_err();
            assert_eq!(e.code(), code, "{status} {body}");
            assert_eq!(e.status(), Some(status));
            let msg = body["message"].to_string();
            let first = msg.trim_matches(|c| c == '"' || c == '[' || c == ']');
            assert!(e.to_string().contains(first), "{e} vs {first}");
        }
    })
    .await;
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_wait() {
    bounded(async {
        let srv = Scripted::start(|_, n| {
            if n == 0 {
                raw(
                    429,
                    &[("retry-after-authenticated", "0.05")],
                    r#"{"statusCode":429,"message":"Rate limit exceeded"}"#,
                )
            } else {
                json(200, sandbox_json("a", "started", "http://x/toolbox"))
            }
        })
        .await;
        let s = srv.client("k").get("a").await.unwrap();
        assert_eq!(s.id, "a");
        assert_eq!(srv.count(), 2);

        // Without retries the error carries the wait.
        let srv = Scripted::start(|_, _| raw(429, &[("retry-after", "7")], "")).await;
        let e = srv
            .client_with("k", RetryConfig::none())
            .get("a")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_RATE_LIMITED");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.retryable());
    })
    .await;
}

#[tokio::test]
async fn idempotent_calls_retry_503_until_max_attempts() {
    bounded(async {
        let srv =
            Scripted::start(|_, _| json(503, j!({"statusCode":503,"message":"unavailable"}))).await;
        let e = srv.client("k").get("a").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_SERVER_ERROR");
        assert_eq!(srv.count(), 3);
    })
    .await;
}

#[tokio::test]
async fn create_and_execute_are_never_sent_twice() {
    bounded(async {
        let srv =
            Scripted::start(|_, _| json(503, j!({"statusCode":503,"message":"unavailable"}))).await;
        let c = srv.client("k");
        let e = c
            .create(&CreateParams::default(), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_SERVER_ERROR");
        assert_eq!(srv.count(), 1);

        let srv = Scripted::start(|_, _| raw(429, &[("retry-after", "0")], "")).await;
        let e = srv
            .client("k")
            .create(&CreateParams::default(), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_RATE_LIMITED");
        assert_eq!(srv.count(), 1);
    })
    .await;
}

/// A server that reads each request and then drops the connection without answering.
async fn resetting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let c = c2.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        c.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                drop(sock);
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn resets_after_send_retry_only_idempotent_calls() {
    use std::sync::atomic::Ordering;
    bounded(async {
        let (url, count) = resetting_server().await;
        let client = |u: &str| {
            forge_daytona::Client::from_resolved(
                forge_daytona::DaytonaConfig::new()
                    .with_api_key("k")
                    .with_api_url(format!("{u}/api"))
                    .with_retry(RetryConfig {
                        max_attempts: 3,
                        initial_backoff_ms: 5,
                        max_backoff_ms: 20,
                    })
                    .validate()
                    .unwrap(),
            )
            .unwrap()
        };
        let e = client(&url).get("a").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_CONNECTION");
        assert_eq!(count.load(Ordering::SeqCst), 3);

        let (url, count) = resetting_server().await;
        let e = client(&url)
            .create(&CreateParams::default(), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_CONNECTION");
        assert_eq!(count.load(Ordering::SeqCst), 1);

        // Nothing listening: a connect failure, typed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let e = client(&dead)
            .create(&CreateParams::default(), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_CONNECTION");
        assert!(e.retryable());
    })
    .await;
}

#[tokio::test]
async fn deadline_covers_retries_and_cancel_aborts() {
    bounded(async {
        // The server asks for a wait longer than the deadline: no sleeping past it.
        let srv = Scripted::start(|_, _| raw(503, &[("retry-after", "30")], "")).await;
        let opts = CallOptions::new().with_timeout(Duration::from_secs(2));
        let e = srv.client("k").get_with("a", &opts).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_SERVER_ERROR");
        assert_eq!(srv.count(), 1);

        // A server that never answers: the deadline ends the call.
        let srv = Scripted::start_async(std::sync::Arc::new(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_mins(10)).await;
                json(200, j!({}))
            })
        }))
        .await;
        let opts = CallOptions::new().with_timeout(Duration::from_millis(300));
        let e = srv.client("k").get_with("a", &opts).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT");
        assert_eq!(e.status(), None);

        let token = cancel_after(100);
        let opts = CallOptions::new().with_cancel(token);
        let e = srv.client("k").get_with("a", &opts).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_ABORTED");
    })
    .await;
}

#[tokio::test]
async fn malformed_answers_are_bad_response() {
    bounded(async {
        let srv =
            Scripted::start(|_, _| raw(200, &[("content-type", "application/json")], "{not json"))
                .await;
        let e = srv.client("k").get("a").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_BAD_RESPONSE");
        let srv = Scripted::start(|_, _| json(200, j!({"items": "nope"}))).await;
        let e = srv
            .client("k")
            .list(
                &forge_daytona::ListQuery::default(),
                &CallOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_BAD_RESPONSE");
        // An HTML error page keeps its status.
        let srv = Scripted::start(|_, _| raw(502, &[], "<html>bad gateway</html>")).await;
        let e = srv
            .client_with("k", RetryConfig::none())
            .get("a")
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status()), ("DAYTONA_SERVER_ERROR", Some(502)));
    })
    .await;
}

#[tokio::test]
async fn waiting_fails_at_once_on_error_state_with_the_reason() {
    bounded(async {
        let srv = Scripted::start(|s, _| {
            if s.method == "POST" {
                json(200, sandbox_json("a", "creating", "http://x/toolbox"))
            } else {
                let mut v = sandbox_json("a", "build_failed", "http://x/toolbox");
                v["errorReason"] = j!("image pull failed");
                json(200, v)
            }
        })
        .await;
        let e = srv
            .client("k")
            .create(&CreateParams::default(), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_SANDBOX_FAILED");
        assert!(e.to_string().contains("image pull failed"), "{e}");
        assert_eq!(srv.count(), 2);

        // Never reaching `started`: the call's deadline ends the wait.
        let srv =
            Scripted::start(|_, _| json(200, sandbox_json("a", "starting", "http://x/toolbox")))
                .await;
        let opts = CallOptions::new().with_timeout(Duration::from_millis(500));
        let e = srv.client("k").start("a", &opts).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT");
    })
    .await;
}

#[tokio::test]
async fn no_secret_in_errors() {
    bounded(async {
        let srv = Scripted::start(|s, _| {
            let auth = s.headers.get("authorization").cloned().unwrap_or_default();
            json(
                400,
                j!({"statusCode":400,"message": format!("bad {auth} for https://x-access-token:ghp_leak123@github.com/o/r")}),
            )
        })
        .await;
        let e = srv.client("sk-distinctive-key-42").get("a").await.unwrap_err();
        let all = format!("{e} {e:?}");
        assert!(!all.contains("sk-distinctive-key-42"), "{all}");
        assert!(!all.contains("ghp_leak123"), "{all}");
        assert!(matches!(e, Error::BadRequest(_)));
    })
    .await;
}

#[tokio::test]
async fn list_all_follows_cursors_and_sends_labels_as_json() {
    bounded(async {
        let srv = Scripted::start(|s, _| {
            let cursor = s
                .query
                .iter()
                .find(|(k, _)| k == "cursor")
                .map(|(_, v)| v.clone());
            match cursor.as_deref() {
                None => json(
                    200,
                    j!({"items":[sandbox_json("a","started","t")], "nextCursor":"c2"}),
                ),
                Some("c2") => json(
                    200,
                    j!({"items":[sandbox_json("b","started","t")], "nextCursor":""}),
                ),
                _ => json(200, j!({"items":[], "nextCursor": null})),
            }
        })
        .await;
        let q = forge_daytona::ListQuery {
            labels: Some([("project".to_string(), "x".to_string())].into()),
            states: vec![
                forge_daytona::wire::SandboxState::Started,
                forge_daytona::wire::SandboxState::Stopped,
            ],
            limit: Some(1),
            ..Default::default()
        };
        let all = srv
            .client("k")
            .list_all(&q, &CallOptions::default())
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let seen = srv.seen.lock().unwrap().clone();
        let q0 = &seen[0].query;
        assert!(q0.contains(&("labels".into(), r#"{"project":"x"}"#.into())));
        assert_eq!(q0.iter().filter(|(k, _)| k == "states").count(), 2);
        assert!(seen[1].query.contains(&("cursor".into(), "c2".into())));
    })
    .await;
}

#[tokio::test]
async fn toolbox_calls_take_a_deadline_and_a_cancel_token() {
    bounded(async {
        let srv = Scripted::start_async(std::sync::Arc::new(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_mins(10)).await;
                json(200, j!({}))
            })
        }))
        .await;
        let sandbox: forge_daytona::wire::Sandbox = serde_json::from_value(sandbox_json(
            "a",
            "started",
            &format!("{}/toolbox", srv.url),
        ))
        .unwrap();
        let tb = srv.client("k").toolbox(&sandbox).await.unwrap();
        assert_eq!(tb.base_url(), format!("{}/toolbox/a", srv.url));
        let short = CallOptions::new().with_timeout(Duration::from_millis(200));
        let e = tb
            .fs()
            .with_options(short.clone())
            .list("x")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT");
        let e = tb
            .git()
            .with_options(short)
            .status("repo")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT");
        let token = CancellationToken::new();
        token.cancel();
        let e = tb
            .process()
            .with_options(CallOptions::new().with_cancel(token))
            .list_sessions()
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_ABORTED");
    })
    .await;
}

#[tokio::test]
async fn a_log_stream_cut_mid_way_ends_with_a_typed_error() {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    bounded(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                let _ = socket
                    .send(Message::Binary(axum::body::Bytes::from_static(
                        b"\x01\x01\x01partial line\n\x02\x02",
                    )))
                    .await;
                // Dropped without a close frame: the connection just ends.
            })
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let sandbox: forge_daytona::wire::Sandbox =
            serde_json::from_value(sandbox_json("a", "started", &format!("{base}/toolbox")))
                .unwrap();
        let srv = Scripted::start(|_, _| json(200, j!({}))).await;
        let tb = srv.client("k").toolbox(&sandbox).await.unwrap();
        let mut stream = tb
            .process()
            .stream_session_command_logs(
                "s",
                "c",
                &CallOptions::new().with_timeout(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        let first = stream.next_chunk().await.unwrap().unwrap();
        assert_eq!(first.data, "partial line\n");
        let mut last = None;
        while let Some(item) = stream.next_chunk().await {
            last = Some(item);
        }
        let e = last.expect("an item after the cut").unwrap_err();
        assert_eq!(e.code(), "DAYTONA_CONNECTION", "{e}");
        server.abort();
    })
    .await;
}

/// A token cancelled `ms` milliseconds from now.
fn cancel_after(ms: u64) -> CancellationToken {
    let token = CancellationToken::new();
    let t2 = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        t2.cancel();
    });
    token
}

/// The requests a scripted server saw, as `METHOD path`.
fn requests(srv: &Scripted) -> Vec<String> {
    srv.seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// Waits (bounded: 60 s, for a loaded machine) until the server has seen `n` requests.
async fn until_seen(srv: &Scripted, n: usize) {
    for _ in 0..3000 {
        if srv.count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_aborted_or_timed_out_create_deletes_what_it_made() {
    bounded(async {
        // Aborted while the POST is in flight: the answer still comes, and names the sandbox
        // to delete.
        let srv = Scripted::start_async(std::sync::Arc::new(|s, _| {
            Box::pin(async move {
                if s.method == "POST" {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    json(200, sandbox_json("made", "started", "http://x/toolbox"))
                } else {
                    json(200, j!({}))
                }
            })
        }))
        .await;
        let token = cancel_after(100);
        let opts = CallOptions::new().with_cancel(token);
        let e = srv
            .client("k")
            .create(&CreateParams::default(), &opts)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_ABORTED");
        until_seen(&srv, 2).await;
        assert_eq!(
            requests(&srv),
            ["POST /api/sandbox", "DELETE /api/sandbox/made"]
        );

        // Aborted, or out of time, while waiting for `started`.
        let token = cancel_after(250);
        let cases = [
            (
                "slow",
                CallOptions::new().with_cancel(token),
                "DAYTONA_ABORTED",
            ),
            (
                "late",
                CallOptions::new().with_timeout(Duration::from_millis(300)),
                "DAYTONA_TIMEOUT",
            ),
        ];
        for (id, opts, code) in cases {
            let srv = Scripted::start(move |s, _| match s.method.as_str() {
                "DELETE" => json(200, j!({})),
                _ => json(200, sandbox_json(id, "creating", "http://x/toolbox")),
            })
            .await;
            let e = srv
                .client("k")
                .create(&CreateParams::default(), &opts)
                .await
                .unwrap_err();
            assert_eq!(e.code(), code);
            let seen = requests(&srv);
            assert_eq!(seen.first().map(String::as_str), Some("POST /api/sandbox"));
            assert_eq!(seen.iter().filter(|r| r.starts_with("POST")).count(), 1);
            assert_eq!(seen.last(), Some(&format!("DELETE /api/sandbox/{id}")));
        }
    })
    .await;
}

/// A body of `total` bytes streamed in 1 MiB pieces, with no Content-Length (the client cannot
/// tell its size before reading it).
fn endless_json(total: usize) -> axum::response::Response {
    use axum::response::IntoResponse;
    let piece = vec![b' '; 1024 * 1024];
    let pieces = (0..total / piece.len())
        .map(move |_| Ok::<_, std::io::Error>(axum::body::Bytes::from(piece.clone())));
    (
        [("content-type", "application/json")],
        axum::body::Body::from_stream(futures_util::stream::iter(pieces)),
    )
        .into_response()
}

#[tokio::test]
async fn an_oversized_answer_is_a_typed_error() {
    bounded(async {
        // 100 MiB of whitespace: more than the default cap (64 MiB), streamed.
        let srv = Scripted::start(|_, _| endless_json(100 * 1024 * 1024)).await;
        let e = srv
            .client_with("k", RetryConfig::none())
            .get("x")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_RESPONSE_TOO_LARGE", "{e}");
        assert!(e.to_string().contains("67108864"), "{e}");
        assert!(!e.retryable());

        // A Content-Length past a configured cap is refused before the body is read.
        let srv = Scripted::start(|_, _| json(200, sandbox_json("a", "started", "http://x"))).await;
        let client = forge_daytona::Client::from_resolved(
            forge_daytona::DaytonaConfig::new()
                .with_api_key("k")
                .with_api_url(format!("{}/api", srv.url))
                .with_retry(RetryConfig::none())
                .with_max_response_bytes(64)
                .validate()
                .unwrap(),
        )
        .unwrap();
        let e = client.get("a").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_RESPONSE_TOO_LARGE", "{e}");
    })
    .await;
}

#[test]
fn the_default_request_timeout_is_minutes_not_a_day() {
    let c = forge_daytona::DaytonaConfig::new()
        .with_api_key("k")
        .validate()
        .unwrap();
    assert_eq!(
        c.request_timeout,
        Some(forge_daytona::DEFAULT_REQUEST_TIMEOUT)
    );
    assert!(forge_daytona::DEFAULT_REQUEST_TIMEOUT <= Duration::from_mins(10));
    let c = forge_daytona::DaytonaConfig::new()
        .with_api_key("k")
        .with_request_timeout(Duration::from_secs(5))
        .validate()
        .unwrap();
    assert_eq!(c.request_timeout, Some(Duration::from_secs(5)));
}

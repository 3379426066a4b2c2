//! `FORGE_LOG=debug` (issue 6): every HTTP request prints one stderr line with method, path,
//! status (or error code), milliseconds and attempt number, and nothing secret.
//!
//! `FORGE_LOG` is read once per process, so the test re-runs this test binary as a child with
//! the variable set (only the `child_makes_requests` test, which does nothing otherwise) and
//! reads the child's stderr.

use forge_daytona::{
    CallOptions, Client, CreateParams, DaytonaConfig, ExecOptions, RetryConfig, UploadItem,
    UploadSource,
};
use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "FORGE_LOGGING_TEST_CHILD";
const KEY: &str = "sk-LOGTEST-key-7d1c93";
const PATH_SECRET: &str = "pathvalue-LOGTEST-41f0";

#[tokio::test]
async fn child_makes_requests() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backend = forge_local::LocalBackend::start(forge_local::LocalConfig {
        home: Some(dir.path().to_path_buf()),
        api_key: Some(KEY.to_string()),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = Client::from_resolved(
        DaytonaConfig::new()
            .with_api_key(KEY)
            .with_api_url(backend.api_url())
            .validate()
            .unwrap(),
    )
    .unwrap();
    let opts = CallOptions::new().with_timeout(Duration::from_mins(1));
    let sb = client
        .create(&CreateParams::default(), &opts)
        .await
        .unwrap();
    let tb = client.toolbox(&sb).await.unwrap();
    let dest = format!("{PATH_SECRET}.txt");
    tb.fs()
        .upload(
            vec![UploadItem {
                source: UploadSource::Bytes(bytes::Bytes::from_static(b"hello")),
                destination: dest.clone(),
            }],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(&tb.fs().download(&dest, &opts).await.unwrap()[..], b"hello");
    assert!(tb.fs().info(&format!("/nope-{PATH_SECRET}")).await.is_err());
    // A session log stream: the WebSocket upgrade is logged too.
    let spawned = tb
        .process()
        .spawn("echo hi", &ExecOptions::default(), &opts)
        .await
        .unwrap();
    let mut logs = spawned.logs(&opts).await.unwrap();
    while logs.next().await.is_some() {}
    spawned.kill().await;
    // 401 with a wrong key (no retries for it).
    let wrong = Client::from_resolved(
        DaytonaConfig::new()
            .with_api_key("sk-LOGTEST-wrong-key")
            .with_api_url(backend.api_url())
            .validate()
            .unwrap(),
    )
    .unwrap();
    assert!(wrong.get(&sb.id).await.is_err());
    // Nothing listens: connect errors, retried, each attempt logged.
    let dead = Client::from_resolved(
        DaytonaConfig::new()
            .with_api_key(KEY)
            .with_api_url("http://user:pw-LOGTEST@127.0.0.1:9/api")
            .with_retry(RetryConfig {
                max_attempts: 2,
                initial_backoff_ms: 1,
                max_backoff_ms: 2,
            })
            .validate()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        dead.get("x").await.unwrap_err().code(),
        "DAYTONA_CONNECTION"
    );
    client.delete(&sb.id, true, &opts).await.unwrap();
    backend.shutdown().await;
}

#[test]
fn debug_log_has_one_line_per_request_and_no_secret() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["logging::child_makes_requests", "--exact", "--nocapture"])
        .env(CHILD, "1")
        .env("FORGE_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("forge: "))
        .collect();
    for l in &lines {
        // forge: METHOD PATH OUTCOME NNms attempt=N
        let parts: Vec<&str> = l.split(' ').collect();
        assert_eq!(parts.len(), 6, "{l}");
        assert!(parts[2].starts_with('/'), "{l}");
        assert!(parts[4].ends_with("ms"), "{l}");
        assert!(parts[5].starts_with("attempt="), "{l}");
    }
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("POST /api/sandbox 200"), "{stderr}");
    assert!(has(" 404 "), "{stderr}");
    assert!(has(" 401 "), "{stderr}");
    assert!(has("GET /api/sandbox/x DAYTONA_CONNECTION"), "{stderr}");
    assert!(has("DAYTONA_CONNECTION") && has("attempt=2"), "{stderr}");
    assert!(has(" 101 "), "the WebSocket upgrade: {stderr}");
    assert!(has("/files/bulk-upload 200"), "{stderr}");
    assert!(has("?path="), "{stderr}");
    for secret in [KEY, "wrong-key", PATH_SECRET, "pw-LOGTEST", "Bearer"] {
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
        assert!(!stdout.contains(secret), "{secret} in stdout:\n{stdout}");
    }
}

//! The client's snapshots, volumes, fork, pause and network settings against the embedded
//! backend.

use crate::common::{bounded, Backend};
use forge_daytona::{CallOptions, CreateParams, ExecOptions, SnapshotSource};
use forge_wire::{SandboxState, SnapshotState};

async fn sh(b: &Backend, s: &forge_wire::Sandbox, cmd: &str) -> String {
    let tb = b.client.toolbox(s).await.unwrap();
    tb.process()
        .exec(cmd, &ExecOptions::default(), &CallOptions::new())
        .await
        .unwrap()
        .stdout
}

#[tokio::test]
async fn snapshots_volumes_fork_pause_and_network() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let o = CallOptions::new();
        // A snapshot built from a Dockerfile; a sandbox from it has what the build made.
        let snap = c
            .create_snapshot(
                "built",
                &SnapshotSource::Dockerfile(
                    "FROM x\nENV A=1\nRUN echo made > /home/daytona/m.txt\n".into(),
                ),
                &o,
            )
            .await
            .unwrap();
        assert_eq!(snap.state, SnapshotState::Active);
        let s = c
            .create(
                &CreateParams {
                    snapshot: Some("built".into()),
                    ..Default::default()
                },
                &o,
            )
            .await
            .unwrap();
        assert_eq!(sh(&b, &s, "cat m.txt; echo $A").await, "made\n1\n");
        // A failing build says why, as an error.
        let e = c
            .create_snapshot(
                "bad",
                &SnapshotSource::Dockerfile("FROM x\nRUN exit 3\n".into()),
                &o,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("exited with 3"), "{e}");
        assert_eq!(c.snapshots(1, 10, &o).await.unwrap().total, 2);
        c.delete_snapshot("bad", &o).await.unwrap();

        // Fork: a copy of the files; pause and resume.
        sh(&b, &s, "echo v1 > f").await;
        let f = c.fork(&s.id, Some("copy"), &o).await.unwrap();
        assert_eq!(sh(&b, &f, "cat f").await, "v1\n");
        let p = c.pause(&s.id, &o).await.unwrap();
        assert_eq!(p.state, SandboxState::Paused);
        let r = c.start(&s.id, &o).await.unwrap();
        assert_eq!(r.state, SandboxState::Started);
        let snap2 = c.snapshot_sandbox(&s.id, "of-s", &o).await.unwrap();
        assert_eq!(snap2.source_sandbox_id.as_deref(), Some(s.id.as_str()));

        // Volumes.
        let v = c.create_volume("vol", &o).await.unwrap();
        assert_eq!(c.volume("vol", &o).await.unwrap().id, v.id);
        assert_eq!(c.volumes(&o).await.unwrap().len(), 1);
        c.delete_volume(&v.id, &o).await.unwrap();
        assert!(c.volumes(&o).await.unwrap().is_empty());

        // Network block-all on a running sandbox.
        let blocked = c.set_network_block_all(&s.id, true, &o).await.unwrap();
        assert!(blocked.network_block_all);
        // Bad input is a typed error naming what was wrong.
        let e = c.create_volume(" ", &o).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
    })
    .await;
}

/// Polls `check` (bounded by the test's own bound) until it holds.
async fn until<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) {
    while !check().await {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn network_block_all_blocks_the_allowed_host_ports_too() {
    bounded(async {
        let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = host.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new().fallback(|| async { "host-ok" });
            let _ = axum::serve(host, app).await;
        });
        let b = Backend::start_reaching(&[port]).await;
        let c = &b.client;
        let o = CallOptions::new();
        let s = c.create(&CreateParams::default(), &o).await.unwrap();
        let probe = format!(
            "node -e \"fetch('http://127.0.0.1:{port}/').then((r) => r.text()).then((t) => console.log(t), () => console.log('blocked'))\""
        );
        assert_eq!(sh(&b, &s, &probe).await, "host-ok\n");
        c.set_network_block_all(&s.id, true, &o).await.unwrap();
        until(|| async { sh(&b, &s, &probe).await == "blocked\n" }).await;
        c.set_network_block_all(&s.id, false, &o).await.unwrap();
        until(|| async { sh(&b, &s, &probe).await == "host-ok\n" }).await;
    })
    .await;
}

#[tokio::test]
async fn a_signed_preview_url_opens_without_a_header_until_expired() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let o = CallOptions::new();
        let s = c.create(&CreateParams::default(), &o).await.unwrap();
        let tb = c.toolbox(&s).await.unwrap();
        let server =
            "require('http').createServer((q, s) => s.end('signed ' + q.url)).listen(3000)";
        tb.process()
            .spawn(
                &format!("node -e \"{server}\""),
                &ExecOptions::default(),
                &o,
            )
            .await
            .unwrap();
        let link = c
            .signed_preview_url(&s.id, 3000, Some(std::time::Duration::from_mins(10)))
            .await
            .unwrap();
        assert_eq!((link.sandbox_id.as_str(), link.port), (s.id.as_str(), 3000));
        assert!(
            !format!("{link:?}").contains(&link.token),
            "Debug hides the token"
        );
        let http = reqwest::Client::new();
        let get = |url: String| {
            let http = http.clone();
            async move {
                match http.get(url).send().await {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(_) => (0, String::new()),
                }
            }
        };
        until(|| async { get(link.url.clone()).await.0 == 200 }).await;
        assert_eq!(
            get(format!("{}x", link.url)).await,
            (200, "signed /x".into())
        );
        c.expire_signed_preview_url(&s.id, 3000, &link.token)
            .await
            .unwrap();
        assert_eq!(get(link.url.clone()).await.0, 401);
        let e = c
            .expire_signed_preview_url(&s.id, 0, &link.token)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
    })
    .await;
}

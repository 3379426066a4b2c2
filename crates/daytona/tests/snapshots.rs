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

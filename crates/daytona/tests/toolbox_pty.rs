//! PTY sessions against the embedded backend over real HTTP and WebSocket: a real shell on a
//! real terminal. Waits are for output seen, never for times.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::{CallOptions, PtyOptions, PtyOutput};
use std::time::Duration;

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_secs(90))
}

/// Reads output into `seen` until it holds `needle`; a minute without it fails, showing what
/// the terminal printed.
async fn until(out: &mut PtyOutput, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let next = tokio::time::timeout(Duration::from_mins(1), out.next_chunk()).await;
        let Ok(Some(chunk)) = next else {
            panic!("no {needle:?} (ended: {}); saw {seen:?}", next.is_ok());
        };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn pty_input_output_resize_exit_code() {
    bounded(async {
        let b = Backend::start().await;
        let pty = b.toolbox().await.pty();
        let o = PtyOptions {
            id: "term".into(),
            cols: Some(100),
            rows: Some(30),
            envs: [("FROM_TEST".to_owned(), "yes".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let h = pty.create_and_connect(&o, &opts()).await.unwrap();
        let mut out = h.take_output().await.unwrap();
        let mut seen = String::new();

        h.send_input("echo hi-$((6*7)) $FROM_TEST\n").await.unwrap();
        until(&mut out, &mut seen, "hi-42 yes").await;

        let info = h.resize(120, 40).await.unwrap();
        assert_eq!((info.cols, info.rows), (120, 40));
        h.send_input("echo size=$(stty size)\n").await.unwrap();
        until(&mut out, &mut seen, "size=40 120").await;

        let listed = pty.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "term");
        assert_eq!(pty.get("term").await.unwrap().cols, 120);

        h.send_input("exit 3\n").await.unwrap();
        drop(out);
        let exit = tokio::time::timeout(Duration::from_mins(1), h.wait())
            .await
            .expect("the shell did not exit within a minute of `exit 3`")
            .unwrap();
        assert_eq!(exit.exit_code, 3);
        assert_eq!(
            pty.get("term").await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
    })
    .await;
}

#[tokio::test]
async fn pty_create_connect_kill_and_unknown_ids() {
    bounded(async {
        let b = Backend::start().await;
        let pty = b.toolbox().await.pty();
        let e = pty.connect("nope", &opts()).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND", "{e}");
        assert_eq!(
            pty.get("nope").await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        let bad = PtyOptions {
            id: "x".into(),
            cols: Some(0),
            ..Default::default()
        };
        assert_eq!(
            pty.create(&bad).await.unwrap_err().code(),
            "DAYTONA_INVALID_ARGUMENT"
        );

        // Created over HTTP, started by the first connect; killed over HTTP: 137.
        let id = pty
            .create(&PtyOptions {
                id: "doomed".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(id, "doomed");
        let h = pty.connect("doomed", &opts()).await.unwrap();
        let mut out = h.take_output().await.unwrap();
        let mut seen = String::new();
        h.send_input("echo started-$((1+1))\n").await.unwrap();
        until(&mut out, &mut seen, "started-2").await;
        h.send_input("sleep 600\n").await.unwrap();
        h.kill().await.unwrap();
        drop(out);
        let exit = h.wait().await.unwrap();
        assert_eq!(exit.exit_code, 137);
        assert_eq!(exit.reason.as_deref(), Some("SIGKILL"));
        assert!(pty.list().await.unwrap().is_empty());
    })
    .await;
}

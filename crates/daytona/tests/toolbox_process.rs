//! Sessions, live log streaming, exec with split streams and code run against the embedded
//! backend over real HTTP and WebSocket.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::{CallOptions, CodeRunParams, CreateParams, ExecOptions, LogStreamKind};
use futures_util::StreamExt;
use std::time::Duration;

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_secs(90))
}

#[tokio::test]
async fn sessions_sync_async_status_logs_input_delete() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        p.create_session("s1").await.unwrap();
        assert_eq!(
            p.create_session("s1").await.unwrap_err().code(),
            "DAYTONA_CONFLICT"
        );

        // Session state persists between commands.
        p.execute_session_command(
            "s1",
            "export GREETING=hi && mkdir -p d && cd d",
            false,
            &opts(),
        )
        .await
        .unwrap();
        let r = p
            .execute_session_command(
                "s1",
                "echo $GREETING; basename $PWD; echo oops >&2",
                false,
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.stdout.as_deref(), Some("hi\nd\n"));
        assert_eq!(r.stderr.as_deref(), Some("oops\n"));

        let started = p
            .execute_session_command("s1", "read line; echo got $line; exit 7", true, &opts())
            .await
            .unwrap();
        let c = p.get_session_command("s1", &started.cmd_id).await.unwrap();
        assert_eq!(c.exit_code, None);
        p.send_session_command_input("s1", &started.cmd_id, "abc\n")
            .await
            .unwrap();
        let code = exit_code_after(&p, "s1", &started.cmd_id).await;
        assert_eq!(code, Some(7));
        let logs = p
            .get_session_command_logs("s1", &started.cmd_id)
            .await
            .unwrap();
        // The daemon echoes session input into the command's log before the command's answer.
        assert_eq!(logs.stdout, "abc\ngot abc\n");
        let e = p
            .send_session_command_input("s1", &started.cmd_id, "late\n")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_GONE", "{e}");

        let session = p.get_session("s1").await.unwrap();
        assert_eq!(session.commands.len(), 3);
        assert!(p
            .list_sessions()
            .await
            .unwrap()
            .iter()
            .any(|s| s.session_id == "s1"));
        p.delete_session("s1").await.unwrap();
        assert_eq!(
            p.get_session("s1").await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            p.get_session_command("s1", "nope")
                .await
                .unwrap_err()
                .code(),
            "DAYTONA_NOT_FOUND"
        );
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn streaming_10000_interleaved_lines_arrive_once_in_order() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        p.create_session("stream").await.unwrap();
        let script = "i=0; while [ $i -lt 5000 ]; do echo \"out $i\"; echo \"err $i\" >&2; \
                      if [ $((i % 1000)) -eq 0 ]; then sleep 0.2; fi; i=$((i+1)); done";
        let started = p
            .execute_session_command("stream", script, true, &opts())
            .await
            .unwrap();
        let mut stream = p
            .stream_session_command_logs("stream", &started.cmd_id, &opts())
            .await
            .unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        let mut n = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            n += 1;
            if n.is_multiple_of(50) {
                // A slow reader: the bounded channel holds the socket back, nothing is lost.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            match chunk.stream {
                LogStreamKind::Stdout => out.push_str(&chunk.data),
                LogStreamKind::Stderr => err.push_str(&chunk.data),
            }
        }
        let want_out: String = (0..5000).map(|i| format!("out {i}\n")).collect();
        let want_err: String = (0..5000).map(|i| format!("err {i}\n")).collect();
        assert!(
            out == want_out,
            "stdout differs ({} vs {} bytes)",
            out.len(),
            want_out.len()
        );
        assert!(
            err == want_err,
            "stderr differs ({} vs {} bytes)",
            err.len(),
            want_err.len()
        );

        // Following a finished command gives its whole output and ends.
        let (o2, e2) = p
            .stream_session_command_logs("stream", &started.cmd_id, &opts())
            .await
            .unwrap()
            .collect_all()
            .await
            .unwrap();
        assert_eq!((o2.len(), e2.len()), (want_out.len(), want_err.len()));
        let e = p
            .stream_session_command_logs("stream", "nope", &opts())
            .await
            .err()
            .unwrap();
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND", "{e}");
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn exec_splits_streams_and_times_out() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        p.execute("mkdir -p work", &ExecOptions::default(), &opts())
            .await
            .unwrap();
        let o = ExecOptions {
            cwd: Some("work".into()),
            env: [("WHO".to_string(), "it's me".to_string())].into(),
            timeout: Some(Duration::from_secs(30)),
        };
        let r = p
            .exec("basename $PWD; echo \"$WHO\" >&2; exit 5", &o, &opts())
            .await
            .unwrap();
        assert_eq!(
            (r.stdout.as_str(), r.stderr.as_str(), r.exit_code),
            ("work\n", "it's me\n", 5)
        );

        let o = ExecOptions {
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let e = p
            .exec("sleep 30", &o, &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT");
        // The throw-away sessions are gone.
        let left = p.list_sessions().await.unwrap();
        assert!(
            left.iter()
                .all(|s| !s.session_id.starts_with("forge-exec-")),
            "{left:?}"
        );
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn code_run_uses_node() {
    bounded(async {
        let b = Backend::start().await;
        // JavaScript: TypeScript needs a Node with type stripping (22.6+), which this machine may lack.
        let params = CreateParams {
            language: Some("javascript".into()),
            ..Default::default()
        };
        let s = b.client.create(&params, &opts()).await.unwrap();
        let p = b.client.toolbox(&s).await.unwrap().process();
        let params = CodeRunParams {
            argv: vec!["a1".into()],
            env: [("X".to_string(), "42".to_string())].into(),
            timeout: Some(Duration::from_secs(30)),
        };
        let r = p
            .code_run(
                "console.log(process.env.X, process.argv.includes('a1'))",
                &params,
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!((r.exit_code, r.result.trim()), (0, "42 true"));
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn kill_session_command_stops_the_command() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        p.create_session("k").await.unwrap();
        let started = p
            .execute_session_command("k", "sleep 300 & sleep 301; echo never", true, &opts())
            .await
            .unwrap();
        p.kill_session_command("k", &started.cmd_id).await.unwrap();
        let code = exit_code_after(&p, "k", &started.cmd_id).await;
        assert!(matches!(code, Some(c) if c != 0), "{code:?}");
        let logs = p
            .get_session_command_logs("k", &started.cmd_id)
            .await
            .unwrap();
        assert!(!logs.stdout.contains("never"));
        p.delete_session("k").await.unwrap();
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn log_stream_with_a_wrong_key_is_auth() {
    bounded(async {
        let b = Backend::start().await;
        let s = b
            .client
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap();
        let good = b.client.toolbox(&s).await.unwrap().process();
        good.create_session("w").await.unwrap();
        let started = good
            .execute_session_command("w", "echo hi", true, &opts())
            .await
            .unwrap();
        let bad = b
            .client_with_key("wrong-key-77")
            .toolbox(&s)
            .await
            .unwrap()
            .process();
        let e = bad
            .stream_session_command_logs("w", &started.cmd_id, &opts())
            .await
            .err()
            .unwrap();
        assert_eq!(e.code(), "DAYTONA_AUTH", "{e}");
        assert!(!format!("{e:?}").contains("wrong-key-77"));
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn spawn_follow_wait_and_kill() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        let o = ExecOptions {
            env: [("N".to_string(), "3".to_string())].into(),
            ..Default::default()
        };
        let s = p
            .spawn(
                "for i in $(seq $N); do echo line $i; done; echo bad >&2; exit 2",
                &o,
                &opts(),
            )
            .await
            .unwrap();
        let (out, err) = s.logs(&opts()).await.unwrap().collect_all().await.unwrap();
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("line 1\nline 2\nline 3\n", "bad\n")
        );
        assert_eq!(s.wait(&opts()).await.unwrap(), 2);
        assert_eq!(s.output().await.unwrap().stdout, out);
        s.kill().await;
        assert_eq!(
            p.get_session(&s.session_id).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );

        let long = p
            .spawn("sleep 300", &ExecOptions::default(), &opts())
            .await
            .unwrap();
        let short = CallOptions::new().with_timeout(Duration::from_millis(300));
        assert_eq!(
            long.wait(&short).await.unwrap_err().code(),
            "DAYTONA_TIMEOUT"
        );
        long.kill().await;
        assert!(p
            .list_sessions()
            .await
            .unwrap()
            .iter()
            .all(|x| x.session_id != long.session_id));
        b.stop().await;
    })
    .await;
}

/// The command's exit code once it has one (polling up to a minute; `None` if it still runs).
async fn exit_code_after(p: &forge_daytona::Process, sid: &str, cid: &str) -> Option<i32> {
    for _ in 0..1200 {
        let code = p.get_session_command(sid, cid).await.unwrap().exit_code;
        if code.is_some() {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Whether one `sleep <n>` per `n` runs within a minute.
async fn wait_sleeping(p: &forge_daytona::Process, ns: &[&str]) -> bool {
    for _ in 0..1200 {
        let mut all = true;
        for n in ns {
            all &= sleeping(p, n).await == 1;
        }
        if all {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// How many live processes run `sleep <n>` (through `process/execute`, as a user would look).
async fn sleeping(p: &forge_daytona::Process, n: &str) -> usize {
    let script = format!(
        "for d in /proc/[0-9]*; do s=$(cut -d' ' -f3 $d/stat 2>/dev/null); \
         [ \"$s\" = Z ] && continue; tr '\\0' ' ' 2>/dev/null < $d/cmdline; echo; done \
         | grep -c '^sleep {n}[ ]*$'"
    );
    let r = p
        .execute(&script, &ExecOptions::default(), &opts())
        .await
        .unwrap();
    r.result
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {:?}", r.result))
}

#[tokio::test]
async fn kill_via_execute_kills_the_whole_group_and_keeps_output() {
    bounded(async {
        let b = Backend::start().await;
        let p = b.toolbox().await.process();
        p.create_session("kx").await.unwrap();

        // Wrapped background commands: output split and exit code as before, nothing extra.
        let done = p
            .execute_session_command("kx", "echo out; echo err >&2; exit 7", true, &opts())
            .await
            .unwrap();
        let code = exit_code_after(&p, "kx", &done.cmd_id).await;
        assert_eq!(code, Some(7));
        let logs = p
            .get_session_command_logs("kx", &done.cmd_id)
            .await
            .unwrap();
        assert_eq!(
            (logs.stdout.as_str(), logs.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert_eq!(
            p.kill_session_command_via_execute("kx", &done.cmd_id)
                .await
                .unwrap_err()
                .code(),
            "DAYTONA_GONE"
        );

        // A command whose child runs in the background: the whole group goes.
        let started = p
            .execute_session_command(
                "kx",
                "echo started; sleep 3171 & sleep 3172; echo never",
                true,
                &opts(),
            )
            .await
            .unwrap();
        let up = wait_sleeping(&p, &["3171", "3172"]).await;
        assert!(up, "both sleeps should be running");
        p.kill_session_command_via_execute("kx", &started.cmd_id)
            .await
            .unwrap();
        assert_eq!(sleeping(&p, "3171").await, 0);
        assert_eq!(sleeping(&p, "3172").await, 0);
        let code = exit_code_after(&p, "kx", &started.cmd_id).await;
        assert_eq!(code, Some(143), "TERM, as the wrapper reports it");
        let logs = p
            .get_session_command_logs("kx", &started.cmd_id)
            .await
            .unwrap();
        assert_eq!(logs.stdout, "started\n");
        assert_eq!(logs.stderr, "");

        // A foreground command is sent as is (session state carries over) and is not killable
        // through execute.
        p.execute_session_command("kx", "cd /tmp && export KX=1", false, &opts())
            .await
            .unwrap();
        let r = p
            .execute_session_command("kx", "echo $KX $(pwd)", false, &opts())
            .await
            .unwrap();
        assert_eq!(r.stdout.as_deref(), Some("1 /tmp\n"));
        let e = p
            .kill_session_command_via_execute("kx", &r.cmd_id)
            .await
            .unwrap_err();
        assert!(
            matches!(e.code(), "DAYTONA_GONE" | "DAYTONA_INVALID_ARGUMENT"),
            "{e}"
        );

        // Deleting the session also kills wrapped commands that left its process group.
        let bg = p
            .execute_session_command("kx", "sleep 3173 & sleep 3174", true, &opts())
            .await
            .unwrap();
        let up = wait_sleeping(&p, &["3174"]).await;
        assert!(up, "{}", bg.cmd_id);
        p.delete_session("kx").await.unwrap();
        assert_eq!(sleeping(&p, "3173").await, 0);
        assert_eq!(sleeping(&p, "3174").await, 0);
        b.stop().await;
    })
    .await;
}

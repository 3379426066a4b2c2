//! The commands' output as lines (`pipeline::log_lines`) on the embedded backend: real
//! sessions, the real log WebSocket, a bounded queue read by a consumer that may be slow or
//! may fail.

use crate::common::{bounded, local_backend};
use forge_daytona::{CallOptions, CancellationToken, CreateParams};
use forge_preview::pipeline::{
    clone_and_preview, install_dependencies, log_channel, InstallInput, LogLine, LogReceiver,
    OutputStream, PipelineEvent, PreviewRequest, Progress, Step, Upload,
};
use std::time::Duration;

/// Prints `n` numbered stdout lines (one green, one redrawn with a carriage return), two
/// stderr lines, and an unfinished last line.
fn printer(n: usize) -> String {
    format!(
        "printf '\\033[32mgreen\\033[0m\\n'; echo 'err one' >&2; printf '10%%\\r100%%\\n'; \
         for i in $(seq 1 {n}); do echo \"line $i\"; done; echo 'err two' >&2; printf 'no newline'"
    )
}

fn expected_stdout(n: usize) -> Vec<String> {
    let mut v = vec!["green".to_owned(), "100%".to_owned()];
    v.extend((1..=n).map(|i| format!("line {i}")));
    v.push("no newline".into());
    v
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads every event, sleeping `pause` after each line; the lines, and the events as text.
async fn consume(mut rx: LogReceiver, pause: Duration) -> (Vec<LogLine>, Vec<String>) {
    let (mut lines, mut events) = (Vec::new(), Vec::new());
    while let Some(e) = rx.recv().await {
        match e {
            PipelineEvent::Log { log } => {
                events.push(format!("log {}", log.step));
                lines.push(log);
                tokio::time::sleep(pause).await;
            }
            PipelineEvent::Progress { progress } => {
                events.push(format!("{} {:?}", progress.step, progress.status));
            }
        }
    }
    (lines, events)
}

fn of(lines: &[LogLine], stream: OutputStream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

async fn install_streamed(n: usize, capacity: usize, pause: Duration) -> Vec<LogLine> {
    let (_home, backend, client) = local_backend().await;
    // A project folder (package.json) the install runs in.
    let id = crate::install_cache::sandbox_with_project(&client).await;
    let (sink, rx) = log_channel(capacity);
    let reader = tokio::spawn(consume(rx, pause));
    let input = InstallInput {
        sandbox_id: id,
        command: Some(printer(n)),
        ..Default::default()
    };
    let installed = install_dependencies(&client, &input, &sink, &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(installed.exit_code, 0);
    drop(sink);
    let (lines, _) = reader.await.unwrap();
    backend.shutdown().await;
    lines
}

#[tokio::test]
async fn an_install_s_output_arrives_line_by_line_in_order() {
    bounded(async {
        let lines = install_streamed(20, 64, Duration::ZERO).await;
        assert_eq!(of(&lines, OutputStream::Stdout), expected_stdout(20));
        assert_eq!(of(&lines, OutputStream::Stderr), ["err one", "err two"]);
        assert!(lines.iter().all(|l| l.step == Step::Install));
    })
    .await;
}

#[tokio::test]
async fn a_slow_consumer_slows_the_reader_and_still_gets_every_line() {
    bounded(async {
        // 300 lines through a queue of 4, the consumer pausing after each: the reader must
        // wait for it again and again, and nothing may be lost.
        let lines = install_streamed(300, 4, Duration::from_millis(5)).await;
        assert_eq!(of(&lines, OutputStream::Stdout), expected_stdout(300));
        assert_eq!(of(&lines, OutputStream::Stderr), ["err one", "err two"]);
    })
    .await;
}

/// A project the pipeline can take from a local folder: an "install" that prints known lines
/// and a dev server that prints `boot` numbered lines and "booting" before it listens, one
/// after.
fn project(port: u16, boot: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.json"), r#"{"name":"app"}"#).unwrap();
    std::fs::write(
        dir.path().join("server.js"),
        format!(
            r"
for (let i = 1; i <= {boot}; i++) console.log('dev: boot ' + i);
console.log('dev: booting');
setTimeout(() => process.exit(0), 120000);
require('http').createServer((req, res) => {{
  res.setHeader('content-type', 'text/html');
  res.end('<!doctype html><html><body><h1>streamed app</h1></body></html>');
}}).listen({port}, '0.0.0.0', () => console.log('dev: listening on {port}'));
"
        ),
    )
    .unwrap();
    dir
}

fn request(
    folder: &tempfile::TempDir,
    port: u16,
    sink: &forge_preview::pipeline::LogSink,
) -> PreviewRequest {
    PreviewRequest {
        upload_from: Some(Upload {
            folder: folder.path().to_path_buf(),
            include_env: false,
        }),
        port: Some(port),
        install_command: Some(printer(5)),
        dev_command: Some("node server.js".into()),
        dependency_cache: Some(false),
        verify_timeout: Some(Duration::from_mins(1)),
        log: sink.clone(),
        ..Default::default()
    }
}

/// The lines of `step`'s command on `stream`.
fn of_step(lines: &[LogLine], step: Step, stream: OutputStream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.step == step && l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

/// Where `e` first and last is in `events`.
fn span(events: &[String], e: &str) -> (usize, usize) {
    let first = events.iter().position(|x| x == e);
    let last = events.iter().rposition(|x| x == e);
    first
        .zip(last)
        .unwrap_or_else(|| panic!("{e} in {events:?}"))
}

/// The pipeline on [`project`]`(port, boot)` with a queue of `capacity` lines read by a
/// consumer pausing `pause` per line: it must verify; its lines, its events, its port.
async fn preview_streamed(
    boot: usize,
    capacity: usize,
    pause: Duration,
) -> (Vec<LogLine>, Vec<String>, u16) {
    let (_home, backend, client) = local_backend().await;
    let port = free_port();
    let folder = project(port, boot);
    let (sink, rx) = log_channel(capacity);
    let reader = tokio::spawn(consume(rx, pause));
    let progress_sink = sink.clone();
    let progress = move |p: Progress| progress_sink.progress(p);
    let req = request(&folder, port, &sink);
    let r = clone_and_preview(
        &client,
        &CreateParams::default(),
        &req,
        &progress,
        &CallOptions::new(),
    )
    .await;
    drop((progress, req, sink));
    let (lines, events) = reader.await.unwrap();
    assert!(r.unwrap().verify.ok);
    backend.shutdown().await;
    (lines, events, port)
}

#[tokio::test]
async fn the_pipeline_streams_the_install_then_the_dev_server_between_its_progress_events() {
    bounded(async {
        let (lines, events, port) = preview_streamed(0, 8, Duration::ZERO).await;
        assert_eq!(
            of_step(&lines, Step::Install, OutputStream::Stdout),
            expected_stdout(5)
        );
        // Followed once: each line once, from the server's start.
        assert_eq!(
            of_step(&lines, Step::Start, OutputStream::Stdout),
            ["dev: booting", format!("dev: listening on {port}").as_str()]
        );
        // Every install line between "install started" and "install finished"; the dev
        // server's lines after the start and before verification finished.
        let at = |e: &str| span(&events, e).0;
        let install = span(&events, "log install");
        assert!(at("install Started") < install.0, "{events:?}");
        assert!(install.1 < at("install Finished"), "{events:?}");
        let dev = span(&events, "log start");
        assert!(at("start Finished") < dev.0, "{events:?}");
        assert!(dev.1 < at("verify Finished"), "{events:?}");
    })
    .await;
}

#[tokio::test]
async fn a_slow_consumer_gets_every_line_of_the_dev_server_once_before_verification_ends() {
    bounded(async {
        // A queue of 4 and a pause per line: verification may end before the consumer has read
        // the server's output; the catch-up must still deliver all of it, once, before the
        // verify step finishes.
        let (lines, events, port) = preview_streamed(200, 4, Duration::from_millis(3)).await;
        let mut expected: Vec<String> = (1..=200).map(|i| format!("dev: boot {i}")).collect();
        expected.push("dev: booting".into());
        expected.push(format!("dev: listening on {port}"));
        assert_eq!(of_step(&lines, Step::Start, OutputStream::Stdout), expected);
        assert!(span(&events, "log start").1 < span(&events, "verify Finished").0);
    })
    .await;
}

#[tokio::test]
async fn a_consumer_that_fails_ends_the_pipeline_with_a_typed_error_and_no_sandbox() {
    bounded(async {
        let (_home, backend, client) = local_backend().await;
        let port = free_port();
        let folder = project(port, 0);
        let (sink, mut rx) = log_channel(8);
        let cancel = CancellationToken::new();
        // The consumer fails at the first install line: it stops reading and cancels the call
        // (what the binding does when an `onLog` callback throws).
        let stop = cancel.clone();
        let reader = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if let PipelineEvent::Log { log } = e {
                    stop.cancel();
                    return Some(log);
                }
            }
            None
        });
        let progress_sink = sink.clone();
        let progress = move |p: Progress| progress_sink.progress(p);
        let req = PreviewRequest {
            install_command: Some(format!("{}; sleep 60", printer(3))),
            ..request(&folder, port, &sink)
        };
        let err = clone_and_preview(
            &client,
            &CreateParams::default(),
            &req,
            &progress,
            &CallOptions::new().with_cancel(cancel),
        )
        .await
        .unwrap_err();
        drop((progress, req, sink));
        let first = reader.await.unwrap().expect("a line arrived");
        assert_eq!(first.step, Step::Install);
        assert_eq!(err.code(), "DAYTONA_ABORTED", "{err}");
        let forge_preview::PreviewError::Step(f) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(f.step, Step::Install);
        assert!(!f.kept);
        let left = client
            .list_all(&forge_daytona::ListQuery::default(), &CallOptions::new())
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        backend.shutdown().await;
    })
    .await;
}

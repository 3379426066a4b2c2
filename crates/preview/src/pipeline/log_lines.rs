//! The output of the pipeline's commands (the install, the workspace prepare command, the dev
//! server) as lines, for a caller that shows it live (a browser through server-sent events, a
//! terminal).
//!
//! Lines travel with the pipeline's progress events through one ordered queue ([`log_channel`])
//! so that a consumer sees "install started", the install's lines, then "install finished".
//! The queue is bounded for lines: a sender waits while [`LOG_CAPACITY`]-many lines are
//! unread, so a slow consumer slows down the reading of the command's log (the log socket
//! waits in turn) and nothing is dropped or reordered; the command itself runs on, its output
//! kept by the daemon. Progress events never wait (the pipeline emits them synchronously).
//!
//! A command is followed over the daemon's log WebSocket, which replays the output from the
//! start: [`follow_while`] follows it while some work runs (the install's wait, the dev
//! server's verification) and, when the work ends, reads on until it has delivered everything
//! the command had printed by then (the log's length at that moment, from one snapshot).

use super::failure::Step;
use super::Progress;
use crate::strip_ansi;
use forge_daytona::{CallOptions, CancellationToken, LogChunk, LogStream, LogStreamKind, Toolbox};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl From<LogStreamKind> for OutputStream {
    fn from(k: LogStreamKind) -> Self {
        match k {
            LogStreamKind::Stdout => OutputStream::Stdout,
            LogStreamKind::Stderr => OutputStream::Stderr,
        }
    }
}

/// One line of a command's output: without its line break, terminal escape sequences
/// (colours, cursor moves) removed, only what a terminal would show after a carriage return,
/// and cut at [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PreviewLogLine"))]
pub struct LogLine {
    /// The step whose command printed it: `install` (the install and the workspace prepare
    /// command) or `start` (the dev server, followed while it is verified).
    #[cfg_attr(feature = "ts", ts(type = "'install' | 'start'"))]
    pub step: Step,
    pub stream: OutputStream,
    pub line: String,
}

/// What the pipeline tells a streaming consumer, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PipelineEvent {
    Progress { progress: Progress },
    Log { log: LogLine },
}

/// Lines that may wait unread in the queue before the reader of the command's log waits.
pub const LOG_CAPACITY: usize = 64;

/// A line longer than this many bytes is cut (a minified bundle printed in an error would
/// otherwise travel whole to the browser); the cut is said at its end.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// How long the catch-up at the end of a follow waits for the next piece of the log before it
/// delivers the rest from the snapshot instead (a socket that stopped sending).
const CATCH_UP_IDLE: Duration = Duration::from_secs(5);

/// Where the lines (and, for the pipeline, its progress) go: the sending half of
/// [`log_channel`], or nowhere ([`LogSink::none`], the default: nothing is followed).
#[derive(Clone, Default)]
pub struct LogSink(Option<Arc<Shared>>);

struct Shared {
    tx: mpsc::UnboundedSender<PipelineEvent>,
    /// One permit per line that may be queued.
    room: Arc<Semaphore>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "LogSink(channel)"
        } else {
            "LogSink(none)"
        })
    }
}

/// The receiving half of [`log_channel`]. Dropping it ends every follow (their sends fail);
/// the commands run on.
pub struct LogReceiver {
    rx: mpsc::UnboundedReceiver<PipelineEvent>,
    room: Arc<Semaphore>,
}

impl LogReceiver {
    /// The next event; `None` once every [`LogSink`] is dropped and the queue is empty.
    pub async fn recv(&mut self) -> Option<PipelineEvent> {
        let e = self.rx.recv().await?;
        if matches!(e, PipelineEvent::Log { .. }) {
            self.room.add_permits(1);
        }
        Some(e)
    }
}

impl Drop for LogReceiver {
    fn drop(&mut self) {
        // Wakes a sender waiting for room: it fails instead of waiting forever.
        self.room.close();
    }
}

/// A queue of [`PipelineEvent`]s holding at most `capacity` unread lines (see the module's
/// documentation).
pub fn log_channel(capacity: usize) -> (LogSink, LogReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity.max(1)));
    (
        LogSink(Some(Arc::new(Shared {
            tx,
            room: room.clone(),
        }))),
        LogReceiver { rx, room },
    )
}

impl LogSink {
    /// Lines go nowhere and no command is followed.
    pub fn none() -> LogSink {
        LogSink(None)
    }

    /// Whether lines are wanted (commands are followed only then).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Queues `line`, waiting while the queue is full. `false` when nobody receives any more.
    pub async fn send(&self, line: LogLine) -> bool {
        let Some(s) = &self.0 else { return false };
        let Ok(permit) = s.room.acquire().await else {
            return false;
        };
        permit.forget();
        s.tx.send(PipelineEvent::Log { log: line }).is_ok()
    }

    /// Queues a progress event behind the lines already queued; never waits.
    pub fn progress(&self, progress: Progress) {
        if let Some(s) = &self.0 {
            let _ = s.tx.send(PipelineEvent::Progress { progress });
        }
    }
}

/// Splits pieces of output into lines, per stream (a line may arrive in many pieces).
#[derive(Default)]
struct Lines {
    /// The unfinished line of stdout and of stderr, and whether it was cut.
    partial: [(String, bool); 2],
}

fn slot(s: OutputStream) -> usize {
    match s {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

impl Lines {
    /// The complete lines in `data`, in order; the rest waits for its line break.
    fn push(&mut self, stream: OutputStream, data: &str) -> Vec<(OutputStream, String)> {
        let mut out = Vec::new();
        let mut rest = data;
        while let Some(nl) = rest.find('\n') {
            self.append(stream, &rest[..nl]);
            out.push((stream, self.take(stream)));
            rest = &rest[nl + 1..];
        }
        self.append(stream, rest);
        out
    }

    /// The unfinished lines (stdout's, then stderr's), at the end of a follow.
    fn finish(&mut self) -> Vec<(OutputStream, String)> {
        let mut out = Vec::new();
        for s in [OutputStream::Stdout, OutputStream::Stderr] {
            if !self.partial[slot(s)].0.is_empty() {
                out.push((s, self.take(s)));
            }
        }
        out
    }

    fn append(&mut self, stream: OutputStream, s: &str) {
        let (line, cut) = &mut self.partial[slot(stream)];
        if *cut {
            return;
        }
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if s.len() <= room {
            line.push_str(s);
            return;
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        line.push_str(&s[..end]);
        *cut = true;
    }

    fn take(&mut self, stream: OutputStream) -> String {
        let (line, cut) = std::mem::take(&mut self.partial[slot(stream)]);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        // A carriage return redraws the line (progress bars): keep what stays visible.
        let visible = line.rsplit('\r').next().unwrap_or_default();
        let mut s = strip_ansi(visible).into_owned();
        if cut {
            s.push_str(&format!(" … (cut at {} KiB)", MAX_LINE_BYTES / 1024));
        }
        s
    }
}

/// One follow of one command's log: its lines so far and how much of each stream it read.
struct Follower<'a> {
    step: Step,
    sink: &'a LogSink,
    call: &'a CallOptions,
    lines: Lines,
    /// Bytes of stdout and stderr read from the socket.
    read: [usize; 2],
    /// The consumer is gone or the call was aborted: deliver nothing more.
    gone: bool,
}

impl Follower<'_> {
    /// Delivers the complete lines of `chunk`; `false` when nothing more can be delivered.
    async fn chunk(&mut self, chunk: &LogChunk) -> bool {
        let stream = OutputStream::from(chunk.stream);
        self.read[slot(stream)] += chunk.data.len();
        let lines = self.lines.push(stream, &chunk.data);
        self.deliver(lines).await
    }

    async fn deliver(&mut self, lines: Vec<(OutputStream, String)>) -> bool {
        for (stream, line) in lines {
            if self.gone {
                return false;
            }
            let send = self.sink.send(LogLine {
                step: self.step,
                stream,
                line,
            });
            // An abort ends a send that waits for a consumer who no longer reads.
            let sent = tokio::select! {
                ok = send => ok,
                () = cancelled(self.call) => false,
            };
            self.gone = !sent;
        }
        !self.gone
    }

    /// Reads `stream` until it ends or `stop` fires.
    async fn read_until(&mut self, stream: &mut LogStream, stop: &CancellationToken) {
        loop {
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                c = stream.next_chunk() => c,
            };
            match next {
                Some(Ok(c)) => {
                    if !self.chunk(&c).await {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "log stream ended early");
                    return;
                }
                None => return,
            }
        }
    }

    /// Reads on until everything in `snapshot` was delivered (or the socket ends, stalls for
    /// [`CATCH_UP_IDLE`], or the call is aborted). Without a socket (it could not open) the
    /// snapshot itself is delivered, stdout's lines then stderr's; with one, never (a daemon
    /// whose snapshot counts differently from its socket would get lines twice).
    async fn catch_up(&mut self, stream: Option<&mut LogStream>, snapshot: [&str; 2]) {
        let behind = |read: &[usize; 2]| read[0] < snapshot[0].len() || read[1] < snapshot[1].len();
        if let Some(stream) = stream {
            while behind(&self.read) && !self.gone {
                let next = tokio::select! {
                    () = cancelled(self.call) => return,
                    c = tokio::time::timeout(CATCH_UP_IDLE, stream.next_chunk()) => c,
                };
                match next {
                    Ok(Some(Ok(c))) => {
                        if !self.chunk(&c).await {
                            return;
                        }
                    }
                    _ => break,
                }
            }
            return;
        }
        for s in [OutputStream::Stdout, OutputStream::Stderr] {
            let rest = snapshot[slot(s)]
                .get(self.read[slot(s)]..)
                .unwrap_or_default();
            if !rest.is_empty() {
                let lines = self.lines.push(s, rest);
                self.read[slot(s)] += rest.len();
                if !self.deliver(lines).await {
                    return;
                }
            }
        }
    }
}

/// Resolves when the call is aborted; never without a cancellation token.
async fn cancelled(call: &CallOptions) {
    match &call.cancel {
        Some(c) => c.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Runs `work` while following the output of the session command `session_id`/`command_id`
/// into `sink` as lines of `step`; when `work` ends, delivers the rest of what the command had
/// printed by then and the unfinished last lines, then returns `work`'s answer. With an
/// inactive sink (or once the consumer is gone) it is just `work`. Following never fails the
/// work: a log socket that cannot open or breaks leaves the lines to the snapshot.
///
/// `work` is boxed here, once, rather than at every caller, and before an `async fn` could
/// hold it inline: the work (the verification loop) and the log socket's futures are large,
/// and inline they made each step's future too big.
pub(crate) fn follow_while<'a, T: 'a, F: Future<Output = T> + 'a>(
    tb: &'a Toolbox,
    session_id: &'a str,
    command_id: &'a str,
    step: Step,
    sink: &'a LogSink,
    call: &'a CallOptions,
    work: F,
) -> impl Future<Output = T> + 'a {
    follow_boxed(tb, session_id, command_id, step, sink, call, Box::pin(work))
}

/// [`follow_while`] on its boxed work.
async fn follow_boxed<T>(
    tb: &Toolbox,
    session_id: &str,
    command_id: &str,
    step: Step,
    sink: &LogSink,
    call: &CallOptions,
    work: Pin<Box<impl Future<Output = T>>>,
) -> T {
    if !sink.is_active() {
        return work.await;
    }
    let process = tb.process();
    let mut f = Follower {
        step,
        sink,
        call,
        lines: Lines::default(),
        read: [0, 0],
        gone: false,
    };
    let stop = CancellationToken::new();
    // The socket's own deadline is the call's cancellation only: a dev server is followed for
    // as long as its verification takes.
    let socket_call = CallOptions {
        timeout: None,
        cancel: call.cancel.clone(),
    };
    let pump = Box::pin(async {
        let opened = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            s = process.stream_session_command_logs(session_id, command_id, &socket_call) => {
                s.map_err(|e| tracing::debug!(error = %e, "could not follow the command's log")).ok()
            }
        };
        let mut stream = opened;
        if let Some(s) = stream.as_mut() {
            f.read_until(s, &stop).await;
        }
        (f, stream)
    });
    let work = async {
        let r = work.await;
        stop.cancel();
        r
    };
    let (r, (mut f, mut stream)) = tokio::join!(work, pump);
    let aborted = call
        .cancel
        .as_ref()
        .is_some_and(CancellationToken::is_cancelled);
    if !f.gone && !aborted {
        // Boxed: its request future next to the open log stream made this one too large.
        match Box::pin(process.get_session_command_logs(session_id, command_id)).await {
            Ok(snap) => {
                f.catch_up(stream.as_mut(), [&snap.stdout, &snap.stderr])
                    .await;
            }
            Err(e) => tracing::debug!(error = %e, "could not read the command's log"),
        }
        let rest = f.lines.finish();
        f.deliver(rest).await;
    }
    drop(stream);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: Vec<(OutputStream, String)>) -> Vec<String> {
        v.into_iter().map(|(_, l)| l).collect()
    }

    #[test]
    fn lines_are_joined_across_pieces_cleaned_and_cut() {
        let mut l = Lines::default();
        assert!(l.push(OutputStream::Stdout, "hel").is_empty());
        assert_eq!(
            texts(l.push(OutputStream::Stdout, "lo\r\n\x1b[32mgreen\x1b[0m\nwor")),
            ["hello", "green"]
        );
        assert_eq!(
            l.push(OutputStream::Stderr, "err\n"),
            [(OutputStream::Stderr, "err".to_owned())]
        );
        assert_eq!(
            texts(l.push(OutputStream::Stdout, "ld\n10%\r50%\r100%\n\n")),
            ["world", "100%", ""]
        );
        let long = "é".repeat(MAX_LINE_BYTES);
        let got = texts(l.push(OutputStream::Stdout, &format!("{long}\nnext")));
        assert!(got[0].ends_with(" … (cut at 8 KiB)"), "{}", &got[0][..20]);
        assert!(got[0].len() <= MAX_LINE_BYTES + 40);
        assert_eq!(texts(l.finish()), ["next"]);
        assert!(l.finish().is_empty());
    }

    fn line(n: usize) -> LogLine {
        LogLine {
            step: Step::Install,
            stream: OutputStream::Stdout,
            line: n.to_string(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_and_progress_keeps_its_place() {
        let (sink, mut rx) = log_channel(2);
        assert!(sink.send(line(1)).await);
        assert!(sink.send(line(2)).await);
        // Full: the third line waits until one is read.
        let third = sink.send(line(3));
        tokio::pin!(third);
        assert!(futures_util::FutureExt::now_or_never(third.as_mut()).is_none());
        sink.progress(Progress {
            step: Step::Install,
            status: super::super::ProgressStatus::Finished,
            elapsed_ms: 0,
            step_ms: None,
            message: None,
        });
        assert!(matches!(rx.recv().await, Some(PipelineEvent::Log { log }) if log.line == "1"));
        assert!(third.await);
        let rest: Vec<String> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .map(|e| match e {
                Some(PipelineEvent::Log { log }) => log.line,
                Some(PipelineEvent::Progress { .. }) => "progress".into(),
                None => "end".into(),
            })
            .collect();
        assert_eq!(rest, ["2", "progress", "3"]);
        drop(rx);
        assert!(!sink.send(line(4)).await, "nobody receives");
    }
}

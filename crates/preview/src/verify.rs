//! `verify_preview`: the conditions of [`crate::conditions`] composed into one answer, "the
//! preview URL serves the app", quickly and with a reason when it does not.
//!
//! Each round: has the dev process exited (stop, with its last log lines)? Did its log
//! announce another port than the one asked for (switch to that port's preview link)? Is the
//! port listening inside the sandbox (skip the HTTP probe while it is not)? Then one HTTP
//! probe, classified. One [`await_condition`] drives the rounds: pending answers wait a
//! [`forge_daytona::wait::Backoff::READINESS`] interval (cut short when the log announces the
//! server or the process ends); an OK waits only `confirm_interval` before the confirming
//! probe, so a server that is already up is verified in about 100 ms.

use crate::browser::{check_in_browser, BrowserCheck, BrowserOptions, PreviewAuth};
use crate::classify::{Probe, Reason};
use crate::conditions::{HttpAnswers, HttpPolicy, NotServing, PortListening};
use crate::crash_log;
use crate::logport::{announced_port, Announcement};
use crate::probe::Prober;
use crate::{strip_ansi, PreviewError};
use forge_daytona::wait::{await_condition, And, Condition, Pace, WaitError};
use forge_daytona::{CallOptions, Client, LogStream, Process, Toolbox};
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

/// The dev server's command, started with `runAsync` in a session: its exit code and log are
/// read through the toolbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevProcess {
    pub session_id: String,
    pub command_id: String,
}

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The port the dev server was asked to listen on. A port the log announces wins.
    pub port: u16,
    /// The path probed, `/` by default.
    pub path: String,
    /// The overall deadline: 60 s by default; 180 s suits a first Next.js or Angular build.
    pub deadline: Duration,
    /// Per-request timeout until the first OK (at least 30 s: Next compiles a page on demand
    /// while its first request waits). Later requests use at most 10 s.
    pub request_timeout: Duration,
    /// OK answers needed in a row (at least 1; default 2).
    pub oks_required: u32,
    /// Also request the page's module entry (Vite's `/src/main.tsx`): a broken app module
    /// shows only there.
    pub check_entry_module: bool,
    /// The wait between an OK and the probe that confirms it (default 50 ms: enough to catch a
    /// server that dies right after its first answer, short enough that a server that is up
    /// is verified in about 100 ms).
    pub confirm_interval: Duration,
    /// How many log lines the report carries (default 20).
    pub log_tail_lines: usize,
    /// Also load the page in a headless browser once HTTP says it works (see
    /// [`crate::browser`]); `None` (the default) skips it.
    pub browser: Option<BrowserOptions>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            port: 3000,
            path: "/".into(),
            deadline: Duration::from_mins(1),
            request_timeout: Duration::from_secs(30),
            oks_required: 2,
            check_entry_module: true,
            confirm_interval: Duration::from_millis(50),
            log_tail_lines: 20,
            browser: None,
        }
    }
}

/// Request timeout once the server has answered OK.
const WARM_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening the log WebSocket may take before the log is polled instead.
const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Log text kept in memory (the tail).
const LOG_KEEP_BYTES: usize = 64 * 1024;
/// Log lines that suggest the server just became ready: probe now instead of sleeping on.
const READY_HINTS: [&str; 5] = ["ready", "Ready", "compiled", "Compiled", "listening"];
/// How long the log must stay quiet after an error, while nothing listens, before the error is
/// taken for a crash (a watcher's own "app crashed" line needs no wait). Long enough for a
/// server that prints a warning's stack and goes on starting.
const CRASH_QUIET: Duration = Duration::from_secs(10);
/// How long a failed verification waits for the dev server's log to show the error behind a
/// page that says only "Internal Server Error" (its line is written as the page is answered).
const LOG_ERROR_GRACE: Duration = Duration::from_secs(1);
/// Page excerpts that say nothing a developer can act on: the log's error is shown instead.
const GENERIC_PAGE_TEXTS: &[&str] = &[
    "Internal Server Error",
    "500",
    "500 Internal Server Error",
    "500 Server Error",
    "Error",
    "Server Error",
    "Internal Error",
    "500 Internal Error",
];

/// The outcome of a verification: plain data, JSON in camelCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "VerifyReport"))]
pub struct VerifyReport {
    pub ok: bool,
    /// The preview link of `port` (without the probed path).
    pub url: String,
    /// The port verified: the requested one, or the one the log announced.
    pub port: u16,
    /// The HTTP status of the last probe that got an answer.
    pub status: Option<u16>,
    /// `OK`, or why not (see [`Reason`]); `TIMEOUT` when the deadline passed while pending.
    pub reason: Reason,
    /// On `TIMEOUT`: what the last probe said (`NOT_LISTENING`, `COMPILING`).
    pub last_probe: Option<Reason>,
    /// HTTP probes sent (entry-module requests not counted).
    pub attempts: u32,
    pub elapsed_ms: u64,
    /// When the first OK answer came, from the start.
    pub time_to_first_ok_ms: Option<u64>,
    /// The dev process's last log lines (ANSI stripped), when a [`DevProcess`] was given.
    pub log_tail: Vec<String>,
    /// The error text, hint or exit code behind a failure.
    pub excerpt: Option<String>,
    /// What the page looked like in a browser, when the browser check was asked for and HTTP
    /// said the app works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub browser: Option<BrowserCheck>,
}

impl VerifyReport {
    /// Time from the first OK answer to the verdict: what the confirmation costs (the
    /// benchmark's "first good answer → ok" figure, measured from inside).
    pub fn settle_ms(&self) -> Option<u64> {
        self.time_to_first_ok_ms
            .map(|t| self.elapsed_ms.saturating_sub(t))
    }
}

/// Verifies that the preview of `opts.port` serves the app. `Err` only when the control plane
/// fails (e.g. the preview link cannot be fetched because the sandbox is gone); every
/// classified outcome is `Ok(report)`, with `ok: false` and a reason when it failed. No task
/// is spawned: dropping the future (abort) stops everything, the log stream included.
pub async fn verify_preview(
    client: &Client,
    sandbox_id: &str,
    toolbox: &Toolbox,
    dev: Option<&DevProcess>,
    opts: &VerifyOptions,
) -> Result<VerifyReport, PreviewError> {
    verify_preview_with(&Prober::new()?, client, sandbox_id, toolbox, dev, opts).await
}

/// [`verify_preview`] with a given [`Prober`] (reuses its connections; the token is set from
/// the preview link here).
pub async fn verify_preview_with(
    prober: &Prober,
    client: &Client,
    sandbox_id: &str,
    toolbox: &Toolbox,
    dev: Option<&DevProcess>,
    opts: &VerifyOptions,
) -> Result<VerifyReport, PreviewError> {
    if opts.port == 0 {
        return Err(forge_daytona::Error::InvalidArgument("port must be 1-65535".into()).into());
    }
    let started = Instant::now();
    let until = started + opts.deadline;
    let link = client.preview_url(sandbox_id, opts.port).await?;
    let prober = prober.clone().with_token(Some(&link.token));
    let http = HttpAnswers::new(
        prober.clone(),
        join_path(&link.url, &opts.path),
        HttpPolicy {
            times: opts.oks_required,
            request_timeout: opts.request_timeout,
            warm_request_timeout: WARM_REQUEST_TIMEOUT,
            confirm_interval: opts.confirm_interval,
            check_entry_module: opts.check_entry_module,
        },
        started,
        until,
    );
    let mut serving = Serving {
        client,
        sandbox_id,
        path: &opts.path,
        prober,
        port: opts.port,
        link_url: link.url,
        token: link.token,
        log: LogWatch::open(toolbox.process(), dev, opts.deadline).await,
        ready: PortListening::new(toolbox.clone(), opts.port).and(http),
        restart: false,
    };
    let outcome = await_condition(Some(until), None, &mut serving).await;
    let (reason, excerpt, probe) = match outcome {
        Ok(probe) => (Reason::Ok, None, Some(probe)),
        Err(WaitError::TimedOut | WaitError::Cancelled) => (Reason::Timeout, None, None),
        Err(WaitError::Failed(NotServing::Exited(code))) => (
            Reason::ProcessExited,
            Some(format!(
                "the dev process exited with code {code} before the preview worked{}",
                serving
                    .log
                    .first_error()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )),
            None,
        ),
        Err(WaitError::Failed(NotServing::Crashed(excerpt))) => {
            (Reason::Crashed, Some(excerpt), None)
        }
        Err(WaitError::Failed(NotServing::Refused(probe))) => {
            let weak =
                probe.reason == Reason::FrameworkError && says_nothing(probe.excerpt.as_deref());
            if weak {
                // The server logs the error while it answers: its line may reach us just after.
                serving.log.await_error(LOG_ERROR_GRACE).await;
            }
            let excerpt = match (&probe.excerpt, serving.log.first_error()) {
                // A framework's error page that says only "Internal Server Error": the dev
                // server's log has the real message.
                (_, Some(logged)) if weak => Some(logged),
                (page, _) => page.clone(),
            };
            (probe.reason, excerpt, Some(probe))
        }
        Err(WaitError::Failed(NotServing::Control(e))) => return Err(e),
    };
    let mut report = serving.report(started, reason, probe, excerpt, opts.log_tail_lines);
    if let (Some(b), true) = (&opts.browser, report.ok) {
        let auth = (!serving.token.is_empty()).then(|| PreviewAuth {
            sandbox_id,
            token: &serving.token,
        });
        let url = join_path(&serving.link_url, &opts.path);
        let check = check_in_browser(&url, auth, b).await?;
        if let Some(r) = check.report().filter(|r| !r.ok) {
            report.ok = false;
            report.reason = r.reason;
            report.excerpt = r.excerpt();
        }
        report.elapsed_ms = millis(started.elapsed());
        report.browser = Some(check);
    }
    Ok(report)
}

/// The preview serves the app: the dev process has not exited, and the port it serves on (the
/// one asked for, or the one its log announced) listens and answers over HTTP twice in a row.
struct Serving<'a> {
    client: &'a Client,
    sandbox_id: &'a str,
    path: &'a str,
    prober: Prober,
    port: u16,
    link_url: String,
    /// The preview token of `port` (empty for a public sandbox).
    token: String,
    log: LogWatch,
    ready: And<PortListening, HttpAnswers>,
    /// The port moved: check the new one at once, with the backoff started again.
    restart: bool,
}

impl Serving<'_> {
    /// The last answer: a synthetic `NOT_LISTENING` while the port check says so.
    fn last(&self) -> Option<Probe> {
        if !self.ready.0.seen() && self.ready.1.attempts == 0 {
            return Some(Probe {
                reason: Reason::NotListening,
                status: None,
                excerpt: Some(format!(
                    "nothing listens on port {} in the sandbox",
                    self.port
                )),
                entry_module: None,
            });
        }
        self.ready.1.last.clone()
    }

    fn report(
        &self,
        started: Instant,
        reason: Reason,
        probe: Option<Probe>,
        excerpt: Option<String>,
        tail_lines: usize,
    ) -> VerifyReport {
        let timed_out = reason == Reason::Timeout;
        let last = probe.or_else(|| self.last());
        let http = &self.ready.1;
        VerifyReport {
            ok: reason == Reason::Ok,
            url: self.link_url.clone(),
            port: self.port,
            status: last.as_ref().and_then(|p| p.status),
            reason,
            last_probe: last.as_ref().map(|p| p.reason).filter(|_| timed_out),
            attempts: http.attempts,
            elapsed_ms: millis(started.elapsed()),
            time_to_first_ok_ms: http.first_ok.map(millis),
            log_tail: self.log.tail(tail_lines),
            excerpt: excerpt.or_else(|| timed_out.then(|| last.and_then(|p| p.excerpt)).flatten()),
            browser: None,
        }
    }

    /// Follows the port the log announced: a strong announcement (the server's "Local:" line)
    /// of the port asked for means it listens; another port is followed when announced
    /// strongly, or when nothing listens on the one asked for.
    async fn follow_announcement(&mut self) -> Result<(), NotServing> {
        let Some(a) = self.log.announcement() else {
            return Ok(());
        };
        if a.strong && a.port == self.port {
            self.ready.0.assume();
        }
        let not_listening = self
            .last()
            .is_some_and(|p| p.reason == Reason::NotListening);
        if a.port == self.port || !(a.strong || not_listening) {
            return Ok(());
        }
        tracing::debug!(
            from = self.port,
            to = a.port,
            "the log announced another port"
        );
        self.port = a.port;
        let link = self
            .client
            .preview_url(self.sandbox_id, a.port)
            .await
            .map_err(|e| NotServing::Control(e.into()))?;
        self.prober = self.prober.clone().with_token(Some(&link.token));
        self.token = link.token;
        self.ready.0.retarget(a.port);
        self.ready
            .1
            .retarget(self.prober.clone(), join_path(&link.url, self.path));
        self.link_url = link.url;
        self.restart = true;
        Ok(())
    }
}

impl Condition for Serving<'_> {
    type Output = Probe;
    type Error = NotServing;

    async fn check(&mut self) -> Result<Option<Probe>, NotServing> {
        self.log.refresh().await;
        if let Some(code) = self.log.exit_code().await {
            return Err(NotServing::Exited(code));
        }
        self.follow_announcement().await?;
        if self.restart {
            return Ok(None);
        }
        let r = self.ready.check().await;
        if let Ok(Some(_)) = &r {
            // Verified only while the dev process runs: an answer after it ended (or from
            // something else on its port) is not its server's.
            if let Some(code) = self.log.exited_now().await {
                return Err(NotServing::Exited(code));
            }
        }
        if let Err(NotServing::Refused(_)) | Ok(Some(_)) = &r {
            return r.map(|o| o.map(|((), probe)| probe));
        }
        if !self.ready.0.seen()
            || self
                .ready
                .1
                .last
                .as_ref()
                .is_some_and(|p| p.reason == Reason::NotListening)
        {
            if let Some(crash) = self.log.crash() {
                return Err(NotServing::Crashed(crash.excerpt));
            }
        }
        if self
            .ready
            .1
            .last
            .as_ref()
            .is_some_and(|p| p.reason == Reason::NotListening)
            && self.ready.0.seen()
        {
            // It may have gone away: ask the port check again next round.
            self.ready.0.forget();
        }
        r.map(|o| o.map(|((), probe)| probe))
    }

    fn pace(&mut self) -> Pace {
        if std::mem::take(&mut self.restart) {
            return Pace::Restart;
        }
        self.ready.pace()
    }

    fn changed(&mut self) -> impl std::future::Future<Output = ()> + Send {
        self.log.changed()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a page excerpt says nothing a developer can act on.
fn says_nothing(excerpt: Option<&str>) -> bool {
    excerpt.is_none_or(|e| {
        let e = e.trim();
        e.is_empty() || GENERIC_PAGE_TEXTS.iter().any(|g| e.eq_ignore_ascii_case(g))
    })
}

/// `base` + `path`, with one `/` between them.
fn join_path(base: &str, path: &str) -> String {
    let path = path.trim();
    if path.is_empty() || path == "/" {
        return if base.ends_with('/') {
            base.to_owned()
        } else {
            format!("{base}/")
        };
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The dev process's log and exit: live over the log WebSocket when it opens (wakes the
/// verifier as soon as the server announces itself or the process ends), else polled once a
/// round.
struct LogWatch {
    process: Process,
    dev: Option<DevProcess>,
    stream: Option<LogStream>,
    /// The stream ended: the command exited (confirmed by its exit code).
    ended: bool,
    text: String,
    announced: Option<Announcement>,
    /// When the log last grew.
    last_output: Instant,
    /// The log's length when it was last polled (polling mode reads it whole).
    polled_len: usize,
}

impl LogWatch {
    async fn open(process: Process, dev: Option<&DevProcess>, lifetime: Duration) -> LogWatch {
        let stream = match dev {
            Some(d) => {
                // The stream lives as long as the verification may.
                let call = CallOptions::new().with_timeout(lifetime);
                let open = process.stream_session_command_logs(&d.session_id, &d.command_id, &call);
                match tokio::time::timeout(STREAM_OPEN_TIMEOUT, open).await {
                    Ok(Ok(s)) => Some(s),
                    Ok(Err(e)) => {
                        tracing::debug!(code = e.code(), "log stream unavailable, polling the log");
                        None
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        LogWatch {
            process,
            dev: dev.cloned(),
            stream,
            ended: false,
            text: String::new(),
            announced: None,
            last_output: Instant::now(),
            polled_len: 0,
        }
    }

    fn push(&mut self, data: &str) {
        // Only the new text (from the start of the line it continues) can hold a new
        // announcement; a weak one (a bare URL) never replaces a strong one.
        let from = self.text.rfind(['\n', '\r']).map_or(0, |i| i + 1);
        if !data.is_empty() {
            self.last_output = Instant::now();
        }
        self.text.push_str(data);
        if let Some(a) = announced_port(&self.text[from..]) {
            if a.strong || !self.announced.is_some_and(|b| b.strong) {
                self.announced = Some(a);
            }
        }
        if self.text.len() > LOG_KEEP_BYTES {
            let mut cut = self.text.len() - LOG_KEEP_BYTES;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }

    /// Takes in what the log said since the last round.
    async fn refresh(&mut self) {
        let Some(dev) = self.dev.clone() else {
            return;
        };
        if let Some(stream) = self.stream.as_mut() {
            let mut fresh = String::new();
            loop {
                match stream.next().now_or_never() {
                    Some(Some(Ok(chunk))) => fresh.push_str(&chunk.data),
                    Some(Some(Err(_)) | None) => {
                        self.ended = true;
                        break;
                    }
                    None => break,
                }
            }
            if !fresh.is_empty() {
                self.push(&fresh);
            }
            return;
        }
        if let Ok(logs) = self
            .process
            .get_session_command_logs(&dev.session_id, &dev.command_id)
            .await
        {
            let all = if logs.stdout.is_empty() && logs.stderr.is_empty() {
                logs.output
            } else {
                format!("{}{}", logs.stdout, logs.stderr)
            };
            if all.len() != self.polled_len {
                self.polled_len = all.len();
                self.text.clear();
                self.announced = None;
                self.push(&all);
            }
        }
    }

    /// The exit code once the dev process has ended.
    async fn exit_code(&mut self) -> Option<i32> {
        let dev = self.dev.clone()?;
        if self.stream.is_some() && !self.ended {
            return None;
        }
        let cmd = self
            .process
            .get_session_command(&dev.session_id, &dev.command_id)
            .await
            .ok()?;
        if cmd.exit_code.is_none() && self.ended {
            // The socket closed but the command runs on: poll from now on.
            self.stream = None;
        }
        cmd.exit_code
    }

    fn announcement(&self) -> Option<Announcement> {
        self.announced
    }

    /// The exit code if the dev process has ended, asked now (not from the stream).
    async fn exited_now(&self) -> Option<i32> {
        let dev = self.dev.as_ref()?;
        self.process
            .get_session_command(&dev.session_id, &dev.command_id)
            .await
            .ok()?
            .exit_code
    }

    /// Reads the log until it shows an error, for `within` at most.
    async fn await_error(&mut self, within: Duration) {
        let until = Instant::now() + within;
        self.refresh().await;
        while self.first_error().is_none() && Instant::now() < until {
            let tick = Instant::now() + Duration::from_millis(100);
            tokio::select! {
                () = self.changed() => {}
                () = tokio::time::sleep_until(tick.min(until)) => {}
            }
            self.refresh().await;
        }
    }

    /// The first error the log shows (see [`crate::crash_log::first_error`]).
    fn first_error(&self) -> Option<String> {
        crash_log::first_error(&self.text)
    }

    /// A crash the log shows: a watcher's "app crashed" line at once, an error only once the
    /// log has been quiet for [`CRASH_QUIET`].
    fn crash(&self) -> Option<crash_log::Crash> {
        let c = crash_log::crash(&self.text)?;
        (c.watcher.is_some() || self.last_output.elapsed() >= CRASH_QUIET).then_some(c)
    }

    /// Resolves when the log announces the server, prints a ready line, or ends; never when
    /// there is no live stream. What it reads is kept at once, so that being dropped (the
    /// interval ended first) loses nothing.
    async fn changed(&mut self) {
        loop {
            let Some(stream) = self.stream.as_mut().filter(|_| !self.ended) else {
                return std::future::pending().await;
            };
            let before = self.announced;
            let Some(Ok(c)) = stream.next().await else {
                self.ended = true;
                return;
            };
            let hint = READY_HINTS.iter().any(|h| c.data.contains(h));
            self.push(&c.data);
            if hint || (self.announced.is_some() && before.is_none()) {
                return;
            }
        }
    }

    /// The last `n` non-empty lines, ANSI stripped.
    fn tail(&self, n: usize) -> Vec<String> {
        let plain = strip_ansi(&self.text);
        let lines: Vec<&str> = plain
            .split(['\n', '\r'])
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !crate::install_log::is_notice(l))
            .collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::join_path;

    #[test]
    fn paths_join_with_one_slash() {
        assert_eq!(join_path("http://a:1", "/"), "http://a:1/");
        assert_eq!(join_path("http://a:1/", ""), "http://a:1/");
        assert_eq!(join_path("http://a:1/", "/x/y"), "http://a:1/x/y");
        assert_eq!(join_path("http://a:1", "x"), "http://a:1/x");
    }
}

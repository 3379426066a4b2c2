//! `verify_preview`: the conditions of [`crate::conditions`] composed into one answer, "the
//! preview URL serves the app", quickly and with a reason when it does not.
//!
//! Each round: has the dev process exited (stop, with its last log lines)? Did its log
//! announce another port than the one asked for (switch to that port's preview link)? Is the
//! port listening inside the sandbox (skip the HTTP probe while it is not)? Then one HTTP
//! probe, classified. Pending answers wait a [`Backoff`] interval (cut short when the log
//! announces the server or the process ends); an OK waits only `confirm_interval` before the
//! confirming probe, so a server that is already up is verified in about 100 ms.

use crate::classify::{Probe, Reason};
use crate::conditions::{port_listening, Backoff};
use crate::logport::{announced_port, Announcement};
use crate::probe::Prober;
use crate::{strip_ansi, PreviewError};
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
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            port: 3000,
            path: "/".into(),
            deadline: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            oks_required: 2,
            check_entry_module: true,
            confirm_interval: Duration::from_millis(50),
            log_tail_lines: 20,
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

/// The outcome of a verification: plain data, JSON in camelCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    let mut port = opts.port;
    let link = client.preview_url(sandbox_id, port).await?;
    let mut prober = prober.clone().with_token(Some(&link.token));
    let mut link_url = link.url;
    let mut log = LogWatch::open(toolbox.process(), dev, opts.deadline).await;
    let mut run = Run {
        started,
        attempts: 0,
        first_ok: None,
        tail_lines: opts.log_tail_lines,
    };
    let mut backoff = Backoff::new();
    let mut oks = 0u32;
    let mut listening = false;
    let mut last: Option<Probe> = None;
    loop {
        log.refresh().await;
        if let Some(code) = log.exit_code().await {
            let excerpt =
                format!("the dev process exited with code {code} before the preview worked");
            return Ok(run.report(
                &link_url,
                port,
                Reason::ProcessExited,
                last.as_ref(),
                Some(excerpt),
                &log,
            ));
        }
        if let Some(a) = log.announcement() {
            if a.strong && a.port == port {
                // Servers print their "Local:" line once they listen: no need to ask.
                listening = true;
            }
            let moved = a.port != port
                && (a.strong
                    || last
                        .as_ref()
                        .is_some_and(|p| p.reason == Reason::NotListening));
            if moved {
                tracing::debug!(from = port, to = a.port, "the log announced another port");
                port = a.port;
                let link = client.preview_url(sandbox_id, port).await?;
                prober = prober.with_token(Some(&link.token));
                link_url = link.url;
                oks = 0;
                listening = false;
                backoff.reset();
            }
        }
        if Instant::now() >= until {
            return Ok(run.report(&link_url, port, Reason::Timeout, last.as_ref(), None, &log));
        }
        if !listening {
            match port_listening(toolbox, port).await {
                Some(false) => {
                    last = Some(Probe {
                        reason: Reason::NotListening,
                        status: None,
                        excerpt: Some(format!("nothing listens on port {port} in the sandbox")),
                        entry_module: None,
                    });
                    log.sleep(backoff.next_delay(), until).await;
                    continue;
                }
                // Open, or cannot be told: on to HTTP.
                _ => listening = true,
            }
        }
        let timeout = if run.first_ok.is_some() {
            opts.request_timeout.min(WARM_REQUEST_TIMEOUT)
        } else {
            opts.request_timeout
        };
        let timeout = timeout.min(until.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            continue;
        }
        run.attempts += 1;
        let url = join_path(&link_url, &opts.path);
        let probe = prober.probe(&url, timeout, opts.check_entry_module).await;
        match probe.reason {
            Reason::Ok => {
                run.first_ok.get_or_insert_with(|| started.elapsed());
                oks += 1;
                if oks >= opts.oks_required.max(1) {
                    return Ok(run.report(&link_url, port, Reason::Ok, Some(&probe), None, &log));
                }
                last = Some(probe);
                sleep_until_or(opts.confirm_interval, until).await;
            }
            r if r.is_pending() => {
                oks = 0;
                if r == Reason::NotListening {
                    // It may have gone away: ask the port check again next round.
                    listening = false;
                }
                last = Some(probe);
                log.sleep(backoff.next_delay(), until).await;
            }
            r => {
                let excerpt = probe.excerpt.clone();
                return Ok(run.report(&link_url, port, r, Some(&probe), excerpt, &log));
            }
        }
    }
}

/// Counters of one verification.
struct Run {
    started: Instant,
    attempts: u32,
    first_ok: Option<Duration>,
    tail_lines: usize,
}

impl Run {
    fn report(
        &self,
        url: &str,
        port: u16,
        reason: Reason,
        last: Option<&Probe>,
        excerpt: Option<String>,
        log: &LogWatch,
    ) -> VerifyReport {
        let timed_out = reason == Reason::Timeout;
        VerifyReport {
            ok: reason == Reason::Ok,
            url: url.to_owned(),
            port,
            status: last.and_then(|p| p.status),
            reason,
            last_probe: last.map(|p| p.reason).filter(|_| timed_out),
            attempts: self.attempts,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            time_to_first_ok_ms: self.first_ok.map(|d| d.as_millis() as u64),
            log_tail: log.tail(self.tail_lines),
            excerpt: excerpt.or_else(|| {
                timed_out
                    .then(|| last.and_then(|p| p.excerpt.clone()))
                    .flatten()
            }),
        }
    }
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

async fn sleep_until_or(d: Duration, until: Instant) {
    tokio::time::sleep_until((Instant::now() + d).min(until)).await;
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
        }
    }

    fn push(&mut self, data: &str) {
        // Only the new text (from the start of the line it continues) can hold a new
        // announcement; a weak one (a bare URL) never replaces a strong one.
        let from = self.text.rfind(['\n', '\r']).map_or(0, |i| i + 1);
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
                    Some(Some(Err(_))) | Some(None) => {
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
            self.text.clear();
            self.announced = None;
            let all = if logs.stdout.is_empty() && logs.stderr.is_empty() {
                logs.output
            } else {
                format!("{}{}", logs.stdout, logs.stderr)
            };
            self.push(&all);
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

    /// Sleeps `d` (not past `until`), waking early when the log announces the server, prints
    /// a ready line, or ends.
    async fn sleep(&mut self, d: Duration, until: Instant) {
        let wake = (Instant::now() + d).min(until);
        let Some(stream) = self.stream.as_mut().filter(|_| !self.ended) else {
            tokio::time::sleep_until(wake).await;
            return;
        };
        let before = self.announced;
        let mut fresh = String::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                chunk = stream.next() => match chunk {
                    Some(Ok(c)) => {
                        let hint = READY_HINTS.iter().any(|h| c.data.contains(h));
                        fresh.push_str(&c.data);
                        let announced = announced_port(&fresh).is_some();
                        if hint || (announced && before.is_none()) {
                            break;
                        }
                    }
                    _ => {
                        self.ended = true;
                        break;
                    }
                }
            }
        }
        if !fresh.is_empty() {
            self.push(&fresh);
        }
    }

    /// The last `n` non-empty lines, ANSI stripped.
    fn tail(&self, n: usize) -> Vec<String> {
        let plain = strip_ansi(&self.text);
        let lines: Vec<&str> = plain
            .split(['\n', '\r'])
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
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

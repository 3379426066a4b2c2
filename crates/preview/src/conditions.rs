//! Readiness conditions of a preview, as values of [`forge_daytona::wait::Condition`] (waited
//! for by [`forge_daytona::wait::await_condition`], composed by [`crate::verify_preview`]):
//!
//! - [`PortListening`]: the port is open inside the sandbox (toolbox `GET /port/{p}/in-use`);
//! - [`HttpAnswers`]: HTTP through the preview URL answers with the app, `times` in a row;
//! - the dev process alive and the port its log announced: [`crate::verify`]'s dev log.
//!
//! `PortListening.and(HttpAnswers)` is the readiness of one port: the HTTP probe is not sent
//! while nothing listens.

use crate::classify::{Probe, Reason};
use crate::probe::Prober;
use crate::PreviewError;
use forge_daytona::wait::{Condition, Pace};
use forge_daytona::Toolbox;
use std::ops::RangeInclusive;
use std::time::Duration;
use tokio::time::Instant;

/// Ports Daytona's daemon checks; it answers 400 for the others, so they are not asked.
pub const PORT_CHECK_RANGE: RangeInclusive<u16> = 3000..=9999;

/// Whether something listens on `port` inside the sandbox. `None` when it cannot be told: the
/// port is outside [`PORT_CHECK_RANGE`], or the daemon refused or failed the check (older
/// daemons lack the route). Callers then skip this condition rather than fail on it.
pub async fn port_listening(toolbox: &Toolbox, port: u16) -> Option<bool> {
    if !PORT_CHECK_RANGE.contains(&port) {
        return None;
    }
    match toolbox.port_in_use(port).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::debug!(code = e.code(), port, "port check unavailable, skipped");
            None
        }
    }
}

/// Why a preview will not serve: waiting on is pointless.
#[derive(Debug)]
pub enum NotServing {
    /// The dev process exited, with this code.
    Exited(i32),
    /// The app crashed under a watcher (see [`crate::crash_log`]); the excerpt.
    Crashed(String),
    /// The preview answered with something that is not the app (a classified failure).
    Refused(Probe),
    /// The control plane failed (the preview link of a new port could not be fetched).
    Control(PreviewError),
}

/// Something listens on `port` inside the sandbox. Holds once seen (or when it cannot be
/// told); [`PortListening::forget`] asks again.
#[derive(Debug, Clone)]
pub struct PortListening {
    toolbox: Toolbox,
    port: u16,
    seen: bool,
}

impl PortListening {
    #[must_use]
    pub fn new(toolbox: Toolbox, port: u16) -> Self {
        PortListening {
            toolbox,
            port,
            seen: false,
        }
    }

    /// Checks `port` from now on.
    pub fn retarget(&mut self, port: u16) {
        self.port = port;
        self.seen = false;
    }

    /// Counts the port as listening without asking (the server's log said so).
    pub fn assume(&mut self) {
        self.seen = true;
    }

    /// Asks again at the next check (an HTTP probe found nothing listening).
    pub fn forget(&mut self) {
        self.seen = false;
    }

    /// Whether the last check found it listening.
    #[must_use]
    pub fn seen(&self) -> bool {
        self.seen
    }
}

impl Condition for PortListening {
    type Output = ();
    type Error = NotServing;

    async fn check(&mut self) -> Result<Option<()>, NotServing> {
        if !self.seen {
            // Open, or cannot be told: on to whatever comes next.
            self.seen = port_listening(&self.toolbox, self.port).await != Some(false);
        }
        Ok(self.seen.then_some(()))
    }
}

/// How [`HttpAnswers`] probes.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// OK answers needed in a row (at least 1).
    pub times: u32,
    /// Per-request timeout until the first OK.
    pub request_timeout: Duration,
    /// Per-request timeout once the server has answered OK.
    pub warm_request_timeout: Duration,
    /// The wait between an OK and the probe that confirms it.
    pub confirm_interval: Duration,
    /// Also request the page's module entry.
    pub check_entry_module: bool,
}

/// HTTP through the preview URL answers with the app `times` in a row. A pending answer
/// (nothing listening, compiling) is not yet; any other failure is [`NotServing::Refused`].
/// Keeps what a report needs: probes sent, the first OK, the last answer.
#[derive(Debug, Clone)]
pub struct HttpAnswers {
    prober: Prober,
    url: String,
    policy: HttpPolicy,
    /// When the wait began (the first OK is timed from it).
    started: Instant,
    /// No request runs past this.
    until: Instant,
    oks: u32,
    /// HTTP probes sent (entry-module requests not counted).
    pub attempts: u32,
    /// When the first OK came, from `started`.
    pub first_ok: Option<Duration>,
    /// The last answer.
    pub last: Option<Probe>,
}

impl HttpAnswers {
    #[must_use]
    pub fn new(
        prober: Prober,
        url: String,
        policy: HttpPolicy,
        started: Instant,
        until: Instant,
    ) -> Self {
        HttpAnswers {
            prober,
            url,
            policy,
            started,
            until,
            oks: 0,
            attempts: 0,
            first_ok: None,
            last: None,
        }
    }

    /// Probes `url` with `prober` from now on (counters kept, the OK streak restarted).
    pub fn retarget(&mut self, prober: Prober, url: String) {
        self.prober = prober;
        self.url = url;
        self.oks = 0;
    }
}

impl Condition for HttpAnswers {
    type Output = Probe;
    type Error = NotServing;

    async fn check(&mut self) -> Result<Option<Probe>, NotServing> {
        let timeout = if self.first_ok.is_some() {
            self.policy
                .request_timeout
                .min(self.policy.warm_request_timeout)
        } else {
            self.policy.request_timeout
        };
        let timeout = timeout.min(self.until.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Ok(None);
        }
        self.attempts += 1;
        let probe = self
            .prober
            .probe(&self.url, timeout, self.policy.check_entry_module)
            .await;
        match probe.reason {
            Reason::Ok => {
                self.first_ok.get_or_insert_with(|| self.started.elapsed());
                self.oks += 1;
                self.last = Some(probe.clone());
                Ok((self.oks >= self.policy.times.max(1)).then_some(probe))
            }
            r if r.is_pending() => {
                self.oks = 0;
                self.last = Some(probe);
                Ok(None)
            }
            _ => Err(NotServing::Refused(probe)),
        }
    }

    fn pace(&mut self) -> Pace {
        if self.oks > 0 {
            Pace::After(self.policy.confirm_interval)
        } else {
            Pace::Backoff
        }
    }
}

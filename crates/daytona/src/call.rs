//! Per-call deadline and cancellation. Every long call takes a [`CallOptions`]; the binding
//! maps a JS `AbortSignal` onto the [`CancellationToken`].

use crate::error::{Error, Result};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
pub use tokio_util::sync::CancellationToken;

/// Options of one call: an overall deadline (retries and waits included) and a cancel token.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// `None`: the call's default (60 s for lifecycle waits, the config's request timeout
    /// otherwise). `Some(Duration::ZERO)`: no deadline.
    pub timeout: Option<Duration>,
    pub cancel: Option<CancellationToken>,
}

impl CallOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// The deadline of a call started now, given the call's default timeout.
    pub(crate) fn deadline(&self, default: Option<Duration>) -> Deadline {
        let timeout = match self.timeout {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None => default.filter(|t| !t.is_zero()),
        };
        Deadline {
            at: timeout.map(|t| Instant::now() + t),
            timeout,
            cancel: self.cancel.clone(),
        }
    }
}

/// A running call's deadline and cancel token.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
}

impl Deadline {
    /// Time left, `None` when unbounded.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether waiting `d` more would still end before the deadline.
    pub(crate) fn allows(&self, d: Duration) -> bool {
        self.remaining().is_none_or(|r| r > d)
    }

    pub(crate) fn timeout_error(&self, what: &str) -> Error {
        let secs = self.timeout.map_or(0.0, |t| t.as_secs_f64());
        Error::Timeout {
            message: format!("{what} did not finish within {secs} s"),
            api: None,
        }
    }

    /// The same deadline, deaf to the cancel token: for work that must run to its end once
    /// started (the create request whose answer names the sandbox to clean up).
    pub(crate) fn without_cancel(&self) -> Deadline {
        Deadline {
            cancel: None,
            ..self.clone()
        }
    }

    /// Waits for `condition` within this deadline: past it `DAYTONA_TIMEOUT` (naming `what`),
    /// cancelled `DAYTONA_ABORTED`.
    pub(crate) async fn wait<C>(&self, what: &str, condition: C) -> Result<C::Output>
    where
        C: crate::wait::Condition<Error = Error>,
    {
        use crate::wait::WaitError;
        match crate::wait::await_condition(self.at, self.cancel.as_ref(), condition).await {
            Ok(v) => Ok(v),
            Err(WaitError::TimedOut) => Err(self.timeout_error(what)),
            Err(WaitError::Cancelled) => Err(Error::Aborted),
            Err(WaitError::Failed(e)) => Err(e),
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
    }

    /// Runs `fut` until it ends, the deadline passes (`DAYTONA_TIMEOUT`) or the call is
    /// cancelled (`DAYTONA_ABORTED`).
    pub(crate) async fn run<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let cancelled = async {
            match &self.cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let expired = async {
            match self.at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancelled => Err(Error::Aborted),
            () = expired => Err(self.timeout_error(what)),
            r = fut => r,
        }
    }

    /// Sleeps `d` unless cancelled or past the deadline.
    pub(crate) async fn sleep(&self, what: &str, d: Duration) -> Result<()> {
        self.run(what, async {
            tokio::time::sleep(d).await;
            Ok(())
        })
        .await
    }
}

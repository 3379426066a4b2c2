//! Readiness conditions, each usable on its own and composed by [`crate::verify_preview`]
//! (kube-runtime's `await_condition` is the model: a condition is a check, waiting is a
//! separate loop with a deadline):
//!
//! - [`port_listening`]: the port is open inside the sandbox (toolbox `GET /port/{p}/in-use`);
//! - [`crate::announced_port`]: the dev server's log printed its URL;
//! - [`crate::Prober::probe`]: HTTP through the preview URL answers with the app.
//!
//! [`await_condition`] polls any of them with the readiness [`Backoff`].

use forge_daytona::Toolbox;
use std::future::Future;
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

/// Readiness polling intervals: 100 → 250 → 500 → 1000 ms, then 1000 ms, each ±20 % jitter
/// (Playwright's `webServer` schedule, reference §5), so that many waiters do not poll in step.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    step: usize,
}

impl Backoff {
    const STEPS_MS: [u64; 4] = [100, 250, 500, 1000];

    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// The next interval.
    pub fn next_delay(&mut self) -> Duration {
        let base = Self::STEPS_MS[self.step.min(Self::STEPS_MS.len() - 1)];
        self.step += 1;
        jitter(Duration::from_millis(base))
    }

    /// Back to the first, shortest interval.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}

/// `d` × a uniform factor in [0.8, 1.2].
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// Polls `check` until it returns `Some` (the condition holds: its value is returned) or
/// `deadline` passes (`None`). Checks run one at a time, [`Backoff`] apart; a check still
/// running at the deadline is dropped. Nothing is spawned: dropping the future stops it.
pub async fn await_condition<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    let mut backoff = Backoff::new();
    loop {
        match tokio::time::timeout_at(until, check()).await {
            Ok(Some(v)) => return Some(v),
            Ok(None) => {}
            Err(_) => return None,
        }
        let next = Instant::now() + backoff.next_delay();
        if next >= until {
            return None;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_second_with_jitter() {
        let mut b = Backoff::new();
        for base in [100u64, 250, 500, 1000, 1000, 1000] {
            let d = b.next_delay().as_secs_f64() * 1000.0;
            assert!(
                d >= base as f64 * 0.8 - 1e-6 && d <= base as f64 * 1.2 + 1e-6,
                "{d} vs {base}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn await_condition_returns_the_value_or_none() {
        let mut n = 0;
        let got = await_condition(Duration::from_secs(10), || {
            n += 1;
            let v = (n == 3).then_some(n);
            async move { v }
        })
        .await;
        assert_eq!(got, Some(3));
        let never = await_condition(Duration::from_millis(300), || async { None::<()> }).await;
        assert_eq!(never, None);
    }
}

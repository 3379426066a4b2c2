//! Waiting until something holds: one loop, [`await_condition`], for every poll in the
//! workspace (a sandbox reaching a state, a command exiting, a preview serving).
//!
//! kube-runtime's `wait.rs` is the model: a condition is a value that checks once
//! ([`Condition::check`]); conditions compose ([`Condition::and`], [`Condition::or`]); waiting
//! is a separate loop with a deadline and a cancel token. How long to wait between checks is
//! data ([`Backoff`]), so that each schedule is written once, with the reason it was chosen.

use crate::call::CancellationToken;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The intervals between checks, as data.
///
/// The first checks wait `steps` in order. Past them, the interval is the last one, kept until
/// `hold` has passed since the wait began, then multiplied by `factor` per check up to `max`.
/// Each interval is finally scaled by a uniform factor in `[1 - jitter, 1 + jitter]`, so that
/// many waiters do not check in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub steps: &'static [Duration],
    pub hold: Duration,
    pub factor: f64,
    pub max: Duration,
    pub jitter: f64,
}

impl Backoff {
    /// A sandbox reaching a state (create, start, stop, delete): 100 ms for the first 5 s,
    /// then x1.1 per check up to 1 s, the official SDK's polling mode (most sandboxes start
    /// within a second; a slow one is not asked ten times a second for a minute).
    pub const LIFECYCLE: Backoff = Backoff {
        steps: &[Duration::from_millis(100)],
        hold: Duration::from_secs(5),
        factor: 1.1,
        max: Duration::from_secs(1),
        jitter: 0.0,
    };

    /// A command's exit: 50 ms, then x1.5 per check up to 500 ms (a short command answers
    /// in one or two checks; a long one costs two requests a second).
    pub const COMMAND: Backoff = Backoff {
        steps: &[Duration::from_millis(50)],
        hold: Duration::ZERO,
        factor: 1.5,
        max: Duration::from_millis(500),
        jitter: 0.0,
    };

    /// A preview becoming ready: 100, 250, 500, then 1000 ms, each +-20 % (Playwright's
    /// `webServer` schedule: a server that is already up is seen at once, a compiling one is
    /// not hammered).
    pub const READINESS: Backoff = Backoff {
        steps: &[
            Duration::from_millis(100),
            Duration::from_millis(250),
            Duration::from_millis(500),
            Duration::from_secs(1),
        ],
        hold: Duration::ZERO,
        factor: 1.0,
        max: Duration::from_secs(1),
        jitter: 0.2,
    };

    /// The intervals of a wait that begins now.
    #[must_use]
    pub fn intervals(&self) -> Intervals {
        Intervals {
            backoff: *self,
            started: Instant::now(),
            taken: 0,
            current: Duration::ZERO,
        }
    }
}

/// The intervals of one wait (see [`Backoff`]).
#[derive(Debug, Clone)]
pub struct Intervals {
    backoff: Backoff,
    started: Instant,
    taken: usize,
    current: Duration,
}

impl Intervals {
    /// The wait before the next check.
    pub fn next_interval(&mut self) -> Duration {
        let b = &self.backoff;
        let d = b.steps.get(self.taken).copied().unwrap_or(self.current);
        self.taken = self.taken.saturating_add(1);
        self.current = d;
        if self.taken >= b.steps.len() && self.started.elapsed() >= b.hold {
            self.current = d.mul_f64(b.factor).min(b.max);
        }
        if b.jitter > 0.0 {
            d.mul_f64(1.0 - b.jitter + 2.0 * b.jitter * rand::random::<f64>())
        } else {
            d
        }
    }

    /// Back to the first, shortest interval (the thing waited for changed: a preview moved to
    /// another port).
    pub fn reset(&mut self) {
        self.taken = 0;
        self.started = Instant::now();
    }
}

/// When the next check is due, as a condition sees it after a check that did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// The backoff's next interval.
    #[default]
    Backoff,
    /// After this long (a success to confirm soon).
    After(Duration),
    /// At once, with the backoff started again (what is waited for changed).
    Restart,
}

/// Something to wait for: checked once per call, until it holds or fails.
pub trait Condition: Send {
    /// What the condition gives when it holds.
    type Output: Send;
    /// Why waiting is pointless (the process exited, the server refused).
    type Error: Send;

    /// Checks once: `Ok(Some(_))` it holds, `Ok(None)` not yet, `Err(_)` it never will.
    fn check(&mut self) -> impl Future<Output = Result<Option<Self::Output>, Self::Error>> + Send;

    /// The intervals between checks. Default: [`Backoff::READINESS`].
    fn backoff(&self) -> Backoff {
        Backoff::READINESS
    }

    /// When the next check is due, asked after each check that did not hold.
    fn pace(&mut self) -> Pace {
        Pace::Backoff
    }

    /// Resolves when checking again before the interval ends is worthwhile (a log line
    /// announced the server). Dropped unfinished when the interval ends, so it must lose
    /// nothing it has read. Default: never.
    fn changed(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Holds when `self` and then `other` hold (`other` is checked only once `self` holds).
    fn and<B>(self, other: B) -> And<Self, B>
    where
        Self: Sized,
        B: Condition<Error = Self::Error>,
    {
        And(self, other, Part::First)
    }

    /// Holds when `self` holds, or else when `other` does.
    fn or<B>(self, other: B) -> Or<Self, B>
    where
        Self: Sized,
        B: Condition<Output = Self::Output, Error = Self::Error>,
    {
        Or(self, other)
    }
}

impl<C: Condition> Condition for &mut C {
    type Output = C::Output;
    type Error = C::Error;

    fn check(&mut self) -> impl Future<Output = Result<Option<Self::Output>, Self::Error>> + Send {
        (**self).check()
    }
    fn backoff(&self) -> Backoff {
        (**self).backoff()
    }
    fn pace(&mut self) -> Pace {
        (**self).pace()
    }
    fn changed(&mut self) -> impl Future<Output = ()> + Send {
        (**self).changed()
    }
}

/// Both conditions, in order (see [`Condition::and`]). The first two fields are the two
/// conditions, so that a composite can retarget them between checks.
#[derive(Debug, Clone)]
pub struct And<A, B>(pub A, pub B, Part);

/// Which part of an [`And`] did not hold at the last check (its pace is the one that counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    First,
    Second,
}

impl<A: Condition, B: Condition<Error = A::Error>> Condition for And<A, B> {
    type Output = (A::Output, B::Output);
    type Error = A::Error;

    async fn check(&mut self) -> Result<Option<Self::Output>, Self::Error> {
        self.2 = Part::First;
        let Some(a) = self.0.check().await? else {
            return Ok(None);
        };
        self.2 = Part::Second;
        Ok(self.1.check().await?.map(|b| (a, b)))
    }
    fn backoff(&self) -> Backoff {
        self.0.backoff()
    }
    fn pace(&mut self) -> Pace {
        match self.2 {
            Part::First => self.0.pace(),
            Part::Second => self.1.pace(),
        }
    }
}

/// Either condition (see [`Condition::or`]).
#[derive(Debug, Clone)]
pub struct Or<A, B>(pub A, pub B);

impl<A: Condition, B: Condition<Output = A::Output, Error = A::Error>> Condition for Or<A, B> {
    type Output = A::Output;
    type Error = A::Error;

    async fn check(&mut self) -> Result<Option<Self::Output>, Self::Error> {
        if let Some(a) = self.0.check().await? {
            return Ok(Some(a));
        }
        self.1.check().await
    }
    fn backoff(&self) -> Backoff {
        self.0.backoff()
    }
}

/// A condition made of a closure that checks once, waiting `backoff` between checks.
pub fn from_fn<F, Fut, T, E>(backoff: Backoff, check: F) -> FromFn<F>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<Option<T>, E>> + Send,
    T: Send,
    E: Send,
{
    FromFn { check, backoff }
}

/// See [`from_fn`].
#[derive(Debug, Clone)]
pub struct FromFn<F> {
    check: F,
    backoff: Backoff,
}

impl<F, Fut, T, E> Condition for FromFn<F>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<Option<T>, E>> + Send,
    T: Send,
    E: Send,
{
    type Output = T;
    type Error = E;

    fn check(&mut self) -> impl Future<Output = Result<Option<T>, E>> + Send {
        (self.check)()
    }
    fn backoff(&self) -> Backoff {
        self.backoff
    }
}

/// Why [`await_condition`] ended without the condition holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError<E> {
    /// The deadline passed first.
    TimedOut,
    /// The cancel token fired.
    Cancelled,
    /// The condition failed (it never will hold).
    Failed(E),
}

/// Checks `condition` until it holds (its output is returned), fails, `deadline` passes or
/// `cancel` fires. Checks run one at a time; a check still running at the deadline or the
/// cancel is dropped. Nothing is spawned: dropping the future stops the wait.
///
/// # Errors
///
/// [`WaitError::TimedOut`], [`WaitError::Cancelled`], or the condition's own error.
pub async fn await_condition<C: Condition>(
    deadline: Option<Instant>,
    cancel: Option<&CancellationToken>,
    mut condition: C,
) -> Result<C::Output, WaitError<C::Error>> {
    let mut intervals = condition.backoff().intervals();
    let stop = async {
        tokio::select! {
            () = until(deadline) => WaitError::TimedOut,
            () = cancelled(cancel) => WaitError::Cancelled,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            e = &mut stop => return Err(e),
            r = condition.check() => match r {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => return Err(WaitError::Failed(e)),
            },
        }
        let wait = match condition.pace() {
            Pace::Backoff => intervals.next_interval(),
            Pace::After(d) => d,
            Pace::Restart => {
                intervals.reset();
                continue;
            }
        };
        let next = Instant::now() + wait;
        if deadline.is_some_and(|d| next >= d) {
            // No check could run before the deadline: wait it out, unless something changes.
            tokio::select! {
                biased;
                e = &mut stop => return Err(e),
                () = condition.changed() => {}
            }
            continue;
        }
        tokio::select! {
            biased;
            e = &mut stop => return Err(e),
            () = tokio::time::sleep_until(next) => {}
            () = condition.changed() => {}
        }
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn cancelled(cancel: Option<&CancellationToken>) {
    match cancel {
        Some(c) => c.cancelled().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn schedules_are_what_their_docs_say() {
        let mut r = Backoff::READINESS.intervals();
        for base in [100u64, 250, 500, 1000, 1000, 1000] {
            let d = r.next_interval().as_secs_f64() * 1000.0;
            #[allow(clippy::cast_precision_loss)]
            let base = base as f64;
            assert!(
                d >= base * 0.8 - 1e-6 && d <= base * 1.2 + 1e-6,
                "{d} vs {base}"
            );
        }
        r.reset();
        assert!(r.next_interval() <= Duration::from_millis(120));

        let mut c = Backoff::COMMAND.intervals();
        let got: Vec<u64> = (0..7)
            .map(|_| u64::try_from(c.next_interval().as_millis()).unwrap())
            .collect();
        assert_eq!(got, [50, 75, 112, 168, 253, 379, 500]);

        // Within its first 5 s the lifecycle schedule stays at 100 ms.
        let mut l = Backoff::LIFECYCLE.intervals();
        for _ in 0..10 {
            assert_eq!(l.next_interval(), Duration::from_millis(100));
        }
    }

    #[tokio::test]
    async fn waits_until_the_condition_holds() {
        let n = AtomicU32::new(0);
        let third = from_fn(Backoff::COMMAND, || async {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            Ok::<_, ()>((i == 3).then_some(i))
        });
        assert_eq!(await_condition(None, None, third).await, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_at_the_deadline_the_cancel_or_a_failure() {
        let never = || from_fn(Backoff::READINESS, || async { Ok::<Option<()>, ()>(None) });
        let deadline = Some(Instant::now() + Duration::from_secs(3));
        assert_eq!(
            await_condition(deadline, None, never()).await,
            Err(WaitError::TimedOut)
        );
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert_eq!(
            await_condition(None, Some(&cancel), never()).await,
            Err(WaitError::Cancelled)
        );
        let fails = from_fn(Backoff::READINESS, || async { Err::<Option<()>, _>("no") });
        assert_eq!(
            await_condition(None, None, fails).await,
            Err(WaitError::Failed("no"))
        );
    }

    #[tokio::test]
    async fn conditions_compose() {
        let yes = || from_fn(Backoff::READINESS, || async { Ok::<_, ()>(Some(1)) });
        let no = || from_fn(Backoff::READINESS, || async { Ok::<Option<i32>, ()>(None) });
        assert_eq!(yes().and(yes()).check().await, Ok(Some((1, 1))));
        assert_eq!(yes().and(no()).check().await, Ok(None));
        assert_eq!(no().and(yes()).check().await, Ok(None));
        assert_eq!(no().or(yes()).check().await, Ok(Some(1)));
        assert_eq!(no().or(no()).check().await, Ok(None));
    }

    /// Never holds, and asks to be checked again soon.
    struct Soon;

    impl Condition for Soon {
        type Output = i32;
        type Error = ();
        async fn check(&mut self) -> Result<Option<i32>, ()> {
            Ok(None)
        }
        fn pace(&mut self) -> Pace {
            Pace::After(Duration::from_millis(1))
        }
    }

    #[tokio::test]
    async fn an_and_is_paced_by_the_part_that_did_not_hold() {
        let yes = || from_fn(Backoff::READINESS, || async { Ok::<_, ()>(Some(1)) });
        let no = || from_fn(Backoff::READINESS, || async { Ok::<Option<i32>, ()>(None) });
        let mut first_fails = no().and(Soon);
        assert_eq!(first_fails.check().await, Ok(None));
        assert_eq!(first_fails.pace(), Pace::Backoff);
        let mut second_fails = yes().and(Soon);
        assert_eq!(second_fails.check().await, Ok(None));
        assert_eq!(second_fails.pace(), Pace::After(Duration::from_millis(1)));
    }
}

//! The retry policy (issue 8; modelled on kube-rs `client/retry.rs` and async-openai's
//! `should_retry`):
//!
//! - a failure to connect is retried for every request: nothing reached the server;
//! - a failure after the request may have been sent is retried only for idempotent methods;
//! - 429 is retried for everything but the once-only calls (`POST /sandbox`,
//!   `process/execute`, `code-run`, session exec), 503 likewise, 504 only for idempotent
//!   methods (the work may have been done behind the gateway);
//! - the wait is exponential with full jitter, or the server's `Retry-After` /
//!   `Retry-After-{scope}` when longer, and never past the call's deadline.

use crate::config::RetryConfig;
use crate::error::Error;
use crate::fetch::HeaderMap;
use crate::fetch::Method;
use std::time::Duration;

/// How safe a request is to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// GET, HEAD, PUT, DELETE, OPTIONS: the same effect however often it runs.
    Idempotent,
    /// A POST whose repetition after a refusal (429 / 503) is harmless.
    Post,
    /// Must never run twice for one call (create, exec): only connect failures are retried.
    Once,
}

impl RetryClass {
    pub fn for_method(m: &Method) -> RetryClass {
        match *m {
            Method::GET
            | Method::HEAD
            | Method::PUT
            | Method::DELETE
            | Method::OPTIONS
            | Method::TRACE => RetryClass::Idempotent,
            _ => RetryClass::Post,
        }
    }
}

/// Why a try failed.
#[derive(Debug)]
pub(crate) enum TryError {
    /// Never retried (deadline, cancel, bad input).
    Fatal(Error),
    /// The connection could not be made: the request was not sent.
    Connect(Error),
    /// The request may have reached the server.
    AfterSend(Error),
    /// The server answered with an error status.
    Status {
        err: Error,
        status: u16,
        retry_after: Option<Duration>,
    },
}

impl TryError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            TryError::Fatal(e) | TryError::Connect(e) | TryError::AfterSend(e) => e,
            TryError::Status { err, .. } => err,
        }
    }
}

/// The wait before the next try, or `None` when the failure is final. `tries` counts the
/// tries made so far.
pub(crate) fn next_delay(
    policy: &RetryConfig,
    failure: &TryError,
    class: RetryClass,
    tries: u32,
    replayable: bool,
) -> Option<Duration> {
    if tries >= policy.max_attempts || !replayable {
        return None;
    }
    let server_wait = match failure {
        TryError::Fatal(_) => return None,
        TryError::Connect(_) => None,
        TryError::AfterSend(_) if class == RetryClass::Idempotent => None,
        TryError::AfterSend(_) => return None,
        TryError::Status {
            status,
            retry_after,
            ..
        } => {
            let ok = match (status, class) {
                (_, RetryClass::Once) => false,
                (429 | 503, _) => true,
                (504, RetryClass::Idempotent) => true,
                _ => false,
            };
            if !ok {
                return None;
            }
            *retry_after
        }
    };
    let jitter = backoff(policy, tries);
    Some(match server_wait {
        Some(w) if w > jitter => w,
        _ => jitter,
    })
}

/// Full jitter: uniform in `[0, min(max, initial * 2^(tries-1))]`.
pub(crate) fn backoff(policy: &RetryConfig, tries: u32) -> Duration {
    let exp = tries.saturating_sub(1).min(20);
    let cap = policy
        .initial_backoff_ms
        .saturating_mul(1u64 << exp)
        .min(policy.max_backoff_ms);
    if cap == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=cap))
}

/// `Retry-After` (seconds or an HTTP date) or `Retry-After-{scope}`; the longest wins.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "retry-after" || n.starts_with("retry-after-")
        })
        .filter_map(|(_, v)| parse_retry_after(v.to_str().ok()?))
        .max()
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn status(s: u16, ra: Option<Duration>) -> TryError {
        TryError::Status {
            err: Error::Server(ApiError::default()),
            status: s,
            retry_after: ra,
        }
    }

    #[test]
    fn classes_decide() {
        let p = RetryConfig::default();
        let c = || TryError::Connect(Error::Connection("x".into()));
        let a = || TryError::AfterSend(Error::Connection("x".into()));
        assert!(next_delay(&p, &c(), RetryClass::Once, 1, true).is_some());
        assert!(next_delay(&p, &a(), RetryClass::Once, 1, true).is_none());
        assert!(next_delay(&p, &a(), RetryClass::Post, 1, true).is_none());
        assert!(next_delay(&p, &a(), RetryClass::Idempotent, 1, true).is_some());
        assert!(next_delay(&p, &status(429, None), RetryClass::Once, 1, true).is_none());
        assert!(next_delay(&p, &status(429, None), RetryClass::Post, 1, true).is_some());
        assert!(next_delay(&p, &status(504, None), RetryClass::Post, 1, true).is_none());
        assert!(next_delay(&p, &status(504, None), RetryClass::Idempotent, 1, true).is_some());
        assert!(next_delay(&p, &status(500, None), RetryClass::Idempotent, 1, true).is_none());
        assert!(next_delay(&p, &c(), RetryClass::Idempotent, 3, true).is_none());
        assert!(next_delay(&p, &c(), RetryClass::Idempotent, 1, false).is_none());
        let d = next_delay(
            &p,
            &status(429, Some(Duration::from_secs(7))),
            RetryClass::Post,
            1,
            true,
        );
        assert_eq!(d, Some(Duration::from_secs(7)));
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryConfig {
            max_attempts: 10,
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
        };
        for tries in 1..30 {
            let d = backoff(&p, tries);
            assert!(d <= Duration::from_secs(1));
            assert!(d <= Duration::from_millis(100u64 << (tries - 1).min(20)));
        }
    }

    #[test]
    fn parses_retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after-sandbox-create", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "1".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}

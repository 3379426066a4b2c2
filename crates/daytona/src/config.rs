//! Client configuration, resolved the way the official SDK resolves it (daytona-wire.md §2.1):
//! explicit values first, then the process environment (`DAYTONA_*`).

use crate::error::{scrub, Error, Result};
use std::time::Duration;

/// The API base the official SDK defaults to (it includes the `/api` prefix).
pub const DEFAULT_API_URL: &str = "https://app.daytona.io/api";

/// The `X-Daytona-Source` label we send. The official ESM build sends `sdk-typescript`
/// (daytona-wire.md §2.2); we send the same value because the daemon only special-cases
/// `sdk-go`, and servers that gate behaviour on the source then treat us like the SDK whose
/// wire we replicate.
pub const SOURCE_LABEL: &str = "sdk-typescript";

/// Deadline of a plain request when neither the call nor the config gives one: long enough
/// for a slow control-plane call, short enough that a server that never answers is noticed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_mins(10);

/// Most bytes of one JSON answer read into memory (a sandbox list, a command's output).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// How failed requests are retried (issue 8). `max_attempts` counts the first try, so `1`
/// disables retries. Backoff is exponential with full jitter:
/// `sleep = random(0, min(max_backoff, initial_backoff * 2^retry))`, or the server's
/// `Retry-After` when it asks for longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    /// Three attempts (the SDK's one try plus two retries), 250 ms initial, 5 s cap.
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 250,
            max_backoff_ms: 5_000,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..Default::default()
        }
    }
}

/// How the client authenticates: an API key, or a JWT bound to an organization.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    ApiKey(String),
    Jwt {
        token: String,
        organization_id: String,
    },
}

impl Auth {
    /// The bearer token (never printed).
    pub(crate) fn bearer(&self) -> &str {
        match self {
            Auth::ApiKey(k) => k,
            Auth::Jwt { token, .. } => token,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Auth::Jwt {
                organization_id, ..
            } => f
                .debug_struct("Jwt")
                .field("token", &"<redacted>")
                .field("organization_id", organization_id)
                .finish(),
        }
    }
}

/// Configuration of a [`crate::Client`]. Build it with [`DaytonaConfig::new`] /
/// [`DaytonaConfig::from_env`] and the `with_*` builders; [`DaytonaConfig::resolve`] fills
/// what is unset from the environment exactly like the official SDK's constructor.
///
/// `Debug` never prints the API key or JWT.
#[derive(Clone, Default, PartialEq)]
pub struct DaytonaConfig {
    pub api_key: Option<String>,
    pub jwt_token: Option<String>,
    pub organization_id: Option<String>,
    pub api_url: Option<String>,
    pub target: Option<String>,
    /// Deadline of one plain request when the call gives none (the SDK's `requestTimeoutMs`).
    /// `None`: [`DEFAULT_REQUEST_TIMEOUT`] (the official SDK's 24 h let a silent server hold a
    /// call, and what waits on it, for a day). Lifecycle waits have their own 60 s default,
    /// transfers 30 min, and a command run with a timeout gets that timeout and a minute more.
    pub request_timeout: Option<Duration>,
    /// Largest answer body read into memory (JSON answers, error bodies are cut at 64 KiB).
    /// `None`: [`DEFAULT_MAX_RESPONSE_BYTES`]. Past it a call fails with
    /// `DAYTONA_RESPONSE_TOO_LARGE` instead of growing without bound. File downloads stream
    /// and are not counted here.
    pub max_response_bytes: Option<u64>,
    pub retry: RetryConfig,
    /// Appended to the User-Agent (e.g. the napi binding's name and version).
    pub user_agent_suffix: Option<String>,
}

impl std::fmt::Debug for DaytonaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("DaytonaConfig")
            .field("api_key", &redact(&self.api_key))
            .field("jwt_token", &redact(&self.jwt_token))
            .field("organization_id", &self.organization_id)
            .field("api_url", &self.api_url.as_deref().map(|u| scrub(u, &[])))
            .field("target", &self.target)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry", &self.retry)
            .finish()
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl DaytonaConfig {
    /// An empty config: everything comes from the environment at [`resolve`](Self::resolve).
    pub fn new() -> Self {
        Self::default()
    }

    /// A config read entirely from the process environment (`DAYTONA_API_KEY`,
    /// `DAYTONA_JWT_TOKEN`, `DAYTONA_ORGANIZATION_ID`, `DAYTONA_API_URL` (or the deprecated
    /// `DAYTONA_SERVER_URL`), `DAYTONA_TARGET`).
    pub fn from_env() -> Self {
        Self::default().fill_from(|k| std::env::var(k).ok())
    }

    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    pub fn with_jwt(
        mut self,
        token: impl Into<String>,
        organization_id: impl Into<String>,
    ) -> Self {
        self.jwt_token = Some(token.into());
        self.organization_id = Some(organization_id.into());
        self
    }
    pub fn with_organization_id(mut self, id: impl Into<String>) -> Self {
        self.organization_id = Some(id.into());
        self
    }
    pub fn with_api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }
    pub fn with_max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = Some(limit);
        self
    }
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }
    pub fn with_user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// Fills unset fields from `lookup` (the environment in production, a map in tests).
    pub fn fill_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| non_empty(lookup(k));
        if non_empty(self.api_key.clone()).is_none() && non_empty(self.jwt_token.clone()).is_none()
        {
            self.api_key = get("DAYTONA_API_KEY");
            self.jwt_token = get("DAYTONA_JWT_TOKEN");
        }
        if self.organization_id.is_none() {
            self.organization_id = get("DAYTONA_ORGANIZATION_ID");
        }
        if self.api_url.is_none() {
            self.api_url = get("DAYTONA_API_URL").or_else(|| get("DAYTONA_SERVER_URL"));
        }
        if self.target.is_none() {
            self.target = get("DAYTONA_TARGET");
        }
        self
    }

    /// Fills from the process environment, then validates: the resolved settings a client
    /// runs with. An API key wins over a JWT; a JWT needs an organization ID.
    pub fn resolve(self) -> Result<ResolvedConfig> {
        self.fill_from(|k| std::env::var(k).ok()).validate()
    }

    /// Validates without reading the environment.
    pub fn validate(self) -> Result<ResolvedConfig> {
        let auth = if let Some(key) = non_empty(self.api_key.clone()) {
            Auth::ApiKey(key)
        } else if let Some(token) = non_empty(self.jwt_token.clone()) {
            let organization_id = non_empty(self.organization_id.clone()).ok_or_else(|| {
                Error::Auth(crate::error::ApiError::local(
                    "a JWT needs an organization ID (organizationId / DAYTONA_ORGANIZATION_ID)",
                ))
            })?;
            Auth::Jwt {
                token,
                organization_id,
            }
        } else {
            return Err(Error::Auth(crate::error::ApiError::local(
                "no credentials: set apiKey (DAYTONA_API_KEY) or jwtToken + organizationId",
            )));
        };
        let raw = non_empty(self.api_url.clone()).unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let api_url = url::Url::parse(raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                // The URL may carry credentials (`user:token@`) or be a key pasted in the
                // wrong field.
                let shown = scrub(&raw, &[auth.bearer().to_string()]);
                Error::InvalidArgument(format!("apiUrl is not an http(s) URL: {shown}"))
            })?;
        Ok(ResolvedConfig {
            auth,
            api_url: api_url.as_str().trim_end_matches('/').to_string(),
            target: non_empty(self.target),
            request_timeout: Some(self.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT)),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            retry: self.retry,
            user_agent_suffix: self.user_agent_suffix,
        })
    }
}

/// Validated settings (see [`DaytonaConfig::resolve`]). `Debug` redacts the credentials
/// (also a `user:password@` in `api_url`).
#[derive(Clone)]
pub struct ResolvedConfig {
    pub auth: Auth,
    /// Without a trailing slash, e.g. `https://app.daytona.io/api`.
    pub api_url: String,
    pub target: Option<String>,
    pub request_timeout: Option<Duration>,
    /// See [`DaytonaConfig::max_response_bytes`].
    pub max_response_bytes: u64,
    pub retry: RetryConfig,
    pub user_agent_suffix: Option<String>,
}

impl std::fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedConfig")
            .field("auth", &self.auth)
            .field("api_url", &scrub(&self.api_url, &[]))
            .field("target", &self.target)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("user_agent_suffix", &self.user_agent_suffix)
            .finish()
    }
}

impl ResolvedConfig {
    /// The secrets an error message must never contain.
    pub(crate) fn secrets(&self) -> Vec<String> {
        vec![self.auth.bearer().to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn resolves_like_the_sdk() {
        let c = DaytonaConfig::new()
            .fill_from(env(&[
                ("DAYTONA_API_KEY", "k-123456"),
                ("DAYTONA_TARGET", "eu"),
            ]))
            .validate()
            .unwrap();
        assert_eq!(c.auth, Auth::ApiKey("k-123456".into()));
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.target.as_deref(), Some("eu"));

        // Explicit values win; a trailing slash is dropped; the deprecated URL var is read.
        let c = DaytonaConfig::new()
            .with_api_key("explicit")
            .fill_from(env(&[
                ("DAYTONA_API_KEY", "env"),
                ("DAYTONA_SERVER_URL", "http://127.0.0.1:9/api/"),
            ]))
            .validate()
            .unwrap();
        assert_eq!(c.auth, Auth::ApiKey("explicit".into()));
        assert_eq!(c.api_url, "http://127.0.0.1:9/api");

        let jwt = DaytonaConfig::new()
            .fill_from(env(&[
                ("DAYTONA_JWT_TOKEN", "jwt-abc"),
                ("DAYTONA_ORGANIZATION_ID", "org-1"),
            ]))
            .validate()
            .unwrap();
        assert_eq!(
            jwt.auth,
            Auth::Jwt {
                token: "jwt-abc".into(),
                organization_id: "org-1".into()
            }
        );
        let h = crate::http::wire_headers(&jwt).unwrap();
        assert_eq!(h["x-daytona-organization-id"], "org-1");
        assert_eq!(h["authorization"], "Bearer jwt-abc");
        let h = crate::http::wire_headers(&c).unwrap();
        assert!(h.get("x-daytona-organization-id").is_none());
        assert_eq!(h["x-daytona-sdk-version"], "0.218.0");
        assert_eq!(h["x-daytona-source"], "sdk-typescript");
        assert!(h["user-agent"]
            .to_str()
            .unwrap()
            .contains("@smartapi-forge/daytona"));

        let e = DaytonaConfig::new()
            .fill_from(env(&[("DAYTONA_JWT_TOKEN", "j")]))
            .validate()
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_AUTH");
        assert_eq!(
            DaytonaConfig::new()
                .fill_from(env(&[]))
                .validate()
                .unwrap_err()
                .code(),
            "DAYTONA_AUTH"
        );
        let e = DaytonaConfig::new()
            .with_api_key("k")
            .with_api_url("ftp://x")
            .validate()
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
    }

    #[test]
    fn debug_has_no_secrets() {
        let c = DaytonaConfig::new()
            .with_api_key("sk-very-secret")
            .with_jwt("jwt-very-secret", "org");
        let r = c.clone().validate().unwrap();
        let client = crate::Client::from_resolved(r.clone()).unwrap();
        let all = format!("{c:?} {r:?} {client:?} {:?}", r.auth);
        assert!(!all.contains("very-secret"), "{all}");
    }
}

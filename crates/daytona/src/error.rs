//! One error type for every call, with stable string codes the binding turns into JS
//! `error.code`. Built from the HTTP status and both error JSON shapes (daytona-wire.md §9.1),
//! and scrubbed of secrets before it exists.

use std::time::Duration;

/// Details of an error the server answered with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// HTTP status (0 for errors raised locally).
    pub status: u16,
    /// The server's message, already scrubbed of secrets.
    pub message: String,
    /// The body's machine code (`NOT_FOUND`, `GIT_AUTH_FAILED`, `FILE_NOT_FOUND`, ...).
    pub code: Option<String>,
    /// Who raised it when the body says (`DAYTONA_DAEMON`, `DAYTONA_API`, ...).
    pub source: Option<String>,
}

impl ApiError {
    pub(crate) fn local(message: impl Into<String>) -> Self {
        ApiError {
            message: message.into(),
            ..Default::default()
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if self.status != 0 {
            write!(f, " (HTTP {})", self.status)?;
        }
        Ok(())
    }
}

/// Every failure of this crate. [`Error::code`] gives the stable code, written once per variant
/// (`#[strum(serialize)]`) so that [`Error::CODES`] lists them all for the binding's generated
/// `DaytonaErrorCode` union.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames)]
pub enum Error {
    #[error("not found: {0}")]
    #[strum(serialize = "DAYTONA_NOT_FOUND")]
    NotFound(ApiError),
    #[error("authentication failed: {0}")]
    #[strum(serialize = "DAYTONA_AUTH")]
    Auth(ApiError),
    /// A git server refused the credentials of a clone, pull or push (a wrong or missing
    /// GitHub token): apart from [`Error::Auth`], which is Daytona refusing its API key.
    #[error("git authentication failed: {0}")]
    #[strum(serialize = "GIT_AUTH_FAILED")]
    GitAuth(ApiError),
    /// The repository or branch does not exist, or the token cannot see it (GitHub answers
    /// both alike): apart from [`Error::NotFound`], a Daytona object that does not exist.
    #[error("git repository not found: {0}")]
    #[strum(serialize = "GIT_NOT_FOUND")]
    GitNotFound(ApiError),
    #[error("forbidden: {0}")]
    #[strum(serialize = "DAYTONA_FORBIDDEN")]
    Forbidden(ApiError),
    #[error("quota exceeded: {0}")]
    #[strum(serialize = "DAYTONA_QUOTA_EXCEEDED")]
    QuotaExceeded(ApiError),
    #[error("rate limited: {api}")]
    #[strum(serialize = "DAYTONA_RATE_LIMITED")]
    RateLimited {
        api: ApiError,
        retry_after: Option<Duration>,
    },
    /// A deadline passed: ours (`api` is `None`) or the server's (408 / 504).
    #[error("timed out: {message}")]
    #[strum(serialize = "DAYTONA_TIMEOUT")]
    Timeout {
        message: String,
        api: Option<ApiError>,
    },
    #[error("conflict: {0}")]
    #[strum(serialize = "DAYTONA_CONFLICT")]
    Conflict(ApiError),
    #[error("gone: {0}")]
    #[strum(serialize = "DAYTONA_GONE")]
    Gone(ApiError),
    #[error("bad request: {0}")]
    #[strum(serialize = "DAYTONA_BAD_REQUEST")]
    BadRequest(ApiError),
    #[error("server error: {0}")]
    #[strum(serialize = "DAYTONA_SERVER_ERROR")]
    Server(ApiError),
    #[error("connection failed: {0}")]
    #[strum(serialize = "DAYTONA_CONNECTION")]
    Connection(String),
    #[error("bad response: {message}")]
    #[strum(serialize = "DAYTONA_BAD_RESPONSE")]
    BadResponse {
        message: String,
        status: Option<u16>,
    },
    #[error("sandbox {id} failed with state {state}: {reason}")]
    #[strum(serialize = "DAYTONA_SANDBOX_FAILED")]
    SandboxFailed {
        id: String,
        state: String,
        reason: String,
    },
    /// An answer body larger than the client reads into memory (a server, or a wrong
    /// `apiUrl`, sending more than any Daytona answer is).
    #[error("the answer to {what} is larger than {limit} bytes, the most this client reads")]
    #[strum(serialize = "DAYTONA_RESPONSE_TOO_LARGE")]
    ResponseTooLarge { what: String, limit: u64 },
    #[error("invalid argument: {0}")]
    #[strum(serialize = "DAYTONA_INVALID_ARGUMENT")]
    InvalidArgument(String),
    #[error("aborted")]
    #[strum(serialize = "DAYTONA_ABORTED")]
    Aborted,
    /// What this build cannot do (a PTY's WebSocket in the WebAssembly build, which has no
    /// sockets): the message says what and where it works.
    #[error("not supported: {0}")]
    #[strum(serialize = "DAYTONA_NOT_SUPPORTED")]
    NotSupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code (`DAYTONA_NOT_FOUND`, `GIT_AUTH_FAILED`, ...).
    pub fn code(&self) -> &'static str {
        self.into()
    }

    /// Every code [`Error::code`] can give.
    pub const CODES: &'static [&'static str] = <Error as strum::VariantNames>::VARIANTS;

    /// The server's details, when the server answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::NotFound(a)
            | Error::Auth(a)
            | Error::GitAuth(a)
            | Error::GitNotFound(a)
            | Error::Forbidden(a)
            | Error::QuotaExceeded(a)
            | Error::Conflict(a)
            | Error::Gone(a)
            | Error::BadRequest(a)
            | Error::Server(a)
            | Error::RateLimited { api: a, .. } => Some(a),
            Error::Timeout { api, .. } => api.as_ref(),
            _ => None,
        }
    }

    /// The HTTP status the server answered with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::BadResponse { status, .. } => *status,
            _ => self.api().map(|a| a.status).filter(|s| *s != 0),
        }
    }

    /// The daemon's / API's domain code (`GIT_AUTH_FAILED`, `FILE_NOT_FOUND`, ...).
    pub fn daemon_code(&self) -> Option<&str> {
        self.api().and_then(|a| a.code.as_deref())
    }

    /// How long the server asked us to wait (429 / 503 `Retry-After[-{scope}]`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether trying the same call again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Connection(_) | Error::Timeout { .. } => true,
            Error::Server(a) => matches!(a.status, 502..=504),
            // "Sandbox state change in progress" passes; "session already exists" does not.
            Error::Conflict(a) => a.message.to_ascii_lowercase().contains("in progress"),
            _ => false,
        }
    }

    /// Builds the error for an HTTP answer. `body` is the raw response body; `secrets` are
    /// scrubbed from the message.
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        secrets: &[String],
    ) -> Error {
        let parsed = forge_wire::ErrorBody::parse(body);
        let (message, code, source) = if let Some(b) = parsed {
            (b.message, b.code, b.source)
        } else {
            // Scrubbed before it is cut, so no prefix of a secret is left.
            let text = scrub(&String::from_utf8_lossy(body), secrets);
            let text: String = text.trim().chars().take(500).collect();
            (text, None, None)
        };
        // Bulk upload answers `{"errors": [...], "files": [...]}`.
        let message = if message.is_empty() {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    let list = v.get("errors")?.as_array()?.iter();
                    let texts: Vec<String> = list
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                        .collect();
                    (!texts.is_empty()).then(|| texts.join(", "))
                })
                .unwrap_or_default()
        } else {
            message
        };
        let message = if message.is_empty() {
            http_reason(status).to_string()
        } else {
            scrub(&message, secrets)
        };
        let api = ApiError {
            status,
            message,
            code,
            source,
        };
        classify(api, retry_after)
    }
}

/// Maps an [`ApiError`] to its variant: domain codes first (as the SDK does), then status.
pub(crate) fn classify(api: ApiError, retry_after: Option<Duration>) -> Error {
    let status = api.status;
    match api.code.as_deref() {
        Some("GIT_AUTH_FAILED") => return Error::GitAuth(api),
        Some("GIT_REPO_NOT_FOUND" | "GIT_BRANCH_NOT_FOUND") => return Error::GitNotFound(api),
        Some("FILE_NOT_FOUND" | "PROCESS_NOT_FOUND") => return Error::NotFound(api),
        Some("FILE_ACCESS_DENIED") => return Error::Forbidden(api),
        Some("PROCESS_EXECUTION_TIMEOUT") => {
            return Error::Timeout {
                message: api.message.clone(),
                api: Some(api),
            }
        }
        Some("SESSION_ENDED" | "COMMAND_ALREADY_COMPLETED") => return Error::Gone(api),
        _ => {}
    }
    match status {
        400 if is_quota_message(&api.message) => Error::QuotaExceeded(api),
        401 => Error::Auth(api),
        403 => Error::Forbidden(api),
        404 => Error::NotFound(api),
        408 | 504 => Error::Timeout {
            message: api.message.clone(),
            api: Some(api),
        },
        409 => Error::Conflict(api),
        410 => Error::Gone(api),
        429 => Error::RateLimited { api, retry_after },
        500..=599 => Error::Server(api),
        _ => Error::BadRequest(api),
    }
}

/// Quota errors are 400s with texts like `Total CPU limit exceeded. Maximum allowed: 4.` or
/// `... quota exceeded ...` (daytona-wire.md §9.2).
fn is_quota_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("quota")
        || (m.contains("limit") && (m.contains("exceed") || m.contains("reached")))
        || m.contains("maximum allowed")
}

fn http_reason(status: u16) -> &'static str {
    crate::fetch::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("HTTP error")
}

/// Removes secrets from a text: every known secret, and the `user:password@` part of any URL.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "***");
        }
    }
    scrub_userinfo(&out)
}

/// `https://user:token@host` → `https://***@host` (also for `user@` alone, which may be a token).
fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> Error {
        Error::from_response(status, body.as_bytes(), None, &["sekrit-key".to_string()])
    }

    #[test]
    fn maps_statuses_and_shapes() {
        let api = r#"{"path":"/api/sandbox/x","timestamp":"t","statusCode":404,"error":"Not Found","message":"Sandbox with ID or name x not found"}"#;
        let e = err(404, api);
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND");
        assert_eq!(e.status(), Some(404));
        assert!(e
            .to_string()
            .contains("Sandbox with ID or name x not found"));
        let daemon = r#"{"statusCode":401,"message":"bad creds","code":"GIT_AUTH_FAILED","source":"DAYTONA_DAEMON"}"#;
        let e = err(401, daemon);
        assert_eq!(e.code(), "GIT_AUTH_FAILED");
        assert_eq!(
            err(
                404,
                r#"{"statusCode":404,"message":"nope","code":"GIT_REPO_NOT_FOUND"}"#
            )
            .code(),
            "GIT_NOT_FOUND"
        );
        assert!(Error::CODES.contains(&"DAYTONA_AUTH") && Error::CODES.contains(&"GIT_NOT_FOUND"));
        assert!(!Error::CODES.iter().any(|c| c.contains(char::is_lowercase)));
        assert_eq!(e.daemon_code(), Some("GIT_AUTH_FAILED"));
        assert_eq!(
            err(
                400,
                r#"{"statusCode":400,"message":"Total CPU limit exceeded. Maximum allowed: 4."}"#
            )
            .code(),
            "DAYTONA_QUOTA_EXCEEDED"
        );
        assert_eq!(
            err(
                400,
                r#"{"statusCode":400,"message":["a must be set","b is bad"]}"#
            )
            .to_string(),
            "bad request: a must be set, b is bad (HTTP 400)"
        );
        assert_eq!(err(403, "").code(), "DAYTONA_FORBIDDEN");
        let e = err(
            400,
            r#"{"errors":["a.txt: disk full","b.txt: denied"],"files":[]}"#,
        );
        assert_eq!(
            e.to_string(),
            "bad request: a.txt: disk full, b.txt: denied (HTTP 400)"
        );
        assert_eq!(err(408, "").code(), "DAYTONA_TIMEOUT");
        assert_eq!(err(504, "").code(), "DAYTONA_TIMEOUT");
        assert_eq!(err(409, "").code(), "DAYTONA_CONFLICT");
        assert_eq!(err(410, "").code(), "DAYTONA_GONE");
        assert_eq!(err(422, "").code(), "DAYTONA_BAD_REQUEST");
        assert_eq!(err(500, "<html>oops</html>").code(), "DAYTONA_SERVER_ERROR");
        assert_eq!(err(429, "").code(), "DAYTONA_RATE_LIMITED");
        assert_eq!(
            err(
                404,
                r#"{"statusCode":404,"message":"nope","code":"FILE_NOT_FOUND"}"#
            )
            .daemon_code(),
            Some("FILE_NOT_FOUND")
        );
    }

    #[test]
    fn scrubs_secrets_and_userinfo() {
        let e = err(
            400,
            r#"{"message":"clone https://x-access-token:ghp_abc@github.com/o/r failed; key sekrit-key"}"#,
        );
        let s = format!("{e} {e:?}");
        assert!(!s.contains("ghp_abc"), "{s}");
        assert!(!s.contains("sekrit-key"), "{s}");
        assert!(s.contains("https://***@github.com/o/r"), "{s}");
        assert_eq!(scrub("see http://host/a@b", &[]), "see http://host/a@b");
    }
}

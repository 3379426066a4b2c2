//! Errors: [`LocalError`] for starting the backend, [`Failure`] for HTTP answers.
//!
//! Handlers return a [`Failure`] (status, message, optional daemon code). The response it
//! becomes carries the failure as an extension; a per-surface middleware ([`render_api`],
//! [`render_toolbox`]) then writes the body in the shape that surface uses on the real wire
//! (daytona-wire.md §9.1): the NestJS API shape under `/api`, the daemon shape under `/toolbox`.
//! That way the same failure reads right to both the official SDK and our client.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the backend could not start. Each variant has a stable [`LocalError::code`].
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The backend listens on loopback only; another address was asked for.
    #[error("refusing to listen on {0}: the local backend binds 127.0.0.1 (or ::1) only")]
    NotLoopback(SocketAddr),
    /// No home folder was given and none could be derived from the environment.
    #[error("no home folder: set FORGE_HOME, XDG_DATA_HOME or HOME")]
    NoHome,
    /// Sandboxes cannot be isolated here and the config requires it, or the sandbox runtime
    /// cannot be installed at all.
    #[error("sandboxes cannot run isolated here: {reason}")]
    Isolation { reason: String },
    /// The home folder could not be created or read.
    #[error("cannot use home folder {path}: {source}")]
    Home {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LocalError {
    /// A stable machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            LocalError::Bind { .. } => "LOCAL_BIND_FAILED",
            LocalError::NotLoopback(_) => "LOCAL_NOT_LOOPBACK",
            LocalError::NoHome => "LOCAL_NO_HOME",
            LocalError::Home { .. } => "LOCAL_HOME_UNUSABLE",
            LocalError::Isolation { .. } => "LOCAL_ISOLATION_UNAVAILABLE",
        }
    }
}

/// An HTTP error answer. Rendered into the right JSON shape by the surface's middleware.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    /// Daemon error code (`FILE_NOT_FOUND`, `GIT_AUTH_FAILED`, ...). `None`: derived from status.
    pub code: Option<&'static str>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            code: None,
        }
    }
    pub fn with_code(mut self, code: &'static str) -> Failure {
        self.code = Some(code);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn unauthorized() -> Failure {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "authentication failed: missing or invalid API key",
        )
    }

    /// Maps a file-system error on `shown` (the sandbox path, never the host path) to the
    /// daemon's file codes.
    pub fn from_io(err: &std::io::Error, shown: &str) -> Failure {
        use std::io::ErrorKind::{
            AlreadyExists, InvalidFilename, IsADirectory, NotADirectory, NotFound, PermissionDenied,
        };
        match err.kind() {
            NotFound => {
                Failure::not_found(format!("file not found: {shown}")).with_code("FILE_NOT_FOUND")
            }
            PermissionDenied => {
                Failure::new(StatusCode::FORBIDDEN, format!("permission denied: {shown}"))
                    .with_code("FILE_ACCESS_DENIED")
            }
            AlreadyExists => Failure::conflict(format!("already exists: {shown}")),
            NotADirectory => {
                Failure::not_found(format!("file not found: {shown}")).with_code("FILE_NOT_FOUND")
            }
            IsADirectory => Failure::bad_request(format!("path points to a directory: {shown}"))
                .with_code("INVALID_FILE_PATH"),
            InvalidFilename => Failure::bad_request(format!("invalid file name: {shown}"))
                .with_code("INVALID_FILE_PATH"),

            _ => Failure::internal(format!("{shown}: {err}")),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// The daemon's generic code for a status (daytona-wire.md §9.1).
fn daemon_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 => "REQUEST_TIMEOUT",
        409 => "CONFLICT",
        410 => "GONE",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "UNPROCESSABLE_ENTITY",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// Now as RFC 3339 with milliseconds, as both servers stamp their errors and records.
///
/// Each stamp is later than the one before it (by a millisecond when the clock has not moved
/// on, or went back): lists sort by `createdAt` and `lastActivityAt`, and two sandboxes made
/// within one millisecond (a fast machine's loop) must still sort in the order they were
/// made, not by their random ids. Daytona's database keeps microseconds for the same reason;
/// the wire keeps milliseconds, so the stamps run ahead of the clock by at most the burst.
pub fn now_rfc3339() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let next = |last: u64| clock.max(last.saturating_add(1));
    // `fetch_update` only fails when the closure returns None; it never does.
    let last = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
        .unwrap_or_else(|last| last);
    let stamp = UNIX_EPOCH + Duration::from_millis(next(last));
    humantime::format_rfc3339_millis(stamp).to_string()
}

/// Takes the failure out of an error response, or builds one from a plain-text error body
/// (axum's own rejections: bad query, unknown route, wrong method, ...).
async fn take_failure(res: Response) -> Result<(Failure, Response), Response> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Err(res);
    }
    let (mut parts, body) = res.into_parts();
    if let Some(f) = parts.extensions.remove::<Failure>() {
        return Ok((f, Response::from_parts(parts, axum::body::Body::empty())));
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return Err(Response::from_parts(parts, body));
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&bytes).trim().to_string();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string();
    }
    let f = Failure::new(status, message);
    Ok((f, Response::from_parts(parts, axum::body::Body::empty())))
}

#[allow(clippy::needless_pass_by_value)] // built for this one response
fn json_response(mut res: Response, body: serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    *res.body_mut() = axum::body::Body::from(bytes);
    res
}

/// Middleware for `/api`: errors in the NestJS shape
/// `{path, timestamp, statusCode, error, message}`, plus `code` when the failure names one
/// (`NOT_SUPPORTED`): the SDKs read `code` from API errors as from the daemon's
/// (`DaytonaError.code`), so a client can tell "not here" from a bad request.
pub async fn render_api(req: Request, next: Next) -> Response {
    let path = original_path(&req);
    let res = next.run(req).await;
    match take_failure(res).await {
        Err(res) => res,
        Ok((f, res)) => {
            let mut body = serde_json::json!({
                "path": path,
                "timestamp": now_rfc3339(),
                "statusCode": f.status.as_u16(),
                "error": f.status.canonical_reason().unwrap_or("Error"),
                "message": f.message,
            });
            if let Some(code) = f.code {
                body["code"] = code.into();
            }
            json_response(res, body)
        }
    }
}

/// Middleware for `/toolbox/{id}`: errors in the daemon shape
/// `{statusCode, message, code, timestamp, path, method, source}`; `path` is the daemon path
/// (without the `/toolbox/{id}` prefix), as the daemon behind the proxy sees it.
pub async fn render_toolbox(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = daemon_path(&original_path(&req));
    let res = next.run(req).await;
    match take_failure(res).await {
        Err(res) => res,
        Ok((f, res)) => {
            let body = serde_json::json!({
                "statusCode": f.status.as_u16(),
                "message": f.message,
                "code": f.code.unwrap_or_else(|| daemon_code(f.status)),
                "timestamp": now_rfc3339(),
                "path": path,
                "method": method,
                "source": "DAYTONA_DAEMON",
            });
            json_response(res, body)
        }
    }
}

/// The request path before `nest` stripped its prefix.
pub fn original_path(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.path().to_string())
}

/// `/toolbox/<id>/files/info` → `/files/info`.
fn daemon_path(full: &str) -> String {
    let rest = full.strip_prefix("/toolbox/").unwrap_or(full);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_path_strips_the_proxy_prefix() {
        assert_eq!(daemon_path("/toolbox/abc/files/info"), "/files/info");
        assert_eq!(daemon_path("/toolbox/abc"), "/");
    }

    #[test]
    fn stamps_taken_within_one_millisecond_still_increase() {
        // A thousand stamps take far less than a millisecond each: without the bump, most
        // would equal the one before them.
        let stamps: Vec<String> = (0..1000).map(|_| now_rfc3339()).collect();
        for pair in stamps.windows(2) {
            // Same width (RFC 3339, milliseconds, UTC): text order is time order.
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let parsed = humantime::parse_rfc3339(&stamps[999]).expect("RFC 3339");
        let ahead = parsed
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        assert!(
            ahead <= std::time::Duration::from_secs(5),
            "the stamps stay near the clock"
        );
    }
}

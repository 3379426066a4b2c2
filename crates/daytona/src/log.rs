//! `FORGE_LOG=debug`: one line on stderr per HTTP request the client makes (issue 6), so a user
//! can see what a slow or failing call did without a proxy:
//!
//! ```text
//! forge: GET /api/sandbox/3f2a 200 12ms attempt=1
//! forge: POST /toolbox/3f2a/files/upload?path= DAYTONA_CONNECTION 3ms attempt=2
//! ```
//!
//! Method, path, status (or the error code when no status came back), milliseconds and the
//! attempt number (retries count up). Never headers or bodies; the query keeps only its keys
//! (values may be file paths, tokens or user text) and the URL loses its scheme, host and
//! `user:password@`. The variable is read once, at the first request.

use crate::error::scrub;
use crate::retry::TryError;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

/// Whether `FORGE_LOG` is `debug` (read once per process).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("FORGE_LOG").is_ok_and(|v| v.trim().eq_ignore_ascii_case("debug"))
    })
}

/// The loggable form of a request target: the URL's path, then its query keys (from the URL
/// and from `extra`) with the values dropped. Known secrets are scrubbed as a last guard.
pub(crate) fn target(url: &str, extra: &[(String, String)], secrets: &[String]) -> String {
    let (path, mut keys) = match url::Url::parse(url) {
        Ok(u) => (
            u.path().to_string(),
            u.query_pairs().map(|(k, _)| k.into_owned()).collect(),
        ),
        // Not a URL (never expected): keep nothing that could be a value.
        Err(_) => ("<unparseable url>".to_string(), Vec::<String>::new()),
    };
    keys.extend(extra.iter().map(|(k, _)| k.clone()));
    let mut out = path;
    for (i, k) in keys.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
        out.push('=');
    }
    scrub(&out, secrets)
}

/// One finished request as a log line (without the trailing newline).
pub(crate) fn line(method: &str, target: &str, outcome: &str, ms: u128, attempt: u32) -> String {
    format!("forge: {method} {target} {outcome} {ms}ms attempt={attempt}")
}

fn emit(text: &str) {
    // Never panics (unlike eprintln!) when stderr is closed or full.
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// One attempt being timed: started before the request, finished with its outcome. Does
/// nothing (no allocation) when logging is off.
pub(crate) struct Attempt {
    started: Option<(String, String, Instant)>,
    attempt: u32,
}

impl Attempt {
    pub(crate) fn start(req: &crate::http::Req, secrets: &[String], attempt: u32) -> Attempt {
        let started = enabled().then(|| {
            let mut all = secrets.to_vec();
            all.extend(req.secrets.iter().cloned());
            (
                req.method.to_string(),
                target(&req.url, &req.query, &all),
                Instant::now(),
            )
        });
        Attempt { started, attempt }
    }

    /// Logs the outcome and hands it back unchanged.
    pub(crate) fn finish(
        self,
        result: Result<crate::fetch::Response, TryError>,
    ) -> Result<crate::fetch::Response, TryError> {
        if let Some((method, target, t0)) = self.started {
            let outcome = match &result {
                Ok(r) => r.status().as_u16().to_string(),
                Err(TryError::Status { status, .. }) => status.to_string(),
                Err(TryError::Fatal(e) | TryError::Connect(e) | TryError::AfterSend(e)) => {
                    e.code().to_string()
                }
            };
            let ms = t0.elapsed().as_millis();
            emit(&line(&method, &target, &outcome, ms, self.attempt));
        }
        result
    }
}

/// For other crates' HTTP requests (the preview prober): one `FORGE_LOG=debug` line for a
/// request to `url` that ended with `outcome` (a status, or an error code) after `started`.
/// Only the URL's path and query keys are printed. Does nothing when logging is off.
pub fn log_request(method: &str, url: &str, outcome: &str, started: Instant, attempt: u32) {
    if enabled() {
        emit(&line(
            method,
            &target(url, &[], &[]),
            outcome,
            started.elapsed().as_millis(),
            attempt,
        ));
    }
}

/// Whether `FORGE_LOG=debug` is set (read once per process).
pub fn log_enabled() -> bool {
    enabled()
}

/// Logs a WebSocket upgrade (session log streams): `GET <path> 101|<code> <ms>ms attempt=1`.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn websocket(url: &str, secrets: &[String], t0: Instant, outcome: Result<(), &str>) {
    if !enabled() {
        return;
    }
    let outcome = match outcome {
        Ok(()) => "101",
        Err(code) => code,
    };
    emit(&line(
        "GET",
        &target(url, &[], secrets),
        outcome,
        t0.elapsed().as_millis(),
        1,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_path_and_query_keys_only() {
        let t = target(
            "https://user:tok-SECRET@toolbox.example/toolbox/sb-1/files?path=/home/x&token=abc",
            &[("path".into(), "/secret/file".into())],
            &[],
        );
        assert_eq!(t, "/toolbox/sb-1/files?path=&token=&path=");
        assert_eq!(
            target("http://127.0.0.1:9/api/sandbox", &[], &[]),
            "/api/sandbox"
        );
        // A secret that somehow sits in the path is scrubbed.
        let t = target(
            "http://h/api/sk-SECRET-123/x",
            &[],
            &["sk-SECRET-123".into()],
        );
        assert_eq!(t, "/api/***/x");
        assert_eq!(target("not a url", &[], &[]), "<unparseable url>");
    }

    #[test]
    fn line_format() {
        assert_eq!(
            line("GET", "/api/sandbox", "200", 12, 1),
            "forge: GET /api/sandbox 200 12ms attempt=1"
        );
    }
}

//! Small shared helpers: ids and tokens, the JSON body extractor, query parsing.

use crate::error::Failure;
use axum::extract::{FromRequest, Request};
use rand::Rng;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to send a request's head (and how long a kept-alive connection
/// may sit idle before its next one). Without it, a client that sends half a head and waits
/// holds a connection and a descriptor forever: about a thousand of those made the API
/// unreachable.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most connections one listener serves at once: at most half the descriptors this process
/// may open (each connection is one, and a proxied or file request opens more), at most
/// [`MAX_CONNECTIONS_CAP`]. Past it, new connections wait in the kernel's accept queue until
/// one ends (a half-sent head ends within [`HEADER_READ_TIMEOUT`]).
fn max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    ((soft / 2) as usize).clamp(64, MAX_CONNECTIONS_CAP)
}

/// The ceiling of [`max_connections`].
pub const MAX_CONNECTIONS_CAP: usize = 16_384;

/// Raises this process's soft limit on open descriptors to its hard limit (once): the
/// default soft limit of 1024 is a few hundred clients for a server whose every request may
/// open files, pipes and sockets.
pub fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!("cannot raise the open-file limit: {e}");
            }
        }
    });
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// (the caller bounds that wait). Every connection: HTTP/1.1 with upgrades (WebSockets),
/// `TCP_NODELAY` (a response written in several small pieces would otherwise sit in Nagle's
/// buffer until the client's delayed ACK, about 40 ms on Linux, per request), a
/// [`HEADER_READ_TIMEOUT`], and one of [`max_connections`] slots.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections()));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was
                    // accepted: wait a little rather than spin.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut closed = closed.clone();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = async { let _ = closed.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
}

/// A random UUID v4 string, the shape Daytona uses for sandbox ids.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random lowercase alphanumeric token (API keys, preview tokens, command ids).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Compares secrets without an early exit, so timing tells nothing about the key.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of `Authorization: Bearer <token>`, the scheme matched in any case
/// (`bearer`, `BEARER`: RFC 9110 §11.1 makes it case-insensitive).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A JSON request body whose parse errors become a 400 [`Failure`] in the surface's shape
/// (axum's own `Json` answers 422 / 415 with plain text).
pub struct JsonBody<T>(pub T);

/// Largest JSON body accepted (file contents travel as multipart, not JSON).
const JSON_LIMIT: usize = 8 * 1024 * 1024;

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), JSON_LIMIT)
            .await
            .map_err(|_| Failure::bad_request("request body too large or unreadable"))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| Failure::bad_request(format!("invalid request body: {e}")))
    }
}

/// The query string as (key, value) pairs, repeated keys kept (`states=a&states=b`).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The first value of `key` in the query.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A query flag: `true`/`1` are true, anything else (or absent) false.
pub fn query_flag(pairs: &[(String, String)], key: &str) -> bool {
    matches!(query_get(pairs, key), Some("true" | "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_the_v4_shape() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut h = axum::http::HeaderMap::new();
        for v in ["Bearer k", "bearer k", "BEARER  k", "bEaReR k "] {
            h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
            assert_eq!(bearer(&h), Some("k"), "{v}");
        }
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Basic k".parse().unwrap(),
        );
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}

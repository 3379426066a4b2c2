//! Session command logs: the stdout/stderr demuxer (daytona-wire.md §7.3) and the live stream
//! over WebSocket (`.../logs?follow=true`, §7.1).
//!
//! The daemon writes every stdout line as `\x01\x01\x01<line>\n` and every stderr line as
//! `\x02\x02\x02<line>\n`; frames may cut a marker or a UTF-8 character anywhere. The
//! [`Demuxer`] keeps the (at most 2) bytes that may start a marker and one UTF-8 decoder per
//! stream, so the output never depends on where the frames were cut.

use crate::call::CancellationToken;
use crate::error::Result;
use futures_util::Stream;
#[cfg(not(target_family = "wasm"))]
pub(crate) use socket::open;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

/// A piece of output of one stream, decoded as UTF-8 (invalid bytes become U+FFFD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: LogStreamKind,
    pub data: String,
}

/// Splits marked log bytes into stdout and stderr text. Bytes before the first marker are
/// dropped, as the SDK does.
#[derive(Debug, Default)]
pub struct Demuxer {
    current: Option<LogStreamKind>,
    /// Up to 2 trailing bytes that may be the start of a marker.
    tail: Vec<u8>,
    stdout_carry: Vec<u8>,
    stderr_carry: Vec<u8>,
}

impl Demuxer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the complete text found so far, in order.
    pub fn push(&mut self, input: &[u8]) -> Vec<LogChunk> {
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(input);
        let mut segments: Vec<(LogStreamKind, Vec<u8>)> = Vec::new();
        let mut i = 0;
        let n = buf.len();
        while i < n {
            let b = buf[i];
            if b == 1 || b == 2 {
                if n - i >= 3 {
                    if buf[i + 1] == b && buf[i + 2] == b {
                        self.current = Some(if b == 1 {
                            LogStreamKind::Stdout
                        } else {
                            LogStreamKind::Stderr
                        });
                        i += 3;
                        continue;
                    }
                } else if buf[i..].iter().all(|&x| x == b) {
                    self.tail = buf[i..].to_vec();
                    break;
                }
            }
            // A run of plain bytes up to the next possible marker byte.
            let end = buf[i + 1..]
                .iter()
                .position(|&x| x == 1 || x == 2)
                .map_or(n, |p| i + 1 + p);
            if let Some(kind) = self.current {
                match segments.last_mut() {
                    Some((k, v)) if *k == kind => v.extend_from_slice(&buf[i..end]),
                    _ => segments.push((kind, buf[i..end].to_vec())),
                }
            }
            i = end;
        }
        self.decode(segments)
    }

    /// Ends the input: flushes held bytes (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> Vec<LogChunk> {
        let tail = std::mem::take(&mut self.tail);
        let mut out = Vec::new();
        if let Some(kind) = self.current {
            out = self.decode(vec![(kind, tail)]);
        }
        for kind in [LogStreamKind::Stdout, LogStreamKind::Stderr] {
            let carry = std::mem::take(self.carry(kind));
            if !carry.is_empty() {
                push_chunk(&mut out, kind, String::from_utf8_lossy(&carry).into_owned());
            }
        }
        out
    }

    fn carry(&mut self, kind: LogStreamKind) -> &mut Vec<u8> {
        match kind {
            LogStreamKind::Stdout => &mut self.stdout_carry,
            LogStreamKind::Stderr => &mut self.stderr_carry,
        }
    }

    fn decode(&mut self, segments: Vec<(LogStreamKind, Vec<u8>)>) -> Vec<LogChunk> {
        let mut out = Vec::new();
        for (kind, bytes) in segments {
            let text = decode_utf8(self.carry(kind), &bytes);
            push_chunk(&mut out, kind, text);
        }
        out
    }
}

fn push_chunk(out: &mut Vec<LogChunk>, stream: LogStreamKind, data: String) {
    if data.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.stream == stream => last.data.push_str(&data),
        _ => out.push(LogChunk { stream, data }),
    }
}

/// Decodes `carry + input`, keeping an incomplete trailing character in `carry`.
fn decode_utf8(carry: &mut Vec<u8>, input: &[u8]) -> String {
    carry.extend_from_slice(input);
    let mut out = String::new();
    let mut pos = 0;
    while pos < carry.len() {
        match std::str::from_utf8(&carry[pos..]) {
            Ok(s) => {
                out.push_str(s);
                pos = carry.len();
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&carry[pos..pos + valid]));
                match e.error_len() {
                    None => {
                        pos += valid;
                        break;
                    }
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        pos += valid + bad;
                    }
                }
            }
        }
    }
    carry.drain(..pos);
    out
}

/// Splits a whole log (e.g. a `text/plain` logs answer) at once.
pub fn demux_all(bytes: &[u8]) -> (String, String) {
    let mut d = Demuxer::new();
    let mut chunks = d.push(bytes);
    chunks.extend(d.finish());
    let (mut out, mut err) = (String::new(), String::new());
    for c in chunks {
        match c.stream {
            LogStreamKind::Stdout => out.push_str(&c.data),
            LogStreamKind::Stderr => err.push_str(&c.data),
        }
    }
    (out, err)
}

/// Live output of a session command. Chunks come in order; the stream ends when the server
/// closes the socket (the command exited). A slow reader slows the socket down (bounded
/// buffer, nothing dropped). Dropping the stream closes the socket.
pub struct LogStream {
    rx: mpsc::Receiver<Result<LogChunk>>,
    stop: CancellationToken,
}

impl LogStream {
    /// The next chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<LogChunk>> {
        self.rx.recv().await
    }

    /// Reads to the end, collecting `(stdout, stderr)`.
    pub async fn collect_all(mut self) -> Result<(String, String)> {
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(c) = self.next_chunk().await {
            let c = c?;
            match c.stream {
                LogStreamKind::Stdout => out.push_str(&c.data),
                LogStreamKind::Stderr => err.push_str(&c.data),
            }
        }
        Ok((out, err))
    }
}

impl Stream for LogStream {
    type Item = Result<LogChunk>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Chunks buffered between the socket and the reader.
#[cfg(not(target_family = "wasm"))]
const CHANNEL_CAPACITY: usize = 64;

/// `http(s)://` → `ws(s)://`.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn ws_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_string()
    }
}

/// The live log stream over WebSocket: the native build only (WASI has no sockets; see
/// [`open`] for the WebAssembly build).
#[cfg(not(target_family = "wasm"))]
pub(crate) mod socket {
    use super::{Demuxer, LogStream, CHANNEL_CAPACITY};
    use crate::call::{CallOptions, CancellationToken};
    use crate::error::{scrub, Error, Result};
    use futures_util::{SinkExt, StreamExt};
    use std::sync::{Arc, OnceLock};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    /// rustls with the ring provider and the webpki roots, built once (like reqwest's).
    pub fn tls_connector() -> Result<tokio_tungstenite::Connector> {
        static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
        let cfg = CONFIG.get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        });
        cfg.clone()
            .map(tokio_tungstenite::Connector::Rustls)
            .ok_or_else(|| Error::Connection("TLS is not available for the log stream".into()))
    }

    /// A connected WebSocket of the toolbox.
    pub(crate) type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// Opens a toolbox WebSocket: the wire headers plus `extra` (a subprotocol offer), within
    /// `deadline`; an HTTP refusal becomes the typed error of its status. `what` names the
    /// socket in errors and the log.
    pub(crate) async fn handshake(
        url: &str,
        headers: &crate::fetch::HeaderMap,
        extra: &[(http::HeaderName, String)],
        secrets: &[String],
        deadline: &crate::call::Deadline,
        what: &'static str,
    ) -> Result<Socket> {
        let mut request = url
            .into_client_request()
            .map_err(|e| Error::InvalidArgument(format!("bad {what} URL: {e}")))?;
        for (k, v) in headers {
            request.headers_mut().insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            let v = http::HeaderValue::from_str(v)
                .map_err(|_| Error::InvalidArgument(format!("bad {what} header {k}")))?;
            request.headers_mut().insert(k.clone(), v);
        }
        let connector = tls_connector()?;
        // Boxed here, at its source: the TLS + WebSocket handshake future is ~21 KB, and inline it
        // made every caller's future (the verifier, the pipeline, each test) that much larger.
        let connect = Box::pin(async {
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .map_err(|e| ws_error(e, what, secrets))
        });
        let t0 = std::time::Instant::now();
        let opened = deadline.run(what, connect).await;
        crate::log::websocket(
            url,
            secrets,
            t0,
            opened.as_ref().map(|_| ()).map_err(Error::code),
        );
        Ok(opened?.0)
    }

    /// Opens the WebSocket with the wire headers and starts pumping demuxed chunks into a
    /// bounded channel. Connect errors are returned here; later errors arrive as items.
    pub(crate) async fn open(
        url: &str,
        headers: &crate::fetch::HeaderMap,
        secrets: Vec<String>,
        opts: &CallOptions,
    ) -> Result<LogStream> {
        let deadline = opts.deadline(None);
        let mut ws = handshake(url, headers, &[], &secrets, &deadline, "open log stream").await?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let stop = CancellationToken::new();
        let stop_task = stop.clone();
        tokio::spawn(async move {
            let mut demux = Demuxer::new();
            let pump = async {
                while let Some(msg) = ws.next().await {
                    let bytes = match msg {
                        Ok(Message::Binary(b)) => b.to_vec(),
                        Ok(Message::Text(t)) => t.as_bytes().to_vec(),
                        Ok(Message::Close(_)) => break,
                        Ok(_) => continue,
                        Err(e) => return Err(ws_error(e, "log stream", &secrets)),
                    };
                    for chunk in demux.push(&bytes) {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            };
            let outcome = tokio::select! {
                () = stop_task.cancelled() => Ok(false),
                r = deadline.run("log stream", pump) => r,
            };
            match outcome {
                Ok(true) => {
                    for chunk in demux.finish() {
                        if tx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    for chunk in demux.finish() {
                        let _ = tx.send(Ok(chunk)).await;
                    }
                    let _ = tx.send(Err(e)).await;
                }
            }
            let _ = ws.close(None).await;
            let _ = ws.flush().await;
        });
        Ok(LogStream { rx, stop })
    }

    pub(crate) fn ws_error(
        e: tokio_tungstenite::tungstenite::Error,
        what: &str,
        secrets: &[String],
    ) -> Error {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::Http(resp) => {
                let status = resp.status().as_u16();
                let body = resp.body().clone().unwrap_or_default();
                Error::from_response(status, &body, None, secrets)
            }
            other => Error::Connection(scrub(&format!("{what}: {other}"), secrets)),
        }
    }
}

/// The WebAssembly build has no WebSocket: its live logs are polled ([`polled`]).
#[cfg(target_family = "wasm")]
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// What one poll saw: the whole output so far, per stream, and whether the command exited.
#[cfg(target_family = "wasm")]
pub(crate) struct Polled {
    pub stdout: String,
    pub stderr: String,
    pub exited: bool,
}

/// The WebAssembly build's live logs: `poll` (the command's state, then its output so far)
/// every [`POLL_EVERY`] until the command exits, each stream's new text sent as chunks, in
/// whole lines while it runs (a UTF-8 character cut at the end of one snapshot is whole in the
/// next), the rest at exit. Same contract as the WebSocket stream: ends when the command
/// exits, an error ends it as its last item, dropping it stops the polling. Within one poll
/// interval stdout's chunk comes before stderr's.
#[cfg(target_family = "wasm")]
pub(crate) fn polled<F, Fut>(mut poll: F, deadline: crate::call::Deadline) -> LogStream
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Polled>> + Send,
{
    let (tx, rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let stop_task = stop.clone();
    tokio::spawn(async move {
        let mut seen = [0usize; 2];
        let pump = async {
            loop {
                let p = poll().await?;
                for (i, (kind, text)) in [
                    (LogStreamKind::Stdout, &p.stdout),
                    (LogStreamKind::Stderr, &p.stderr),
                ]
                .into_iter()
                .enumerate()
                {
                    let new = text.get(seen[i]..).unwrap_or("");
                    let take = if p.exited {
                        new.len()
                    } else {
                        new.rfind('\n').map_or(0, |n| n + 1)
                    };
                    if take == 0 {
                        continue;
                    }
                    seen[i] += take;
                    let chunk = LogChunk {
                        stream: kind,
                        data: new[..take].to_owned(),
                    };
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                if p.exited {
                    return Ok(());
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        };
        let outcome = tokio::select! {
            () = stop_task.cancelled() => Ok(()),
            r = deadline.run("log stream", pump) => r,
        };
        if let Err(e) = outcome {
            let _ = tx.send(Err(e)).await;
        }
    });
    LogStream { rx, stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parts: &[&[u8]]) -> (String, String, Vec<LogChunk>) {
        let mut d = Demuxer::new();
        let mut all = Vec::new();
        for p in parts {
            all.extend(d.push(p));
        }
        all.extend(d.finish());
        let (mut o, mut e) = (String::new(), String::new());
        for c in &all {
            match c.stream {
                LogStreamKind::Stdout => o.push_str(&c.data),
                LogStreamKind::Stderr => e.push_str(&c.data),
            }
        }
        (o, e, all)
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"junk before");
        v.extend_from_slice(b"\x01\x01\x01hello \xc3\xa9t\xc3\xa9 \xe2\x82\xac\n");
        v.extend_from_slice(b"\x02\x02\x02err \xf0\x9f\x98\x80 line\n");
        v.extend_from_slice(b"\x01\x01\x01x\x01\x01y\x02z\n");
        v.extend_from_slice(b"\x02\x02\x02\x01\x01\x01\x02\x02\x02done\n");
        v
    }

    #[test]
    fn every_single_split_point() {
        let v = sample();
        let (o, e, _) = run(&[&v]);
        assert_eq!(o, "hello été €\nx\x01\x01y\x02z\n");
        assert_eq!(e, "err 😀 line\ndone\n");
        for i in 0..=v.len() {
            let (o2, e2, _) = run(&[&v[..i], &v[i..]]);
            assert_eq!(
                (o2.as_str(), e2.as_str()),
                (o.as_str(), e.as_str()),
                "split at {i}"
            );
        }
    }

    #[test]
    fn every_pair_of_split_points_and_byte_by_byte() {
        let v = sample();
        let (o, e, _) = run(&[&v]);
        for i in 0..=v.len() {
            for j in i..=v.len() {
                let (o2, e2, _) = run(&[&v[..i], &v[i..j], &v[j..]]);
                assert_eq!((&o2, &e2), (&o, &e), "split at {i},{j}");
            }
        }
        let bytes: Vec<&[u8]> = v.chunks(1).collect();
        let (o2, e2, _) = run(&bytes);
        assert_eq!((o2, e2), (o, e));
    }

    #[test]
    fn invalid_utf8_and_trailing_partial() {
        let (o, _, _) = run(&[b"\x01\x01\x01a\xffb\xe2\x82"]);
        assert_eq!(o, "a\u{FFFD}b\u{FFFD}");
        let (o, _, _) = run(&[b"\x01\x01\x01ok\x01\x01"]);
        assert_eq!(o, "ok\x01\x01");
    }

    #[test]
    fn ws_scheme() {
        assert_eq!(ws_url("https://a/b"), "wss://a/b");
        assert_eq!(ws_url("http://127.0.0.1:1/t"), "ws://127.0.0.1:1/t");
    }
}

//! PTY sessions (`/process/pty…`, toolbox.json): a shell on a real terminal inside the
//! sandbox, driven over a WebSocket as the official SDK's `PtyHandle` does.
//!
//! The wire (daytona-wire.md, the SDK's `PtyHandle.js`): the client offers the
//! `X-Daytona-Pty-Exit-Control` subprotocol; once attached the daemon sends the text frame
//! `{"type":"control","status":"connected"}`, then the terminal's output as binary frames;
//! input goes back as binary frames. When the shell exits it sends
//! `{"type":"control","status":"exited","exitCode":N}` and a close frame whose reason is
//! `{"exitCode":N,...}`; a refusal is `{"type":"control","status":"error","error":"…"}`.
//! `create-connect` creates and attaches in one upgrade (no output is missed), the envs in
//! the subprotocol `X-Daytona-Pty-Envs~<base64url JSON>`. Resize and kill are HTTP calls.
//!
//! The WebAssembly build has no WebSocket: `connect` / `create_and_connect` there are
//! `DAYTONA_NOT_SUPPORTED`; the HTTP calls work.

use super::Toolbox;
use crate::call::{CallOptions, CancellationToken};
use crate::client::seg;
use crate::error::{ApiError, Error, Result};
use crate::fetch::Method;
use forge_wire::{
    PtyCreateRequest, PtyCreateResponse, PtyListResponse, PtyResizeRequest, PtySessionInfo,
    StringMap,
};
use tokio::sync::{mpsc, watch, Mutex};

/// The largest side the daemon accepts (it answers 400 past it).
const MAX_SIDE: u32 = 1000;

/// Options of [`Pty::create`] and [`Pty::create_and_connect`].
#[derive(Clone, Default, PartialEq)]
pub struct PtyOptions {
    /// The session's id (required; unique in the sandbox).
    pub id: String,
    /// Working directory; the sandbox's work dir when `None`.
    pub cwd: Option<String>,
    /// Extra environment of the shell.
    pub envs: StringMap,
    /// Terminal width (default 80) and height (default 24), each 1..=1000.
    pub cols: Option<u32>,
    pub rows: Option<u32>,
}

/// Env values may be secrets: only their names are shown.
impl std::fmt::Debug for PtyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyOptions")
            .field("id", &self.id)
            .field("cwd", &self.cwd)
            .field("envs", &self.envs.keys().collect::<Vec<_>>())
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .finish()
    }
}

/// How a PTY's shell ended: its exit code and the daemon's reason (`SIGKILL`, ...) when not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyExit {
    pub exit_code: i32,
    pub reason: Option<String>,
}

/// The PTY sub-handle of a [`Toolbox`].
#[derive(Clone, Debug)]
pub struct Pty {
    pub(crate) tb: Toolbox,
}

fn require_id(id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "PTY session id must not be empty".into(),
        ));
    }
    Ok(())
}

fn check_side(name: &str, v: Option<u32>) -> Result<()> {
    match v {
        Some(n) if !(1..=MAX_SIDE).contains(&n) => Err(Error::InvalidArgument(format!(
            "{name} must be between 1 and {MAX_SIDE}, got {n}"
        ))),
        _ => Ok(()),
    }
}

fn check_options(o: &PtyOptions) -> Result<()> {
    require_id(&o.id)?;
    check_side("cols", o.cols)?;
    check_side("rows", o.rows)
}

impl Pty {
    fn path(id: &str) -> Result<String> {
        require_id(id)?;
        Ok(format!("/process/pty/{}", seg(id)))
    }

    /// `POST /process/pty`: creates a session whose shell starts when the first client
    /// connects ([`connect`](Self::connect)), so its first output is not missed. Its id.
    pub async fn create(&self, o: &PtyOptions) -> Result<String> {
        check_options(o)?;
        let body = PtyCreateRequest {
            id: Some(o.id.clone()),
            cwd: o.cwd.clone(),
            envs: (!o.envs.is_empty()).then(|| o.envs.clone()),
            cols: o.cols,
            rows: o.rows,
            lazy_start: Some(true),
        };
        let req = self
            .tb
            .req(Method::POST, "/process/pty", "create PTY session")
            .json(&body)?;
        let r: PtyCreateResponse = self
            .tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await?;
        Ok(r.session_id)
    }

    /// `GET /process/pty`: every session of the sandbox.
    pub async fn list(&self) -> Result<Vec<PtySessionInfo>> {
        let req = self
            .tb
            .req(Method::GET, "/process/pty", "list PTY sessions");
        let r: PtyListResponse = self
            .tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await?;
        Ok(r.sessions)
    }

    /// `GET /process/pty/{id}`. `DAYTONA_NOT_FOUND` for an unknown (or exited) session.
    pub async fn get(&self, id: &str) -> Result<PtySessionInfo> {
        let req = self
            .tb
            .req(Method::GET, &Self::path(id)?, "get PTY session");
        self.tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await
    }

    /// `POST /process/pty/{id}/resize`: the terminal's new size (the foreground job gets
    /// SIGWINCH); the session's info.
    pub async fn resize(&self, id: &str, cols: u32, rows: u32) -> Result<PtySessionInfo> {
        check_side("cols", Some(cols))?;
        check_side("rows", Some(rows))?;
        let req = self
            .tb
            .req(
                Method::POST,
                &format!("{}/resize", Self::path(id)?),
                "resize PTY session",
            )
            .json(&PtyResizeRequest { cols, rows })?;
        self.tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await
    }

    /// `DELETE /process/pty/{id}`: kills the shell (exit code 137) and forgets the session.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let req = self
            .tb
            .req(Method::DELETE, &Self::path(id)?, "delete PTY session")
            .accept("*/*");
        self.tb
            .transport()
            .empty(req, &self.tb.default_deadline())
            .await
    }

    /// `GET /process/pty/{id}/connect` (WebSocket): attaches to an existing session, starting
    /// a lazily created one. Resolves once the daemon says `connected`.
    pub async fn connect(&self, id: &str, opts: &CallOptions) -> Result<PtyHandle> {
        let url = format!("{}{}/connect", self.tb.base_url(), Self::path(id)?);
        self.open(id, &url, None, opts).await
    }

    /// `GET /process/pty/create-connect` (WebSocket): creates the session and attaches in one
    /// round trip, as the official SDK's `createPty` does.
    pub async fn create_and_connect(
        &self,
        o: &PtyOptions,
        opts: &CallOptions,
    ) -> Result<PtyHandle> {
        check_options(o)?;
        // Built apart: the serializer is not `Send`, and this future must be.
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("id", &o.id);
            q.append_pair("cols", &o.cols.unwrap_or(80).to_string());
            q.append_pair("rows", &o.rows.unwrap_or(24).to_string());
            if let Some(cwd) = &o.cwd {
                q.append_pair("cwd", cwd);
            }
            q.finish()
        };
        let url = format!(
            "{}/process/pty/create-connect?{}",
            self.tb.base_url(),
            query
        );
        let envs = if o.envs.is_empty() {
            None
        } else {
            let json = serde_json::to_vec(&o.envs)
                .map_err(|e| Error::InvalidArgument(format!("PTY envs: {e}")))?;
            Some(format!(
                "{}{}",
                forge_wire::PTY_ENVS_SUBPROTOCOL_PREFIX,
                base64url(&json)
            ))
        };
        self.open(&o.id, &url, envs, opts).await
    }

    #[cfg(target_family = "wasm")]
    #[allow(clippy::unused_async)]
    async fn open(
        &self,
        _id: &str,
        _url: &str,
        _envs: Option<String>,
        _opts: &CallOptions,
    ) -> Result<PtyHandle> {
        Err(Error::NotSupported(
            "a PTY needs a WebSocket, which the WebAssembly build does not have; use the \
             native build (list, get, resize and kill of PTY sessions work here)"
                .into(),
        ))
    }

    #[cfg(not(target_family = "wasm"))]
    async fn open(
        &self,
        id: &str,
        url: &str,
        envs: Option<String>,
        opts: &CallOptions,
    ) -> Result<PtyHandle> {
        use super::logs::{socket, ws_url};
        let protocols = envs
            .into_iter()
            .chain([forge_wire::PTY_EXIT_CONTROL_SUBPROTOCOL.to_owned()])
            .collect::<Vec<_>>()
            .join(", ");
        let t = self.tb.transport();
        let secrets = t.secrets().to_vec();
        let deadline = opts.deadline(t.default_timeout());
        let mut ws = socket::handshake(
            &ws_url(url),
            t.headers(),
            &[(http::header::SEC_WEBSOCKET_PROTOCOL, protocols)],
            &secrets,
            &deadline,
            "PTY connect",
        )
        .await?;
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_CAPACITY);
        let first = deadline
            .run("PTY connect", pump::attached(&mut ws, &out_tx, &secrets))
            .await?;
        let (in_tx, in_rx) = mpsc::channel(16);
        let (exit_tx, exit_rx) = watch::channel(first.map(Ended::Exited));
        let stop = CancellationToken::new();
        if exit_tx.borrow().is_none() {
            tokio::spawn(pump::run(ws, in_rx, out_tx, exit_tx, stop.clone(), secrets));
        }
        Ok(PtyHandle {
            id: id.to_owned(),
            pty: self.clone(),
            input: in_tx,
            output: Mutex::new(Some(out_rx)),
            exit: exit_rx,
            stop,
        })
    }
}

/// Output chunks buffered between the socket and the reader.
#[cfg(not(target_family = "wasm"))]
const OUTPUT_CAPACITY: usize = 256;

/// base64url without padding (the envs subprotocol token).
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// How the socket ended.
#[cfg_attr(target_family = "wasm", allow(dead_code))] // made by the socket pump, native only
#[derive(Debug, Clone)]
enum Ended {
    Exited(PtyExit),
    /// The socket failed or closed before an exit code came (the message says why).
    Failed(String),
    /// [`PtyHandle::disconnect`] (or the handle dropped): the shell may still run.
    Disconnected,
}

/// One client of a PTY session: input in, output out, the exit code at the end. Dropping it
/// disconnects (the session lives on until its shell exits or it is killed).
pub struct PtyHandle {
    id: String,
    pty: Pty,
    input: mpsc::Sender<Vec<u8>>,
    output: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    exit: watch::Receiver<Option<Ended>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for PtyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyHandle").field("id", &self.id).finish()
    }
}

impl PtyHandle {
    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes to the terminal (keystrokes: `"ls\n"`, `"\x03"` for ^C).
    /// `DAYTONA_CONNECTION` once the socket is gone.
    pub async fn send_input(&self, bytes: impl Into<Vec<u8>>) -> Result<()> {
        self.input
            .send(bytes.into())
            .await
            .map_err(|_| Error::Connection("the PTY is not connected".into()))
    }

    /// Resizes the terminal (see [`Pty::resize`]).
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<PtySessionInfo> {
        self.pty.resize(&self.id, cols, rows).await
    }

    /// Kills the shell (see [`Pty::delete`]); [`wait`](Self::wait) then gives 137.
    pub async fn kill(&self) -> Result<()> {
        self.pty.delete(&self.id).await
    }

    /// Takes the output: the terminal's bytes in order, ending when the socket closes. A
    /// reader that does not keep up slows the socket down (nothing is dropped). Once only;
    /// output not taken is discarded by [`wait`](Self::wait).
    pub async fn take_output(&self) -> Option<PtyOutput> {
        self.output.lock().await.take().map(|rx| PtyOutput { rx })
    }

    /// Waits for the shell to exit: its exit code. `DAYTONA_CONNECTION` when the socket ended
    /// first (a network failure, or [`disconnect`](Self::disconnect)).
    pub async fn wait(&self) -> Result<PtyExit> {
        let mut exit = self.exit.clone();
        let mut output = self.output.lock().await;
        loop {
            if let Some(ended) = exit.borrow_and_update().clone() {
                return match ended {
                    Ended::Exited(e) => Ok(e),
                    Ended::Failed(m) => Err(Error::Connection(m)),
                    Ended::Disconnected => Err(Error::Connection(
                        "the PTY was disconnected before its shell exited".into(),
                    )),
                };
            }
            // Output nobody took is read and dropped here, so the socket keeps moving.
            tokio::select! {
                changed = exit.changed() => {
                    if changed.is_err() {
                        return Err(Error::Connection("the PTY socket task ended".into()));
                    }
                }
                Some(_) = async { output.as_mut()?.recv().await } => {}
            }
        }
    }

    /// Closes this client's socket; the session and its shell live on.
    pub fn disconnect(&self) {
        self.stop.cancel();
    }
}

impl Drop for PtyHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The output of a [`PtyHandle`].
pub struct PtyOutput {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl PtyOutput {
    /// The next bytes, `None` once the socket closed.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for PtyOutput {
    type Item = Vec<u8>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Vec<u8>>> {
        self.rx.poll_recv(cx)
    }
}

/// Makes the typed error of a refusal.
#[cfg_attr(target_family = "wasm", allow(dead_code))] // made by the socket pump, native only
type MakeError = fn(ApiError) -> Error;

/// A refusal in a control message as a typed error: the daemon's wording decides.
#[cfg_attr(target_family = "wasm", allow(dead_code))] // made by the socket pump, native only
fn refusal(message: String) -> Error {
    const KINDS: &[(&str, MakeError)] = &[
        ("not found", Error::NotFound),
        ("already exists", Error::Conflict),
        ("inactive", Error::Gone),
    ];
    let lower = message.to_ascii_lowercase();
    match KINDS.iter().find(|(k, _)| lower.contains(k)) {
        Some((_, make)) => make(ApiError::local(message)),
        None => Error::Connection(message),
    }
}

/// `{"exitCode":N,"exitReason":"…"}` (the close frame's reason).
#[cfg_attr(target_family = "wasm", allow(dead_code))] // made by the socket pump, native only
fn exit_of(text: &str) -> Option<PtyExit> {
    let c: forge_wire::PtyControl = serde_json::from_str(&format!(
        r#"{{"type":"","status":"",{}"#,
        text.trim().strip_prefix('{')?
    ))
    .ok()?;
    Some(PtyExit {
        exit_code: c.exit_code?,
        reason: c.exit_reason,
    })
}

/// The socket's side of a handle (native only).
#[cfg(not(target_family = "wasm"))]
mod pump {
    use super::{exit_of, refusal, Ended, PtyExit};
    use crate::call::CancellationToken;
    use crate::error::{Error, Result};
    use crate::toolbox::logs::socket::{ws_error, Socket};
    use futures_util::{SinkExt, StreamExt};
    use tokio::sync::{mpsc, watch};
    use tokio_tungstenite::tungstenite::Message;

    /// What a text frame is: a control message, or output.
    enum Frame {
        Connected,
        Exited(PtyExit),
        Refused(String),
        Output(Vec<u8>),
    }

    fn classify(text: &str) -> Frame {
        match serde_json::from_str::<forge_wire::PtyControl>(text) {
            Ok(c) if c.kind == "control" => match c.status.as_str() {
                "connected" => Frame::Connected,
                "exited" => Frame::Exited(PtyExit {
                    exit_code: c.exit_code.unwrap_or(-1),
                    reason: c.exit_reason.map(|r| r.trim_matches(['(', ')']).to_owned()),
                }),
                _ => Frame::Refused(c.error.unwrap_or_else(|| "PTY connection refused".into())),
            },
            _ => Frame::Output(text.as_bytes().to_vec()),
        }
    }

    /// Reads until the daemon says `connected` (`None`) or that the shell already exited.
    pub(super) async fn attached(
        ws: &mut Socket,
        out: &mpsc::Sender<Vec<u8>>,
        secrets: &[String],
    ) -> Result<Option<PtyExit>> {
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(Message::Binary(b))) => {
                    let _ = out.send(b.to_vec()).await;
                    continue;
                }
                Some(Ok(Message::Close(frame))) => {
                    if let Some(e) = frame.and_then(|f| exit_of(&f.reason)) {
                        return Ok(Some(e));
                    }
                    return Err(Error::Connection("the PTY socket closed at once".into()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws_error(e, "PTY connect", secrets)),
                None => return Err(Error::Connection("the PTY socket closed at once".into())),
            };
            match classify(&text) {
                Frame::Connected => return Ok(None),
                Frame::Exited(e) => return Ok(Some(e)),
                Frame::Refused(m) => return Err(refusal(m)),
                Frame::Output(b) => {
                    let _ = out.send(b).await;
                }
            }
        }
    }

    /// Input to the socket, output from it, until the shell exits, the socket fails or the
    /// handle disconnects. A dropped output reader is not an error (its output is dropped).
    pub(super) async fn run(
        mut ws: Socket,
        mut input: mpsc::Receiver<Vec<u8>>,
        out: mpsc::Sender<Vec<u8>>,
        exit: watch::Sender<Option<Ended>>,
        stop: CancellationToken,
        secrets: Vec<String>,
    ) {
        let mut exited = None;
        let ended = loop {
            tokio::select! {
                () = stop.cancelled() => break Ended::Disconnected,
                data = input.recv() => match data {
                    Some(d) => {
                        if let Err(e) = ws.send(Message::Binary(d.into())).await {
                            break Ended::Failed(ws_error(e, "PTY input", &secrets).to_string());
                        }
                    }
                    None => break Ended::Disconnected,
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        let _ = out.send(b.to_vec()).await;
                    }
                    Some(Ok(Message::Text(t))) => match classify(&t) {
                        Frame::Exited(e) => exited = Some(e),
                        Frame::Refused(m) => break Ended::Failed(refusal(m).to_string()),
                        Frame::Output(b) => {
                            let _ = out.send(b).await;
                        }
                        Frame::Connected => {}
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let from_close = frame.and_then(|f| exit_of(&f.reason));
                        break match exited.take().or(from_close) {
                            Some(e) => Ended::Exited(e),
                            None => Ended::Failed("the PTY socket closed without an exit code".into()),
                        };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        break match exited.take() {
                            Some(e) => Ended::Exited(e),
                            None => Ended::Failed(ws_error(e, "PTY socket", &secrets).to_string()),
                        }
                    }
                    None => {
                        break match exited.take() {
                            Some(e) => Ended::Exited(e),
                            None => Ended::Failed("the PTY socket closed without an exit code".into()),
                        }
                    }
                },
            }
        };
        let _ = exit.send(Some(ended));
        let _ = ws.close(None).await;
        let _ = ws.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_sdks() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn close_reason_and_refusals() {
        assert_eq!(
            exit_of(r#"{"exitCode":137,"exitReason":"SIGKILL"}"#),
            Some(PtyExit {
                exit_code: 137,
                reason: Some("SIGKILL".into())
            })
        );
        assert_eq!(exit_of("slow consumer"), None);
        let e = refusal("Failed to connect to PTY session: PTY session not found".into());
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND");
        assert_eq!(refusal("boom".into()).code(), "DAYTONA_CONNECTION");
    }

    #[test]
    fn debug_hides_env_values() {
        let o = PtyOptions {
            id: "t".into(),
            envs: [("TOKEN".to_owned(), "s3cret".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let d = format!("{o:?}");
        assert!(d.contains("TOKEN") && !d.contains("s3cret"), "{d}");
    }
}

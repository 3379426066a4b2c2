//! A Chrome DevTools Protocol client of our own, as small as the check needs: one WebSocket
//! to the browser, JSON-RPC commands with ids, pages reached through flat sessions
//! (`Target.attachToTarget` with `flatten`), and their events handed to whoever listens for
//! them by method name. The commands and events the check uses are plain serde structs in
//! [`super::page`]; nothing else of the protocol is compiled in (a generated client of the
//! whole protocol was most of the addon's size).
//!
//! The connection's task ([`Browser::connect`]) owns the socket, the unanswered commands and
//! the listeners: when it ends (the browser went away, or it was aborted) every waiting
//! command fails and every listener's stream ends, so nothing waits on a dead browser.

use futures_util::{SinkExt, StreamExt};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// How long one command may wait for its answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message taken from the browser: a screenshot of the largest viewport
/// (4096 x 4096) as base64 PNG fits many times over.
const MAX_MESSAGE: usize = 256 << 20;

/// What went wrong talking to the browser.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CdpError {
    #[error("{0}")]
    Connect(String),
    #[error("the browser connection closed")]
    Closed,
    #[error("the browser did not answer {0} within {secs} s", secs = COMMAND_TIMEOUT.as_secs())]
    Timeout(&'static str),
    #[error("{method}: {message} ({code})")]
    Protocol {
        method: &'static str,
        code: i64,
        message: String,
    },
    #[error("unexpected answer: {0}")]
    Json(#[from] serde_json::Error),
}

/// One event of a page's session.
pub(crate) struct Event {
    pub method: String,
    pub params: Value,
}

/// A stream of the events a [`Page::listen`] asked for; it ends with the connection.
pub(crate) type Events = mpsc::UnboundedReceiver<Event>;

/// What the connection's task is asked to do.
enum Request {
    Call {
        method: &'static str,
        params: Value,
        session: Option<String>,
        reply: oneshot::Sender<Result<Value, CdpError>>,
    },
    Listen {
        session: String,
        methods: &'static [&'static str],
        events: mpsc::UnboundedSender<Event>,
    },
}

/// The browser connection (cheap to clone).
#[derive(Clone)]
pub(crate) struct Browser {
    requests: mpsc::UnboundedSender<Request>,
}

/// One page (a target) of the browser, through its own session.
pub(crate) struct Page {
    browser: Browser,
    session: String,
}

impl Browser {
    /// Connects to the browser's DevTools WebSocket; the returned task runs the connection
    /// (on the caller's runtime) until the browser goes away or it is aborted.
    pub async fn connect(ws: &str) -> Result<(Browser, tokio::task::JoinHandle<()>), CdpError> {
        let request = ws
            .into_client_request()
            .map_err(|e| CdpError::Connect(e.to_string()))?;
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE);
        config.max_frame_size = Some(MAX_MESSAGE);
        let connector =
            forge_daytona::websocket_tls().map_err(|e| CdpError::Connect(e.to_string()))?;
        // Boxed here, at its source (as the log socket's is): the TLS + WebSocket handshake
        // future is ~10 KB, and inline it grew the browser check's future and every caller's.
        let (socket, _) = Box::pin(tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            false,
            Some(connector),
        ))
        .await
        .map_err(|e| CdpError::Connect(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(socket, rx));
        Ok((Browser { requests: tx }, task))
    }

    /// Sends a browser-level command and waits for its result, read as `T` (`IgnoredAny`
    /// when it is not needed).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, CdpError> {
        self.send(method, params, None).await
    }

    /// Sends a command (of the page `session`, or of the browser) and reads its result as `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
        session: Option<String>,
    ) -> Result<T, CdpError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Call {
                method,
                params,
                session,
                reply,
            })
            .map_err(|_| CdpError::Closed)?;
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(CdpError::Closed),
            Err(_) => return Err(CdpError::Timeout(method)),
        };
        Ok(serde_json::from_value(result)?)
    }

    /// Opens `about:blank` in the browser context `context` and attaches to it, with the
    /// domains whose events the check reads (page, runtime, network) enabled.
    pub async fn new_page(&self, context: &str) -> Result<Page, CdpError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            target_id: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Attached {
            session_id: String,
        }
        let created: Created = self
            .call(
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context }),
            )
            .await?;
        let attached: Attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": created.target_id, "flatten": true }),
            )
            .await?;
        let page = Page {
            browser: self.clone(),
            session: attached.session_id,
        };
        let no_params = || json!({});
        tokio::try_join!(
            page.call::<IgnoredAny>("Page.enable", no_params()),
            page.call::<IgnoredAny>("Runtime.enable", no_params()),
            page.call::<IgnoredAny>("Network.enable", no_params()),
        )?;
        Ok(page)
    }
}

impl Page {
    /// Sends a command to the page and waits for its result, read as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, CdpError> {
        self.browser
            .send(method, params, Some(self.session.clone()))
            .await
    }

    /// The page's events named in `methods`, from now on (commands sent after this call see
    /// their events in it).
    pub fn listen(&self, methods: &'static [&'static str]) -> Events {
        let (events, stream) = mpsc::unbounded_channel();
        // A closed connection drops the sender: the stream ends at once.
        let _ = self.browser.requests.send(Request::Listen {
            session: self.session.clone(),
            methods,
            events,
        });
        stream
    }
}

/// The connection: writes commands, routes answers to their callers and events to their
/// listeners, until the socket closes.
async fn run<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type Reply = (&'static str, oneshot::Sender<Result<Value, CdpError>>);
    struct Listener {
        session: String,
        methods: &'static [&'static str],
        events: mpsc::UnboundedSender<Event>,
    }
    let (mut write, mut read) = socket.split();
    let mut next_id: u64 = 0;
    let mut waiting: HashMap<u64, Reply> = HashMap::new();
    let mut listeners: Vec<Listener> = Vec::new();
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Call { method, params, session, reply }) => {
                    next_id += 1;
                    let mut message = json!({ "id": next_id, "method": method, "params": params });
                    if let Some(s) = session {
                        message["sessionId"] = Value::String(s);
                    }
                    if write.send(Message::text(message.to_string())).await.is_err() {
                        let _ = reply.send(Err(CdpError::Closed));
                        break;
                    }
                    waiting.insert(next_id, (method, reply));
                }
                Some(Request::Listen { session, methods, events }) => {
                    listeners.push(Listener { session, methods, events });
                }
                // Every `Browser` dropped: nobody can ask anything any more.
                None => break,
            },
            message = read.next() => {
                let text = match message {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(message) = serde_json::from_str::<Incoming>(text.as_str()) else {
                    tracing::debug!("the browser sent a message that is not CDP JSON");
                    continue;
                };
                if let Some(id) = message.id {
                    if let Some((method, reply)) = waiting.remove(&id) {
                        let result = match message.error {
                            Some(e) => Err(CdpError::Protocol { method, code: e.code, message: e.message }),
                            None => Ok(message.result.unwrap_or(Value::Null)),
                        };
                        let _ = reply.send(result);
                    }
                } else if let (Some(method), Some(session)) = (message.method, message.session_id) {
                    listeners.retain(|l| !l.events.is_closed());
                    let params = message.params.unwrap_or(Value::Null);
                    for l in listeners
                        .iter()
                        .filter(|l| l.session == session && l.methods.contains(&method.as_str()))
                    {
                        let _ = l.events.send(Event { method: method.clone(), params: params.clone() });
                    }
                }
            }
        }
    }
    // Dropping `waiting` and `listeners` fails the callers and ends the streams.
}

/// A message from the browser: an answer (`id`) or an event (`method`, of a session).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<ProtocolError>,
    method: Option<String>,
    params: Option<Value>,
    session_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct ProtocolError {
    code: i64,
    message: String,
}

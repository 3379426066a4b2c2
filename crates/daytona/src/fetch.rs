//! The transport seam: how one HTTP request leaves the process and its answer comes back.
//!
//! Why a seam: the WebAssembly build of the binding (`wasm32-wasip1-threads`, see
//! `docs/wasm.md`) runs where WASI gives no sockets, so there a request has to go out through
//! JavaScript's `fetch`; natively it goes through reqwest ([`Reqwest`]). Everything above the
//! seam (wire headers, retries, typed errors, deadlines, bodies read within limits, multipart
//! parsing) is the same code on both. The types here are the few the client needs: a request
//! with a whole or multipart body, and an answer whose body is a stream of chunks.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
pub use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

/// Sends one request. Implementations never retry or follow redirects (the client's retry
/// policy decides), and never put the URL or a header value in an error's message.
pub trait Fetch: Send + Sync {
    fn fetch(&self, req: Request) -> BoxFuture<'static, Result<Response, FetchError>>;
}

/// One request as the client sends it.
pub struct Request {
    pub method: Method,
    pub url: String,
    /// Query pairs, appended to `url` percent-encoded.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Body,
}

/// A request body.
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `multipart/form-data`; the implementation writes the boundary and the Content-Type.
    Multipart(Form),
}

/// The parts of a `multipart/form-data` body, in order.
#[derive(Default)]
pub struct Form {
    pub parts: Vec<Part>,
}

/// Chunks of a streamed part; an error ends the request.
pub type PartStream = BoxStream<'static, std::io::Result<Bytes>>;

/// One part of a [`Form`].
pub enum Part {
    /// A plain field.
    Text { name: String, value: String },
    /// A file, sent `application/octet-stream` under `file_name`.
    File {
        name: String,
        file_name: String,
        data: PartData,
    },
}

/// A file part's bytes: whole, or streamed with its length when known (a known length gives
/// the request a Content-Length instead of chunked encoding).
pub enum PartData {
    Bytes(Bytes),
    Stream(PartStream, Option<u64>),
}

impl Form {
    /// Adds a plain field.
    pub fn text(mut self, name: String, value: String) -> Form {
        self.parts.push(Part::Text { name, value });
        self
    }

    /// Adds a file.
    pub fn file(mut self, name: String, file_name: String, data: PartData) -> Form {
        self.parts.push(Part::File {
            name,
            file_name,
            data,
        });
        self
    }
}

/// An answer: its head, and its body as a stream of chunks (read at most once).
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    content_length: Option<u64>,
    body: BoxStream<'static, Result<Bytes, FetchError>>,
}

impl Response {
    /// `content_length` is the body's announced size, when known.
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        content_length: Option<u64>,
        body: BoxStream<'static, Result<Bytes, FetchError>>,
    ) -> Response {
        Response {
            status,
            headers,
            content_length,
            body,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        self.body.next().await.transpose()
    }

    /// The rest of the body.
    pub fn bytes_stream(self) -> BoxStream<'static, Result<Bytes, FetchError>> {
        self.body
    }
}

/// What went wrong below HTTP. The message names the failure and its causes, never the URL.
#[derive(Debug)]
pub struct FetchError {
    kind: FetchErrorKind,
    message: String,
}

/// Which part of the exchange failed: the retry policy treats a failed connect (nothing was
/// sent) differently from a failure after sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// No connection was made: the request was not sent.
    Connect,
    Timeout,
    /// Reading the answer's body failed.
    Body,
    Other,
}

impl FetchError {
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> FetchErrorKind {
        self.kind
    }

    pub fn is_connect(&self) -> bool {
        self.kind == FetchErrorKind::Connect
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FetchError {}

#[cfg(not(target_family = "wasm"))]
pub use native::Reqwest;

/// The transport a client gets from [`crate::Client::new`]: reqwest natively; in the
/// WebAssembly build the one [`install`]ed (the binding installs a JavaScript `fetch` once, at
/// load time), since WASI gives the process no sockets of its own.
pub fn default_fetch() -> Result<std::sync::Arc<dyn Fetch>, FetchError> {
    #[cfg(not(target_family = "wasm"))]
    {
        Ok(std::sync::Arc::new(Reqwest::new()?))
    }
    #[cfg(target_family = "wasm")]
    {
        INSTALLED.get().cloned().ok_or_else(|| {
            FetchError::new(
                FetchErrorKind::Other,
                "no HTTP transport: the WebAssembly build sends its requests through a JavaScript \
                 fetch, and none was installed",
            )
        })
    }
}

/// The WebAssembly build's transport, set once per process.
#[cfg(target_family = "wasm")]
static INSTALLED: std::sync::OnceLock<std::sync::Arc<dyn Fetch>> = std::sync::OnceLock::new();

/// Sets the transport [`default_fetch`] returns in the WebAssembly build. The first one
/// installed stays (one JavaScript `fetch` per process); `false` when one was already there.
#[cfg(target_family = "wasm")]
pub fn install(fetch: std::sync::Arc<dyn Fetch>) -> bool {
    INSTALLED.set(fetch).is_ok()
}

/// The native transport: one pooled reqwest client (rustls).
#[cfg(not(target_family = "wasm"))]
mod native {
    use super::{Body, Fetch, FetchError, FetchErrorKind, Form, Part, PartData, Request, Response};
    use futures_util::future::BoxFuture;
    use futures_util::{StreamExt, TryStreamExt};
    use std::time::Duration;

    pub struct Reqwest(reqwest::Client);

    impl Reqwest {
        pub fn new() -> Result<Reqwest, FetchError> {
            reqwest::Client::builder()
                .use_rustls_tls()
                .connect_timeout(Duration::from_secs(15))
                .pool_idle_timeout(Duration::from_mins(1))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map(Reqwest)
                .map_err(|e| FetchError::from(&e))
        }
    }

    impl Fetch for Reqwest {
        fn fetch(&self, req: Request) -> BoxFuture<'static, Result<Response, FetchError>> {
            let mut rb = self.0.request(req.method, &req.url).headers(req.headers);
            if !req.query.is_empty() {
                rb = rb.query(&req.query);
            }
            rb = match req.body {
                Body::Empty => rb,
                Body::Bytes(b) => rb.body(b),
                Body::Multipart(form) => rb.multipart(multipart(form)),
            };
            Box::pin(async move {
                let resp = rb.send().await.map_err(|e| FetchError::from(&e))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let content_length = resp.content_length();
                let body = resp
                    .bytes_stream()
                    .map_err(|e| FetchError::from(&e))
                    .boxed();
                Ok(Response::new(status, headers, content_length, body))
            })
        }
    }

    /// A [`Form`] as reqwest's.
    fn multipart(form: Form) -> reqwest::multipart::Form {
        form.parts
            .into_iter()
            .fold(reqwest::multipart::Form::new(), |f, part| match part {
                Part::Text { name, value } => f.text(name, value),
                Part::File {
                    name,
                    file_name,
                    data,
                } => {
                    let p = match data {
                        PartData::Bytes(b) => reqwest::multipart::Part::stream(b),
                        PartData::Stream(s, Some(len)) => {
                            reqwest::multipart::Part::stream_with_length(
                                reqwest::Body::wrap_stream(s),
                                len,
                            )
                        }
                        PartData::Stream(s, None) => {
                            reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(s))
                        }
                    };
                    let p = p
                        .file_name(file_name)
                        .mime_str("application/octet-stream")
                        .expect("a valid MIME type");
                    f.part(name, p)
                }
            })
    }

    impl From<&reqwest::Error> for FetchError {
        /// The kind and the chain of causes; reqwest's own Display (which includes the URL)
        /// is replaced by the kind.
        fn from(e: &reqwest::Error) -> FetchError {
            let kind = if e.is_connect() {
                FetchErrorKind::Connect
            } else if e.is_timeout() {
                FetchErrorKind::Timeout
            } else if e.is_body() || e.is_decode() {
                FetchErrorKind::Body
            } else {
                FetchErrorKind::Other
            };
            let mut msg = match kind {
                FetchErrorKind::Connect => "cannot connect",
                FetchErrorKind::Timeout => "timed out",
                FetchErrorKind::Body => "error reading the response body",
                FetchErrorKind::Other => "request failed",
            }
            .to_string();
            let mut cur = std::error::Error::source(e);
            while let Some(err) = cur {
                let text = err.to_string();
                if !msg.contains(&text) {
                    msg.push_str(": ");
                    msg.push_str(&text);
                }
                cur = err.source();
            }
            FetchError::new(kind, msg)
        }
    }
}

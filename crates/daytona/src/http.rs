//! The HTTP transport: one [`Fetch`] per [`crate::Client`] (a pooled reqwest client natively,
//! see [`crate::fetch`]), the wire headers on every request, typed errors, and the retry
//! policy of issue 8 (see [`crate::retry`]).

use crate::call::Deadline;
use crate::config::{Auth, ResolvedConfig, SOURCE_LABEL};
use crate::error::{scrub, Error, Result};
use crate::fetch::header::{HeaderMap, HeaderName, HeaderValue};
use crate::fetch::{Fetch, FetchError, Method, Response, StatusCode};
use crate::retry::{RetryClass, TryError};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// The User-Agent: names this package and the wire level it speaks.
pub fn user_agent(suffix: Option<&str>) -> String {
    let mut ua = format!(
        "@smartapi-forge/daytona/{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        SOURCE_LABEL,
        forge_wire::SDK_VERSION
    );
    if let Some(s) = suffix {
        ua.push(' ');
        ua.push_str(s);
    }
    ua
}

/// Cheap to clone: the pool and settings are shared.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    http: Arc<dyn Fetch>,
    cfg: ResolvedConfig,
    headers: HeaderMap,
    secrets: Vec<String>,
}

/// A request body. JSON bodies are replayable (retries); streamed bodies go out once.
pub(crate) enum ReqBody {
    Empty,
    Json(Bytes),
    Multipart(Option<crate::fetch::Form>),
}

/// What one call sends.
pub(crate) struct Req {
    pub method: Method,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub body: ReqBody,
    pub class: RetryClass,
    pub accept: &'static str,
    /// Call-specific secrets (git passwords) scrubbed from errors too.
    pub secrets: Vec<String>,
    /// Names the call in timeout messages.
    pub what: &'static str,
}

impl Req {
    pub(crate) fn new(method: Method, url: String, what: &'static str) -> Req {
        let class = RetryClass::for_method(&method);
        Req {
            method,
            url,
            query: Vec::new(),
            body: ReqBody::Empty,
            class,
            accept: "application/json",
            secrets: Vec::new(),
            what,
        }
    }
    #[allow(clippy::needless_pass_by_value)] // takes numbers and strings alike
    pub(crate) fn query(mut self, k: &str, v: impl ToString) -> Req {
        self.query.push((k.to_string(), v.to_string()));
        self
    }
    pub(crate) fn query_opt(self, k: &str, v: Option<impl ToString>) -> Req {
        match v {
            Some(v) => self.query(k, v),
            None => self,
        }
    }
    pub(crate) fn json(mut self, body: &impl serde::Serialize) -> Result<Req> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode request: {e}")))?;
        self.body = ReqBody::Json(bytes.into());
        Ok(self)
    }
    pub(crate) fn class(mut self, class: RetryClass) -> Req {
        self.class = class;
        self
    }
    pub(crate) fn accept(mut self, accept: &'static str) -> Req {
        self.accept = accept;
        self
    }
    pub(crate) fn secret(mut self, s: Option<&String>) -> Req {
        if let Some(s) = s {
            self.secrets.push(s.clone());
        }
        self
    }
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let v = HeaderValue::from_str(value).map_err(|_| {
        Error::InvalidArgument(format!(
            "{name} contains characters not allowed in a header"
        ))
    })?;
    Ok((HeaderName::from_static(name), v))
}

/// The headers of daytona-wire.md §2.2 (the org header only with a JWT).
pub(crate) fn wire_headers(cfg: &ResolvedConfig) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    let mut auth =
        HeaderValue::from_str(&format!("Bearer {}", cfg.auth.bearer())).map_err(|_| {
            Error::InvalidArgument(
                "the API key / JWT contains characters not allowed in a header".into(),
            )
        })?;
    auth.set_sensitive(true);
    h.insert(crate::fetch::header::AUTHORIZATION, auth);
    for (k, v) in [
        header(forge_wire::headers::SOURCE, SOURCE_LABEL)?,
        header(forge_wire::headers::SDK_VERSION, forge_wire::SDK_VERSION)?,
        header("user-agent", &user_agent(cfg.user_agent_suffix.as_deref()))?,
    ] {
        h.insert(k, v);
    }
    if let Auth::Jwt {
        organization_id, ..
    } = &cfg.auth
    {
        let (k, v) = header(forge_wire::headers::ORGANIZATION_ID, organization_id)?;
        h.insert(k, v);
    }
    Ok(h)
}

impl Transport {
    /// The default transport ([`crate::fetch::default_fetch`]).
    pub(crate) fn new(cfg: ResolvedConfig) -> Result<Transport> {
        let http = crate::fetch::default_fetch()
            .map_err(|e| Error::Connection(format!("cannot build the HTTP client: {e}")))?;
        Transport::with_fetch(cfg, http)
    }

    /// A transport that sends through `http`.
    pub(crate) fn with_fetch(cfg: ResolvedConfig, http: Arc<dyn Fetch>) -> Result<Transport> {
        let headers = wire_headers(&cfg)?;
        let secrets = cfg.secrets();
        Ok(Transport {
            inner: Arc::new(Inner {
                http,
                cfg,
                headers,
                secrets,
            }),
        })
    }

    pub(crate) fn config(&self) -> &ResolvedConfig {
        &self.inner.cfg
    }

    #[cfg(not(target_family = "wasm"))] // the log WebSocket
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    pub(crate) fn secrets(&self) -> &[String] {
        &self.inner.secrets
    }

    /// `{apiUrl}{path}`.
    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}{}", self.inner.cfg.api_url, path)
    }

    /// A deadline for a plain request when the call gives none.
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.cfg.request_timeout
    }

    fn all_secrets(&self, req: &Req) -> Vec<String> {
        let mut s = self.inner.secrets.clone();
        s.extend(req.secrets.iter().cloned());
        s
    }

    /// One try: send and get the head of the answer. Error statuses become typed errors
    /// (their bodies read within the deadline).
    async fn attempt(&self, req: &mut Req, deadline: &Deadline) -> Result<Response, TryError> {
        use crate::fetch::header::{ACCEPT, CONTENT_TYPE};
        let mut headers = self.inner.headers.clone();
        headers.append(ACCEPT, HeaderValue::from_static(req.accept));
        let body = match &mut req.body {
            ReqBody::Empty => crate::fetch::Body::Empty,
            ReqBody::Json(b) => {
                headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                crate::fetch::Body::Bytes(b.clone())
            }
            ReqBody::Multipart(form) => match form.take() {
                Some(f) => crate::fetch::Body::Multipart(f),
                None => {
                    return Err(TryError::Fatal(Error::InvalidArgument(
                        "a streamed body cannot be sent twice".into(),
                    )))
                }
            },
        };
        let request = crate::fetch::Request {
            method: req.method.clone(),
            url: req.url.clone(),
            query: req.query.clone(),
            headers,
            body,
        };
        let secrets = self.all_secrets(req);
        let sent = deadline
            .run(req.what, async { Ok(self.inner.http.fetch(request).await) })
            .await;
        let resp = match sent {
            Err(e) => return Err(TryError::Fatal(e)),
            Ok(Err(e)) => {
                let err = Error::Connection(transport_message(&e, &secrets));
                return Err(if e.is_connect() {
                    TryError::Connect(err)
                } else {
                    TryError::AfterSend(err)
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = crate::retry::retry_after(resp.headers());
        let body = deadline
            .run(req.what, async {
                // An error body is only quoted: its head is enough.
                Ok(read_capped(resp, MAX_ERROR_BODY).await.0)
            })
            .await
            .map_err(TryError::Fatal)?;
        let err = Error::from_response(status.as_u16(), &body, retry_after, &secrets);
        Err(TryError::Status {
            err,
            status: status.as_u16(),
            retry_after,
        })
    }

    /// Sends with retries; returns the successful answer's head (the body still to read).
    pub(crate) async fn send(&self, req: Req, deadline: &Deadline) -> Result<Response> {
        self.send_counting(req, deadline, &mut 0).await
    }

    /// [`send`](Self::send) with a try counter shared with [`call`](Self::call)'s body retries.
    async fn send_counting(
        &self,
        mut req: Req,
        deadline: &Deadline,
        tries: &mut u32,
    ) -> Result<Response> {
        let policy = self.inner.cfg.retry;
        loop {
            *tries += 1;
            let logged = crate::log::Attempt::start(&req, self.secrets(), *tries);
            let failure = match logged.finish(self.attempt(&mut req, deadline).await) {
                Ok(r) => return Ok(r),
                Err(f) => f,
            };
            let replayable = !matches!(req.body, ReqBody::Multipart(_));
            match crate::retry::next_delay(&policy, &failure, req.class, *tries, replayable) {
                Some(delay) if deadline.allows(delay) => {
                    tracing::debug!(what = req.what, tries = *tries, ?delay, "retrying");
                    deadline.sleep(req.what, delay).await?;
                }
                _ => return Err(failure.into_error()),
            }
        }
    }

    /// Sends and reads the whole body, retrying an idempotent call whose body was cut off or
    /// unparseable. `parse` turns the body into the result.
    pub(crate) async fn call<T>(
        &self,
        req: Req,
        deadline: &Deadline,
        parse: impl Fn(StatusCode, Bytes) -> Result<T>,
    ) -> Result<T> {
        let policy = self.inner.cfg.retry;
        let what = req.what;
        let secrets = self.all_secrets(&req);
        let body_retries =
            req.class == RetryClass::Idempotent && !matches!(req.body, ReqBody::Multipart(_));
        let mut tries = 0u32;
        let mut next = Some(req);
        while let Some(req) = next.take() {
            if body_retries {
                next = Some(req.replay());
            }
            let resp = self.send_counting(req, deadline, &mut tries).await?;
            let status = resp.status();
            let limit = self.inner.cfg.max_response_bytes;
            let body = deadline
                .run(what, async {
                    match read_capped(resp, limit).await {
                        (_, Some(Err(e))) => {
                            Err(Error::Connection(transport_message(&e, &secrets)))
                        }
                        (_, Some(Ok(()))) => Err(Error::ResponseTooLarge {
                            what: what.to_string(),
                            limit,
                        }),
                        (bytes, None) => Ok(bytes),
                    }
                })
                .await;
            match body.and_then(|b| parse(status, b)) {
                Err(e @ (Error::Connection(_) | Error::BadResponse { .. }))
                    if next.is_some() && tries < policy.max_attempts =>
                {
                    let delay = crate::retry::backoff(&policy, tries);
                    if !deadline.allows(delay) {
                        return Err(e);
                    }
                    deadline.sleep(what, delay).await?;
                }
                other => return other,
            }
        }
        Err(Error::InvalidArgument("request cannot be replayed".into()))
    }

    /// GET/POST/... returning JSON.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        req: Req,
        deadline: &Deadline,
    ) -> Result<T> {
        // A body that is not the JSON we expect is quoted in the error: scrubbed (a wrong
        // apiUrl may point at a server that echoes the request headers).
        let secrets = self.all_secrets(&req);
        self.call(req, deadline, |status, body| {
            parse_json_scrubbed(status, &body, &secrets)
        })
        .await
    }

    /// A call whose answer body does not matter.
    pub(crate) async fn empty(&self, req: Req, deadline: &Deadline) -> Result<()> {
        self.call(req, deadline, |_, _| Ok(())).await
    }
}

impl Req {
    /// A copy for another try (only for replayable bodies).
    fn replay(&self) -> Req {
        Req {
            method: self.method.clone(),
            url: self.url.clone(),
            query: self.query.clone(),
            body: match &self.body {
                ReqBody::Json(b) => ReqBody::Json(b.clone()),
                _ => ReqBody::Empty,
            },
            class: self.class,
            accept: self.accept,
            secrets: self.secrets.clone(),
            what: self.what,
        }
    }
}

/// Most bytes of an error answer read (its message is what matters).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// Reads an answer body, at most `limit` bytes of it: the bytes, and `None` when the whole
/// body was read, `Some(Ok(()))` when it is larger than `limit` (the rest is not read: the
/// connection is dropped), `Some(Err)` when reading failed. A `Content-Length` past the limit
/// is refused before any byte is read.
pub(crate) async fn read_capped(
    mut resp: Response,
    limit: u64,
) -> (Bytes, Option<std::result::Result<(), FetchError>>) {
    if resp.content_length().is_some_and(|n| n > limit) {
        return (Bytes::new(), Some(Ok(())));
    }
    let mut buf = bytes::BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() as u64 + chunk.len() as u64 > limit {
                    let room = (limit as usize).saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    return (buf.freeze(), Some(Ok(())));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return (buf.freeze(), None),
            Err(e) => return (buf.freeze(), Some(Err(e))),
        }
    }
}

/// Parses a JSON body; anything unparseable is `DAYTONA_BAD_RESPONSE`.
pub(crate) fn parse_json<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T> {
    parse_json_scrubbed(status, body, &[])
}

/// [`parse_json`] whose error quotes the body with `secrets` removed (before it is cut, so
/// no prefix of a secret is left either).
pub(crate) fn parse_json_scrubbed<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
    secrets: &[String],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let text = scrub(&String::from_utf8_lossy(body), secrets);
        Error::BadResponse {
            message: scrub(
                &format!("unexpected answer ({e}): {}", preview(text.as_bytes())),
                secrets,
            ),
            status: Some(status.as_u16()),
        }
    })
}

fn preview(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let mut p: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        p.push('…');
    }
    p
}

/// The message of a transport error with its causes, without the URL and secrets.
pub(crate) fn transport_message(e: &FetchError, secrets: &[String]) -> String {
    scrub(&e.to_string(), secrets)
}

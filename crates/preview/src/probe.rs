//! One HTTP probe of a preview URL, classified ([`crate::classify`]). Sent the way a careful
//! client must (reference §2.2–§2.3, §5): `X-Daytona-Preview-Token` when there is a token,
//! `X-Daytona-Skip-Preview-Warning: true`, a User-Agent no browser sniffer matches, and
//! redirects NOT followed (a followed 307 would end on the auth provider's 200 login page
//! and look ready).

use crate::classify::{classify, classify_entry_module, Answer, Outcome, Probe, TransportError};
use crate::PreviewError;
use forge_daytona::fetch::header::{ACCEPT, USER_AGENT};
use forge_daytona::fetch::{HeaderMap, HeaderValue};
use std::time::Duration;

/// At most this many body bytes are read for classification.
pub const BODY_LIMIT: usize = 512 * 1024;

/// The probe's User-Agent: not a browser, so the proxy never serves its warning page to it.
pub const PROBE_USER_AGENT: &str = concat!(
    "forge-preview/",
    env!("CARGO_PKG_VERSION"),
    " (readiness probe)"
);

/// What a browser accepts for a page.
const PAGE_ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// The header that carries a private sandbox's preview token.
pub const PREVIEW_TOKEN_HEADER: &str = "x-daytona-preview-token";
/// The header that turns the proxy's browser warning page off.
pub const SKIP_WARNING_HEADER: &str = "x-daytona-skip-preview-warning";

/// An HTTP client for probing previews. Cheap to clone; keeps connections alive between
/// probes. `Debug` hides the token.
#[derive(Clone)]
pub struct Prober {
    http: Http,
    token: Option<HeaderValue>,
}

/// Natively a reqwest client of its own (no redirects, kept-alive connections); in the
/// WebAssembly build the client's transport seam (a JavaScript `fetch`, docs/wasm.md).
#[cfg(not(target_family = "wasm"))]
type Http = reqwest::Client;
#[cfg(target_family = "wasm")]
type Http = std::sync::Arc<dyn forge_daytona::fetch::Fetch>;

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Prober {
    /// A prober without a token (public sandboxes).
    pub fn new() -> Result<Prober, PreviewError> {
        #[cfg(target_family = "wasm")]
        let http = forge_daytona::fetch::default_fetch().map_err(|e| {
            forge_daytona::Error::Connection(format!("cannot build the probe client: {e}"))
        })?;
        #[cfg(not(target_family = "wasm"))]
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(default_headers())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| {
                forge_daytona::Error::Connection(format!("cannot build the probe client: {e}"))
            })?;
        Ok(Prober { http, token: None })
    }

    /// The same prober sending `token` as `X-Daytona-Preview-Token` (an empty token sends
    /// nothing).
    pub fn with_token(mut self, token: Option<&str>) -> Prober {
        self.token = token
            .filter(|t| !t.is_empty())
            .and_then(|t| HeaderValue::from_str(t).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        self
    }

    /// GETs `url` once (bounded by `timeout`, body included) and classifies the answer. When
    /// the page is OK and `check_entry_module` is set, also GETs the page's first module
    /// script (Vite's entry module): Vite keeps index.html at 200 when the app's code does not
    /// compile and only the module request shows the error.
    pub async fn probe(&self, url: &str, timeout: Duration, check_entry_module: bool) -> Probe {
        let (status, headers, body) = match self.get(url, timeout).await {
            Ok(r) => r,
            Err(kind) => return classify(&Outcome::Failed(kind)),
        };
        let probe = classify(&Outcome::Answered(Answer {
            status,
            headers: &headers,
            body: &body,
            url,
        }));
        let module = match (&probe.entry_module, check_entry_module) {
            (Some(src), true) => url::Url::parse(url).and_then(|u| u.join(src)).ok(),
            _ => None,
        };
        let Some(module) = module else {
            return probe;
        };
        // A browser fetches module scripts with `Accept: */*`; with the page's `text/html`
        // Vite's HTML fallback can answer instead of the transform, hiding the error.
        match self.get_as(module.as_str(), timeout, "*/*").await {
            Ok((status, _, body)) => classify_entry_module(status, &body).unwrap_or(probe),
            // The page answered; a module request that fails in transport says nothing new.
            Err(_) => probe,
        }
    }

    async fn get(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<(u16, HeaderMap, String), TransportError> {
        self.get_as(url, timeout, PAGE_ACCEPT).await
    }

    #[cfg(not(target_family = "wasm"))]
    async fn get_as(
        &self,
        url: &str,
        timeout: Duration,
        accept: &'static str,
    ) -> Result<(u16, HeaderMap, String), TransportError> {
        let mut req = self
            .http
            .get(url)
            .timeout(timeout)
            .header(ACCEPT, HeaderValue::from_static(accept));
        if let Some(t) = &self.token {
            req = req.header(PREVIEW_TOKEN_HEADER, t.clone());
        }
        let started = std::time::Instant::now();
        let mut res = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = transport_kind(&e);
                forge_daytona::log_request(
                    "GET",
                    url,
                    &format!("preview probe {kind:?}"),
                    started,
                    1,
                );
                return Err(kind);
            }
        };
        let status = res.status().as_u16();
        forge_daytona::log_request("GET", url, &status.to_string(), started, 1);
        let headers = std::mem::take(res.headers_mut());
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(c)) => {
                    body.extend_from_slice(&c);
                    if body.len() >= BODY_LIMIT {
                        body.truncate(BODY_LIMIT);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(TransportError::Timeout),
                // A body cut short still has its status and start: classify what came.
                Err(_) => break,
            }
        }
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// What every probe sends: the proxy's warning page off, and a User-Agent no sniffer takes
/// for a browser.
fn default_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SKIP_WARNING_HEADER, HeaderValue::from_static("true"));
    headers.insert(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT));
    headers
}

/// The WebAssembly build's probe: the same request through the transport seam, bounded by
/// `timeout` (head and body), the body read up to [`BODY_LIMIT`].
#[cfg(target_family = "wasm")]
impl Prober {
    async fn get_as(
        &self,
        url: &str,
        timeout: Duration,
        accept: &'static str,
    ) -> Result<(u16, HeaderMap, String), TransportError> {
        use forge_daytona::fetch::{Body, FetchErrorKind, Method, Request};
        let mut headers = default_headers();
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if let Some(t) = &self.token {
            headers.insert(PREVIEW_TOKEN_HEADER, t.clone());
        }
        let req = Request {
            method: Method::GET,
            url: url.to_owned(),
            query: Vec::new(),
            headers,
            body: Body::Empty,
        };
        let started = std::time::Instant::now();
        let exchange = async {
            let mut res = self.http.fetch(req).await?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let mut body = Vec::new();
            // A body cut short still has its status and start: classify what came.
            while let Ok(Some(c)) = res.chunk().await {
                body.extend_from_slice(&c);
                if body.len() >= BODY_LIMIT {
                    body.truncate(BODY_LIMIT);
                    break;
                }
            }
            Ok::<_, forge_daytona::fetch::FetchError>((
                status,
                headers,
                String::from_utf8_lossy(&body).into_owned(),
            ))
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(match e.kind() {
                FetchErrorKind::Connect => TransportError::Refused,
                FetchErrorKind::Timeout => TransportError::Timeout,
                FetchErrorKind::Body => TransportError::Reset,
                FetchErrorKind::Other => TransportError::Other,
            }),
            Err(_) => Err(TransportError::Timeout),
        };
        let seen = match &outcome {
            Ok((status, _, _)) => status.to_string(),
            Err(kind) => format!("preview probe {kind:?}"),
        };
        forge_daytona::log_request("GET", url, &seen, started, 1);
        outcome
    }
}

/// Which [`TransportError`] a reqwest error is.
#[cfg(not(target_family = "wasm"))]
fn transport_kind(e: &reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout;
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => TransportError::Refused,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => TransportError::Reset,
                std::io::ErrorKind::TimedOut => TransportError::Timeout,
                _ => TransportError::Other,
            };
        }
        source = s.source();
    }
    if e.is_request() || e.is_body() {
        // hyper's "connection closed before message completed" has no io::Error inside.
        TransportError::Reset
    } else {
        TransportError::Other
    }
}

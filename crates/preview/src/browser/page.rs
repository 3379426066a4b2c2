//! One visit of the preview: a fresh browser context (opened ahead of time, see
//! [`super::launch`]), the page loaded with the preview's credentials, watched until it
//! settles, inspected and photographed at once.
//!
//! Credentials go to the preview's origin only: every request to it is paused (`Fetch`
//! domain, pattern `<origin>/*`) and continued with `X-Daytona-Preview-Token` and
//! `X-Daytona-Skip-Preview-Warning` added, so a script or image the app loads from another
//! host never sees the token (`Network.setExtraHTTPHeaders` would send it everywhere, and
//! make every cross-origin `fetch` of the app preflight). WebSocket handshakes (the dev
//! servers' HMR) cannot be paused: for them the proxy's own cookie,
//! `daytona-sandbox-auth-<sandbox id>`, is set for the preview's host only.

use super::cdp::{Browser, CdpError, Event, Events, Page};
use super::launch::Lease;
use super::{BrowserOptions, BrowserTimings, PageError, PageErrorKind, Screenshot};
use crate::classify::Reason;
use crate::probe::{PREVIEW_TOKEN_HEADER, SKIP_WARNING_HEADER};
use futures_util::{FutureExt, StreamExt};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// The network must stay quiet this long after `load` for the page to count as settled: half
/// of Puppeteer's `networkidle0` (500 ms), because the inspection then also waits for the page
/// to run the tasks it has queued ([`INSPECT_JS`]), so the window only has to catch a request
/// that starts late, not code that runs late (an effect that throws after `load` is an
/// already-queued task). Every ms of it is added to every check.
const QUIET: Duration = Duration::from_millis(250);
/// Inspecting the page and the screenshot, each: a page whose script never yields would hang
/// them.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The page's own inspection script.
const INSPECT_JS: &str = include_str!("inspect.js");
/// Requests whose failure breaks the app (a failed image or font does not).
const BREAKING_REQUESTS: &[&str] = &["Document", "Script"];
/// Requests that stay open by design and so never count against "the network is quiet".
const LONG_LIVED: &[&str] = &["EventSource", "WebSocket"];
/// `console.error`s that development builds print for code that works: not failures.
const BENIGN_CONSOLE: &[&str] = &[
    // React's key warning (a list renders, only less efficiently).
    "unique \"key\" prop",
];
/// The longest error text kept, in characters.
const TEXT_LIMIT: usize = 500;

/// A private preview's credentials: its sandbox (the proxy cookie's name) and token.
pub struct Auth<'a> {
    pub sandbox_id: &'a str,
    pub token: &'a str,
}

/// What the visit saw.
pub(crate) struct Seen {
    pub errors: Vec<PageError>,
    pub screenshot: Option<Screenshot>,
    pub title: String,
    pub settled: bool,
    pub blank: bool,
    pub timings: BrowserTimings,
}

impl Seen {
    pub fn reason(&self) -> Reason {
        if !self.errors.is_empty() {
            Reason::BrowserError
        } else if self.blank {
            Reason::BlankPage
        } else {
            Reason::Ok
        }
    }
}

/// What [`INSPECT_JS`] answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inspection {
    title: String,
    text_length: usize,
    media: usize,
    overlay: Option<Overlay>,
}

#[derive(Deserialize)]
struct Overlay {
    tag: String,
    text: String,
}

/// A browser context of its own (cookies, storage, cache) with one blank page: what one
/// check uses, once.
pub(crate) struct Tab {
    context: String,
    page: Page,
}

impl Tab {
    pub async fn open(browser: &Browser) -> Result<Tab, CdpError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            browser_context_id: String,
        }
        let context = browser
            .call::<Created>("Target.createBrowserContext", json!({}))
            .await?
            .browser_context_id;
        match browser.new_page(&context).await {
            Ok(page) => Ok(Tab { context, page }),
            Err(e) => {
                dispose(browser, &context).await;
                Err(e)
            }
        }
    }

    /// Sets the page's viewport: the check's first command.
    async fn size(&self, opts: &BrowserOptions) -> Result<(), CdpError> {
        let viewport = opts.viewport();
        self.page
            .call::<IgnoredAny>(
                "Emulation.setDeviceMetricsOverride",
                json!({
                    "width": viewport.width,
                    "height": viewport.height,
                    "deviceScaleFactor": 1,
                    "mobile": false,
                }),
            )
            .await?;
        Ok(())
    }

    /// Disposes of the context, its page and everything the page stored.
    pub async fn close(self, browser: &Browser) {
        dispose(browser, &self.context).await;
    }
}

async fn dispose(browser: &Browser, context: &str) {
    let _ = browser
        .call::<IgnoredAny>(
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context }),
        )
        .await;
}

/// Visits `url` in a fresh tab of the leased browser, which is disposed of afterwards whatever
/// happened.
pub(crate) async fn visit(
    lease: &Lease,
    url: &str,
    auth: Option<Auth<'_>>,
    opts: &BrowserOptions,
) -> Result<Seen, CdpError> {
    let mut tab = lease.tab().await?;
    if tab.size(opts).await.is_err() {
        // Opened ahead of time and no longer answering (its renderer went away): a new one.
        lease.done_with(tab);
        tab = Tab::open(lease.browser()).await?;
        tab.size(opts).await?;
    }
    let seen = watch(&tab.page, url, auth, opts).await;
    lease.done_with(tab);
    seen
}

/// The events the check reads, each with what of it is read.
enum Ev {
    Exception(ExceptionThrown),
    Console(ConsoleApiCalled),
    Sent(RequestWillBeSent),
    Response(ResponseReceived),
    Finished(RequestId),
    Failed(LoadingFailed),
    Load,
}

/// The events [`Ev`] is made of.
const EVENTS: &[&str] = &[
    "Runtime.exceptionThrown",
    "Runtime.consoleAPICalled",
    "Network.requestWillBeSent",
    "Network.responseReceived",
    "Network.loadingFinished",
    "Network.loadingFailed",
    "Page.loadEventFired",
];

impl Ev {
    /// The event, or `None` for one the check does not read or that does not parse.
    fn read(e: Event) -> Option<Ev> {
        fn p<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
            serde_json::from_value(v).ok()
        }
        Some(match e.method.as_str() {
            "Runtime.exceptionThrown" => Ev::Exception(p(e.params)?),
            "Runtime.consoleAPICalled" => Ev::Console(p(e.params)?),
            "Network.requestWillBeSent" => Ev::Sent(p(e.params)?),
            "Network.responseReceived" => Ev::Response(p(e.params)?),
            "Network.loadingFinished" => Ev::Finished(p(e.params)?),
            "Network.loadingFailed" => Ev::Failed(p(e.params)?),
            "Page.loadEventFired" => Ev::Load,
            _ => return None,
        })
    }
}

// The parts of the protocol's types the check reads (the rest of each message is ignored).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestId {
    request_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExceptionThrown {
    timestamp: f64,
    exception_details: ExceptionDetails,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExceptionDetails {
    #[serde(default)]
    text: String,
    #[serde(default)]
    line_number: i64,
    #[serde(default)]
    column_number: i64,
    url: Option<String>,
    stack_trace: Option<StackTrace>,
    exception: Option<RemoteObject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsoleApiCalled {
    r#type: String,
    #[serde(default)]
    args: Vec<RemoteObject>,
    timestamp: f64,
    stack_trace: Option<StackTrace>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteObject {
    value: Option<Value>,
    unserializable_value: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StackTrace {
    #[serde(default)]
    call_frames: Vec<CallFrame>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallFrame {
    #[serde(default)]
    url: String,
    #[serde(default)]
    line_number: i64,
    #[serde(default)]
    column_number: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestWillBeSent {
    request_id: String,
    request: RequestUrl,
    r#type: Option<String>,
}

#[derive(Deserialize)]
struct RequestUrl {
    url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseReceived {
    timestamp: f64,
    r#type: String,
    response: Response,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    url: String,
    status: i64,
    #[serde(default)]
    status_text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadingFailed {
    request_id: String,
    timestamp: f64,
    r#type: String,
    #[serde(default)]
    error_text: String,
    canceled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestPaused {
    request_id: String,
    request: PausedRequest,
}

#[derive(Deserialize)]
struct PausedRequest {
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
}

#[derive(Clone, Serialize)]
struct HeaderEntry {
    name: String,
    value: String,
}

impl HeaderEntry {
    fn new(name: impl Into<String>, value: impl Into<String>) -> HeaderEntry {
        HeaderEntry {
            name: name.into(),
            value: value.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Navigated {
    error_text: Option<String>,
}

#[derive(Deserialize)]
struct Captured {
    data: String,
}

#[derive(Deserialize)]
struct Evaluated {
    result: RemoteObject,
}

async fn watch(
    page: &Page,
    url: &str,
    auth: Option<Auth<'_>>,
    opts: &BrowserOptions,
) -> Result<Seen, CdpError> {
    let viewport = opts.viewport();
    let origin = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let mut headers = vec![HeaderEntry::new(SKIP_WARNING_HEADER, "true")];
    if let Some(a) = &auth {
        headers.push(HeaderEntry::new(PREVIEW_TOKEN_HEADER, a.token));
        let cookie = json!({
            "name": format!("daytona-sandbox-auth-{}", a.sandbox_id),
            "value": a.token,
            "url": format!("{origin}/"),
            "httpOnly": true,
        });
        page.call::<IgnoredAny>("Network.setCookies", json!({ "cookies": [cookie] }))
            .await?;
    }
    let paused = page.listen(&["Fetch.requestPaused"]);
    page.call::<IgnoredAny>(
        "Fetch.enable",
        json!({ "patterns": [{ "urlPattern": format!("{origin}/*") }] }),
    )
    .await?;
    let credentials = add_headers(page, paused, &headers);
    let mut events = page.listen(EVENTS);

    let started = Instant::now();
    let deadline = started + opts.timeout();
    let observe = async {
        let mut w = Watch::default();
        let nav: Navigated = page.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(e) = nav.error_text.filter(|e| !e.is_empty()) {
            let text = format!("the page did not load: {e}");
            w.push(epoch_ms(), PageErrorKind::Request, &text, None);
            w.loaded = Some(Instant::now());
        }
        while !w.settled() && Instant::now() < deadline {
            let wake = w.quiet_at().map_or(deadline, |q| q.min(deadline));
            tokio::select! {
                ev = next_event(&mut events) => match ev {
                    Some(ev) => w.take(ev),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        Ok::<_, CdpError>(w)
    };
    let mut w = tokio::select! {
        w = observe => w?,
        // Runs for as long as the page: returns only if the browser goes away.
        () = credentials => return Err(CdpError::Closed),
    };
    let inspected_at = Instant::now();
    let settled = w.settled();
    // The page's last events (an effect that threw right at `load`) are in the queue.
    while let Some(Some(ev)) = next_event(&mut events).now_or_never() {
        w.take(ev);
    }
    let shot = tokio::time::timeout(
        INSPECT_TIMEOUT,
        page.call::<Captured>(
            "Page.captureScreenshot",
            // Still a PNG: encoded for speed rather than size (a larger file).
            json!({ "format": "png", "optimizeForSpeed": true }),
        ),
    );
    let (inspection, shot) =
        tokio::join!(tokio::time::timeout(INSPECT_TIMEOUT, inspect(page)), shot);
    // And what happened while the page ran its queued tasks for the inspection.
    while let Some(Some(ev)) = next_event(&mut events).now_or_never() {
        w.take(ev);
    }
    let (title, blank) = match inspection {
        Ok(Ok(i)) => {
            if let Some(o) = i.overlay {
                let text = if o.text.is_empty() {
                    format!("<{}> shown", o.tag)
                } else {
                    o.text
                };
                // Drawn for an error it may also have thrown: after everything else.
                w.push(f64::INFINITY, PageErrorKind::Overlay, &text, None);
            }
            (i.title, i.text_length == 0 && i.media == 0)
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            w.push(
                epoch_ms(),
                PageErrorKind::Exception,
                &format!(
                    "the page did not answer within {} s (a script that never yields?)",
                    INSPECT_TIMEOUT.as_secs()
                ),
                None,
            );
            (String::new(), false)
        }
    };
    let screenshot = match shot {
        Ok(Ok(s)) => Some(Screenshot {
            png: s.data,
            width: viewport.width,
            height: viewport.height,
        }),
        _ => None,
    };
    let loaded = w.loaded.unwrap_or(inspected_at);
    Ok(Seen {
        errors: w.into_errors(),
        screenshot,
        title,
        settled,
        blank,
        timings: BrowserTimings {
            load_ms: millis(loaded.saturating_duration_since(started)),
            settle_ms: millis(inspected_at.saturating_duration_since(loaded)),
            inspect_ms: millis(inspected_at.elapsed()),
            ..BrowserTimings::default()
        },
    })
}

/// The next event the check reads; `None` when the connection is gone.
async fn next_event(events: &mut Events) -> Option<Ev> {
    loop {
        if let Some(ev) = Ev::read(events.recv().await?) {
            return Some(ev);
        }
    }
}

/// Continues every paused request to the preview's origin with `headers` added. Never ends
/// while the page lives.
async fn add_headers(page: &Page, mut paused: Events, headers: &[HeaderEntry]) {
    // Continued concurrently: one at a time, a page's dozens of module requests would each
    // wait for the round trips of those paused before them.
    let mut continuing = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            p = paused.recv() => match p {
                Some(p) => {
                    if let Ok(p) = serde_json::from_value::<RequestPaused>(p.params) {
                        continuing.push(continue_with(page, p, headers));
                    }
                }
                None => break,
            },
            Some(()) = continuing.next(), if !continuing.is_empty() => {}
        }
    }
    std::future::pending::<()>().await;
}

/// Continues the paused request `p` with `headers` added.
async fn continue_with(page: &Page, p: RequestPaused, headers: &[HeaderEntry]) {
    let mut all: Vec<HeaderEntry> = p
        .request
        .headers
        .into_iter()
        .filter(|(k, _)| !headers.iter().any(|h| h.name.eq_ignore_ascii_case(k)))
        .filter_map(|(k, v)| v.as_str().map(|v| HeaderEntry::new(k, v)))
        .collect();
    all.extend_from_slice(headers);
    let go = json!({ "requestId": p.request_id, "headers": all });
    if page
        .call::<IgnoredAny>("Fetch.continueRequest", go)
        .await
        .is_err()
    {
        tracing::debug!("a paused preview request could not be continued");
    }
}

async fn inspect(page: &Page) -> Result<Inspection, CdpError> {
    let eval = json!({
        "expression": INSPECT_JS,
        "returnByValue": true,
        "awaitPromise": true,
    });
    let r: Evaluated = page.call("Runtime.evaluate", eval).await?;
    let text = r
        .result
        .value
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("{}");
    Ok(serde_json::from_str(text)?)
}

/// The page's state while it loads.
#[derive(Default)]
struct Watch {
    /// Each with when it happened on its domain's clock: the events come in on one stream per
    /// kind, so their arrival order is not the page's (and the runtime's and the network's
    /// clocks do not agree closely enough to merge).
    errors: Vec<(f64, PageError)>,
    /// Every request's URL by id.
    urls: HashMap<String, String>,
    /// Requests in flight (long-lived ones excluded).
    in_flight: HashSet<String>,
    /// Requests whose end was seen, possibly before their start (another stream).
    ended: HashSet<String>,
    /// Script and document requests that failed: when, id, why (their URL is looked up at
    /// the end, since their start may come in later).
    failed: Vec<(f64, String, String)>,
    loaded: Option<Instant>,
    /// When a request last started or ended.
    last_activity: Option<Instant>,
}

/// Now, in ms since the epoch (for errors the browser gives no time for).
fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl Watch {
    fn push(&mut self, at: f64, kind: PageErrorKind, text: &str, source: Option<String>) {
        let text: String = text.trim().chars().take(TEXT_LIMIT).collect();
        self.errors.push((at, PageError { kind, text, source }));
    }

    /// The errors, most telling first: uncaught exceptions, then `console.error`s, failed
    /// requests and overlays; each kind in the order it happened.
    fn into_errors(mut self) -> Vec<PageError> {
        for (at, id, why) in std::mem::take(&mut self.failed) {
            let url = self.urls.get(&id).map_or("a request", String::as_str);
            let text = format!("{url} failed: {why}");
            self.push(at, PageErrorKind::Request, &text, None);
        }
        self.errors.sort_by(|a, b| {
            rank(a.1.kind)
                .cmp(&rank(b.1.kind))
                .then(a.0.total_cmp(&b.0))
        });
        self.errors.into_iter().map(|(_, e)| e).collect()
    }

    /// When the page will count as settled if nothing happens meanwhile.
    fn quiet_at(&self) -> Option<Instant> {
        let loaded = self.loaded?;
        self.in_flight
            .is_empty()
            .then(|| self.last_activity.unwrap_or(loaded).max(loaded) + QUIET)
    }

    fn settled(&self) -> bool {
        self.quiet_at().is_some_and(|q| Instant::now() >= q)
    }

    fn take(&mut self, ev: Ev) {
        match ev {
            Ev::Load => self.loaded = Some(Instant::now()),
            Ev::Sent(e) => {
                let id = e.request_id;
                let long_lived = e.r#type.as_deref().is_some_and(|t| LONG_LIVED.contains(&t));
                if !long_lived && !self.ended.contains(&id) {
                    self.last_activity = Some(Instant::now());
                    self.in_flight.insert(id.clone());
                }
                self.urls.insert(id, e.request.url);
            }
            Ev::Finished(e) => {
                self.done(&e.request_id);
            }
            Ev::Failed(e) => {
                self.done(&e.request_id);
                if e.canceled != Some(true) && BREAKING_REQUESTS.contains(&e.r#type.as_str()) {
                    self.failed.push((e.timestamp, e.request_id, e.error_text));
                }
            }
            Ev::Response(e) => {
                if e.response.status >= 400 && BREAKING_REQUESTS.contains(&e.r#type.as_str()) {
                    let at = e.timestamp;
                    let r = &e.response;
                    let text = format!("{} answered {} {}", r.url, r.status, r.status_text);
                    self.push(at, PageErrorKind::Request, &text, None);
                }
            }
            Ev::Exception(e) => {
                let d = &e.exception_details;
                let first_line = d
                    .exception
                    .as_ref()
                    .and_then(describe)
                    .and_then(|s| s.lines().next().map(str::to_owned));
                let text = match first_line {
                    // "Uncaught" / "Uncaught (in promise)" + "Error: boom".
                    Some(l) if !d.text.is_empty() && !l.starts_with(&d.text) => {
                        format!("{} {l}", d.text)
                    }
                    Some(l) => l,
                    None => d.text.clone(),
                };
                let source = top_frame(d.stack_trace.as_ref()).or_else(|| {
                    d.url
                        .as_ref()
                        .filter(|u| !u.is_empty())
                        .map(|u| format!("{u}:{}:{}", d.line_number + 1, d.column_number + 1))
                });
                self.push(e.timestamp, PageErrorKind::Exception, &text, source);
            }
            Ev::Console(e) => {
                if e.r#type != "error" {
                    return;
                }
                let text = e
                    .args
                    .iter()
                    .filter_map(describe)
                    .collect::<Vec<_>>()
                    .join(" ");
                if BENIGN_CONSOLE.iter().any(|b| text.contains(b)) {
                    return;
                }
                let source = top_frame(e.stack_trace.as_ref());
                self.push(e.timestamp, PageErrorKind::Console, &text, source);
            }
        }
    }

    fn done(&mut self, id: &str) {
        self.in_flight.remove(id);
        self.ended.insert(id.to_owned());
        self.last_activity = Some(Instant::now());
    }
}

fn rank(kind: PageErrorKind) -> u8 {
    match kind {
        PageErrorKind::Exception => 0,
        PageErrorKind::Console => 1,
        PageErrorKind::Request => 2,
        PageErrorKind::Overlay => 3,
    }
}

/// A console argument or thrown value as text.
fn describe(o: &RemoteObject) -> Option<String> {
    match &o.value {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) if !v.is_null() => Some(v.to_string()),
        _ => o
            .description
            .clone()
            .or_else(|| o.unserializable_value.clone()),
    }
}

/// `url:line:column` (1-based) of the innermost frame that has a URL.
fn top_frame(stack: Option<&StackTrace>) -> Option<String> {
    stack?
        .call_frames
        .iter()
        .find(|f| !f.url.is_empty())
        .map(|f| format!("{}:{}:{}", f.url, f.line_number + 1, f.column_number + 1))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

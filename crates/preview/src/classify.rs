//! Classification of one preview probe: a pure function of what came back (status, headers, a
//! body excerpt) or of how the request failed. Every outcome has a stable [`Reason`] code, and
//! the reason alone says whether polling goes on ([`Reason::is_pending`]) or stops.
//!
//! Facts behind the rules: `shared/reference/preview-verification.md` §2.4–§3 (Daytona proxy
//! answers, Vite's host check and error page, Next.js error documents).

use forge_daytona::fetch::header::{CONTENT_TYPE, LOCATION};
use forge_daytona::fetch::HeaderMap;
use serde::{Deserialize, Serialize};

/// Why a probe (or a whole verification) ended the way it did. Serialised as its code.
///
/// Pending (keep polling): [`NotListening`](Reason::NotListening),
/// [`Compiling`](Reason::Compiling). Success: [`Ok`](Reason::Ok). Everything else is terminal:
/// retrying cannot change the answer without someone fixing the token, the headers, the app's
/// config or code, or the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "VerifyReason"))]
pub enum Reason {
    /// The app answered 2xx (or redirected within its own host) with no error marker.
    Ok,
    /// Nothing answers yet: connection refused or reset, the proxy's 502 (empty body,
    /// `RUNNER_UNREACHABLE` JSON or the embedded backend's text), or the in-sandbox port check
    /// says the port is closed. Pending.
    NotListening,
    /// The server is up but did not answer in time (a first request that outlived the
    /// per-request timeout while the framework compiles on demand, a 503 or a 504). Pending.
    Compiling,
    /// A redirect to another host (the proxy's 307 to its auth page): the preview token is
    /// missing or wrong. Terminal.
    AuthRedirect,
    /// 401, or a 403 JSON from the proxy: not allowed to see this preview. Terminal.
    Unauthorized,
    /// The proxy's "Daytona Preview - Warning" page: the skip-warning header did not reach it.
    /// Terminal.
    WarningPage,
    /// Vite's host check refused the preview host (403 "Blocked request. This host …").
    /// Terminal; the excerpt carries the `server.allowedHosts` hint.
    BlockedHost,
    /// The app is up but broken: a 5xx, an error document (Next.js error markers, Vite's
    /// error page, "Failed to compile", …) or a failing entry module. Terminal, with the
    /// error text in the excerpt.
    FrameworkError,
    /// Any other 4xx from the app (e.g. 404 at the probed path). Terminal.
    UnexpectedStatus,
    /// The sandbox is not running (400 `SANDBOX_NOT_STARTED`): start it and fetch a new
    /// token. Terminal.
    SandboxNotStarted,
    /// The proxy does not know the sandbox (404 `SANDBOX_NOT_FOUND`). Terminal.
    SandboxNotFound,
    /// The dev process exited before the preview worked. Terminal (verification only).
    ProcessExited,
    /// The app crashed under a watcher that keeps running (nodemon, `node --watch`, Nx): the
    /// log says so, or shows an error and went quiet while nothing listens. Terminal
    /// (verification only), with the error and where it was thrown in the excerpt.
    Crashed,
    /// Something else already listened on the port before the dev server started: its
    /// answers would not be the app's. Terminal (start only).
    PortInUse,
    /// The overall deadline passed while still pending. Terminal (verification only).
    Timeout,
    /// The page served, but in a browser it threw (an uncaught exception, a
    /// `console.error`), a script or module failed to load, or a framework's error overlay
    /// showed (see [`crate::browser`]). Terminal (verification with `browser` only).
    BrowserError,
    /// The page served, but in a browser it rendered nothing: no text, no visible element.
    /// Terminal (verification with `browser` only).
    BlankPage,
}

impl Reason {
    /// The stable code, e.g. `NOT_LISTENING` (the same string serde writes).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Ok => "OK",
            Reason::NotListening => "NOT_LISTENING",
            Reason::Compiling => "COMPILING",
            Reason::AuthRedirect => "AUTH_REDIRECT",
            Reason::Unauthorized => "UNAUTHORIZED",
            Reason::WarningPage => "WARNING_PAGE",
            Reason::BlockedHost => "BLOCKED_HOST",
            Reason::FrameworkError => "FRAMEWORK_ERROR",
            Reason::UnexpectedStatus => "UNEXPECTED_STATUS",
            Reason::SandboxNotStarted => "SANDBOX_NOT_STARTED",
            Reason::SandboxNotFound => "SANDBOX_NOT_FOUND",
            Reason::ProcessExited => "PROCESS_EXITED",
            Reason::Crashed => "CRASHED",
            Reason::PortInUse => "PORT_IN_USE",
            Reason::Timeout => "TIMEOUT",
            Reason::BrowserError => "BROWSER_ERROR",
            Reason::BlankPage => "BLANK_PAGE",
        }
    }

    /// Keep polling: the server may still come up.
    pub fn is_pending(&self) -> bool {
        matches!(self, Reason::NotListening | Reason::Compiling)
    }

    /// Stop polling and fail.
    pub fn is_terminal(&self) -> bool {
        !self.is_pending() && *self != Reason::Ok
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// How a request failed before any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// Connection refused.
    Refused,
    /// The connection closed or reset before an answer.
    Reset,
    /// The per-request timeout passed.
    Timeout,
    /// Anything else (DNS, TLS, …).
    Other,
}

/// One answer, as far as classification needs it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    /// The start of the body (the prober reads at most [`crate::probe::BODY_LIMIT`] bytes).
    pub body: &'a str,
    /// The URL that was requested (to tell a redirect to another host).
    pub url: &'a str,
}

/// What a probe ended with.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Answered(Answer<'a>),
    Failed(TransportError),
}

/// A classified probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub reason: Reason,
    pub status: Option<u16>,
    /// A short human text: the error message, the hint, or what the answer looked like.
    pub excerpt: Option<String>,
    /// For an OK HTML page: the `src` of its first module script (Vite's entry module, e.g.
    /// `/src/main.tsx`), to be requested next (see [`classify_entry_module`]).
    pub entry_module: Option<String>,
}

impl Probe {
    fn new(reason: Reason, status: Option<u16>, excerpt: Option<String>) -> Probe {
        Probe {
            reason,
            status,
            excerpt,
            entry_module: None,
        }
    }
}

/// The hint given with [`Reason::BlockedHost`].
pub const ALLOWED_HOSTS_HINT: &str = "Vite refused the preview host: add it (or `true`, or the preview domain with a leading dot) to `server.allowedHosts` in vite.config";

/// The longest excerpt, in characters.
pub const EXCERPT_CHARS: usize = 400;

/// Body markers of an error document on an otherwise successful answer.
/// Attribute forms, not bare names: a bare `__next_error__` could appear in inline script data
/// of a page that works.
const ERROR_MARKERS: [&str; 9] = [
    "data-next-error-message=",
    "id=\"__next_error__\"",
    "\"page\":\"/_error\"",
    "Application error: a client-side exception",
    "<title>Error</title>",
    "vite-error-overlay",
    "new ErrorOverlay(",
    "Failed to compile",
    "Module not found",
];

/// Classifies one probe of the preview URL.
pub fn classify(outcome: &Outcome<'_>) -> Probe {
    let a = match outcome {
        Outcome::Failed(TransportError::Timeout) => {
            return Probe::new(
                Reason::Compiling,
                None,
                Some("no answer within the request timeout (still compiling?)".into()),
            )
        }
        Outcome::Failed(kind) => {
            let what = match kind {
                TransportError::Refused => "connection refused",
                TransportError::Reset => "connection closed before an answer",
                _ => "request failed",
            };
            return Probe::new(Reason::NotListening, None, Some(what.into()));
        }
        Outcome::Answered(a) => a,
    };
    let status = Some(a.status);
    let body = a.body;
    let error = error_marker(body);
    let probe = |reason, excerpt| Probe::new(reason, status, excerpt);
    match a.status {
        200..=299 if body.contains("Daytona Preview - Warning") => probe(
            Reason::WarningPage,
            Some("the proxy served its preview warning page: send `X-Daytona-Skip-Preview-Warning: true`".into()),
        ),
        200..=299 | 502..=504 if error.is_some() => {
            probe(Reason::FrameworkError, Some(error_excerpt(body, error)))
        }
        200..=299 => Probe {
            entry_module: looks_like_html(a)
                .then(|| entry_module(body))
                .flatten(),
            ..probe(Reason::Ok, None)
        },
        300..=399 => match a.headers.get(LOCATION).and_then(|v| v.to_str().ok()) {
            Some(loc) if is_foreign(a.url, loc) => probe(
                Reason::AuthRedirect,
                Some(format!(
                    "redirected to another host ({}): the preview token is missing or wrong",
                    host_of(loc).unwrap_or("?")
                )),
            ),
            _ => probe(Reason::Ok, None),
        },
        401 => probe(Reason::Unauthorized, Some(text_excerpt(body))),
        403 if body.contains("Blocked request. This host") => probe(
            Reason::BlockedHost,
            Some(format!("{} ({})", ALLOWED_HOSTS_HINT, first_line(body))),
        ),
        403 if proxy_json(body).is_some() => probe(Reason::Unauthorized, Some(text_excerpt(body))),
        400 if sandbox_stopped(body) => probe(Reason::SandboxNotStarted, Some(text_excerpt(body))),
        404 if sandbox_unknown(body) => probe(Reason::SandboxNotFound, Some(text_excerpt(body))),
        502 if sandbox_stopped(body) => probe(Reason::SandboxNotStarted, Some(text_excerpt(body))),
        502 => probe(Reason::NotListening, non_empty_excerpt(body)),
        503 | 504 => probe(Reason::Compiling, non_empty_excerpt(body)),
        500..=599 => probe(Reason::FrameworkError, Some(error_excerpt(body, error))),
        _ => probe(Reason::UnexpectedStatus, non_empty_excerpt(body)),
    }
}

/// Classifies the answer for the entry module of an OK page: `None` when it is fine (or
/// tells nothing, e.g. a 404 for a path the server rewrites), else the framework error with
/// Vite's message. Vite answers a module whose transform failed with 500 and its error page
/// (`<title>Error</title>` + `new ErrorOverlay(error)`), while index.html stays 200.
pub fn classify_entry_module(status: u16, body: &str) -> Option<Probe> {
    let broken = status >= 500 || body.contains("new ErrorOverlay(");
    broken.then(|| {
        Probe::new(
            Reason::FrameworkError,
            Some(status),
            Some(error_excerpt(body, error_marker(body))),
        )
    })
}

fn looks_like_html(a: &Answer<'_>) -> bool {
    a.headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || a.body.trim_start().starts_with('<'),
            |ct| ct.contains("html"),
        )
}

fn error_marker(body: &str) -> Option<&'static str> {
    ERROR_MARKERS.iter().copied().find(|m| body.contains(m))
}

/// The body as JSON with a proxy error shape (`code` or `source` present).
fn proxy_json(body: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    (v.get("code").is_some() || v.get("source").is_some()).then_some(v)
}

fn json_code(body: &str) -> Option<String> {
    proxy_json(body)?.get("code")?.as_str().map(str::to_owned)
}

fn sandbox_stopped(body: &str) -> bool {
    if let Some(code) = json_code(body) {
        return code == "SANDBOX_NOT_STARTED";
    }
    let lower = body.to_ascii_lowercase();
    lower.contains("sandbox")
        && ["not running", "not started", "is stopped", "is archived"]
            .iter()
            .any(|m| lower.contains(m))
}

fn sandbox_unknown(body: &str) -> bool {
    if let Some(code) = json_code(body) {
        return code == "SANDBOX_NOT_FOUND";
    }
    let lower = body.to_ascii_lowercase();
    lower.contains("sandbox") && lower.contains("not found")
}

/// Whether `location` leaves the authority (host and port) of `url`.
fn is_foreign(url: &str, location: &str) -> bool {
    match (url::Url::parse(url), url::Url::parse(location)) {
        (Ok(from), Ok(to)) => {
            from.host_str() != to.host_str()
                || from.port_or_known_default() != to.port_or_known_default()
        }
        // A relative Location stays on the same host.
        _ => false,
    }
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.split(['/', '?', '#']).next()
}

/// The `src` of the first module script of the page that is a path on the same server,
/// skipping Vite's own client (`/@vite/client`, `/@id/…`).
pub fn entry_module(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i..tag_end];
        rest = &rest[tag_end..];
        if attr(tag, "type").as_deref() != Some("module") {
            continue;
        }
        let Some(src) = attr(tag, "src") else {
            continue;
        };
        let src = src.trim();
        if src.is_empty() || src.starts_with("/@") || src.starts_with("//") || src.contains("://") {
            continue;
        }
        return Some(src.to_owned());
    }
    None
}

/// The value of attribute `name` in a start tag (quoted with `"` or `'`, or bare).
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut from = 0;
    while let Some(off) = tag[from..].find(name) {
        let at = from + off;
        from = at + name.len();
        let before_ok = at > 0 && bytes[at - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=').filter(|_| before_ok) else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(decode_entities(value));
    }
    None
}

/// The error text of an error document, short: Next's `data-next-error-message`, the
/// `message` of Vite's error page or of Next's `__NEXT_DATA__.err`, else the page text
/// around the marker.
fn error_excerpt(body: &str, marker: Option<&str>) -> String {
    let found = attr_anywhere(body, "data-next-error-message")
        .or_else(|| vite_error_message(body))
        .or_else(|| next_data_error(body));
    let text = match found {
        Some(t) if !t.trim().is_empty() => t,
        _ => {
            let page = page_text(body);
            let start = marker
                .and_then(|m| {
                    page.find(strip_tags(m).trim())
                        .filter(|_| !m.starts_with('<'))
                })
                .unwrap_or(0);
            page[start..].to_owned()
        }
    };
    shorten(&text)
}

fn attr_anywhere(body: &str, name: &str) -> Option<String> {
    let at = body.find(name)?;
    let tag_start = body[..at].rfind('<').unwrap_or(0);
    let tag_end = body[at..].find('>').map_or(body.len(), |e| at + e);
    attr(&body[tag_start..tag_end], name)
}

/// Vite's error page: `const error = {"message":…}` on one line.
fn vite_error_message(body: &str) -> Option<String> {
    let at = body.find("const error = ")? + "const error = ".len();
    let mut values =
        serde_json::Deserializer::from_str(&body[at..]).into_iter::<serde_json::Value>();
    let v = values.next()?.ok()?;
    let message = v.get("message")?.as_str()?.to_owned();
    let id = v.get("id").and_then(|i| i.as_str()).unwrap_or_default();
    Some(if id.is_empty() || message.contains(id) {
        message
    } else {
        format!("{message} ({id})")
    })
}

/// Pages Router dev: `"err":{"name":…,"message":"…"}` inside `__NEXT_DATA__`.
fn next_data_error(body: &str) -> Option<String> {
    let at = body.find("\"err\":")? + "\"err\":".len();
    let mut values =
        serde_json::Deserializer::from_str(&body[at..]).into_iter::<serde_json::Value>();
    let v = values.next()?.ok()?;
    v.get("message")?.as_str().map(str::to_owned)
}

/// The visible text of an HTML page: no script/style contents, no tags, entities decoded,
/// whitespace collapsed.
fn page_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(4096));
    let mut rest = html;
    loop {
        let lower_skip = ["<script", "<style"]
            .iter()
            .filter_map(|t| find_ci(rest, t).map(|i| (i, *t)))
            .min_by_key(|(i, _)| *i);
        if let Some((i, tag)) = lower_skip {
            out.push_str(&strip_tags(&rest[..i]));
            out.push(' ');
            let close = format!("</{}", &tag[1..]);
            rest = match find_ci(&rest[i..], &close) {
                Some(c) => &rest[i + c..],
                None => "",
            };
            rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
        } else {
            out.push_str(&strip_tags(rest));
            break;
        }
    }
    decode_entities(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// HTML character references: the named ones error texts use, and numeric ones.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity = rest[1..]
            .find(';')
            .filter(|e| *e <= 10)
            .map(|e| &rest[1..=e]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => {
                let n = e.strip_prefix('#')?;
                let code = match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => n.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        if let (Some(e), Some(c)) = (entity, decoded) {
            out.push(c);
            rest = &rest[e.len() + 2..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn text_excerpt(body: &str) -> String {
    shorten(&page_text(body))
}

fn non_empty_excerpt(body: &str) -> Option<String> {
    Some(text_excerpt(body)).filter(|t| !t.is_empty())
}

fn first_line(body: &str) -> String {
    shorten(body.lines().next().unwrap_or("").trim())
}

/// At most [`EXCERPT_CHARS`] characters, cut at a character boundary.
fn shorten(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &HeaderMap, body: &str) -> Probe {
        classify(&Outcome::Answered(Answer {
            status,
            headers,
            body,
            url: "https://5173-abc.proxy.daytona.work/",
        }))
    }

    #[test]
    fn entities_and_attributes() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &#39;c&#x27; &amp;amp; & x"),
            "a <b> 'c' &amp; & x"
        );
        assert_eq!(
            attr(r#"<template data-next-error-message="Boom &quot;x&quot;" data-next-error-digest="1">"#, "data-next-error-message").as_deref(),
            Some("Boom \"x\"")
        );
    }

    #[test]
    fn vite_entry_module_skips_the_client() {
        let html = r#"<head><script type="module" src="/@vite/client"></script>
<script type="module">import RefreshRuntime from "/@react-refresh"</script></head>
<body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body>"#;
        assert_eq!(entry_module(html).as_deref(), Some("/src/main.tsx"));
        assert_eq!(entry_module("<script src=\"/a.js\"></script>"), None);
        let h = HeaderMap::new();
        assert_eq!(
            answer(200, &h, html).entry_module.as_deref(),
            Some("/src/main.tsx")
        );
    }

    #[test]
    fn proxy_json_errors() {
        let h = HeaderMap::new();
        let r = |s, b| answer(s, &h, b).reason;
        assert_eq!(
            r(
                502,
                r#"{"statusCode":502,"message":"runner is unreachable: x","source":"DAYTONA_PROXY","code":"RUNNER_UNREACHABLE"}"#
            ),
            Reason::NotListening
        );
        assert_eq!(
            r(
                400,
                r#"{"statusCode":400,"message":"sandbox is not running","code":"SANDBOX_NOT_STARTED"}"#
            ),
            Reason::SandboxNotStarted
        );
        assert_eq!(
            r(
                400,
                r#"{"statusCode":400,"message":"bad request: 404 Not Found","code":"BAD_REQUEST"}"#
            ),
            Reason::UnexpectedStatus
        );
        assert_eq!(
            r(
                404,
                r#"{"statusCode":404,"message":"x","code":"SANDBOX_NOT_FOUND"}"#
            ),
            Reason::SandboxNotFound
        );
        assert_eq!(r(404, "Cannot GET /"), Reason::UnexpectedStatus);
        assert_eq!(
            r(
                403,
                r#"{"statusCode":403,"message":"no","source":"DAYTONA_PROXY"}"#
            ),
            Reason::Unauthorized
        );
        assert_eq!(r(503, ""), Reason::Compiling);
    }

    #[test]
    fn next_pages_router_error() {
        let h = HeaderMap::new();
        let body = r#"<html><body><div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{"props":{},"page":"/_error","err":{"name":"Error","message":"db is down","stack":"Error: db is down\n at x"}}</script></body></html>"#;
        let p = answer(200, &h, body);
        assert_eq!(p.reason, Reason::FrameworkError);
        assert_eq!(p.excerpt.as_deref(), Some("db is down"));
    }

    #[test]
    fn next_global_error_without_a_message_gives_the_page_text() {
        let h = HeaderMap::new();
        let body = "<!DOCTYPE html><html id=\"__next_error__\"><head><script>self.__next_f=[]</script></head><body><h2>This page couldn’t load</h2><p>A server error occurred. Reload to try again.</p></body></html>";
        let p = answer(200, &h, body);
        assert_eq!(p.reason, Reason::FrameworkError);
        assert_eq!(
            p.excerpt.as_deref(),
            Some("This page couldn’t load A server error occurred. Reload to try again.")
        );
        // The bare id inside a working page's script data is not an error document.
        let ok = "<html lang=\"en\"><body><main>Shop</main><script>self.__next_f.push([1,\"__next_error__\"])</script></body></html>";
        assert_eq!(answer(200, &h, ok).reason, Reason::Ok);
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x".repeat(5000);
        assert_eq!(shorten(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}

//! The browser check: the preview loaded in a real headless Chromium, the way the person who
//! opens it will see it. The HTTP check ([`crate::verify`]) proves the page, its entry module
//! and no framework error page; the most common broken app passes all of that and then throws
//! in the browser (an env var read at startup, a hydration error, an import that fails at run
//! time) and shows a white rectangle. This check catches that: uncaught exceptions and
//! `console.error`s (message and source location), script and module requests that fail, an
//! empty rendered body, and the frameworks' client-side error overlays; and it takes a
//! screenshot.
//!
//! The DevTools protocol client is our own ([`cdp`]): a WebSocket (tokio-tungstenite, as the
//! log stream), JSON-RPC with ids, flat sessions, and serde structs of only the commands and
//! events this check uses. chromiumoxide, used before, was a quarter of the release addon
//! (15.7 MB with it, 11.8 MB without): its event enum keeps the serde code of every protocol
//! event and type, so far more than "the handful of commands used here" was compiled in. The
//! browser process itself is started here: that way it gets a parent-death signal and its own
//! process group, so that no Chromium outlives the process that started it (see [`launch`]).
//!
//! A local Chromium is found on `PATH` (`chromium`, `chromium-browser`, `google-chrome`, ...)
//! or given by `executablePath`; a remote one by its DevTools WebSocket URL (`wsEndpoint`,
//! for hosts without a browser). Neither there: the check is skipped and says so; it never
//! fails a preview by itself.

#[cfg(not(target_family = "wasm"))]
mod cdp;
#[cfg(not(target_family = "wasm"))]
mod launch;
#[cfg(not(target_family = "wasm"))]
mod page;
/// The WebAssembly build: no browser to start or reach.
#[cfg(target_family = "wasm")]
mod page {
    /// A private preview's token, for its origin only (see the native `page::Auth`).
    pub struct Auth<'a> {
        pub sandbox_id: &'a str,
        pub token: &'a str,
    }
}

use crate::classify::Reason;
use crate::PreviewError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[cfg(not(target_family = "wasm"))]
pub use launch::shutdown;

/// Nothing to shut down: the WebAssembly build starts no browser (async as the native one).
#[cfg(target_family = "wasm")]
#[allow(clippy::unused_async)]
pub async fn shutdown() {}
pub use page::Auth as PreviewAuth;

/// The viewport when none is given: a laptop screen.
pub const DEFAULT_VIEWPORT: Viewport = Viewport {
    width: 1280,
    height: 800,
};
/// How long the page may take to load and settle when `timeoutMs` is not given.
pub const DEFAULT_BROWSER_TIMEOUT: Duration = Duration::from_secs(15);
/// Where [`BrowserOptions::save_screenshot`] stores the screenshot, relative to the sandbox's
/// work dir (beside the steps' records, outside the repository).
pub const SCREENSHOT_PATH: &str = ".forge/preview.png";

/// A viewport in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "BrowserViewport"))]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

/// Where and how the browser check runs (the object form of the `browser` option).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "BrowserCheckOptions", optional_fields = nullable))]
pub struct BrowserOptions {
    /// The Chromium (or Chrome) to launch, instead of the first one found on `PATH`.
    pub executable_path: Option<String>,
    /// A running browser's DevTools WebSocket URL (`ws://host:9222/devtools/browser/...`):
    /// used instead of launching one.
    pub ws_endpoint: Option<String>,
    /// Default 1280 x 800.
    pub viewport: Option<Viewport>,
    /// How long the page may take to load and settle (default 15 000). A page that never
    /// settles is inspected when this passes.
    pub timeout_ms: Option<u64>,
    /// Also store the screenshot in the sandbox as `.forge/preview.png` (`checkHealth` with
    /// `screenshot: true` returns the last one).
    pub save_screenshot: Option<bool>,
}

impl BrowserOptions {
    pub fn viewport(&self) -> Viewport {
        self.viewport.unwrap_or(DEFAULT_VIEWPORT)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout_ms
            .map_or(DEFAULT_BROWSER_TIMEOUT, Duration::from_millis)
    }

    fn validate(&self) -> Result<(), PreviewError> {
        let bad = |m: String| Err(forge_daytona::Error::InvalidArgument(m).into());
        let v = self.viewport();
        if !(16..=4096).contains(&v.width) || !(16..=4096).contains(&v.height) {
            return bad(format!(
                "browser.viewport must be 16-4096 pixels each way, got {}x{}",
                v.width, v.height
            ));
        }
        if self.timeout_ms == Some(0) {
            return bad("browser.timeoutMs must be more than 0".into());
        }
        if self.executable_path.is_some() && self.ws_endpoint.is_some() {
            return bad("browser: give executablePath or wsEndpoint, not both".into());
        }
        if let Some(ws) = &self.ws_endpoint {
            if !["ws://", "wss://"].iter().any(|s| ws.starts_with(s)) {
                return bad("browser.wsEndpoint must be a ws:// or wss:// DevTools URL".into());
            }
        }
        Ok(())
    }
}

/// The `browser` option: `false` (the default), `true` for the check with its defaults, or
/// where and how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "BrowserOption", untagged)
)]
pub enum BrowserSetting {
    Enabled(bool),
    With(BrowserOptions),
}

impl BrowserSetting {
    /// The check's options, `None` when it is off.
    pub fn options(&self) -> Option<BrowserOptions> {
        match self {
            BrowserSetting::Enabled(false) => None,
            BrowserSetting::Enabled(true) => Some(BrowserOptions::default()),
            BrowserSetting::With(o) => Some(o.clone()),
        }
    }
}

// By hand rather than `untagged`: a misspelt key inside the object is then reported with its
// path (`browser.timeoutMS: unknown field ...`) instead of "did not match any variant".
impl<'de> Deserialize<'de> for BrowserSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BrowserSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or { executablePath | wsEndpoint, viewport, timeoutMs }")
            }
            fn visit_bool<E>(self, b: bool) -> Result<BrowserSetting, E> {
                Ok(BrowserSetting::Enabled(b))
            }
            fn visit_unit<E>(self) -> Result<BrowserSetting, E> {
                Ok(BrowserSetting::Enabled(false))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<BrowserSetting, A::Error> {
                BrowserOptions::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(BrowserSetting::With)
            }
        }
        d.deserialize_any(V)
    }
}

/// What the browser check found: it ran, or it was skipped and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "BrowserCheck", untagged)
)]
pub enum BrowserCheck {
    Ran(BrowserReport),
    Skipped(Skipped),
}

impl BrowserCheck {
    /// The report when the check ran.
    pub fn report(&self) -> Option<&BrowserReport> {
        match self {
            BrowserCheck::Ran(r) => Some(r),
            BrowserCheck::Skipped(_) => None,
        }
    }
}

/// The check did not run: `no browser` (none found, none given), or the browser could not be
/// started or reached (with what it said).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "BrowserCheckSkipped"))]
pub struct Skipped {
    pub skipped: String,
}

/// The page as the browser saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "BrowserReport"))]
pub struct BrowserReport {
    pub ok: bool,
    /// `OK`, `BROWSER_ERROR` (see `errors`) or `BLANK_PAGE` (nothing rendered).
    pub reason: Reason,
    /// Most telling first (uncaught exceptions, `console.error`s, failed requests, overlays;
    /// each kind in the order it happened): the first is the failure's excerpt.
    pub errors: Vec<PageError>,
    /// Missing (`null`) only when the browser could not take it.
    pub screenshot: Option<Screenshot>,
    /// The page's `document.title`.
    pub title: String,
    /// The page loaded and the network went quiet before `timeoutMs` (a page that keeps
    /// requesting is inspected as it is when the time is up).
    pub settled: bool,
    /// The browser was already running (its launch is not in the timings).
    pub warm: bool,
    pub timings: BrowserTimings,
}

impl BrowserReport {
    /// The failure's one-line excerpt: the first error's text (with where it was thrown), or
    /// what a blank page looked like.
    pub fn excerpt(&self) -> Option<String> {
        if let Some(e) = self.errors.first() {
            return Some(match &e.source {
                Some(s) => format!("{} (at {s})", e.text),
                None => e.text.clone(),
            });
        }
        (self.reason == Reason::BlankPage)
            .then(|| "the page rendered nothing: no text and no visible element".to_owned())
    }
}

/// One thing that went wrong in the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PageError"))]
pub struct PageError {
    pub kind: PageErrorKind,
    /// The message (an exception's first line, the console arguments, the request and how
    /// it failed, the overlay's text).
    pub text: String,
    /// `url:line:column` (1-based) where it was thrown or logged, when known.
    pub source: Option<String>,
}

/// What kind of error a [`PageError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PageErrorKind"))]
pub enum PageErrorKind {
    /// An uncaught exception or unhandled promise rejection.
    Exception,
    /// A `console.error` call.
    Console,
    /// A script or module request that failed or answered 4xx/5xx.
    Request,
    /// A framework's client-side error overlay (Vite's, Next.js's).
    Overlay,
}

/// A PNG of the viewport. Base64 in `png`, because the report is JSON (a workflow engine
/// stores it between steps); `Buffer.from(s.png, 'base64')` gives the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Screenshot"))]
pub struct Screenshot {
    pub png: String,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Screenshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screenshot")
            .field("png", &format_args!("<{} base64 chars>", self.png.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

impl Screenshot {
    /// The PNG's bytes (`None` if `png` is not base64).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.png)
            .ok()
    }

    /// A screenshot of these PNG bytes, its size read from the PNG header.
    pub fn from_png(bytes: &[u8]) -> Option<Screenshot> {
        use base64::Engine;
        // Signature (8), IHDR length and type (8), then width and height, big-endian.
        let dim = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return None;
        }
        Some(Screenshot {
            png: base64::engine::general_purpose::STANDARD.encode(bytes),
            width: dim(16)?,
            height: dim(20)?,
        })
    }
}

/// Where the check's time went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "BrowserTimings"))]
pub struct BrowserTimings {
    /// Starting (or connecting to) the browser; 0 when it was warm.
    pub launch_ms: u64,
    /// Navigation to the page's `load` event.
    pub load_ms: u64,
    /// From `load` until the network was quiet.
    pub settle_ms: u64,
    /// Inspecting the page and taking the screenshot.
    pub inspect_ms: u64,
    pub total_ms: u64,
}

/// Loads `url` in a browser (with the preview's token, sent to the preview's origin only) and classifies what it shows. `Err` only for options that cannot work (a missing
/// `executablePath`); a browser that is absent, fails to start or cannot be reached is a
/// [`BrowserCheck::Skipped`].
pub async fn check_in_browser(
    url: &str,
    auth: Option<PreviewAuth<'_>>,
    opts: &BrowserOptions,
) -> Result<BrowserCheck, PreviewError> {
    opts.validate()?;
    #[cfg(target_family = "wasm")]
    {
        let _ = (url, auth);
        Ok(BrowserCheck::Skipped(Skipped {
            skipped: "no browser in the WebAssembly build: run the native addon (or `forge`) \
                      for the browser check"
                .into(),
        }))
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let started = std::time::Instant::now();
        let lease = match launch::lease(opts).await? {
            Ok(l) => l,
            Err(skipped) => return Ok(BrowserCheck::Skipped(Skipped { skipped })),
        };
        let launch_ms = if lease.warm {
            0
        } else {
            millis(started.elapsed())
        };
        // Boxed here, once: the page visit (the DevTools session, its event streams) is the
        // large part of the check, and inline it would grow every caller's future.
        let run = Box::pin(page::visit(&lease, url, auth, opts));
        // A panic in the CDP client or the page's parsing must not cross into the caller.
        let seen = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await;
        let seen = match seen {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                lease.discard_if_dead().await;
                return Ok(BrowserCheck::Skipped(Skipped {
                    skipped: format!("the browser failed: {e}"),
                }));
            }
            Err(_) => {
                lease.discard_if_dead().await;
                return Ok(BrowserCheck::Skipped(Skipped {
                    skipped: "the browser client failed".into(),
                }));
            }
        };
        let warm = lease.warm;
        drop(lease);
        let reason = seen.reason();
        Ok(BrowserCheck::Ran(BrowserReport {
            ok: reason == Reason::Ok,
            reason,
            errors: seen.errors,
            screenshot: seen.screenshot,
            title: seen.title,
            settled: seen.settled,
            warm,
            timings: BrowserTimings {
                launch_ms,
                total_ms: millis(started.elapsed()),
                ..seen.timings
            },
        }))
    }
}

#[cfg(not(target_family = "wasm"))]
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_reads_as_bool_or_object_and_names_a_misspelt_key() {
        let read = |s: &str| serde_json::from_str::<BrowserSetting>(s);
        assert_eq!(read("false").unwrap().options(), None);
        assert_eq!(
            read("true").unwrap().options(),
            Some(BrowserOptions::default())
        );
        let o = read(r#"{"timeoutMs": 5, "viewport": {"width": 400, "height": 300}}"#)
            .unwrap()
            .options()
            .unwrap();
        assert_eq!(o.timeout(), Duration::from_millis(5));
        assert_eq!(
            o.viewport(),
            Viewport {
                width: 400,
                height: 300
            }
        );
        let e = read(r#"{"timeoutMS": 5}"#).unwrap_err().to_string();
        assert!(e.contains("timeoutMS") && e.contains("timeoutMs"), "{e}");
    }

    #[test]
    fn options_that_cannot_work_are_refused() {
        let both = BrowserOptions {
            executable_path: Some("/x".into()),
            ws_endpoint: Some("ws://a".into()),
            ..Default::default()
        };
        assert!(both.validate().is_err());
        let http = BrowserOptions {
            ws_endpoint: Some("http://a:9222".into()),
            ..Default::default()
        };
        assert!(http.validate().is_err());
        let tiny = BrowserOptions {
            viewport: Some(Viewport {
                width: 0,
                height: 10,
            }),
            ..Default::default()
        };
        assert!(tiny.validate().is_err());
        assert!(BrowserOptions::default().validate().is_ok());
    }

    #[test]
    fn a_screenshot_knows_its_size_from_the_png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        let s = Screenshot::from_png(&png).unwrap();
        assert_eq!((s.width, s.height), (640, 480));
        assert_eq!(s.bytes().unwrap(), png);
        assert!(Screenshot::from_png(b"GIF89a").is_none());
        assert!(!format!("{s:?}").contains(&s.png));
    }
}

//! The browser check against a real headless Chromium (Debian's `chromium`; `.ci/run`
//! installs it) loading pages from a scripted server on 127.0.0.1: what it classifies, the
//! screenshot, where the preview token goes. Real Vite and Next.js apps in sandboxes are
//! `__test__/browser.test.mjs`'s.

use crate::common::{bounded, canned, serve, serve_on, Canned};
use forge_preview::browser::{
    check_in_browser, BrowserCheck, BrowserOptions, BrowserReport, PageErrorKind, PreviewAuth,
    Viewport,
};
use forge_preview::Reason;

const HTML: &str = "text/html";
const JS: &str = "text/javascript";

fn page(body: &str) -> String {
    format!("<!doctype html><html><head><title>t</title></head><body>{body}</body></html>")
}

async fn check(url: &str, opts: &BrowserOptions) -> BrowserReport {
    match check_in_browser(url, None, opts).await.unwrap() {
        BrowserCheck::Ran(r) => r,
        BrowserCheck::Skipped(s) => panic!("the check was skipped: {}", s.skipped),
    }
}

async fn load(routes: Vec<Canned>) -> BrowserReport {
    let server = serve(routes).await;
    check(&server.url("/"), &BrowserOptions::default()).await
}

#[tokio::test]
async fn a_working_page_is_ok_with_a_screenshot_of_what_it_shows() {
    bounded(async {
        let r = load(vec![canned(
            "/",
            200,
            HTML,
            &page("<h1 style='color:#c00;font-size:64px'>hello from the app</h1><script>document.title = 'app title'</script>"),
        )])
        .await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.reason, Reason::Ok);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.title, "app title");
        assert!(r.settled);
        let shot = r.screenshot.expect("a screenshot");
        assert_eq!((shot.width, shot.height), (1280, 800));
        let png = shot.bytes().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (1280, 800));
        let px = info.color_type.samples();
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
        assert!(
            pixels.iter().any(|p| *p != pixels[0]),
            "every pixel of the screenshot is the same colour"
        );
        // Red text on white: some pixel is clearly red.
        assert!(pixels.iter().any(|p| p[0] > 150 && p[1] < 80 && p[2] < 80));
    })
    .await;
}

/// A page the check must fail, and how.
struct Broken {
    name: &'static str,
    /// `/` and what it loads.
    routes: Vec<Canned>,
    reason: Reason,
    /// Every error in the report's order: its kind, what its text contains, and what its
    /// source (`url:line:column`) ends with (`""`: not checked).
    errors: &'static [(PageErrorKind, &'static [&'static str], &'static str)],
    /// What the one-line excerpt contains.
    excerpt: &'static str,
}

fn broken_pages() -> Vec<Broken> {
    use PageErrorKind::{Console, Exception, Overlay, Request};
    vec![
        Broken {
            name: "an uncaught exception: its message and where it was thrown",
            routes: vec![
                canned("/", 200, HTML, &page("<div id=app>loading</div><script src=/main.js></script>")),
                canned(
                    "/main.js",
                    200,
                    JS,
                    "window.addEventListener('load', () => {\n  throw new Error('VITE_API_URL is not set')\n})\n",
                ),
            ],
            reason: Reason::BrowserError,
            errors: &[(Exception, &["Error: VITE_API_URL is not set"], "/main.js:2:9")],
            excerpt: "VITE_API_URL is not set",
        },
        Broken {
            name: "exceptions before console errors, each kind in order",
            routes: vec![canned(
                "/",
                200,
                HTML,
                &page("<p>shown</p><script>console.error('failed to fetch config', 42); console.error('second'); Promise.reject(new TypeError('x is undefined'))</script>"),
            )],
            reason: Reason::BrowserError,
            errors: &[
                (Exception, &["(in promise)", "TypeError: x is undefined"], ""),
                (Console, &["failed to fetch config 42"], "/:1:85"),
                (Console, &["second"], ""),
            ],
            excerpt: "TypeError: x is undefined",
        },
        Broken {
            name: "a page that renders nothing is blank",
            routes: vec![
                canned("/", 200, HTML, &page("<div id=root></div><script src=/main.js></script>")),
                canned("/main.js", 200, JS, "document.getElementById('root').innerHTML = '<div>   </div>'\n"),
            ],
            reason: Reason::BlankPage,
            errors: &[],
            excerpt: "rendered nothing",
        },
        Broken {
            // The import rejects, uncaught; the request's 404 is listed too.
            name: "a module that fails to load at run time",
            routes: vec![
                canned("/", 200, HTML, &page("<h1>app</h1><script type=module src=/src/main.js></script>")),
                canned("/src/main.js", 200, JS, "import('/src/missing.js')\n"),
            ],
            reason: Reason::BrowserError,
            errors: &[
                (Exception, &["Failed to fetch dynamically imported module", "/src/missing.js"], ""),
                (Request, &["/src/missing.js answered 404"], ""),
            ],
            excerpt: "/src/missing.js",
        },
        Broken {
            // Vite's overlay: a custom element whose shadow root holds the message.
            name: "a framework overlay, with its text",
            routes: vec![canned(
                "/",
                200,
                HTML,
                &page("<h1>app</h1><script>customElements.define('vite-error-overlay', class extends HTMLElement { constructor() { super(); this.attachShadow({mode: 'open'}).innerHTML = '<pre class=message><span class=message-body>Failed to resolve import \"./Missing\"</span></pre>' } }); document.body.appendChild(document.createElement('vite-error-overlay'))</script>"),
            )],
            reason: Reason::BrowserError,
            errors: &[(Overlay, &["Failed to resolve import \"./Missing\""], "")],
            excerpt: "Failed to resolve import",
        },
    ]
}

#[tokio::test]
async fn broken_pages_fail_with_what_went_wrong() {
    bounded(async {
        for case in broken_pages() {
            let name = case.name;
            let r = load(case.routes).await;
            assert!(!r.ok, "{name}: {r:?}");
            assert_eq!(r.reason, case.reason, "{name}: {r:?}");
            let kinds: Vec<_> = r.errors.iter().map(|e| e.kind).collect();
            let want: Vec<_> = case.errors.iter().map(|e| e.0).collect();
            assert_eq!(kinds, want, "{name}: {:?}", r.errors);
            for (e, (_, texts, source)) in r.errors.iter().zip(case.errors) {
                for t in *texts {
                    assert!(e.text.contains(t), "{name}: {t:?} not in {e:?}");
                }
                let at = e.source.as_deref().unwrap_or_default();
                assert!(
                    at.ends_with(source),
                    "{name}: source {at:?}, want ...{source}"
                );
            }
            let excerpt = r.excerpt().unwrap_or_default();
            assert!(
                excerpt.contains(case.excerpt),
                "{name}: excerpt {excerpt:?}"
            );
            assert!(
                r.screenshot.is_some(),
                "{name}: a failing page is photographed too"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_page_that_never_settles_is_inspected_when_its_time_is_up() {
    bounded(async {
        let server = serve(vec![canned(
            "/",
            200,
            HTML,
            &page("<h1>polling</h1><script>setInterval(() => fetch('/poll').catch(() => {}), 100)</script>"),
        )])
        .await;
        let opts = BrowserOptions {
            timeout_ms: Some(2_000),
            ..Default::default()
        };
        let r = check(&server.url("/"), &opts).await;
        assert!(!r.settled);
        assert!(r.ok, "a page that keeps polling but shows itself is not broken: {r:?}");
        assert!(r.screenshot.is_some());
        assert!(server.requests().iter().filter(|h| h.starts_with("GET /poll")).count() > 3);
    })
    .await;
}

#[tokio::test]
async fn the_token_goes_to_the_preview_and_nowhere_else() {
    bounded(async {
        // Another host (a CDN): it must see neither the headers nor the proxy's cookie.
        let cdn = serve_on(
            "127.0.0.2",
            vec![canned("/lib.js", 200, JS, "window.lib = true\n")],
        )
        .await;
        let preview = serve(vec![
            canned(
                "/",
                200,
                HTML,
                &page(&format!(
                    "<h1>private app</h1><script src=/app.js></script><script src={}></script>",
                    cdn.url("/lib.js")
                )),
            ),
            canned("/app.js", 200, JS, "fetch('/api').catch(() => {})\n"),
        ])
        .await;
        let auth = PreviewAuth {
            sandbox_id: "sb-1",
            token: "preview-secret-123",
        };
        let opts = BrowserOptions {
            viewport: Some(Viewport {
                width: 400,
                height: 300,
            }),
            ..Default::default()
        };
        let r = check_in_browser(&preview.url("/"), Some(auth), &opts)
            .await
            .unwrap();
        let r = r.report().unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(
            r.screenshot.as_ref().map(|s| (s.width, s.height)),
            Some((400, 300))
        );
        let heads = preview.requests();
        for path in ["/ ", "/app.js ", "/api "] {
            let head = heads
                .iter()
                .find(|h| h.starts_with(&format!("GET {path}")))
                .unwrap_or_else(|| panic!("no request for {path}: {heads:?}"));
            let lower = head.to_ascii_lowercase();
            assert!(
                lower.contains("x-daytona-preview-token: preview-secret-123"),
                "{head}"
            );
            assert!(
                lower.contains("x-daytona-skip-preview-warning: true"),
                "{head}"
            );
        }
        let cdn_heads = cdn.requests();
        assert_eq!(cdn_heads.len(), 1, "{cdn_heads:?}");
        assert!(
            !cdn_heads[0].contains("preview-secret-123"),
            "{}",
            cdn_heads[0]
        );
        assert!(
            !cdn_heads[0].to_ascii_lowercase().contains("x-daytona"),
            "{}",
            cdn_heads[0]
        );
    })
    .await;
}

#[tokio::test]
async fn an_executable_path_that_is_not_there_is_refused_and_a_dead_endpoint_skips() {
    bounded(async {
        let opts = BrowserOptions {
            executable_path: Some("/nonexistent/chromium".into()),
            ..Default::default()
        };
        let e = check_in_browser("http://127.0.0.1:9/", None, &opts)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
        assert!(e.to_string().contains("browser.executablePath"), "{e}");
        let port = crate::common::closed_port().await;
        let opts = BrowserOptions {
            ws_endpoint: Some(format!("ws://127.0.0.1:{port}/devtools/browser/x")),
            ..Default::default()
        };
        match check_in_browser("http://127.0.0.1:9/", None, &opts)
            .await
            .unwrap()
        {
            BrowserCheck::Skipped(s) => {
                assert!(s.skipped.contains("could not be reached"), "{}", s.skipped);
            }
            BrowserCheck::Ran(r) => panic!("ran: {r:?}"),
        }
    })
    .await;
}

/// A Chromium someone else runs (a hosted browser, a sidecar container), reached by its
/// DevTools WebSocket URL: what `browser: { wsEndpoint }` is for.
struct RemoteChromium {
    child: tokio::process::Child,
    ws: String,
    http: String,
    _profile: tempfile::TempDir,
}

impl RemoteChromium {
    async fn start() -> RemoteChromium {
        let exe = ["chromium", "google-chrome", "chromium-browser"]
            .into_iter()
            .find(|b| {
                std::process::Command::new("which")
                    .arg(b)
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .expect("a chromium on PATH (.ci/run installs Debian's)");
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args([
            "--headless=new",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            "--no-first-run",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // Tells its requests from those of a browser the check would start itself.
            "--user-agent=remote-browser-under-test",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--no-sandbox");
        }
        let child = cmd.spawn().unwrap();
        // Chromium writes its port and browser path here once DevTools listens.
        let file = profile.path().join("DevToolsActivePort");
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let mut lines = text.lines().map(str::trim);
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.to_owned(), path.to_owned());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        RemoteChromium {
            child,
            ws: format!("ws://127.0.0.1:{port}{path}"),
            http: format!("http://127.0.0.1:{port}"),
            _profile: profile,
        }
    }

    /// The URLs of the browser's open pages.
    async fn pages(&self) -> Vec<String> {
        let list: Vec<serde_json::Value> = reqwest::get(format!("{}/json/list", self.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.iter()
            .filter(|t| t["type"] == "page")
            .map(|t| t["url"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_remote_browser_by_its_ws_endpoint_checks_the_page_and_is_left_running() {
    bounded(async {
        let mut remote = RemoteChromium::start().await;
        let server = serve(vec![canned(
            "/",
            200,
            HTML,
            &page("<h1>served to a remote browser</h1><script>document.title = 'remote'</script>"),
        )])
        .await;
        let opts = BrowserOptions {
            ws_endpoint: Some(remote.ws.clone()),
            ..Default::default()
        };
        let r = check(&server.url("/"), &opts).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.title, "remote");
        assert!(r.screenshot.is_some());
        // The page really was loaded by the remote browser, not one the check started.
        assert!(
            server
                .requests()
                .iter()
                .any(|h| h.contains("remote-browser-under-test")),
            "{:?}",
            server.requests()
        );
        // Not ours to kill, and the check's tab is closed behind it.
        assert!(
            remote.child.try_wait().unwrap().is_none(),
            "the remote browser was stopped by the check"
        );
        // The used tab is disposed of off the check's path: waited for (bounded() ends a
        // test that waits forever, which is this one's failure).
        while remote
            .pages()
            .await
            .iter()
            .any(|u| u.starts_with(&server.url("/")))
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(remote.child.try_wait().unwrap().is_none());
    })
    .await;
}

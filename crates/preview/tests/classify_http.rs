//! Every probe classification against a scripted HTTP server on 127.0.0.1, through the real
//! prober (reqwest, redirects off, the Daytona headers).

use crate::common;

use common::{bounded, canned, closed_port, serve, Canned};
use forge_preview::{Probe, Prober, Reason};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn probe(url: &str) -> Probe {
    Prober::new()
        .unwrap()
        .with_token(Some("secret-preview-token"))
        .probe(url, TIMEOUT, true)
        .await
}

async fn probe_one(c: Canned) -> Probe {
    let s = serve(vec![c]).await;
    probe(&s.url("/")).await
}

#[tokio::test]
async fn plain_ok_sends_the_daytona_headers_and_no_browser_agent() {
    bounded(async {
        let s = serve(vec![canned(
            "/",
            200,
            "text/html",
            "<html><body><h1>Shop</h1></body></html>",
        )])
        .await;
        let p = probe(&s.url("/")).await;
        assert_eq!(p.reason, Reason::Ok);
        assert_eq!(p.status, Some(200));
        let head = s.requests().remove(0).to_ascii_lowercase();
        assert!(
            head.contains("x-daytona-preview-token: secret-preview-token"),
            "{head}"
        );
        assert!(
            head.contains("x-daytona-skip-preview-warning: true"),
            "{head}"
        );
        let ua = head.lines().find(|l| l.starts_with("user-agent:")).unwrap();
        assert!(
            ua.contains("forge-preview") && !ua.contains("mozilla"),
            "{ua}"
        );
        // Without a token, no token header at all.
        let p = Prober::new()
            .unwrap()
            .probe(&s.url("/"), TIMEOUT, true)
            .await;
        assert_eq!(p.reason, Reason::Ok);
        assert!(!s.requests()[1]
            .to_ascii_lowercase()
            .contains("x-daytona-preview-token"));
    })
    .await;
}

#[tokio::test]
async fn empty_502_and_runner_unreachable_mean_not_listening() {
    bounded(async {
        let p = probe_one(canned("/", 502, "", "")).await;
        assert_eq!((p.reason, p.status), (Reason::NotListening, Some(502)));
        let p = probe_one(canned(
            "/",
            502,
            "application/json",
            r#"{"statusCode":502,"message":"runner is unreachable: dial tcp","source":"DAYTONA_PROXY","code":"RUNNER_UNREACHABLE"}"#,
        ))
        .await;
        assert_eq!(p.reason, Reason::NotListening);
        assert!(p.reason.is_pending());
    })
    .await;
}

#[tokio::test]
async fn refused_port_means_not_listening() {
    bounded(async {
        let port = closed_port().await;
        let p = probe(&format!("http://127.0.0.1:{port}/")).await;
        assert_eq!((p.reason, p.status), (Reason::NotListening, None));
        assert_eq!(p.excerpt.as_deref(), Some("connection refused"));
    })
    .await;
}

#[tokio::test]
async fn redirect_to_another_host_is_an_auth_failure_and_not_followed() {
    bounded(async {
        let login = serve(vec![canned(
            "/login",
            200,
            "text/html",
            "<title>Sign in</title>",
        )])
        .await;
        let mut c = canned("/", 307, "text/plain", "");
        c.headers.push(("Location", login.url("/login?redirect=x")));
        let p = probe_one(c).await;
        assert_eq!((p.reason, p.status), (Reason::AuthRedirect, Some(307)));
        assert!(p.reason.is_terminal());
        assert!(login.requests().is_empty(), "the redirect was followed");
        // A redirect inside the app's own host is the app working.
        let s = serve(vec![
            Canned {
                headers: vec![("Location", "/en".into())],
                ..canned("/", 302, "", "")
            },
            canned("/en", 200, "text/html", "<p>hi</p>"),
        ])
        .await;
        assert_eq!(probe(&s.url("/")).await.reason, Reason::Ok);
    })
    .await;
}

#[tokio::test]
async fn warning_page_is_reported() {
    bounded(async {
        let page = r#"<!DOCTYPE html><html><head><title>Daytona Preview - Warning</title></head><body><h1 class="warning-title">Preview URL Warning</h1><p>You are about to visit …</p><form method="POST" action="/accept-daytona-preview-warning?redirect=x"><button>I Understand, Continue</button></form></body></html>"#;
        let p = probe_one(canned("/", 200, "text/html; charset=utf-8", page)).await;
        assert_eq!((p.reason, p.status), (Reason::WarningPage, Some(200)));
        assert!(p.excerpt.unwrap().contains("X-Daytona-Skip-Preview-Warning"));
    })
    .await;
}

#[tokio::test]
async fn vite_blocked_host_gives_the_allowed_hosts_hint() {
    bounded(async {
        let body = "Blocked request. This host (\"5173-abc.proxy.daytona.work\") is not allowed.\nTo allow this host, add \"5173-abc.proxy.daytona.work\" to `server.allowedHosts` in vite.config.js.";
        let p = probe_one(canned("/", 403, "text/plain", body)).await;
        assert_eq!((p.reason, p.status), (Reason::BlockedHost, Some(403)));
        let e = p.excerpt.unwrap();
        assert!(e.contains("server.allowedHosts") && e.contains("5173-abc.proxy.daytona.work"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn next_error_document_gives_the_decoded_message() {
    bounded(async {
        let page = r#"<!DOCTYPE html><html id="__next_error__"><head><meta charSet="utf-8"/></head><body><template data-next-error-message="Cannot read properties of undefined (reading &#x27;map&#x27;) in &lt;ProductList&gt;" data-next-error-digest="1234" data-next-error-stack="TypeError: at ProductList (app/page.tsx:5:3)"></template><script>self.__next_f=[]</script></body></html>"#;
        let p = probe_one(canned("/", 500, "text/html; charset=utf-8", page)).await;
        assert_eq!((p.reason, p.status), (Reason::FrameworkError, Some(500)));
        assert_eq!(
            p.excerpt.as_deref(),
            Some("Cannot read properties of undefined (reading 'map') in <ProductList>")
        );
        // The same markers on a 200 (e.g. a client crash page) also fail.
        let p = probe_one(canned(
            "/",
            200,
            "text/html",
            "<html><body><h2>Application error: a client-side exception has occurred (see the browser console for more information).</h2></body></html>",
        ))
        .await;
        assert_eq!(p.reason, Reason::FrameworkError);
        assert!(p.excerpt.unwrap().starts_with("Application error: a client-side exception"));
    })
    .await;
}

/// Vite 8's error middleware answer for a module whose transform failed.
fn vite_error_page(message: &str, id: &str) -> String {
    let error = serde_json::json!({
        "message": message, "stack": "", "id": id, "frame": "1 | export default (\n  |                ^", "plugin": "vite:esbuild"
    });
    format!(
        r#"
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="UTF-8" />
        <title>Error</title>
        <script type="module">
          const error = {}
          try {{
            const {{ ErrorOverlay }} = await import("/@vite/client")
            document.body.appendChild(new ErrorOverlay(error))
          }} catch {{
            const h = (tag, text) => {{ const el = document.createElement(tag); el.textContent = text; return el }}
            document.body.appendChild(h('h1', 'Internal Server Error'))
            document.body.appendChild(h('h2', error.message))
            document.body.appendChild(h('pre', error.stack))
            document.body.appendChild(h('p', '(Error overlay failed to load)'))
          }}
        </script>
      </head>
      <body>
      </body>
    </html>
  "#,
        error.to_string().replace('<', "\\u003c")
    )
}

const VITE_INDEX: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <script type="module" src="/@vite/client"></script>
    <meta charset="UTF-8" />
    <title>Vite + React</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.tsx"></script>
  </body>
</html>"#;

#[tokio::test]
async fn vite_entry_module_error_overlay_is_a_framework_error() {
    bounded(async {
        let s = serve(vec![
            canned("/", 200, "text/html", VITE_INDEX),
            canned(
                "/src/main.tsx",
                500,
                "text/html",
                &vite_error_page("Transform failed with 1 error: /app/src/main.tsx:3:17: ERROR: Unexpected \"}\"", "/app/src/main.tsx"),
            ),
        ])
        .await;
        let p = probe(&s.url("/")).await;
        assert_eq!((p.reason, p.status), (Reason::FrameworkError, Some(500)));
        let e = p.excerpt.unwrap();
        assert!(e.starts_with("Transform failed with 1 error"), "{e}");
        let paths: Vec<String> = s
            .requests()
            .iter()
            .map(|h| h.split_whitespace().nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(paths, ["/", "/src/main.tsx"]);

        // A healthy entry module: OK; and with the check off the module is not requested.
        let s = serve(vec![
            canned("/", 200, "text/html", VITE_INDEX),
            canned("/src/main.tsx", 200, "text/javascript", "import React from '/node_modules/.vite/deps/react.js'"),
        ])
        .await;
        assert_eq!(probe(&s.url("/")).await.reason, Reason::Ok);
        let p = Prober::new().unwrap().probe(&s.url("/"), TIMEOUT, false).await;
        assert_eq!(p.reason, Reason::Ok);
        assert_eq!(s.requests().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn slow_first_answer_is_still_ok_and_an_overrun_is_compiling() {
    bounded(async {
        let slow = Canned {
            delay: Duration::from_millis(1500),
            ..canned("/", 200, "text/html", "<p>compiled at last</p>")
        };
        let s = serve(vec![slow]).await;
        // Within the (30 s) first-request timeout: OK.
        assert_eq!(probe(&s.url("/")).await.reason, Reason::Ok);
        // Past a short per-request timeout: compiling, keep waiting.
        let p = Prober::new()
            .unwrap()
            .probe(&s.url("/"), Duration::from_millis(200), true)
            .await;
        assert_eq!((p.reason, p.status), (Reason::Compiling, None));
        assert!(p.reason.is_pending());
    })
    .await;
}

#[tokio::test]
async fn app_5xx_and_error_markers_fail_with_an_excerpt() {
    bounded(async {
        let p = probe_one(canned("/", 500, "text/plain", "Internal Server Error: database \"shop\" does not exist")).await;
        assert_eq!((p.reason, p.status), (Reason::FrameworkError, Some(500)));
        assert!(p.excerpt.unwrap().contains("database \"shop\" does not exist"));
        let p = probe_one(canned(
            "/",
            200,
            "text/html",
            "<html><head><style>body{}</style></head><body><h1>Failed to compile</h1><pre>./src/App.js\nModule not found: Can't resolve './Missing'</pre></body></html>",
        ))
        .await;
        assert_eq!(p.reason, Reason::FrameworkError);
        let e = p.excerpt.unwrap();
        assert!(e.starts_with("Failed to compile") && e.contains("Can't resolve './Missing'"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn sandbox_states_from_the_proxy() {
    bounded(async {
        let p = probe_one(canned(
            "/",
            400,
            "application/json",
            r#"{"statusCode":400,"message":"sandbox is not started","source":"DAYTONA_PROXY","code":"SANDBOX_NOT_STARTED"}"#,
        ))
        .await;
        assert_eq!(p.reason, Reason::SandboxNotStarted);
        let p = probe_one(canned(
            "/",
            404,
            "application/json",
            r#"{"statusCode":404,"message":"sandbox not found","source":"DAYTONA_PROXY","code":"SANDBOX_NOT_FOUND"}"#,
        ))
        .await;
        assert_eq!(p.reason, Reason::SandboxNotFound);
        // An app's own 404 is not the sandbox missing.
        let p = probe_one(canned("/", 404, "text/html", "<pre>Cannot GET /</pre>")).await;
        assert_eq!(p.reason, Reason::UnexpectedStatus);
        assert_eq!(p.excerpt.as_deref(), Some("Cannot GET /"));
        let p = probe_one(canned("/", 401, "application/json", r#"{"message":"unauthorized"}"#)).await;
        assert_eq!(p.reason, Reason::Unauthorized);
    })
    .await;
}

#[test]
fn reasons_serialise_as_their_codes() {
    for r in [
        Reason::Ok,
        Reason::NotListening,
        Reason::Compiling,
        Reason::AuthRedirect,
        Reason::Unauthorized,
        Reason::WarningPage,
        Reason::BlockedHost,
        Reason::FrameworkError,
        Reason::UnexpectedStatus,
        Reason::SandboxNotStarted,
        Reason::SandboxNotFound,
        Reason::ProcessExited,
        Reason::Crashed,
        Reason::PortInUse,
        Reason::Timeout,
        Reason::BrowserError,
        Reason::BlankPage,
    ] {
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!(r.code())
        );
        assert_eq!(
            serde_json::from_value::<Reason>(serde_json::json!(r.code())).unwrap(),
            r
        );
        assert_eq!(
            r.is_pending(),
            matches!(r, Reason::NotListening | Reason::Compiling)
        );
    }
}

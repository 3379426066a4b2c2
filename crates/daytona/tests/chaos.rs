//! The retry policy under injected faults: a proxy on 127.0.0.1 between the client and the
//! embedded backend answers 503 / 429 without forwarding, or forwards and then cuts the body,
//! answers 502 or garbage. Every call must end with success or a typed error within its
//! deadline, and no create or execute may run twice for one call (counted in the backend).

use crate::common;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{bounded, Backend};
use forge_daytona::{
    CallOptions, Client, CreateParams, DaytonaConfig, ExecOptions, ListQuery, RetryConfig,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Figures {
    faults: BTreeMap<&'static str, usize>,
    forwarded: usize,
}

struct Proxy {
    backend: String,
    me: Mutex<String>,
    http: reqwest::Client,
    seed: AtomicU64,
    figures: Mutex<Figures>,
}

impl Proxy {
    /// A deterministic pseudo-random fault choice (xorshift).
    fn roll(&self) -> u64 {
        let mut x = self.seed.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::SeqCst);
        x % 10
    }

    fn note(&self, fault: &'static str) {
        *self
            .figures
            .lock()
            .unwrap()
            .faults
            .entry(fault)
            .or_default() += 1;
    }

    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<(StatusCode, HeaderMap, Bytes)> {
        let url = format!(
            "{}{}",
            self.backend,
            uri.path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str)
        );
        let mut rb = self.http.request(method, url).body(body);
        for (k, v) in headers {
            if k != "host" && k != "content-length" {
                rb = rb.header(k, v);
            }
        }
        self.figures.lock().unwrap().forwarded += 1;
        let r = rb.send().await.ok()?;
        let status = r.status();
        let mut h = r.headers().clone();
        h.remove("content-length");
        let bytes = r.bytes().await.ok()?;
        let me = self.me.lock().unwrap().clone();
        let text = String::from_utf8_lossy(&bytes).replace(&self.backend, &me);
        Some((status, h, Bytes::from(text)))
    }
}

async fn handle(
    p: Arc<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match p.roll() {
        0 => {
            p.note("503 before forwarding");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"statusCode":503,"message":"unavailable"}"#,
            )
                .into_response();
        }
        1 => {
            p.note("429 before forwarding");
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "").into_response();
        }
        2 => {
            p.note("body cut after forwarding");
            let _ = p.forward(method, &uri, &headers, body).await;
            let broken = futures_util::stream::iter(vec![
                Ok(Bytes::from_static(b"{\"id\":")),
                Err(std::io::Error::other("cut")),
            ]);
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(broken),
            )
                .into_response();
        }
        3 => {
            p.note("502 after forwarding");
            let _ = p.forward(method, &uri, &headers, body).await;
            return (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response();
        }
        4 => {
            p.note("garbage after forwarding");
            let _ = p.forward(method, &uri, &headers, body).await;
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{{{garbage",
            )
                .into_response();
        }
        _ => {}
    }
    match p.forward(method, &uri, &headers, body).await {
        Some((status, h, bytes)) => {
            let mut r = (status, bytes).into_response();
            for (k, v) in &h {
                r.headers_mut().insert(k.clone(), v.clone());
            }
            r
        }
        None => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::test]
async fn faults_end_in_typed_errors_and_nothing_runs_twice() {
    bounded(async {
        let b = Backend::start().await;
        let origin = b.backend.api_url().trim_end_matches("/api").to_string();
        let proxy = Arc::new(Proxy {
            backend: origin,
            me: Mutex::new(String::new()),
            http: reqwest::Client::new(),
            seed: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            figures: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = format!("http://{}", listener.local_addr().unwrap());
        *proxy.me.lock().unwrap() = me.clone();
        let p2 = proxy.clone();
        let app = axum::Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, body: Bytes| handle(p2.clone(), m, u, h, body));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let chaotic = Client::from_resolved(
            DaytonaConfig::new()
                .with_api_key(b.backend.api_key())
                .with_api_url(format!("{me}/api"))
                .with_retry(RetryConfig { max_attempts: 4, initial_backoff_ms: 5, max_backoff_ms: 40 })
                .validate()
                .unwrap(),
        )
        .unwrap();

        // One sandbox (made directly) whose toolbox goes through the proxy.
        let s = b.client.create(&CreateParams::default(), &CallOptions::default()).await.unwrap();
        let mut via_proxy = s.clone();
        via_proxy.toolbox_proxy_url = Some(format!("{me}/toolbox"));
        let tb = chaotic.toolbox(&via_proxy).await.unwrap();

        let deadline = Duration::from_secs(20);
        let opts = CallOptions::new().with_timeout(deadline);
        let (ok, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
        let rounds = 60;
        for i in 0..rounds {
            let label = [("chaos".to_string(), format!("run-{i}"))].into();
            let params = CreateParams { labels: label, ..Default::default() };
            let calls: Vec<Result<(), forge_daytona::Error>> = vec![
                tokio::time::timeout(deadline + Duration::from_secs(5), chaotic.create(&params, &opts)).await.expect("create ended").map(|_| ()),
                tokio::time::timeout(deadline + Duration::from_secs(5), chaotic.get_with(&s.id, &opts)).await.expect("get ended").map(|_| ()),
                tokio::time::timeout(deadline + Duration::from_secs(5), chaotic.list(&ListQuery::default(), &opts)).await.expect("list ended").map(|_| ()),
                tokio::time::timeout(
                    deadline + Duration::from_secs(5),
                    tb.process().execute(&format!("echo {i} >> ran.txt"), &ExecOptions::default(), &opts),
                )
                .await
                .expect("execute ended")
                .map(|_| ()),
                tokio::time::timeout(deadline + Duration::from_secs(5), tb.fs().list(".")).await.expect("fs list ended").map(|_| ()),
            ];
            for r in calls {
                match r {
                    Ok(()) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        *codes.entry(e.code()).or_default() += 1;
                        assert!(
                            matches!(e.code(), "DAYTONA_SERVER_ERROR" | "DAYTONA_RATE_LIMITED" | "DAYTONA_CONNECTION" | "DAYTONA_BAD_RESPONSE"),
                            "unexpected {e}"
                        );
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        }

        // The backend counts: at most one sandbox per create call, one line per execute call.
        let all = b.client.list_all(&ListQuery::default(), &CallOptions::default()).await.unwrap();
        let mut per_run: BTreeMap<String, usize> = BTreeMap::new();
        for sb in &all {
            if let Some(run) = sb.labels.get("chaos") {
                *per_run.entry(run.clone()).or_default() += 1;
            }
        }
        assert!(per_run.values().all(|n| *n == 1), "a create ran twice: {per_run:?}");
        let direct = b.client.toolbox(&s).await.unwrap();
        let ran = direct.fs().download("ran.txt", &CallOptions::default()).await.unwrap_or_default();
        let mut lines: BTreeMap<String, usize> = BTreeMap::new();
        for l in String::from_utf8_lossy(&ran).lines() {
            *lines.entry(l.to_string()).or_default() += 1;
        }
        assert!(lines.values().all(|n| *n == 1), "an execute ran twice: {lines:?}");

        let (faults, forwarded) = {
            let f = proxy.figures.lock().unwrap();
            (f.faults.clone(), f.forwarded)
        };
        let injected: usize = faults.values().sum();
        eprintln!(
            "chaos: {} calls, {} ok, {} typed errors {:?}; {} faults injected {:?}; {} requests forwarded; {} creates and {} executes took effect",
            rounds * 5,
            ok.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst),
            codes,
            injected,
            faults,
            forwarded,
            per_run.len(),
            lines.len()
        );
        assert!(injected > 50, "too few faults: {injected}");
        assert!(ok.load(Ordering::SeqCst) > 0);
        server.abort();
        b.stop().await;
    })
    .await;
}

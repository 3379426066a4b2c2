//! Test helpers: the embedded backend, and a scripted HTTP server (127.0.0.1) that answers
//! what a test tells it and records every request.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use forge_daytona::{Client, DaytonaConfig, RetryConfig};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The embedded backend in a temp dir, with a client for it.
pub struct Backend {
    pub backend: forge_local::LocalBackend,
    pub client: Client,
    _dir: tempfile::TempDir,
}

impl Backend {
    pub async fn start() -> Backend {
        Backend::start_reaching(&[]).await
    }

    /// A backend whose sandboxes may reach these ports of this machine's loopback (a git
    /// server of the test's).
    pub async fn start_reaching(host_ports: &[u16]) -> Backend {
        Backend::start_with(|c| c.host_ports = host_ports.to_vec()).await
    }

    /// A backend whose configuration `configure` changes (its `egress_hosts`, say).
    pub async fn start_with(configure: impl FnOnce(&mut forge_local::LocalConfig)) -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = forge_local::LocalConfig {
            home: Some(dir.path().to_path_buf()),
            stop_sandboxes_on_exit: true,
            ..Default::default()
        };
        configure(&mut config);
        let backend = forge_local::LocalBackend::start(config)
            .await
            .expect("backend starts");
        let client = Client::from_resolved(
            DaytonaConfig::new()
                .with_api_key(backend.api_key())
                .with_api_url(backend.api_url())
                .validate()
                .expect("config"),
        )
        .expect("client");
        Backend {
            backend,
            client,
            _dir: dir,
        }
    }

    /// A new sandbox's toolbox.
    pub async fn toolbox(&self) -> forge_daytona::Toolbox {
        let opts = forge_daytona::CallOptions::new().with_timeout(Duration::from_mins(1));
        let s = self
            .client
            .create(&forge_daytona::CreateParams::default(), &opts)
            .await
            .expect("create");
        self.client.toolbox(&s).await.expect("toolbox")
    }

    /// A client for the same backend with another key.
    pub fn client_with_key(&self, key: &str) -> Client {
        Client::from_resolved(
            DaytonaConfig::new()
                .with_api_key(key)
                .with_api_url(self.backend.api_url())
                .with_retry(RetryConfig::none())
                .validate()
                .expect("config"),
        )
        .expect("client")
    }

    pub async fn stop(self) {
        self.backend.shutdown().await;
    }
}

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

pub type Handler = Arc<dyn Fn(&Seen, usize) -> Response + Send + Sync>;
pub type AsyncHandler =
    Arc<dyn Fn(Seen, usize) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// A scripted server: `handler(request, index of this request)` gives the answer.
pub struct Scripted {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub async fn start(
        handler: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static,
    ) -> Scripted {
        let h: Handler = Arc::new(handler);
        Self::start_async(Arc::new(move |s: Seen, n: usize| {
            let r = h(&s, n);
            Box::pin(async move { r }) as Pin<Box<dyn Future<Output = Response> + Send>>
        }))
        .await
    }

    pub async fn start_async(handler: AsyncHandler) -> Scripted {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen2.clone();
                let handler = handler.clone();
                async move {
                    let s = Seen {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        query: uri
                            .query()
                            .map(|q| {
                                url::form_urlencoded::parse(q.as_bytes())
                                    .into_owned()
                                    .collect()
                            })
                            .unwrap_or_default(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body,
                    };
                    let n = {
                        let mut g = seen.lock().unwrap();
                        g.push(s.clone());
                        g.len() - 1
                    };
                    handler(s, n).await
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Scripted {
            url: format!("http://{addr}"),
            seen,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn client(&self, key: &str) -> Client {
        self.client_with(
            key,
            RetryConfig {
                max_attempts: 3,
                initial_backoff_ms: 10,
                max_backoff_ms: 50,
            },
        )
    }

    pub fn client_with(&self, key: &str, retry: RetryConfig) -> Client {
        Client::from_resolved(
            DaytonaConfig::new()
                .with_api_key(key)
                .with_api_url(format!("{}/api", self.url))
                .with_retry(retry)
                .validate()
                .unwrap(),
        )
        .unwrap()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON answer.
#[allow(clippy::needless_pass_by_value)] // called with `json!(...)`
pub fn json(status: u16, v: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A raw answer with extra headers.
pub fn raw(status: u16, headers: &[(&'static str, &'static str)], body: &'static str) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.parse().unwrap());
    }
    r
}

/// A plausible sandbox JSON.
pub fn sandbox_json(id: &str, state: &str, toolbox: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "organizationId": "org", "name": id, "user": "daytona", "env": {}, "labels": {},
        "public": false, "networkBlockAll": false, "target": "us", "cpu": 1, "gpu": 0, "memory": 1,
        "disk": 3, "state": state, "toolboxProxyUrl": toolbox
    })
}

/// Bounds a test body in time.
pub fn bounded<'a, T>(f: impl Future<Output = T> + 'a) -> impl Future<Output = T> + 'a {
    // Boxed: a whole test body is a large future.
    let f = Box::pin(f);
    async move {
        tokio::time::timeout(Duration::from_mins(2), f)
            .await
            .expect("test took longer than 120 s")
    }
}

//! A scripted HTTP/1.1 server on 127.0.0.1 for probe tests: canned answers per path, an
//! optional delay, and a record of the requests' heads. Raw tokio sockets, so a test controls
//! every byte (an empty 502, a missing Content-Type, a slow answer).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Canned {
    pub path: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

pub fn canned(path: &'static str, status: u16, content_type: &str, body: &str) -> Canned {
    Canned {
        path,
        status,
        headers: if content_type.is_empty() {
            vec![]
        } else {
            vec![("Content-Type", content_type.to_owned())]
        },
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

pub struct Scripted {
    pub ip: String,
    pub port: u16,
    /// Request heads received, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.port)
    }
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `routes` (unknown paths: 404) until dropped.
pub async fn serve(routes: Vec<Canned>) -> Scripted {
    serve_on("127.0.0.1", routes).await
}

/// [`serve`] on another loopback address (`127.0.0.2`: another host to a browser).
pub async fn serve_on(ip: &str, routes: Vec<Canned>) -> Scripted {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let routes = Arc::new(routes);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                seen.lock().unwrap().push(head);
                let c = routes
                    .iter()
                    .find(|c| c.path == path)
                    .cloned()
                    .unwrap_or_else(|| canned("", 404, "text/plain", "Cannot GET"));
                tokio::time::sleep(c.delay).await;
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    c.status,
                    c.body.len()
                );
                for (k, v) in &c.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&c.body);
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Scripted {
        ip: ip.to_owned(),
        port,
        seen,
        task,
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `f` with an upper bound, so that no test hangs.
pub fn bounded<'a, F: std::future::Future + 'a>(
    f: F,
) -> impl std::future::Future<Output = F::Output> + 'a {
    // Boxed: a whole test body is a large future.
    let f = Box::pin(f);
    async move {
        tokio::time::timeout(Duration::from_secs(90), f)
            .await
            .expect("test ran past its 90 s bound")
    }
}

/// The embedded backend on a temp home (its sandboxes stopped when it goes) and a client of it.
pub async fn local_backend() -> (
    tempfile::TempDir,
    forge_local::LocalBackend,
    forge_daytona::Client,
) {
    let home = tempfile::tempdir().unwrap();
    let backend = forge_local::LocalBackend::start(forge_local::LocalConfig {
        home: Some(home.path().to_path_buf()),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = forge_daytona::Client::new(
        forge_daytona::DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url()),
    )
    .unwrap();
    (home, backend, client)
}

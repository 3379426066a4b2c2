//! Test helpers shared by the workspace's tests (dev-only, never published).
//!
//! - [`GitHttpServer`]: a real git smart-HTTP server on 127.0.0.1 (`git http-backend` run as
//!   CGI) behind basic auth, so clone / fetch / pull / push with credentials can be tested
//!   without any network.
//! - [`create_repo`] / [`add_commit`]: build bare repositories with commits to serve.
//!
//! ```ignore
//! let dir = tempfile::tempdir()?;
//! forge_testkit::create_repo(dir.path(), "app.git", "main", &[("README.md", "hi\n")])?;
//! let server = forge_testkit::GitHttpServer::start(dir.path(), "alice", "s3cret").await?;
//! let url = server.url("app.git"); // http://127.0.0.1:PORT/app.git
//! ```

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Config {
    root: PathBuf,
    username: String,
    password: String,
}

/// A git smart-HTTP server (`git http-backend` as CGI) behind basic auth on 127.0.0.1.
pub struct GitHttpServer {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl GitHttpServer {
    /// Serves every repository under `root_dir` (push enabled) to requests carrying
    /// `username` / `password` as basic auth; anything else gets 401 with a
    /// `WWW-Authenticate` challenge, as real git hosts answer.
    pub async fn start(
        root_dir: impl AsRef<Path>,
        username: &str,
        password: &str,
    ) -> std::io::Result<GitHttpServer> {
        let cfg = Arc::new(Config {
            root: std::fs::canonicalize(root_dir.as_ref())?,
            username: username.to_string(),
            password: password.to_string(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(cgi).with_state(cfg);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(GitHttpServer { addr, stop, task })
    }

    /// The clone URL of `repo_name` (a folder under the root), without credentials.
    pub fn url(&self, repo_name: &str) -> String {
        format!("http://{}/{}", self.addr, repo_name.trim_start_matches('/'))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}

fn authorized(cfg: &Config, req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(b64) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", cfg.username, cfg.password).as_bytes()
}

async fn cgi(State(cfg): State<Arc<Config>>, req: Request) -> Response {
    if !authorized(&cfg, &req) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"forge-testkit\"")],
            "authentication required",
        )
            .into_response();
    }
    match run_backend(&cfg, req).await {
        Ok(res) => res,
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cgi failed: {e}"),
        )
            .into_response(),
    }
}

async fn run_backend(cfg: &Config, req: Request) -> std::io::Result<Response> {
    let (parts, body) = req.into_parts();
    let hdr = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &cfg.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", hdr(header::CONTENT_TYPE))
        .env("REMOTE_USER", &cfg.username)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let encoding = hdr(header::CONTENT_ENCODING);
    if !encoding.is_empty() {
        cmd.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(p) = parts
        .headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("GIT_PROTOCOL", p).env("HTTP_GIT_PROTOCOL", p);
    }
    let length = hdr(header::CONTENT_LENGTH);
    if !length.is_empty() {
        cmd.env("CONTENT_LENGTH", length);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take();
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        if let Some(pipe) = stdin.as_mut() {
            while let Some(Ok(chunk)) = stream.next().await {
                if pipe.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
        drop(stdin);
    });
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let mut reader = BufReader::new(stdout);
    let mut builder = Response::builder().status(StatusCode::OK);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(500);
            builder = builder.status(code);
        } else if let Ok(v) = HeaderValue::from_str(value) {
            builder = builder.header(name, v);
        }
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    builder
        .body(body)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn git(dir: &Path, args: &[&str]) -> std::io::Result<String> {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Forge Test",
            "-c",
            "user.email=test@forge.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates the bare repository `root/name` whose branch `branch` (also its HEAD) has one
/// commit holding `files` (path, content). Push over HTTP is enabled. Returns its path.
pub fn create_repo(
    root: &Path,
    name: &str,
    branch: &str,
    files: &[(&str, &str)],
) -> std::io::Result<PathBuf> {
    let bare = root.join(name);
    std::fs::create_dir_all(&bare)?;
    git(&bare, &["init", "--bare", "-q", "-b", branch])?;
    git(&bare, &["config", "http.receivepack", "true"])?;
    add_commit(&bare, branch, files, "initial commit")?;
    Ok(bare)
}

/// Adds one commit writing `files` on `branch` of the bare repository `bare` (the branch is
/// created from the current HEAD when missing). Returns the new commit's hash.
pub fn add_commit(
    bare: &Path,
    branch: &str,
    files: &[(&str, &str)],
    message: &str,
) -> std::io::Result<String> {
    let work = std::env::temp_dir().join(format!(
        "forge-testkit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&work)?;
    let result = (|| {
        let bare_s = bare.to_string_lossy().to_string();
        git(&work, &["init", "-q"])?;
        git(&work, &["remote", "add", "origin", &bare_s])?;
        git(&work, &["fetch", "-q", "origin"])?;
        let has_branch =
            git(&work, &["ls-remote", "--heads", "origin", branch]).is_ok_and(|s| !s.is_empty());
        let has_head = !git(&work, &["ls-remote", "origin"])?.is_empty();
        if has_branch {
            git(
                &work,
                &["checkout", "-q", "-b", branch, &format!("origin/{branch}")],
            )?;
        } else if has_head {
            git(&work, &["checkout", "-q", "-b", branch, "FETCH_HEAD"])?;
        } else {
            git(&work, &["checkout", "-q", "-b", branch])?;
        }
        for (path, content) in files {
            let p = work.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, content)?;
        }
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "--allow-empty", "-m", message])?;
        git(
            &work,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        )?;
        git(&work, &["rev-parse", "HEAD"])
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

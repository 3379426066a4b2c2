//! Git routes (daytona-wire.md §6) through this machine's `git`.
//!
//! Git runs inside the sandbox, as its user, on its network. Credentials never touch disk
//! nor an environment or command line: they reach git as an in-memory file on its fd 3, read
//! by a credential helper given with `-c` (which git does not store), after any `user:pass@`
//! in the URL has been moved out of it. The stored remote URL therefore never holds a token,
//! and every error text has the secrets scrubbed. Each git runs with the sandbox's `HOME`, no
//! terminal prompt, killed with its tree when the request goes away, bounded in time.
//!
//! `POST /git/credentials` (the SDK's `dangerouslyAuthenticate`) keeps credentials for a
//! host in the sandbox's private state folder (`<sandbox>/state/git-credentials`, mode 0600,
//! never in the sandbox, where the daemon writes its `~/.git-credentials`); a later git
//! operation without credentials of its own gets them the same way, on fd 3, through
//! `git credential-store` reading that in-memory copy, which answers only for the matching
//! protocol and host.

use super::{Sbx, Spawn};
use crate::confine::Resolved;
use crate::container::process::{KillOnDrop, Output, Spec};
use crate::error::Failure;
use crate::util::{query_get, query_pairs, JsonBody};
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::{
    FileStatus, GitAddRemoteRequest, GitAddRequest, GitBranchRequest, GitCheckoutRequest,
    GitCloneRequest, GitCommitRequest, GitCommitResponse, GitRemote, GitStatus, GitSyncRequest,
    ListBranchResponse, ListRemotesResponse, StringMap,
};
use std::time::Duration;

/// Longest a single git command may run.
const GIT_TIMEOUT: Duration = Duration::from_mins(10);

/// The credential helper: prints the credentials git was given on its fd 3.
const HELPER: &str = "!f() { test \"$1\" = get || return 0; cat /dev/fd/3; }; f";

/// The credential helper for stored credentials: `git credential-store` reading the
/// in-memory copy on fd 3 (`https://user:pass@host` lines), which answers only for a matching
/// protocol and host, and never writes back.
const STORE_HELPER: &str =
    "!f() { test \"$1\" = get || return 0; git credential-store --file=/dev/fd/3 get; }; f";

/// The file, in the sandbox's state folder, with the credentials of `POST /git/credentials`.
const STORED_CREDENTIALS: &str = "git-credentials";

pub fn routes() -> Router<crate::Shared> {
    Router::new()
        .route("/git/clone", post(clone))
        .route("/git/status", get(status))
        .route(
            "/git/branches",
            get(branches).post(create_branch).delete(delete_branch),
        )
        .route("/git/checkout", post(checkout))
        .route("/git/add", post(add))
        .route("/git/commit", post(commit))
        .route("/git/push", post(push))
        .route("/git/pull", post(pull))
        .route("/git/remotes", get(remotes).post(add_remote))
        .route("/git/history", get(history))
        .route("/git/init", post(init))
        .route("/git/reset", post(reset))
        .route("/git/restore", post(restore))
        .route("/git/config", get(get_config).post(set_config))
        .route("/git/config/user", post(configure_user))
        .route("/git/credentials", post(authenticate))
}

/// Percent-encodes everything but unreserved characters (for user info in a URL).
fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stored credentials of a sandbox: `(protocol://host, line)` pairs (see
/// [`STORED_CREDENTIALS`]).
fn stored_lines(state_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(state_dir.join(STORED_CREDENTIALS))
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The passwords in stored credential lines (to scrub them from any error text).
fn stored_passwords(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| split_userinfo(l).2)
        .filter(|p| !p.is_empty())
        .collect()
}

/// `POST /git/credentials`: keeps the credentials for later git operations of this sandbox
/// against `protocol://host` (default `https://github.com`), replacing any for that host.
async fn authenticate(
    sbx: Sbx,
    JsonBody(req): JsonBody<forge_wire::GitAuthenticateRequest>,
) -> Result<Response, Failure> {
    if req.username.is_empty() || req.password.is_empty() {
        return Err(Failure::bad_request("username and password are required"));
    }
    let host = req
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "github.com".into());
    let protocol = req
        .protocol
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "https".into());
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !host_ok {
        return Err(Failure::bad_request(format!("invalid host {host:?}")));
    }
    if !protocol
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '+' || c == '-')
    {
        return Err(Failure::bad_request(format!(
            "invalid protocol {protocol:?}"
        )));
    }
    let prefix = format!("{protocol}://");
    let line = format!(
        "{prefix}{}:{}@{host}",
        pct_encode(&req.username),
        pct_encode(&req.password)
    );
    let state_dir = sbx.state.store.state_dir(&sbx.id);
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = LOCK.lock().await;
    let saved = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut lines: Vec<String> = stored_lines(&state_dir)
            .into_iter()
            .filter(|l| {
                let (clean, _, _) = split_userinfo(l);
                clean != format!("{prefix}{host}")
            })
            .collect();
        lines.push(line);
        std::fs::create_dir_all(&state_dir)?;
        let tmp = state_dir.join(format!("{STORED_CREDENTIALS}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all((lines.join("\n") + "\n").as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, state_dir.join(STORED_CREDENTIALS))
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))?;
    saved.map_err(|e| Failure::internal(format!("cannot store the credentials: {}", e.kind())))?;
    Ok(empty_ok())
}

#[derive(Clone, Default)]
struct Creds {
    username: String,
    password: String,
}

impl Creds {
    fn from_fields(username: Option<String>, password: Option<String>) -> Option<Creds> {
        if username.is_none() && password.is_none() {
            return None;
        }
        Some(Creds {
            username: username
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "x-access-token".into()),
            password: password.unwrap_or_default(),
        })
    }
}

/// Splits `scheme://user:pass@host/…` into the URL without user info and the credentials.
fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None, None);
    };
    let after = &url[scheme_end + 3..];
    let authority_end = after.find('/').unwrap_or(after.len());
    let authority = &after[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None, None);
    };
    let userinfo = &authority[..at];
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (pct_decode(u), Some(pct_decode(p))),
        None => (pct_decode(userinfo), None),
    };
    let clean = format!("{}{}", &url[..scheme_end + 3], &after[at + 1..]);
    (clean, Some(user).filter(|u| !u.is_empty()), pass)
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes every secret from git's output before it goes into an answer.
fn scrub(text: &str, creds: Option<&Creds>) -> String {
    let mut out = text.to_string();
    if let Some(c) = creds {
        if !c.password.is_empty() {
            out = out.replace(&c.password, "***");
        }
    }
    // user info left in any URL git printed
    let mut clean = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            clean.push(' ');
        }
        if word.contains("://") && word.contains('@') {
            clean.push_str(&split_userinfo(word).0);
        } else {
            clean.push_str(word);
        }
    }
    clean
}

/// A failed git run, mapped to the daemon's git error codes.
fn classify(op: &str, stderr: &str, creds: Option<&Creds>) -> Failure {
    let text = scrub(stderr.trim(), creds);
    let lower = text.to_lowercase();
    let (status, code) = if lower.contains("authentication failed")
        || lower.contains("could not read username")
        || lower.contains("could not read password")
        || lower.contains("invalid username or password")
        || lower.contains("access denied")
        || lower.contains("the requested url returned error: 401")
        || lower.contains("the requested url returned error: 403")
    {
        (StatusCode::UNAUTHORIZED, "GIT_AUTH_FAILED")
    } else if lower.contains("repository not found")
        || (lower.contains("repository '") && lower.contains("' not found"))
        || lower.contains("does not appear to be a git repository")
        || lower.contains("the requested url returned error: 404")
        || lower.contains("not a git repository")
    {
        (StatusCode::NOT_FOUND, "GIT_REPO_NOT_FOUND")
    } else if lower.contains("remote branch") && lower.contains("not found")
        || lower.contains("did not match any file(s) known to git")
        || lower.contains("invalid reference")
        || lower.contains("couldn't find remote ref")
        || (lower.contains("branch") && lower.contains("not found"))
    {
        (StatusCode::NOT_FOUND, "GIT_BRANCH_NOT_FOUND")
    } else if lower.contains("already exists") && op.contains("branch") {
        (StatusCode::CONFLICT, "GIT_BRANCH_EXISTS")
    } else if lower.contains("[rejected]") || lower.contains("non-fast-forward") {
        (StatusCode::CONFLICT, "GIT_PUSH_REJECTED")
    } else if lower.contains("[remote rejected]") || lower.contains("pre-receive hook declined") {
        (StatusCode::UNPROCESSABLE_ENTITY, "GIT_REMOTE_REJECTED")
    } else if lower.contains("would be overwritten") || lower.contains("please commit your changes")
    {
        (StatusCode::CONFLICT, "GIT_DIRTY_WORKTREE")
    } else if lower.contains("conflict") {
        (StatusCode::CONFLICT, "GIT_MERGE_CONFLICT")
    } else if lower.contains("could not resolve host")
        || lower.contains("failed to connect")
        || lower.contains("connection refused")
        || lower.contains("unable to access")
        || lower.contains("timed out")
    {
        (StatusCode::BAD_GATEWAY, "GIT_TRANSPORT_FAILED")
    } else {
        (StatusCode::BAD_REQUEST, "BAD_REQUEST")
    };
    let detail = if text.is_empty() {
        "git failed".to_string()
    } else {
        text
    };
    Failure::new(status, format!("{op} failed: {detail}")).with_code(code)
}

/// An in-memory file holding `username=…` / `password=…` for the credential helper.
fn credentials_file(c: &Creds) -> std::io::Result<std::os::fd::OwnedFd> {
    memory_file(format!("username={}\npassword={}\n", c.username, c.password).as_bytes())
}

/// An in-memory file (never on disk) holding `content`, its offset at the start.
pub(crate) fn memory_file(content: &[u8]) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create(2) with a NUL-terminated name; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(c"forge-git-credentials".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::Write::write_all(&mut &file, content)?;
    // Read from the start by whoever gets this descriptor itself (not only by path).
    std::io::Seek::seek(&mut &file, std::io::SeekFrom::Start(0))?;
    Ok(file.into())
}

/// Runs `git args` in `cwd` for the sandbox; stdout on success, a classified failure else.
async fn git(
    sbx: &Sbx,
    cwd: &Resolved,
    op: &str,
    args: &[&str],
    creds: Option<&Creds>,
    extra_env: &[(&str, &str)],
) -> Result<String, Failure> {
    use tokio::io::AsyncReadExt;
    let mut env = StringMap::new();
    env.insert("GIT_TERMINAL_PROMPT".into(), "0".into());
    env.insert("GIT_ASKPASS".into(), String::new());
    env.insert("SSH_ASKPASS".into(), String::new());
    env.insert("GIT_CONFIG_NOSYSTEM".into(), "1".into());
    env.insert("LC_ALL".into(), "C".into());
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    // Credentials of the request, else those stored for the sandbox (for a matching host).
    let stored = if creds.is_none() {
        let dir = sbx.state.store.state_dir(&sbx.id);
        tokio::task::spawn_blocking(move || stored_lines(&dir))
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let pass_err =
        |e: std::io::Error| Failure::internal(format!("cannot pass the credentials: {e}"));
    let (fd3, helper) = match creds {
        Some(c) => (Some(credentials_file(c).map_err(pass_err)?), HELPER),
        None if !stored.is_empty() => (
            Some(memory_file((stored.join("\n") + "\n").as_bytes()).map_err(pass_err)?),
            STORE_HELPER,
        ),
        None => (None, ""),
    };
    let mut argv: Vec<String> = ["git", "-c", "credential.helper=", "-c"]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    argv.push(format!("credential.helper={helper}"));
    argv.extend(["-c".to_string(), "core.askPass=".to_string()]);
    argv.extend(args.iter().map(std::string::ToString::to_string));
    let dir = sbx.cmd_path(cwd);
    let spec = Spec {
        argv,
        env: sbx.env(&dir, &env),
        cwd: dir,
        stdin: false,
        output: Output::Separate,
        fd3,
    };
    let mut child = match sbx.spawn(spec).await {
        Ok(c) => c,
        Err(Spawn::Sandbox(f)) => return Err(f),
        Err(Spawn::Command(e)) => {
            return Err(Failure::internal(format!("cannot run git: {e}")));
        }
    };
    // Dropped with the request when the client goes away (an aborted clone): git is killed.
    let guard = KillOnDrop(Some(child.killer()));
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let collect = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let read_o = async {
            if let Some(r) = out.as_mut() {
                let _ = r.read_to_end(&mut o).await;
            }
        };
        let read_e = async {
            if let Some(r) = err.as_mut() {
                let _ = r.read_to_end(&mut e).await;
            }
        };
        tokio::join!(read_o, read_e);
        let code = child.wait().await;
        (code, o, e)
    };
    let Ok((code, stdout, stderr)) = tokio::time::timeout(GIT_TIMEOUT, collect).await else {
        return Err(
            Failure::new(StatusCode::REQUEST_TIMEOUT, format!("{op} timed out"))
                .with_code("PROCESS_EXECUTION_TIMEOUT"),
        );
    };
    guard.disarm();
    if code == 0 {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        let mut text = String::from_utf8_lossy(&stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&stdout).into_owned();
        }
        // Show sandbox paths, not where the sandbox lives on this machine.
        let root = sbx.root.host().to_string_lossy().into_owned();
        let mut text = text.replace(&root, "");
        for secret in stored_passwords(&stored) {
            text = text.replace(&secret, "***");
        }
        Err(classify(op, &text, creds))
    }
}

/// The repository folder named by a request (must exist).
fn repo(sbx: &Sbx, path: &str) -> Result<Resolved, Failure> {
    let p = sbx.root.resolve(path)?;
    if !p.is_dir() {
        return Err(
            Failure::not_found(format!("repository {} not found", p.shown))
                .with_code("GIT_REPO_NOT_FOUND"),
        );
    }
    Ok(p)
}

/// Refuses values git would read as options.
fn not_option<'a>(what: &str, v: &'a str) -> Result<&'a str, Failure> {
    if v.is_empty() || v.starts_with('-') {
        return Err(Failure::bad_request(format!("invalid {what}: {v:?}")));
    }
    Ok(v)
}

fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

async fn clone(sbx: Sbx, JsonBody(req): JsonBody<GitCloneRequest>) -> Result<Response, Failure> {
    let (url, url_user, url_pass) = split_userinfo(&req.url);
    let creds = Creds::from_fields(
        req.username.clone().or(url_user),
        req.password.clone().or(url_pass),
    );
    not_option("url", &url)?;
    let dest = sbx.root.resolve(&req.path)?;
    dest.writable()?;
    if dest.shown == "/" {
        return Err(Failure::bad_request("cannot clone into the sandbox root"));
    }
    let parent = sbx.mkdirs(&format!("{}/..", dest.shown)).await?;
    let dest_s = sbx.cmd_path(&dest);
    let depth_s = req.depth.filter(|d| *d > 0).map(|d| d.to_string());
    let mut args: Vec<&str> = vec!["clone"];
    if req.insecure_skip_tls == Some(true) {
        args.splice(0..0, ["-c", "http.sslVerify=false"]);
    }
    if let Some(b) = req.branch.as_deref().filter(|b| !b.is_empty()) {
        args.extend(["--branch", not_option("branch", b)?]);
    }
    if let Some(d) = depth_s.as_deref() {
        args.extend(["--depth", d]);
    }
    if req.commit_id.as_deref().is_some_and(|c| !c.is_empty()) {
        args.push("--no-checkout");
    }
    args.extend(["--", &url, &dest_s]);
    git(&sbx, &parent, "git clone", &args, creds.as_ref(), &[]).await?;
    if let Some(commit) = req.commit_id.as_deref().filter(|c| !c.is_empty()) {
        let commit = not_option("commit id", commit)?;
        git(
            &sbx,
            &dest,
            "git checkout",
            &["checkout", "-q", commit],
            None,
            &[],
        )
        .await?;
    }
    Ok(empty_ok())
}

/// `git status --porcelain=v2 -z` letters → the daemon's status words.
fn status_word(c: char) -> &'static str {
    match c {
        'M' | 'T' => "Modified",
        'A' => "Added",
        'D' => "Deleted",
        'R' => "Renamed",
        'C' => "Copied",
        'U' => "Updated but unmerged",
        '?' => "Untracked",
        _ => "Unmodified",
    }
}

fn parse_status(raw: &str) -> GitStatus {
    let mut st = GitStatus::default();
    let mut fields = raw.split('\0').peekable();
    while let Some(entry) = fields.next() {
        if let Some(h) = entry.strip_prefix("# branch.head ") {
            st.detached = Some(h == "(detached)");
            st.current_branch = h.to_string();
        } else if let Some(u) = entry.strip_prefix("# branch.upstream ") {
            st.upstream = Some(u.to_string());
            st.branch_published = Some(true);
        } else if let Some(ab) = entry.strip_prefix("# branch.ab ") {
            let mut it = ab.split_whitespace();
            st.ahead = it
                .next()
                .and_then(|a| a.trim_start_matches('+').parse().ok());
            st.behind = it
                .next()
                .and_then(|b| b.trim_start_matches('-').parse().ok());
        } else if let Some(rest) = entry.strip_prefix("? ") {
            st.file_status.push(FileStatus {
                name: rest.to_string(),
                staging: "Untracked".into(),
                worktree: "Untracked".into(),
                extra: String::new(),
            });
        } else if entry.starts_with("1 ") || entry.starts_with("2 ") || entry.starts_with("u ") {
            let n = match entry.as_bytes()[0] {
                b'1' => 8,
                b'2' => 9,
                _ => 10,
            };
            let parts: Vec<&str> = entry.splitn(n + 1, ' ').collect();
            let xy: Vec<char> = parts.get(1).unwrap_or(&"..").chars().collect();
            let name = parts.get(n).unwrap_or(&"").to_string();
            let extra = if entry.starts_with("2 ") {
                fields.next().unwrap_or("").to_string()
            } else {
                String::new()
            };
            let (x, y) = if entry.starts_with("u ") {
                ('U', 'U')
            } else {
                (
                    xy.first().copied().unwrap_or('.'),
                    xy.get(1).copied().unwrap_or('.'),
                )
            };
            st.file_status.push(FileStatus {
                name,
                staging: status_word(x).into(),
                worktree: status_word(y).into(),
                extra,
            });
        }
    }
    if st.branch_published.is_none() {
        st.branch_published = Some(false);
    }
    st
}

async fn status(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<GitStatus>, Failure> {
    let q = query_pairs(query.as_deref());
    let r = repo(&sbx, query_get(&q, "path").unwrap_or("."))?;
    let raw = git(
        &sbx,
        &r,
        "git status",
        &[
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
        ],
        None,
        &[],
    )
    .await?;
    Ok(Json(parse_status(&raw)))
}

async fn branches(
    sbx: Sbx,
    RawQuery(query): RawQuery,
) -> Result<Json<ListBranchResponse>, Failure> {
    let q = query_pairs(query.as_deref());
    let r = repo(&sbx, query_get(&q, "path").unwrap_or("."))?;
    let raw = git(
        &sbx,
        &r,
        "git branch",
        &["branch", "--format=%(refname:short)"],
        None,
        &[],
    )
    .await?;
    let current = git(
        &sbx,
        &r,
        "git branch",
        &["branch", "--show-current"],
        None,
        &[],
    )
    .await
    .ok()
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty());
    Ok(Json(ListBranchResponse {
        branches: raw
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect(),
        current,
    }))
}

/// `POST /git/branches`: creates the branch and checks it out, as the daemon does.
async fn create_branch(
    sbx: Sbx,
    JsonBody(req): JsonBody<GitBranchRequest>,
) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let name = not_option("branch name", &req.name)?;
    git(
        &sbx,
        &r,
        "git create branch",
        &["checkout", "-q", "-b", name],
        None,
        &[],
    )
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn delete_branch(
    sbx: Sbx,
    JsonBody(req): JsonBody<GitBranchRequest>,
) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let name = not_option("branch name", &req.name)?;
    git(
        &sbx,
        &r,
        "git delete branch",
        &["branch", "-D", name],
        None,
        &[],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn checkout(
    sbx: Sbx,
    JsonBody(req): JsonBody<GitCheckoutRequest>,
) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let branch = not_option("branch", &req.branch)?;
    git(
        &sbx,
        &r,
        "git checkout",
        &["checkout", "-q", branch, "--"],
        None,
        &[],
    )
    .await?;
    Ok(empty_ok())
}

async fn add(sbx: Sbx, JsonBody(req): JsonBody<GitAddRequest>) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let mut args = vec!["add", "--"];
    let files: Vec<&str> = if req.files.is_empty() {
        vec!["."]
    } else {
        req.files.iter().map(String::as_str).collect()
    };
    args.extend(files);
    git(&sbx, &r, "git add", &args, None, &[]).await?;
    Ok(empty_ok())
}

/// Author and committer for git through the environment (nothing written to config).
fn identity<'a>(name: &'a str, email: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("GIT_AUTHOR_NAME", name),
        ("GIT_AUTHOR_EMAIL", email),
        ("GIT_COMMITTER_NAME", name),
        ("GIT_COMMITTER_EMAIL", email),
    ]
}

async fn commit(
    sbx: Sbx,
    JsonBody(req): JsonBody<GitCommitRequest>,
) -> Result<Json<GitCommitResponse>, Failure> {
    let r = repo(&sbx, &req.path)?;
    let author = if req.author.is_empty() {
        "daytona"
    } else {
        &req.author
    };
    let email = if req.email.is_empty() {
        "daytona@localhost"
    } else {
        &req.email
    };
    let ident = identity(author, email);
    let mut args = vec![
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-q",
        "-m",
        &req.message,
    ];
    if req.allow_empty == Some(true) {
        args.push("--allow-empty");
    }
    git(&sbx, &r, "git commit", &args, None, &ident).await?;
    let hash = git(&sbx, &r, "git rev-parse", &["rev-parse", "HEAD"], None, &[]).await?;
    Ok(Json(GitCommitResponse {
        hash: hash.trim().to_string(),
    }))
}

async fn push(sbx: Sbx, JsonBody(req): JsonBody<GitSyncRequest>) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let creds = Creds::from_fields(req.username.clone(), req.password.clone());
    let mut args = vec!["push"];
    if req.set_upstream == Some(true) {
        args.push("--set-upstream");
    }
    let remote = req.remote.clone().unwrap_or_else(|| "origin".into());
    args.push(not_option("remote", &remote)?);
    let branch;
    if let Some(b) = req.branch.as_deref().filter(|b| !b.is_empty()) {
        branch = not_option("branch", b)?.to_string();
        args.push(&branch);
    } else {
        args.push("HEAD");
    }
    git(&sbx, &r, "git push", &args, creds.as_ref(), &[]).await?;
    Ok(empty_ok())
}

async fn pull(sbx: Sbx, JsonBody(req): JsonBody<GitSyncRequest>) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let creds = Creds::from_fields(req.username.clone(), req.password.clone());
    // A merge commit needs an identity; the sandbox has none configured by default.
    let ident = identity("daytona", "daytona@localhost");
    let mut args = vec!["-c", "pull.rebase=false", "pull", "--no-edit"];
    let remote = req.remote.clone();
    let branch = req.branch.clone().filter(|b| !b.is_empty());
    if remote.is_some() || branch.is_some() {
        args.push(not_option("remote", remote.as_deref().unwrap_or("origin"))?);
    }
    if let Some(b) = branch.as_deref() {
        args.push(not_option("branch", b)?);
    }
    git(&sbx, &r, "git pull", &args, creds.as_ref(), &ident).await?;
    Ok(empty_ok())
}

async fn remotes(
    sbx: Sbx,
    RawQuery(query): RawQuery,
) -> Result<Json<ListRemotesResponse>, Failure> {
    let q = query_pairs(query.as_deref());
    let r = repo(&sbx, query_get(&q, "path").unwrap_or("."))?;
    let raw = git(&sbx, &r, "git remote", &["remote", "-v"], None, &[]).await?;
    let mut out: Vec<GitRemote> = Vec::new();
    for line in raw.lines() {
        let mut it = line.split_whitespace();
        let (Some(name), Some(url)) = (it.next(), it.next()) else {
            continue;
        };
        if !out.iter().any(|r| r.name == name) {
            out.push(GitRemote {
                name: name.to_string(),
                url: split_userinfo(url).0,
            });
        }
    }
    Ok(Json(ListRemotesResponse { remotes: out }))
}

async fn add_remote(
    sbx: Sbx,
    JsonBody(req): JsonBody<GitAddRemoteRequest>,
) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let name = not_option("remote name", &req.name)?;
    let (url, _, _) = split_userinfo(&req.url);
    not_option("url", &url)?;
    let exists = git(&sbx, &r, "git remote", &["remote"], None, &[])
        .await?
        .lines()
        .any(|l| l == name);
    if exists && req.overwrite != Some(true) {
        return Err(Failure::conflict(format!("remote {name} already exists")));
    }
    let verb = if exists { "set-url" } else { "add" };
    git(
        &sbx,
        &r,
        "git remote",
        &["remote", verb, "--", name, &url],
        None,
        &[],
    )
    .await?;
    if req.fetch == Some(true) {
        git(&sbx, &r, "git fetch", &["fetch", "--", name], None, &[]).await?;
    }
    Ok(StatusCode::CREATED.into_response())
}

async fn history(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let r = repo(&sbx, query_get(&q, "path").unwrap_or("."))?;
    let raw = git(
        &sbx,
        &r,
        "git log",
        &["log", "-z", "--format=%H%x1f%an%x1f%ae%x1f%s%x1f%aI"],
        None,
        &[],
    )
    .await?;
    let items: Vec<serde_json::Value> = raw
        .split('\0')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let f: Vec<&str> = e.trim_start_matches('\n').split('\u{1f}').collect();
            serde_json::json!({
                "hash": f.first().unwrap_or(&""),
                "author": f.get(1).unwrap_or(&""),
                "email": f.get(2).unwrap_or(&""),
                "message": f.get(3).unwrap_or(&""),
                "timestamp": f.get(4).unwrap_or(&""),
            })
        })
        .collect();
    Ok(Json(items).into_response())
}

#[derive(serde::Deserialize)]
struct InitRequest {
    path: String,
    #[serde(default)]
    bare: Option<bool>,
    #[serde(default)]
    initial_branch: Option<String>,
}

async fn init(sbx: Sbx, JsonBody(req): JsonBody<InitRequest>) -> Result<Response, Failure> {
    let dir = sbx.mkdirs(&req.path).await?;
    let mut args = vec!["init", "-q"];
    if req.bare == Some(true) {
        args.push("--bare");
    }
    if let Some(b) = req.initial_branch.as_deref().filter(|b| !b.is_empty()) {
        args.extend(["-b", not_option("branch", b)?]);
    }
    git(&sbx, &dir, "git init", &args, None, &[]).await?;
    Ok(StatusCode::CREATED.into_response())
}

#[derive(serde::Deserialize)]
struct ResetRequest {
    path: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    files: Option<Vec<String>>,
}

async fn reset(sbx: Sbx, JsonBody(req): JsonBody<ResetRequest>) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    let files = req.files.unwrap_or_default();
    let mode = match req.mode.as_deref().unwrap_or("") {
        "" => None,
        m @ ("soft" | "mixed" | "hard" | "merge" | "keep") => Some(format!("--{m}")),
        other => return Err(Failure::bad_request(format!("invalid reset mode {other}"))),
    };
    let mut args = vec!["reset", "-q"];
    if files.is_empty() {
        if let Some(m) = mode.as_deref() {
            args.push(m);
        }
    }
    if let Some(t) = req.target.as_deref().filter(|t| !t.is_empty()) {
        args.push(not_option("target", t)?);
    }
    if !files.is_empty() {
        args.push("--");
        args.extend(files.iter().map(String::as_str));
    }
    git(&sbx, &r, "git reset", &args, None, &[]).await?;
    Ok(empty_ok())
}

#[derive(serde::Deserialize)]
struct RestoreRequest {
    path: String,
    files: Vec<String>,
    #[serde(default)]
    staged: Option<bool>,
    #[serde(default)]
    worktree: Option<bool>,
    #[serde(default)]
    source: Option<String>,
}

async fn restore(sbx: Sbx, JsonBody(req): JsonBody<RestoreRequest>) -> Result<Response, Failure> {
    let r = repo(&sbx, &req.path)?;
    if req.files.is_empty() {
        return Err(Failure::bad_request("files must not be empty"));
    }
    let source = req
        .source
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| not_option("source", s).map(|s| format!("--source={s}")))
        .transpose()?;
    let mut args = vec!["restore"];
    if req.staged == Some(true) {
        args.push("--staged");
    }
    if req.worktree == Some(true) {
        args.push("--worktree");
    }
    if let Some(s) = source.as_deref() {
        args.push(s);
    }
    args.push("--");
    args.extend(req.files.iter().map(String::as_str));
    git(&sbx, &r, "git restore", &args, None, &[]).await?;
    Ok(empty_ok())
}

/// `--global` (the sandbox's `~/.gitconfig`) or `--local` (a repository). The system scope
/// would write this machine's `/etc/gitconfig`, so it is refused.
fn scope_args(
    sbx: &Sbx,
    scope: Option<&str>,
    path: Option<&str>,
) -> Result<(Resolved, &'static str), Failure> {
    match scope.unwrap_or("global") {
        "" | "global" => Ok((sbx.root.resolve(crate::store::WORK_DIR)?, "--global")),
        "local" => {
            let p =
                path.ok_or_else(|| Failure::bad_request("path is required for the local scope"))?;
            Ok((repo(sbx, p)?, "--local"))
        }
        "system" => Err(Failure::bad_request(
            "the system scope is not available on the local backend",
        )),
        other => Err(Failure::bad_request(format!("invalid scope {other}"))),
    }
}

#[derive(serde::Deserialize)]
struct SetConfigRequest {
    key: String,
    value: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

async fn set_config(
    sbx: Sbx,
    JsonBody(req): JsonBody<SetConfigRequest>,
) -> Result<Response, Failure> {
    let (dir, scope) = scope_args(&sbx, req.scope.as_deref(), req.path.as_deref())?;
    let key = not_option("key", &req.key)?;
    git(
        &sbx,
        &dir,
        "git config",
        &["config", scope, "--", key, &req.value],
        None,
        &[],
    )
    .await?;
    Ok(empty_ok())
}

async fn get_config(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let (dir, scope) = scope_args(&sbx, query_get(&q, "scope"), query_get(&q, "path"))?;
    let key = not_option("key", query_get(&q, "key").unwrap_or(""))?;
    // Exit code 1 means "not set": answer null rather than an error.
    let value = git(
        &sbx,
        &dir,
        "git config",
        &["config", scope, "--get", "--", key],
        None,
        &[],
    )
    .await
    .ok()
    .map(|v| v.trim_end_matches('\n').to_string());
    Ok(Json(serde_json::json!({ "value": value })).into_response())
}

#[derive(serde::Deserialize)]
struct ConfigureUserRequest {
    name: String,
    email: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

async fn configure_user(
    sbx: Sbx,
    JsonBody(req): JsonBody<ConfigureUserRequest>,
) -> Result<Response, Failure> {
    let (dir, scope) = scope_args(&sbx, req.scope.as_deref(), req.path.as_deref())?;
    git(
        &sbx,
        &dir,
        "git config",
        &["config", scope, "user.name", &req.name],
        None,
        &[],
    )
    .await?;
    git(
        &sbx,
        &dir,
        "git config",
        &["config", scope, "user.email", &req.email],
        None,
        &[],
    )
    .await?;
    Ok(empty_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_moved_out_of_the_url() {
        let (u, user, pass) = split_userinfo("https://x-access-token:ghp_abc@github.com/o/r.git");
        assert_eq!(u, "https://github.com/o/r.git");
        assert_eq!(user.as_deref(), Some("x-access-token"));
        assert_eq!(pass.as_deref(), Some("ghp_abc"));
        let (u, user, pass) = split_userinfo("https://github.com/o/r.git");
        assert_eq!(
            (u.as_str(), user, pass),
            ("https://github.com/o/r.git", None, None)
        );
    }

    #[test]
    fn secrets_are_scrubbed_from_errors() {
        let creds = Creds {
            username: "bob".into(),
            password: "hunter2".into(),
        };
        let s = scrub(
            "fatal: unable to access 'https://bob:hunter2@h/r/': hunter2",
            Some(&creds),
        );
        assert!(!s.contains("hunter2"));
        let f = classify(
            "git clone",
            "fatal: Authentication failed for 'http://h/r'",
            None,
        );
        assert_eq!(f.code, Some("GIT_AUTH_FAILED"));
    }

    #[test]
    fn status_is_parsed() {
        let raw = "# branch.oid abc\0# branch.head main\0# branch.upstream origin/main\0# branch.ab +1 -2\x001 .M N... 100644 100644 100644 a b file.txt\0? new.txt\0";
        let st = parse_status(raw);
        assert_eq!(st.current_branch, "main");
        assert_eq!((st.ahead, st.behind), (Some(1), Some(2)));
        assert_eq!(st.file_status.len(), 2);
        assert_eq!(st.file_status[0].name, "file.txt");
        assert_eq!(st.file_status[0].worktree, "Modified");
        assert_eq!(st.file_status[1].staging, "Untracked");
    }
}

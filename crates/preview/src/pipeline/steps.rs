//! The pipeline's steps, each usable on its own: JSON-serialisable input and output, so that an
//! Inngest function can run them as separate `step.run`s (production serialises step results
//! between runs) and a route handler can run the whole chain with
//! [`clone_and_preview`](super::clone_and_preview).
//!
//! Every step resolves its sandbox by id, so the only state that crosses a step boundary is in
//! the outputs. Inside the whole pipeline the toolbox is resolved once and reused.

use super::failure::{tail_lines, AtStep, Step, StepFailure};
use crate::verify::{verify_preview as run_verify, DevProcess, VerifyOptions, VerifyReport};
use crate::{detect_in_sandbox, PreviewError};
use forge_daytona::{
    CallOptions, Client, CloneParams, CreateParams, ExecOptions, Toolbox, WorkspaceClass,
};
use forge_detect::{DetectOptions, Detection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where the repository is cloned unless told otherwise (the guide's folder, relative to the
/// sandbox's work dir).
pub const DEFAULT_PATH: &str = "workspace/project";
/// Installs are killed after this long unless told otherwise (the guide's 900 s).
pub const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_mins(15);
/// How long verification waits for a dev server by default, and for frameworks that build
/// everything on the first request ([`SLOW_FIRST_BUILD`]).
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_mins(1);
pub const SLOW_VERIFY_TIMEOUT: Duration = Duration::from_mins(3);
/// Framework ids (or id prefixes) whose first page compiles the whole app on demand.
pub const SLOW_FIRST_BUILD: &[&str] = &["nextjs", "angular", "nuxt", "gatsby", "docusaurus"];
/// Lines of log kept in outputs and errors.
pub const LOG_TAIL_LINES: usize = 40;
/// The environment that keeps package managers quiet and fast in a sandbox (no funding or
/// audit round trips, no update check, no interactive prompts).
const QUIET_INSTALL_ENV: &[(&str, &str)] = &[
    ("npm_config_fund", "false"),
    ("npm_config_audit", "false"),
    ("npm_config_update_notifier", "false"),
    ("npm_config_progress", "false"),
    ("CI", "true"),
];

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn join(base: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches("./");
    if rel.is_empty() || rel == "." {
        base.trim_end_matches('/').to_owned()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), rel)
    }
}

/// `NODE_OPTIONS=--max-old-space-size=…`: three quarters of the sandbox's memory, as the guide
/// does by hand (16 GiB → 12288 MiB), so that big installs and builds do not die at Node's
/// default heap limit. Appended to a `NODE_OPTIONS` the caller already set.
pub fn node_options(memory_gib: f64, existing: Option<&str>) -> Option<String> {
    if !(memory_gib.is_finite() && memory_gib > 0.0) {
        return existing.map(str::to_owned);
    }
    let mib = (memory_gib * 1024.0 * 0.75) as u64;
    let flag = format!("--max-old-space-size={mib}");
    Some(match existing {
        Some(e) if e.contains("--max-old-space-size") => e.to_owned(),
        Some(e) if !e.trim().is_empty() => format!("{e} {flag}"),
        _ => flag,
    })
}

async fn memory_of(client: &Client, sandbox_id: &str, given: Option<f64>) -> Option<f64> {
    match given {
        Some(m) => Some(m),
        None => client.get(sandbox_id).await.ok().map(|s| s.memory),
    }
}

// ---------------------------------------------------------------------------------- create

/// The created sandbox, as the next steps need it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub sandbox_id: String,
    pub state: String,
    pub public: bool,
    /// GiB; sizes `NODE_OPTIONS` of the install and the dev server.
    pub memory_gib: f64,
    pub elapsed_ms: u64,
}

/// Creates a sandbox and waits until it is started.
pub async fn create_sandbox(
    client: &Client,
    params: &CreateParams,
    call: &CallOptions,
) -> Result<Created, PreviewError> {
    Ok(create_inner(client, params, call).await?.0)
}

pub(super) async fn create_inner(
    client: &Client,
    params: &CreateParams,
    call: &CallOptions,
) -> Result<(Created, forge_wire::Sandbox), PreviewError> {
    let t = Instant::now();
    let sb = client.create(params, call).await.at(Step::Create, "")?;
    let memory = match (sb.memory, params.workspace_class) {
        (m, _) if m > 0.0 => m,
        (_, Some(c)) => f64::from(c.resources().memory.unwrap_or_default()),
        _ => f64::from(WorkspaceClass::Small.resources().memory.unwrap_or_default()),
    };
    Ok((
        Created {
            sandbox_id: sb.id.clone(),
            state: sb.state.as_str().to_owned(),
            public: sb.public,
            memory_gib: memory,
            elapsed_ms: ms(t.elapsed()),
        },
        sb,
    ))
}

// ----------------------------------------------------------------------------------- clone

/// What to clone. The token goes in the request body (`username`/`password`), never in the URL
/// or the sandbox's git config.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloneInput {
    pub sandbox_id: String,
    pub repo_url: String,
    pub branch: Option<String>,
    pub commit_id: Option<String>,
    /// A GitHub token (or any HTTPS git password).
    pub token: Option<String>,
    /// Defaults to `x-access-token` when a token is given (GitHub's convention).
    pub username: Option<String>,
    /// Defaults to [`DEFAULT_PATH`].
    pub path: Option<String>,
    /// Shallow clone depth; 1 unless a commit is asked for.
    pub depth: Option<u32>,
}

impl std::fmt::Debug for CloneInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloneInput")
            .field("sandbox_id", &self.sandbox_id)
            .field("repo_url", &"<redacted>")
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("path", &self.path)
            .finish()
    }
}

/// The cloned repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cloned {
    pub sandbox_id: String,
    pub path: String,
    pub branch: Option<String>,
    pub elapsed_ms: u64,
}

/// Clones a repository into the sandbox.
pub async fn clone_repository(
    client: &Client,
    input: &CloneInput,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let tb = client
        .toolbox_for(&input.sandbox_id)
        .await
        .at(Step::Clone, &input.sandbox_id)?;
    clone_in(&tb, input, call).await
}

pub(super) async fn clone_in(
    tb: &Toolbox,
    input: &CloneInput,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let t = Instant::now();
    let path = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let params = CloneParams {
        url: input.repo_url.clone(),
        path: path.clone(),
        branch: input.branch.clone(),
        commit_id: input.commit_id.clone(),
        depth: match input.commit_id {
            Some(_) => input.depth,
            None => Some(input.depth.unwrap_or(1)),
        },
        username: input.token.as_ref().map(|_| {
            input
                .username
                .clone()
                .unwrap_or_else(|| "x-access-token".to_owned())
        }),
        password: input.token.clone(),
    };
    tb.git()
        .clone_repo(&params, call)
        .await
        .at(Step::Clone, &input.sandbox_id)?;
    Ok(Cloned {
        sandbox_id: input.sandbox_id.clone(),
        path,
        branch: input.branch.clone(),
        elapsed_ms: ms(t.elapsed()),
    })
}

/// Folders never uploaded from a local folder: dependencies (installed in the sandbox), VCS
/// data and framework caches. Build outputs are kept: a `build/` folder may be source.
pub const UPLOAD_SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    ".next",
    ".nuxt",
    ".turbo",
    ".cache",
    ".svelte-kit",
    ".angular",
    ".parcel-cache",
    ".output",
    ".astro",
    ".expo",
];
/// At most this many files are uploaded from a local folder.
pub const MAX_UPLOAD_FILES: usize = 50_000;

/// The files of a local folder to upload, repository-relative, without [`UPLOAD_SKIPPED_DIRS`]
/// and without following symlinks.
pub fn upload_list(
    folder: &std::path::Path,
) -> Result<Vec<(String, std::path::PathBuf)>, PreviewError> {
    let meta = std::fs::metadata(folder).map_err(|_| forge_detect::DetectError::NotFound {
        path: folder.display().to_string(),
    })?;
    if !meta.is_dir() {
        return Err(forge_detect::DetectError::NotFound {
            path: folder.display().to_string(),
        }
        .into());
    }
    let mut out = Vec::new();
    let mut stack = vec![(folder.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() && !UPLOAD_SKIPPED_DIRS.contains(&name.as_str()) {
                stack.push((e.path(), r));
            } else if ft.is_file() {
                if out.len() >= MAX_UPLOAD_FILES {
                    return Err(forge_daytona::Error::InvalidArgument(format!(
                        "{} has more than {MAX_UPLOAD_FILES} files to upload",
                        folder.display()
                    ))
                    .into());
                }
                out.push((r, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads a local folder (see [`upload_list`]) to `path` in the sandbox, in one streamed
/// bulk upload: the pipeline's clone step for a folder that is not a repository URL.
pub(super) async fn upload_in(
    tb: &Toolbox,
    sandbox_id: &str,
    folder: &std::path::Path,
    path: &str,
    call: &CallOptions,
) -> Result<Cloned, PreviewError> {
    let t = Instant::now();
    let files = upload_list(folder).at(Step::Clone, sandbox_id)?;
    let items = files
        .into_iter()
        .map(|(rel, local)| forge_daytona::UploadItem {
            source: forge_daytona::UploadSource::File(local),
            destination: format!("{}/{rel}", path.trim_end_matches('/')),
        })
        .collect();
    tb.fs()
        .upload(items, call)
        .await
        .at(Step::Clone, sandbox_id)?;
    Ok(Cloned {
        sandbox_id: sandbox_id.to_owned(),
        path: path.to_owned(),
        branch: None,
        elapsed_ms: ms(t.elapsed()),
    })
}

// ---------------------------------------------------------------------------------- detect

/// What to detect.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectInput {
    pub sandbox_id: String,
    /// The repository folder; defaults to [`DEFAULT_PATH`].
    pub path: Option<String>,
    /// The app folder inside it (monorepos), instead of the automatic pick.
    pub root: Option<String>,
    /// The port the dev server should use instead of the framework's default.
    pub port: Option<u16>,
    /// Host names the dev server must accept; defaults to the sandbox's preview domain.
    pub allowed_hosts: Option<Vec<String>>,
}

/// Detects the framework of the cloned repository in two round trips (a listing and one bulk
/// download), plus one for the preview domain when `allowed_hosts` is not given (the whole
/// pipeline fetches it while cloning).
pub async fn detect_framework(
    client: &Client,
    input: &DetectInput,
    call: &CallOptions,
) -> Result<Detection, PreviewError> {
    let tb = client
        .toolbox_for(&input.sandbox_id)
        .await
        .at(Step::Detect, &input.sandbox_id)?;
    detect_in(client, &tb, input, call).await
}

/// The preview host suffix of a sandbox (`.proxy.daytona.works` for
/// `https://3000-<id>.proxy.daytona.works`), so that the dev server accepts its preview host.
/// `None` for IP-address hosts (the embedded backend), which dev servers accept anyway.
pub(super) async fn preview_domain(client: &Client, sandbox_id: &str) -> Option<String> {
    let link = client.preview_url(sandbox_id, 3000).await.ok()?;
    let host = url_host(&link.url)?;
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return None;
    }
    let rest = host.split_once('.')?.1;
    Some(format!(".{rest}"))
}

fn url_host(url: &str) -> Option<String> {
    let after = url.split_once("://")?.1;
    let authority = after.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_owned())
}

pub(super) async fn detect_in(
    client: &Client,
    tb: &Toolbox,
    input: &DetectInput,
    call: &CallOptions,
) -> Result<Detection, PreviewError> {
    let path = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let hosts = match &input.allowed_hosts {
        Some(h) => h.clone(),
        None => preview_domain(client, &input.sandbox_id)
            .await
            .into_iter()
            .collect(),
    };
    let mut allowed = hosts;
    if !allowed.is_empty() {
        allowed.extend(
            forge_detect::DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(std::string::ToString::to_string),
        );
    }
    let opts = DetectOptions {
        root: input.root.clone(),
        port: input.port,
        allowed_hosts: allowed,
    };
    detect_in_sandbox(tb, &path, &opts, call)
        .await
        .at(Step::Detect, &input.sandbox_id)
}

// --------------------------------------------------------------------------------- install

/// What to install. `command` and `installRoot` come from detection; when `command` is absent
/// the step detects first.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallInput {
    pub sandbox_id: String,
    pub path: Option<String>,
    /// Repository-relative folder to run the install in (detection's `installRoot`).
    pub install_root: Option<String>,
    pub command: Option<String>,
    /// GiB of the sandbox; read from the sandbox when absent.
    pub memory_gib: Option<f64>,
    /// Defaults to [`DEFAULT_INSTALL_TIMEOUT`].
    pub timeout_ms: Option<u64>,
    pub env_vars: Option<BTreeMap<String, String>>,
}

/// The finished install.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    pub sandbox_id: String,
    /// `None` when there was nothing to install (no package.json).
    pub command: Option<String>,
    pub exit_code: i32,
    pub elapsed_ms: u64,
    pub log_tail: Vec<String>,
}

/// Installs dependencies with the detected command, killed after the timeout. A non-zero exit
/// fails with `PREVIEW_INSTALL_FAILED` and the tail of the install log.
pub async fn install_dependencies(
    client: &Client,
    input: &InstallInput,
    call: &CallOptions,
) -> Result<Installed, PreviewError> {
    let tb = client
        .toolbox_for(&input.sandbox_id)
        .await
        .at(Step::Install, &input.sandbox_id)?;
    let mut input = input.clone();
    if input.command.is_none() {
        let d = detect_in(
            client,
            &tb,
            &detect_input_of(&input.sandbox_id, input.path.as_ref()),
            call,
        )
        .await?;
        input.command = d.install_command;
        input.install_root = Some(d.install_root);
    }
    input.memory_gib = memory_of(client, &input.sandbox_id, input.memory_gib).await;
    install_in(&tb, &input, call).await
}

fn detect_input_of(sandbox_id: &str, path: Option<&String>) -> DetectInput {
    DetectInput {
        sandbox_id: sandbox_id.to_owned(),
        path: path.cloned(),
        ..Default::default()
    }
}

fn with_node_options(
    env: &BTreeMap<String, String>,
    memory_gib: Option<f64>,
) -> BTreeMap<String, String> {
    let mut env = env.clone();
    if let Some(v) = node_options(
        memory_gib.unwrap_or_default(),
        env.get("NODE_OPTIONS").map(String::as_str),
    ) {
        env.insert("NODE_OPTIONS".into(), v);
    }
    env
}

pub(super) async fn install_in(
    tb: &Toolbox,
    input: &InstallInput,
    call: &CallOptions,
) -> Result<Installed, PreviewError> {
    let t = Instant::now();
    let sid = &input.sandbox_id;
    let Some(command) = input.command.clone() else {
        return Ok(Installed {
            sandbox_id: sid.clone(),
            command: None,
            exit_code: 0,
            elapsed_ms: 0,
            log_tail: Vec::new(),
        });
    };
    let base = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let cwd = join(&base, input.install_root.as_deref().unwrap_or("."));
    let mut env = with_node_options(
        &input.env_vars.clone().unwrap_or_default(),
        input.memory_gib,
    );
    for (k, v) in QUIET_INSTALL_ENV {
        env.entry((*k).to_owned())
            .or_insert_with(|| (*v).to_owned());
    }
    let opts = ExecOptions {
        cwd: Some(cwd),
        env: env.into_iter().collect(),
        timeout: None,
    };
    let timeout = input
        .timeout_ms
        .map_or(DEFAULT_INSTALL_TIMEOUT, Duration::from_millis);
    let spawned = tb
        .process()
        .spawn(&command, &opts, call)
        .await
        .at(Step::Install, sid)?;
    let wait_opts = CallOptions {
        timeout: Some(match call.timeout {
            Some(c) => c.min(timeout),
            None => timeout,
        }),
        cancel: call.cancel.clone(),
    };
    let waited = spawned.wait(&wait_opts).await;
    let output = spawned.output().await.map(|o| o.output).unwrap_or_default();
    // Deleting the session kills the install if it still runs (timeout, abort).
    spawned.kill().await;
    let log_tail = tail_lines(&output, LOG_TAIL_LINES);
    let exit_code = match waited {
        Ok(code) => code,
        Err(e) => {
            let mut f = StepFailure::new(Step::Install, e.code(), e.to_string());
            f.sandbox_id = Some(sid.clone());
            f.log_tail = log_tail;
            f.source = Some(Box::new(e.into()));
            return Err(PreviewError::Step(Box::new(f)));
        }
    };
    if exit_code != 0 {
        let mut f = StepFailure::new(
            Step::Install,
            "PREVIEW_INSTALL_FAILED",
            format!("`{command}` exited with code {exit_code}"),
        );
        f.sandbox_id = Some(sid.clone());
        f.status = Some(i64::from(exit_code));
        f.log_tail = log_tail;
        return Err(PreviewError::Step(Box::new(f)));
    }
    Ok(Installed {
        sandbox_id: sid.clone(),
        command: Some(command),
        exit_code,
        elapsed_ms: ms(t.elapsed()),
        log_tail,
    })
}

// ----------------------------------------------------------------------------------- start

/// What to start. `command`, `root`, `port` and `env` come from detection; when `command` is
/// absent the step detects first.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartInput {
    pub sandbox_id: String,
    pub path: Option<String>,
    /// Repository-relative app folder (detection's `root`).
    pub root: Option<String>,
    pub command: Option<String>,
    pub port: Option<u16>,
    /// Detection's `env` plus the caller's; the caller's win.
    pub env_vars: Option<BTreeMap<String, String>>,
    pub memory_gib: Option<f64>,
    /// Framework id from detection (chooses the verification deadline later).
    pub framework: Option<String>,
}

/// The running dev server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub sandbox_id: String,
    /// The session the dev server runs in (for logs, health checks and restarts).
    pub session_id: String,
    pub command_id: String,
    pub command: String,
    pub port: u16,
    pub framework: Option<String>,
    pub elapsed_ms: u64,
}

/// Starts the dev server in its own session and returns at once; [`verify_preview`] waits for
/// it. Fails with `PREVIEW_NO_DEV_COMMAND` when detection found no way to start the app.
pub async fn start_dev_server(
    client: &Client,
    input: &StartInput,
    call: &CallOptions,
) -> Result<Started, PreviewError> {
    let tb = client
        .toolbox_for(&input.sandbox_id)
        .await
        .at(Step::Start, &input.sandbox_id)?;
    let mut input = input.clone();
    if input.command.is_none() {
        let mut di = detect_input_of(&input.sandbox_id, input.path.as_ref());
        di.port = input.port;
        let d = detect_in(client, &tb, &di, call).await?;
        fill_start(&mut input, &d);
    }
    input.memory_gib = memory_of(client, &input.sandbox_id, input.memory_gib).await;
    start_in(&tb, &input, call).await
}

/// Copies detection's answer into a start request, keeping what the caller set.
pub fn fill_start(input: &mut StartInput, d: &Detection) {
    input.command = input.command.take().or_else(|| d.dev_command.clone());
    input.root = input.root.take().or_else(|| Some(d.root.clone()));
    input.port = input.port.or(d.port);
    let mut env = d.env.clone();
    env.extend(input.env_vars.take().unwrap_or_default());
    input.env_vars = Some(env);
    input.framework = input
        .framework
        .take()
        .or_else(|| d.framework.as_ref().map(|f| f.id.clone()));
}

pub(super) async fn start_in(
    tb: &Toolbox,
    input: &StartInput,
    call: &CallOptions,
) -> Result<Started, PreviewError> {
    let t = Instant::now();
    let sid = &input.sandbox_id;
    let Some(command) = input.command.clone() else {
        let mut f = StepFailure::new(
            Step::Start,
            "PREVIEW_NO_DEV_COMMAND",
            "no way to start this repository was found (no dev/start script or known framework); pass `command`",
        );
        f.sandbox_id = Some(sid.clone());
        return Err(PreviewError::Step(Box::new(f)));
    };
    let port = input.port.unwrap_or(3000);
    let base = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let cwd = join(&base, input.root.as_deref().unwrap_or("."));
    let mut env = with_node_options(
        &input.env_vars.clone().unwrap_or_default(),
        input.memory_gib,
    );
    env.entry("PORT".into()).or_insert_with(|| port.to_string());
    let opts = ExecOptions {
        cwd: Some(cwd),
        env: env.into_iter().collect(),
        timeout: None,
    };
    let spawned = tb
        .process()
        .spawn(&command, &opts, call)
        .await
        .at(Step::Start, sid)?;
    Ok(Started {
        sandbox_id: sid.clone(),
        session_id: spawned.session_id.clone(),
        command_id: spawned.cmd_id.clone(),
        command,
        port,
        framework: input.framework.clone(),
        elapsed_ms: ms(t.elapsed()),
    })
}

// ---------------------------------------------------------------------------------- verify

/// What to verify. With `sessionId` and `commandId` (from [`start_dev_server`]) verification
/// also reads the dev server's log (its announced port, its last lines) and stops early when it
/// exits.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyInput {
    pub sandbox_id: String,
    pub port: u16,
    pub session_id: Option<String>,
    pub command_id: Option<String>,
    /// The page to request; `/` by default.
    pub path: Option<String>,
    /// Overall deadline; 60 s, or 180 s for frameworks in [`SLOW_FIRST_BUILD`].
    pub timeout_ms: Option<u64>,
    pub framework: Option<String>,
}

/// A verified preview: the report plus the URL and token to hand to a browser.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    #[serde(flatten)]
    pub report: VerifyReport,
    pub sandbox_id: String,
    pub preview_url: String,
    /// The preview token of a private sandbox (send it as `X-Daytona-Preview-Token`).
    pub token: Option<String>,
}

fn verify_timeout(input: &VerifyInput) -> Duration {
    if let Some(ms) = input.timeout_ms {
        return Duration::from_millis(ms);
    }
    match &input.framework {
        Some(id) if SLOW_FIRST_BUILD.iter().any(|p| id.starts_with(p)) => SLOW_VERIFY_TIMEOUT,
        _ => DEFAULT_VERIFY_TIMEOUT,
    }
}

/// Waits until the preview answers like a working app (see [`crate::verify`]). Fails with
/// `PREVIEW_VERIFY_FAILED`, the reason, the framework's error excerpt and the dev server's
/// last log lines otherwise.
pub async fn verify_preview(
    client: &Client,
    input: &VerifyInput,
    call: &CallOptions,
) -> Result<Verified, PreviewError> {
    let tb = client
        .toolbox_for(&input.sandbox_id)
        .await
        .at(Step::Verify, &input.sandbox_id)?;
    verify_in(client, &tb, input, call).await
}

pub(super) async fn verify_in(
    client: &Client,
    tb: &Toolbox,
    input: &VerifyInput,
    call: &CallOptions,
) -> Result<Verified, PreviewError> {
    let sid = &input.sandbox_id;
    let dev = match (&input.session_id, &input.command_id) {
        (Some(s), Some(c)) => Some(DevProcess {
            session_id: s.clone(),
            command_id: c.clone(),
        }),
        _ => None,
    };
    let opts = VerifyOptions {
        port: input.port,
        path: input.path.clone().unwrap_or_else(|| "/".into()),
        deadline: verify_timeout(input),
        ..VerifyOptions::default()
    };
    let run = run_verify(client, sid, tb, dev.as_ref(), &opts);
    let report = match &call.cancel {
        Some(c) => tokio::select! {
            r = run => r,
            () = c.cancelled() => Err(forge_daytona::Error::Aborted.into()),
        },
        None => run.await,
    }
    .at(Step::Verify, sid)?;
    if !report.ok {
        let mut f = StepFailure::new(
            Step::Verify,
            "PREVIEW_VERIFY_FAILED",
            format!(
                "the preview of port {} did not answer like a working app: {}{}",
                report.port,
                report.reason.code(),
                report
                    .excerpt
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        );
        f.sandbox_id = Some(sid.clone());
        f.reason = Some(report.reason.code().to_owned());
        f.status = report.status.map(i64::from);
        f.excerpt.clone_from(&report.excerpt);
        f.log_tail.clone_from(&report.log_tail);
        return Err(PreviewError::Step(Box::new(f)));
    }
    let link = client
        .preview_url(sid, report.port)
        .await
        .at(Step::Verify, sid)?;
    Ok(Verified {
        sandbox_id: sid.clone(),
        preview_url: report.url.clone(),
        token: (!link.token.is_empty()).then_some(link.token),
        report,
    })
}

// ------------------------------------------------------------------------- health, restart

/// What to check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthInput {
    pub sandbox_id: String,
    /// Also probe this port's preview once.
    pub port: Option<u16>,
    pub path: Option<String>,
}

/// The guide's health check, answered from the sandbox's state and (with a port) one quick
/// verification of its preview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub sandbox_id: String,
    /// The sandbox exists, is started, and (when a port was given) its preview answers.
    pub is_alive: bool,
    /// `None` when the sandbox does not exist.
    pub state: Option<String>,
    pub preview: Option<VerifyReport>,
}

/// How long a health check's preview probe may take.
const HEALTH_PROBE: Duration = Duration::from_secs(5);

/// Checks a sandbox. An unknown sandbox is an answer (`isAlive: false`), not an error.
pub async fn check_health(
    client: &Client,
    input: &HealthInput,
    call: &CallOptions,
) -> Result<Health, PreviewError> {
    let sid = &input.sandbox_id;
    let sb = match client.get_with(sid, call).await {
        Ok(sb) => sb,
        Err(forge_daytona::Error::NotFound(_)) => {
            return Ok(Health {
                sandbox_id: sid.clone(),
                is_alive: false,
                state: None,
                preview: None,
            })
        }
        Err(e) => return Err(e).at(Step::Verify, sid),
    };
    let started = sb.state == forge_wire::SandboxState::Started;
    let preview = match (input.port, started) {
        (Some(port), true) => {
            let tb = client.toolbox(&sb).await.at(Step::Verify, sid)?;
            let opts = VerifyOptions {
                port,
                path: input.path.clone().unwrap_or_else(|| "/".into()),
                deadline: HEALTH_PROBE,
                oks_required: 1,
                ..VerifyOptions::default()
            };
            Some(
                run_verify(client, sid, &tb, None, &opts)
                    .await
                    .at(Step::Verify, sid)?,
            )
        }
        _ => None,
    };
    Ok(Health {
        sandbox_id: sid.clone(),
        is_alive: started && preview.as_ref().is_none_or(|p| p.ok),
        state: Some(sb.state.as_str().to_owned()),
        preview,
    })
}

/// What to restart: the sandbox and its dev server.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartInput {
    pub sandbox_id: String,
    pub path: Option<String>,
    /// The old dev server's session, stopped first.
    pub session_id: Option<String>,
    pub command: Option<String>,
    pub port: Option<u16>,
    pub env_vars: Option<BTreeMap<String, String>>,
    pub timeout_ms: Option<u64>,
}

/// The restarted preview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restarted {
    /// The sandbox had to be started first.
    pub sandbox_started: bool,
    pub started: Started,
    pub verified: Verified,
}

/// The guide's auto-restart: starts the sandbox if it is stopped, stops the old dev server,
/// starts it again (detecting the command unless given) and verifies the preview.
pub async fn restart_preview(
    client: &Client,
    input: &RestartInput,
    call: &CallOptions,
) -> Result<Restarted, PreviewError> {
    let sid = &input.sandbox_id;
    let mut sb = client.get_with(sid, call).await.at(Step::Start, sid)?;
    let sandbox_started = sb.state != forge_wire::SandboxState::Started;
    if sandbox_started {
        sb = client.start(sid, call).await.at(Step::Start, sid)?;
    }
    let tb = client.toolbox(&sb).await.at(Step::Start, sid)?;
    if let Some(old) = &input.session_id {
        match tb.process().delete_session(old).await {
            Ok(()) | Err(forge_daytona::Error::NotFound(_)) => {}
            Err(e) => return Err(e).at(Step::Start, sid),
        }
    }
    let mut start = StartInput {
        sandbox_id: sid.clone(),
        path: input.path.clone(),
        command: input.command.clone(),
        port: input.port,
        env_vars: input.env_vars.clone(),
        memory_gib: Some(sb.memory),
        ..Default::default()
    };
    if start.command.is_none() {
        let mut di = detect_input_of(sid, input.path.as_ref());
        di.port = input.port;
        let d = detect_in(client, &tb, &di, call).await?;
        fill_start(&mut start, &d);
    }
    let started = start_in(&tb, &start, call).await?;
    let verified = verify_in(
        client,
        &tb,
        &verify_input_of(&started, input.timeout_ms),
        call,
    )
    .await?;
    Ok(Restarted {
        sandbox_started,
        started,
        verified,
    })
}

/// The verification request that follows a start.
pub fn verify_input_of(s: &Started, timeout_ms: Option<u64>) -> VerifyInput {
    VerifyInput {
        sandbox_id: s.sandbox_id.clone(),
        port: s.port,
        session_id: Some(s.session_id.clone()),
        command_id: Some(s.command_id.clone()),
        path: None,
        timeout_ms,
        framework: s.framework.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_options_are_three_quarters_of_memory() {
        assert_eq!(
            node_options(16.0, None).as_deref(),
            Some("--max-old-space-size=12288")
        );
        assert_eq!(
            node_options(8.0, Some("--enable-source-maps")).as_deref(),
            Some("--enable-source-maps --max-old-space-size=6144")
        );
        assert_eq!(
            node_options(8.0, Some("--max-old-space-size=100")).as_deref(),
            Some("--max-old-space-size=100")
        );
        assert_eq!(node_options(0.0, None), None);
    }

    #[test]
    fn preview_hosts_and_paths() {
        assert_eq!(
            url_host("https://3000-abc.proxy.daytona.works/x").as_deref(),
            Some("3000-abc.proxy.daytona.works")
        );
        assert_eq!(
            url_host("http://127.0.0.1:4000").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("http://[::1]:4000/").as_deref(), Some("::1"));
        assert_eq!(join("workspace/project", "."), "workspace/project");
        assert_eq!(
            join("workspace/project/", "./apps/web"),
            "workspace/project/apps/web"
        );
    }

    #[test]
    fn slow_frameworks_get_the_long_deadline() {
        let mut v = VerifyInput {
            framework: Some("nextjs".into()),
            ..Default::default()
        };
        assert_eq!(verify_timeout(&v), SLOW_VERIFY_TIMEOUT);
        v.framework = Some("vite-react".into());
        assert_eq!(verify_timeout(&v), DEFAULT_VERIFY_TIMEOUT);
        v.timeout_ms = Some(5);
        assert_eq!(verify_timeout(&v), Duration::from_millis(5));
    }
}

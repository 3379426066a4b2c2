//! Step 4, `install`: the dependencies, with the detected command, killed after a timeout.

use super::{
    detect, join, marker, memory_of, ms, package_manager, toolbox, with_node_options, DEFAULT_PATH,
    LOG_TAIL_LINES,
};
use crate::install_log;
use crate::pipeline::failure::{AtStep, Step, StepError, StepFailure};
use crate::pipeline::log_lines::{follow_while, LogSink};
use crate::PreviewError;
use forge_daytona::wire::{DependencyCacheAction, DependencyCacheOutcome, DependencyCacheRequest};
use forge_daytona::{CallOptions, Client, ExecOptions, Toolbox};
use forge_detect::{Detection, PackageManagerInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Installs are killed after this long unless told otherwise (the guide's 900 s).
pub const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_mins(15);
/// The environment that keeps package managers quiet and fast in a sandbox (no funding or
/// audit round trips, no update check, no interactive prompts).
const QUIET_INSTALL_ENV: &[(&str, &str)] = &[
    ("npm_config_fund", "false"),
    ("npm_config_audit", "false"),
    ("npm_config_update_notifier", "false"),
    ("npm_config_progress", "false"),
    ("CI", "true"),
];

/// A retry that makes an install succeed where a developer's would: when the log of a failed
/// install of `manager` holds `marker`, the same command runs once more with `flag`.
struct Retry {
    manager: &'static str,
    marker: &'static str,
    flag: &'static str,
    why: &'static str,
}

const RETRIES: &[Retry] = &[Retry {
    manager: "npm",
    marker: "ERESOLVE",
    flag: "--legacy-peer-deps",
    why: "npm 7+ refuses the project's peer-dependency conflicts (ERESOLVE); npm 6 and most developers' installs accept them",
}];

/// What to install. `detection` (detectFramework's answer, e.g. from an earlier Inngest step)
/// supplies everything; the other fields override it. Without either `command` or `detection`
/// the step detects first.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "InstallDependenciesInput", optional_fields = nullable))]
pub struct InstallInput {
    pub sandbox_id: String,
    pub path: Option<String>,
    /// Detection's answer: install command and root, install env, the package manager to make
    /// available, the workspace dependencies to build.
    pub detection: Option<Box<Detection>>,
    /// Repository-relative folder to run the install in (detection's `installRoot`).
    pub install_root: Option<String>,
    pub command: Option<String>,
    /// GiB of the sandbox; read from the sandbox when absent.
    pub memory_gib: Option<f64>,
    /// Defaults to [`DEFAULT_INSTALL_TIMEOUT`].
    pub timeout_ms: Option<u64>,
    pub env_vars: Option<BTreeMap<String, String>>,
    /// `false`: never use the embedded backend's dependency cache. Default: used when
    /// `cacheScope` is given and the backend has one (Daytona has none: ignored there).
    pub dependency_cache: Option<bool>,
    /// What the project is (its repository URL, without credentials): cached
    /// `node_modules` are shared only between installs of the same scope.
    pub cache_scope: Option<String>,
}

/// The install as the step runs it: the input with its defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub sandbox_id: String,
    /// The repository folder.
    pub path: String,
    /// Repository-relative folder to run the install in.
    pub install_root: String,
    /// `None`: nothing to install (no package.json).
    pub command: Option<String>,
    pub memory_gib: Option<f64>,
    pub timeout: Duration,
    /// The caller's env (wins over `install_env`).
    pub env_vars: BTreeMap<String, String>,
    /// Detection's `installEnv`.
    pub install_env: BTreeMap<String, String>,
    /// Made available in the sandbox first when it is not npm.
    pub package_manager: Option<PackageManagerInfo>,
    /// Detection's `prepareCommand`, run after the install.
    pub prepare_command: Option<String>,
    /// The dependency cache's scope (see [`InstallInput::cache_scope`]); `None`: no cache.
    pub cache_scope: Option<String>,
    /// Where the commands' output goes, line by line.
    pub log: LogSink,
}

impl Params {
    /// The install a detection calls for (the caller's `command` and env kept).
    pub fn with_detection(mut self, d: &Detection) -> Self {
        if self.command.is_none() {
            self.command.clone_from(&d.install_command);
            self.install_root.clone_from(&d.install_root);
        }
        self.install_env.clone_from(&d.install_env);
        self.package_manager = Some(d.package_manager.clone());
        self.prepare_command.clone_from(&d.prepare_command);
        self
    }
}

impl From<InstallInput> for Params {
    fn from(i: InstallInput) -> Self {
        let p = Params {
            sandbox_id: i.sandbox_id,
            path: i.path.unwrap_or_else(|| DEFAULT_PATH.to_owned()),
            install_root: i.install_root.unwrap_or_else(|| ".".to_owned()),
            command: i.command,
            memory_gib: i.memory_gib,
            timeout: i
                .timeout_ms
                .map_or(DEFAULT_INSTALL_TIMEOUT, Duration::from_millis),
            env_vars: i.env_vars.unwrap_or_default(),
            install_env: BTreeMap::new(),
            package_manager: None,
            prepare_command: None,
            log: LogSink::none(),
            cache_scope: i.cache_scope.filter(|_| i.dependency_cache != Some(false)),
        };
        match &i.detection {
            Some(d) => p.with_detection(d),
            None => p,
        }
    }
}

/// The finished install.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "InstalledDependencies")
)]
pub struct Installed {
    pub sandbox_id: String,
    /// `None` when there was nothing to install (no package.json).
    pub command: Option<String>,
    pub exit_code: i32,
    pub elapsed_ms: u64,
    pub log_tail: Vec<String>,
    /// What the step did beyond the command, and why: the package manager it installed, the
    /// retry it made, the workspace dependencies it built.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Installs dependencies with the detected command, killed after the timeout: the package
/// manager made available first, download-only postinstalls off, one retry where a known
/// failure has a known cure (npm's ERESOLVE: `--legacy-peer-deps`), then the app's workspace
/// dependencies built. A non-zero exit fails with `PREVIEW_INSTALL_FAILED`, the install's first
/// real error in the message and the tail of its log. The commands' output goes to `log`, line
/// by line, while they run.
pub async fn install_dependencies(
    client: &Client,
    input: &InstallInput,
    log: &LogSink,
    call: &CallOptions,
) -> Result<Installed, PreviewError> {
    let tb = toolbox(client, &input.sandbox_id, Step::Install).await?;
    let mut input = input.clone();
    if input.command.is_none() && input.detection.is_none() {
        let d = detect::run(
            client,
            &tb,
            &detect::input_of(&input.sandbox_id, input.path.as_ref()),
            call,
        )
        .await?;
        input.detection = Some(Box::new(d));
    }
    input.memory_gib = memory_of(client, &input.sandbox_id, input.memory_gib).await;
    let params = Params {
        log: log.clone(),
        ..Params::from(input)
    };
    run(client, &tb, &params, call).await
}

/// The repository URL as a dependency-cache scope: no credentials, no query or fragment.
pub(crate) fn scope_of(repo_url: &str) -> Option<String> {
    let url = repo_url.trim();
    if url.is_empty() {
        return None;
    }
    Some(match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        _ => url.to_owned(),
    })
}

/// The embedded backend's dependency cache, around an install: `None` when the backend has
/// none (Daytona answers 404), is off, or cannot answer: the install runs as usual.
async fn dependency_cache(
    client: &Client,
    params: &Params,
    action: DependencyCacheAction,
    path: &str,
    command: &str,
    env: &BTreeMap<String, String>,
    call: &CallOptions,
) -> Option<forge_daytona::wire::DependencyCacheResponse> {
    let scope = params.cache_scope.clone()?;
    let manager = params
        .package_manager
        .as_ref()
        .map_or("npm", |p| p.name.as_str());
    let req = DependencyCacheRequest {
        action: Some(action),
        path: path.to_owned(),
        manager: manager.to_owned(),
        command: command.to_owned(),
        // What changes what is installed (the heap size and PATH do not).
        env: env
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "NODE_OPTIONS" | "PATH"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        scope: Some(scope),
    };
    let opts = CallOptions {
        timeout: Some(Duration::from_mins(5)),
        cancel: call.cancel.clone(),
    };
    client
        .local_dependencies(&params.sandbox_id, &req, &opts)
        .await
        .ok()
}

fn short(key: Option<&String>) -> &str {
    key.map_or("?", |k| &k[..k.len().min(12)])
}

/// How a note of [`Installed::notes`] starts when `node_modules` came from the embedded
/// backend's dependency cache instead of the install command.
pub const RESTORED: &str = "dependencies restored from cache";

/// The note added to the first run's result when a run again finds its install intact.
pub const ALREADY_INSTALLED: &str = "already installed by an earlier run of this step: the lockfile and node_modules are as it left them";

/// What the install step records about a folder it installed in (see [`marker`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallRecord {
    /// The command asked for (before any retry flag).
    command: String,
    /// [`FINGERPRINT`]'s answer after the install.
    fingerprint: String,
    result: Installed,
}

/// The install step's records.
const MARKER: &str = "install";

/// What an install leaves, in one line per thing: the manifest, every lockfile, the package
/// managers' own records of what they installed (`node_modules/.package-lock.json`, pnpm's
/// `.modules.yaml`, Yarn's `.yarn-state.yml` / `.yarn-integrity`), each as its POSIX `cksum`
/// (CRC and size), and `node_modules`' listing (entries and their times; the dot-folders dev
/// servers write, `.vite` and `.cache`, are not listed).
const FINGERPRINT: &str = "for f in package.json package-lock.json npm-shrinkwrap.json yarn.lock pnpm-lock.yaml bun.lock bun.lockb node_modules/.package-lock.json node_modules/.modules.yaml node_modules/.yarn-state.yml node_modules/.yarn-integrity; do if [ -f \"$f\" ]; then echo \"$f $(cksum < \"$f\")\"; fi; done; if [ -d node_modules ]; then echo \"node_modules $( (ls -l --full-time node_modules 2>/dev/null || ls -l node_modules) | cksum)\"; else echo 'no node_modules'; fi";

/// [`FINGERPRINT`] of the folder `cwd`.
async fn fingerprint(
    tb: &Toolbox,
    sid: &str,
    cwd: &str,
    call: &CallOptions,
) -> Result<String, PreviewError> {
    let opts = ExecOptions {
        cwd: Some(cwd.to_owned()),
        env: BTreeMap::default(),
        timeout: Some(Duration::from_mins(1)),
    };
    let r = tb
        .process()
        .execute(FINGERPRINT, &opts, call)
        .await
        .at(Step::Install, sid)?;
    Ok(format!("{}:{}", r.exit_code, r.result.trim()))
}

/// The step on its own (`installDependencies`): the install, then its record.
pub(crate) async fn run(
    client: &Client,
    tb: &Toolbox,
    params: &Params,
    call: &CallOptions,
) -> Result<Installed, PreviewError> {
    let (installed, fresh) = install(client, tb, params, call).await?;
    if fresh {
        record(tb, params, &installed, call).await;
    }
    Ok(installed)
}

/// The install without its record: the result, and whether it is a new one that
/// [`record`] should keep (not when there was nothing to install, or a retry found the
/// record of an earlier run). The pipeline records while the dev server starts: the record
/// is bookkeeping for a retry, and nothing the dev server needs.
pub(crate) async fn install(
    client: &Client,
    tb: &Toolbox,
    params: &Params,
    call: &CallOptions,
) -> Result<(Installed, bool), PreviewError> {
    let t = Instant::now();
    let sid = &params.sandbox_id;
    let Some(command) = params.command.clone() else {
        let nothing = Installed {
            sandbox_id: sid.clone(),
            command: None,
            exit_code: 0,
            elapsed_ms: 0,
            log_tail: Vec::new(),
            notes: Vec::new(),
        };
        return Ok((nothing, false));
    };
    let cwd = join(&params.path, &params.install_root);
    // Run again (a workflow's retry): the first run's result when nothing changed since.
    if let Some(r) = marker::read::<InstallRecord>(tb, MARKER, &cwd, call)
        .await
        .at(Step::Install, sid)?
    {
        if r.command == command && r.fingerprint == fingerprint(tb, sid, &cwd, call).await? {
            let mut result = r.result;
            result.notes.push(ALREADY_INSTALLED.to_owned());
            return Ok((result, false));
        }
    }
    let mut notes = Vec::new();
    let mut env = params.install_env.clone();
    env.extend(with_node_options(&params.env_vars, params.memory_gib));
    for (k, v) in QUIET_INSTALL_ENV {
        env.entry((*k).to_owned())
            .or_insert_with(|| (*v).to_owned());
    }
    if let Some(pm) = &params.package_manager {
        let ready = package_manager::ensure(tb, sid, Step::Install, pm, &cwd, call).await?;
        if let Some(path) = ready.path {
            env.entry("PATH".to_owned()).or_insert(path);
        }
        notes.extend(ready.note);
    }
    let restore = dependency_cache(
        client,
        params,
        DependencyCacheAction::Restore,
        &cwd,
        &command,
        &env,
        call,
    )
    .await;
    let restored = restore
        .as_ref()
        .is_some_and(|r| r.outcome == DependencyCacheOutcome::Restored);
    if let Some(r) = &restore {
        if restored {
            notes.push(format!(
                "{RESTORED} (key {}, {} entries, {} MB, {} ms{}{})",
                short(r.key.as_ref()),
                r.entries,
                r.bytes / 1_000_000,
                r.elapsed_ms,
                if r.linked { ", hard links" } else { "" },
                if r.build_caches.is_empty() {
                    String::new()
                } else {
                    format!(", build caches {}", r.build_caches.join(", "))
                }
            ));
        }
    }
    let opts = ExecOptions {
        cwd: Some(cwd.clone()),
        env: env.clone().into_iter().collect(),
        timeout: None,
    };
    let deadline = Instant::now() + params.timeout;
    let mut ran = command.clone();
    let mut outcome = if restored {
        Outcome {
            exit_code: 0,
            output: String::new(),
        }
    } else {
        run_one(tb, sid, &ran, &opts, deadline, &params.log, call).await?
    };
    if outcome.exit_code != 0 {
        let manager = params
            .package_manager
            .as_ref()
            .map_or("npm", |p| p.name.as_str());
        if let Some(r) = RETRIES.iter().find(|r| {
            r.manager == manager && outcome.output.contains(r.marker) && !ran.contains(r.flag)
        }) {
            notes.push(format!(
                "`{ran}` failed with {}: retried with {} ({})",
                r.marker, r.flag, r.why
            ));
            ran = format!("{ran} {}", r.flag);
            outcome = run_one(tb, sid, &ran, &opts, deadline, &params.log, call).await?;
        }
    }
    if outcome.exit_code != 0 {
        return Err(failed(sid, &ran, "", &outcome, notes));
    }
    // Kept for the next install of the same project (only what this install made).
    if restore.is_some() && !restored {
        if let Some(r) = dependency_cache(
            client,
            params,
            DependencyCacheAction::Store,
            &cwd,
            &command,
            &env,
            call,
        )
        .await
        {
            notes.push(match r.outcome {
                DependencyCacheOutcome::Stored => format!(
                    "dependencies stored in the cache (key {}, {} ms)",
                    short(r.key.as_ref()),
                    r.elapsed_ms
                ),
                _ => format!(
                    "dependencies not cached: {}",
                    r.reason.as_deref().unwrap_or("skipped")
                ),
            });
        }
    }
    let mut log = outcome.output;
    if let Some(prepare) = &params.prepare_command {
        let built = run_one(tb, sid, prepare, &opts, deadline, &params.log, call).await?;
        if built.exit_code != 0 {
            return Err(failed(
                sid,
                prepare,
                "building the app's workspace dependencies: ",
                &built,
                notes,
            ));
        }
        notes.push(format!(
            "built the app's workspace dependencies with `{prepare}`"
        ));
        log.push_str(&built.output);
    }
    let installed = Installed {
        sandbox_id: sid.clone(),
        command: Some(ran),
        exit_code: 0,
        elapsed_ms: ms(t.elapsed()),
        log_tail: install_log::tail(&log, LOG_TAIL_LINES),
        notes,
    };
    Ok((installed, true))
}

/// Keeps what a retry of this install recognises (see [`InstallRecord`]). Without the record
/// a retry installs again (safe, only slower): its failure is not the install's.
pub(crate) async fn record(
    tb: &Toolbox,
    params: &Params,
    installed: &Installed,
    call: &CallOptions,
) {
    let Some(command) = params.command.clone() else {
        return;
    };
    let cwd = join(&params.path, &params.install_root);
    if let Ok(fingerprint) = fingerprint(tb, &params.sandbox_id, &cwd, call).await {
        let record = InstallRecord {
            command,
            fingerprint,
            result: installed.clone(),
        };
        marker::write_best_effort(tb, MARKER, &cwd, &record, call).await;
    }
}

/// One command's end: its exit code and its whole output.
struct Outcome {
    exit_code: i32,
    output: String,
}

/// Runs `command` in its own session until it exits or `deadline` passes (then it is killed
/// with its session and the step fails with the transport's timeout).
async fn run_one(
    tb: &Toolbox,
    sid: &str,
    command: &str,
    opts: &ExecOptions,
    deadline: Instant,
    log: &LogSink,
    call: &CallOptions,
) -> Result<Outcome, PreviewError> {
    let spawned = tb
        .process()
        .spawn(command, opts, call)
        .await
        .at(Step::Install, sid)?;
    let left = deadline.saturating_duration_since(Instant::now());
    let wait_opts = CallOptions {
        timeout: Some(call.timeout.map_or(left, |c| c.min(left))),
        cancel: call.cancel.clone(),
    };
    let wait = spawned.wait(&wait_opts);
    let (session, cmd) = (&spawned.session_id, &spawned.cmd_id);
    let waited = follow_while(tb, session, cmd, Step::Install, log, call, wait).await;
    let output = spawned.output().await.map(|o| o.output).unwrap_or_default();
    // Deleting the session kills the command if it still runs (timeout, abort).
    spawned.kill().await;
    match waited {
        Ok(exit_code) => Ok(Outcome { exit_code, output }),
        Err(e) => {
            let message = e.to_string();
            let mut f = StepFailure::new(
                Step::Install,
                StepError::Source(Box::new(e.into())),
                message,
            )
            .in_sandbox(sid);
            f.log_tail = install_log::tail(&output, LOG_TAIL_LINES);
            Err(f.into_error())
        }
    }
}

/// `PREVIEW_INSTALL_FAILED` for `command`, its first real error in the message.
fn failed(sid: &str, command: &str, what: &str, o: &Outcome, notes: Vec<String>) -> PreviewError {
    let first = install_log::first_error(&o.output)
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let mut message = format!("{what}`{command}` exited with code {}{first}", o.exit_code);
    for n in notes {
        message.push_str(&format!(" ({n})"));
    }
    let mut f = StepFailure::new(
        Step::Install,
        StepError::InstallFailed {
            exit_code: o.exit_code,
        },
        message,
    )
    .in_sandbox(sid);
    f.log_tail = install_log::tail(&o.output, LOG_TAIL_LINES);
    f.into_error()
}

#[cfg(test)]
mod cache_tests {
    use super::scope_of;

    #[test]
    fn a_cache_scope_has_no_credentials() {
        assert_eq!(
            scope_of("https://x-access-token:ghp_secret@github.com/o/r.git?x=1#f").as_deref(),
            Some("https://github.com/o/r.git")
        );
        assert_eq!(
            scope_of("git@github.com:o/r.git").as_deref(),
            Some("git@github.com:o/r.git")
        );
        assert_eq!(scope_of("  "), None);
    }
}

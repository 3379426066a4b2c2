//! Step 5, `start`: the dev server, in its own session, listening on the detected port.

use super::{
    detect, join, launch, marker, memory_of, ms, package_manager, toolbox, with_node_options,
    DEFAULT_PATH,
};
use crate::pipeline::failure::{AtStep, Step, StepError, StepFailure};
use crate::pipeline::log_lines::{follow_while, LogSink};
use crate::PreviewError;
use forge_daytona::wait::{await_condition, from_fn, Backoff};
use forge_daytona::{CallOptions, Client, ExecOptions, Toolbox};
use forge_detect::{Detection, PackageManagerInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to start. `detection` (detectFramework's answer, e.g. from an earlier Inngest step)
/// supplies `command`, `root`, `port`, `env` and the package manager; the other fields
/// override it. Without either `command` or `detection` the step detects first.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "StartDevServerInput", optional_fields = nullable))]
pub struct StartInput {
    pub sandbox_id: String,
    pub path: Option<String>,
    pub detection: Option<Box<Detection>>,
    /// The package manager the dev command runs through (made available when it is not npm).
    pub package_manager: Option<PackageManagerInfo>,
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "StartedDevServer"))]
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
///
/// A dev server this step started earlier on the same port (a workflow's retry, a restart) is
/// stopped first: there are never two, and the result names the one that serves.
///
/// `log` gets the lines the dev server printed before this returns (often none: it returns
/// once the server is launched); [`verify_preview`](super::verify::verify_preview) streams the
/// output from the server's start through verification.
pub async fn start_dev_server(
    client: &Client,
    input: &StartInput,
    log: &LogSink,
    call: &CallOptions,
) -> Result<Started, PreviewError> {
    let tb = toolbox(client, &input.sandbox_id, Step::Start).await?;
    let mut input = input.clone();
    if let Some(d) = input.detection.take() {
        fill_start(&mut input, &d);
    } else if input.command.is_none() {
        let mut di = detect::input_of(&input.sandbox_id, input.path.as_ref());
        di.port = input.port;
        let d = detect::run(client, &tb, &di, call).await?;
        fill_start(&mut input, &d);
    }
    input.memory_gib = memory_of(client, &input.sandbox_id, input.memory_gib).await;
    let started = run(&tb, &input, call).await?;
    let (session, cmd) = (&started.session_id, &started.command_id);
    follow_while(&tb, session, cmd, Step::Start, log, call, async {}).await;
    Ok(started)
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
    input.package_manager = input
        .package_manager
        .take()
        .or_else(|| Some(d.package_manager.clone()));
}

/// How long a port that is in use may take to be released (a dev server just stopped by a
/// restart) before the start fails.
const PORT_RELEASE_GRACE: Duration = Duration::from_secs(5);

/// Fails with `PREVIEW_PORT_IN_USE` when something already listens on `port` in the sandbox
/// (after [`PORT_RELEASE_GRACE`]): whatever answers there would be taken for the dev server.
/// Ports the toolbox cannot check pass.
async fn port_free(tb: &Toolbox, sid: &str, port: u16) -> Result<(), PreviewError> {
    let free = from_fn(Backoff::READINESS, || async {
        Ok::<_, std::convert::Infallible>(
            (crate::port_listening(tb, port).await != Some(true)).then_some(()),
        )
    });
    let until = tokio::time::Instant::now() + PORT_RELEASE_GRACE;
    match await_condition(Some(until), None, free).await {
        Ok(()) => Ok(()),
        Err(_) => Err(StepFailure::new(
            Step::Start,
            StepError::PortInUse { port },
            format!(
                "something in the sandbox already listens on port {port}, before the dev server started: its answers would be taken for the app's. Stop it, or start the app on another port (`port`)"
            ),
        )
        .in_sandbox(sid)
        .into_error()),
    }
}

/// The step inside the pipeline, with the sandbox's toolbox.
pub(crate) async fn run(
    tb: &Toolbox,
    input: &StartInput,
    call: &CallOptions,
) -> Result<Started, PreviewError> {
    let t = Instant::now();
    let sid = &input.sandbox_id;
    let Some(command) = input.command.clone() else {
        return Err(StepFailure::new(
            Step::Start,
            StepError::NoDevCommand,
            "no way to start this repository was found (no dev/start script or known framework); pass `command`",
        )
        .in_sandbox(sid)
        .into_error());
    };
    let port = input.port.unwrap_or(3000);
    replace_earlier(tb, sid, port, call).await?;
    port_free(tb, sid, port).await?;
    let base = input
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let root = input.root.as_deref().unwrap_or(".");
    let cwd = join(&base, root);
    let mut env = with_node_options(
        &input.env_vars.clone().unwrap_or_default(),
        input.memory_gib,
    );
    env.entry("PORT".into()).or_insert_with(|| port.to_string());
    if let Some(pm) = &input.package_manager {
        let ready = package_manager::ensure(tb, sid, Step::Start, pm, &cwd, call).await?;
        if let Some(path) = ready.path {
            env.entry("PATH".into()).or_insert(path);
        }
    }
    let opts = ExecOptions {
        cwd: Some(cwd),
        env: env.into_iter().collect(),
        timeout: None,
    };
    // The dev command as detected, but an installed binary runs without its runner's start.
    let launched =
        launch::depth(root).map_or_else(|| command.clone(), |d| launch::launch(&command, d));
    let spawned = tb
        .process()
        .spawn(&launched, &opts, call)
        .await
        .at(Step::Start, sid)?;
    let started = Started {
        sandbox_id: sid.clone(),
        session_id: spawned.session_id.clone(),
        command_id: spawned.cmd_id.clone(),
        command,
        port,
        framework: input.framework.clone(),
        elapsed_ms: ms(t.elapsed()),
    };
    // Unrecorded, a retry could not find this server to replace it: then it is not started.
    if let Err(e) = marker::write(tb, MARKER, &port.to_string(), &started, call).await {
        spawned.kill().await;
        return Err(e).at(Step::Start, sid);
    }
    Ok(started)
}

/// The start step's records: the dev server started on a port (keyed by the port).
const MARKER: &str = "start";

/// Stops the dev server this step started on `port` before (its whole session), if any.
async fn replace_earlier(
    tb: &Toolbox,
    sid: &str,
    port: u16,
    call: &CallOptions,
) -> Result<(), PreviewError> {
    let Some(earlier) = marker::read::<Started>(tb, MARKER, &port.to_string(), call)
        .await
        .at(Step::Start, sid)?
    else {
        return Ok(());
    };
    match tb.process().delete_session(&earlier.session_id).await {
        Ok(()) | Err(forge_daytona::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e).at(Step::Start, sid),
    }
}

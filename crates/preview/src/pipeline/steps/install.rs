//! Step 4, `install`: the dependencies, with the detected command, killed after a timeout.

use super::{
    detect, join, memory_of, ms, toolbox, with_node_options, DEFAULT_PATH, LOG_TAIL_LINES,
};
use crate::pipeline::failure::{tail_lines, AtStep, Step, StepError, StepFailure};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client, ExecOptions, Toolbox};
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
    pub env_vars: BTreeMap<String, String>,
}

impl From<InstallInput> for Params {
    fn from(i: InstallInput) -> Self {
        Params {
            sandbox_id: i.sandbox_id,
            path: i.path.unwrap_or_else(|| DEFAULT_PATH.to_owned()),
            install_root: i.install_root.unwrap_or_else(|| ".".to_owned()),
            command: i.command,
            memory_gib: i.memory_gib,
            timeout: i
                .timeout_ms
                .map_or(DEFAULT_INSTALL_TIMEOUT, Duration::from_millis),
            env_vars: i.env_vars.unwrap_or_default(),
        }
    }
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
    let tb = toolbox(client, &input.sandbox_id, Step::Install).await?;
    let mut input = input.clone();
    if input.command.is_none() {
        let d = detect::run(
            client,
            &tb,
            &detect::input_of(&input.sandbox_id, input.path.as_ref()),
            call,
        )
        .await?;
        input.command = d.install_command;
        input.install_root = Some(d.install_root);
    }
    input.memory_gib = memory_of(client, &input.sandbox_id, input.memory_gib).await;
    run(&tb, &Params::from(input), call).await
}

/// The step inside the pipeline, with the sandbox's toolbox.
pub(crate) async fn run(
    tb: &Toolbox,
    params: &Params,
    call: &CallOptions,
) -> Result<Installed, PreviewError> {
    let t = Instant::now();
    let sid = &params.sandbox_id;
    let Some(command) = params.command.clone() else {
        return Ok(Installed {
            sandbox_id: sid.clone(),
            command: None,
            exit_code: 0,
            elapsed_ms: 0,
            log_tail: Vec::new(),
        });
    };
    let cwd = join(&params.path, &params.install_root);
    let mut env = with_node_options(&params.env_vars, params.memory_gib);
    for (k, v) in QUIET_INSTALL_ENV {
        env.entry((*k).to_owned())
            .or_insert_with(|| (*v).to_owned());
    }
    let opts = ExecOptions {
        cwd: Some(cwd),
        env: env.into_iter().collect(),
        timeout: None,
    };
    let spawned = tb
        .process()
        .spawn(&command, &opts, call)
        .await
        .at(Step::Install, sid)?;
    let wait_opts = CallOptions {
        timeout: Some(
            call.timeout
                .map_or(params.timeout, |c| c.min(params.timeout)),
        ),
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
            let message = e.to_string();
            let mut f = StepFailure::new(
                Step::Install,
                StepError::Source(Box::new(e.into())),
                message,
            )
            .in_sandbox(sid);
            f.log_tail = log_tail;
            return Err(f.into_error());
        }
    };
    if exit_code != 0 {
        let mut f = StepFailure::new(
            Step::Install,
            StepError::InstallFailed { exit_code },
            format!("`{command}` exited with code {exit_code}"),
        )
        .in_sandbox(sid);
        f.log_tail = log_tail;
        return Err(f.into_error());
    }
    Ok(Installed {
        sandbox_id: sid.clone(),
        command: Some(command),
        exit_code,
        elapsed_ms: ms(t.elapsed()),
        log_tail,
    })
}

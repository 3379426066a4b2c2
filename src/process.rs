//! `sandbox.process`: commands, code and sessions inside a sandbox.

use crate::client::into;
use crate::dto::ExecuteResponse;
use crate::error::Failure;
use crate::sandbox::SandboxCore;
use crate::task::promise;
use forge_daytona::{CallOptions, ExecOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Process execution inside a sandbox (`sandbox.process`).
#[napi]
pub struct SandboxProcess {
    core: Arc<SandboxCore>,
}

impl SandboxProcess {
    pub(crate) fn new(core: Arc<SandboxCore>) -> Self {
        SandboxProcess { core }
    }
}

#[napi]
impl SandboxProcess {
    /// Runs a shell command and waits for it: `{ exitCode, result }` with stdout and stderr
    /// combined, as Daytona returns them. `cwd` defaults to the sandbox work dir (relative
    /// paths resolve against it); `env` adds variables; `timeout` is in **seconds** and kills
    /// the command (rejecting with `DAYTONA_TIMEOUT`).
    #[napi(ts_return_type = "Promise<ExecuteResponse>")]
    pub fn execute_command(
        &self,
        env: &Env,
        command: String,
        cwd: Option<String>,
        #[napi(ts_arg_type = "Record<string, string>")] env_vars: Option<HashMap<String, String>>,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<AsyncBlock<ExecuteResponse>> {
        let core = self.core.clone();
        promise(env, signal, move |cancel| async move {
            let tb = core.toolbox().await?;
            let o = ExecOptions {
                cwd,
                env: env_vars.unwrap_or_default().into_iter().collect(),
                timeout: timeout
                    .filter(|t| *t > 0)
                    .map(|t| Duration::from_secs(t as u64)),
            };
            let r = tb
                .process()
                .execute(&command, &o, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)?;
            Ok::<_, Failure>(ExecuteResponse {
                exit_code: r.exit_code,
                result: r.result,
            })
        })
    }
}

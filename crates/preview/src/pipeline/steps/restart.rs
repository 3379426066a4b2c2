//! The guide's auto-restart: start the sandbox if needed, replace the dev server, verify.

use super::start::{fill_start, StartInput, Started};
use super::verify::Verified;
use super::{detect, start, verify};
use crate::pipeline::failure::{AtStep, Step};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What to restart: the sandbox and its dev server.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "RestartPreviewInput", optional_fields = nullable))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "RestartedPreview"))]
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
        let mut di = detect::input_of(sid, input.path.as_ref());
        di.port = input.port;
        let d = detect::run(client, &tb, &di, call).await?;
        fill_start(&mut start, &d);
    }
    let started = start::run(&tb, &start, call).await?;
    let timeout = input.timeout_ms.map(Duration::from_millis);
    let verified =
        verify::run(client, &tb, &verify::Params::after(&started, timeout), call).await?;
    Ok(Restarted {
        sandbox_started,
        started,
        verified,
    })
}

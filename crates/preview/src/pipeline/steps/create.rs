//! Step 1, `create`: a sandbox, started.

use super::ms;
use crate::pipeline::failure::{AtStep, Step};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client, CreateParams, WorkspaceClass};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The created sandbox, as the next steps need it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CreatedSandbox"))]
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
    Ok(run(client, params, call).await?.0)
}

/// The step inside the pipeline: also gives the sandbox record (the toolbox is resolved from it).
pub(crate) async fn run(
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

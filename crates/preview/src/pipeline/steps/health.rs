//! The guide's health check: the sandbox's state and (with a port) one quick probe of its
//! preview.

use crate::browser::{Screenshot, SCREENSHOT_PATH};
use crate::pipeline::failure::{AtStep, Step};
use crate::verify::{verify_preview as run_verify, VerifyOptions, VerifyReport};
use crate::PreviewError;
use forge_daytona::{CallOptions, Client};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What to check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CheckHealthInput", optional_fields = nullable))]
pub struct HealthInput {
    pub sandbox_id: String,
    /// Also probe this port's preview once.
    pub port: Option<u16>,
    pub path: Option<String>,
    /// Also return the last screenshot a browser check stored (`browser: { saveScreenshot:
    /// true }`).
    pub screenshot: Option<bool>,
}

/// The guide's health check, answered from the sandbox's state and (with a port) one quick
/// verification of its preview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "SandboxHealth"))]
pub struct Health {
    pub sandbox_id: String,
    /// The sandbox exists, is started, and (when a port was given) its preview answers.
    pub is_alive: bool,
    /// `None` when the sandbox does not exist.
    pub state: Option<String>,
    pub preview: Option<VerifyReport>,
    /// The last stored screenshot, when asked for and there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub screenshot: Option<Screenshot>,
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
                screenshot: None,
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
    let screenshot = match (input.screenshot, started) {
        (Some(true), true) => {
            let tb = client.toolbox(&sb).await.at(Step::Verify, sid)?;
            match tb.fs().download(SCREENSHOT_PATH, call).await {
                Ok(png) => Screenshot::from_png(&png),
                Err(forge_daytona::Error::NotFound(_)) => None,
                Err(e) => return Err(e).at(Step::Verify, sid),
            }
        }
        _ => None,
    };
    Ok(Health {
        sandbox_id: sid.clone(),
        is_alive: started && preview.as_ref().is_none_or(|p| p.ok),
        state: Some(sb.state.as_str().to_owned()),
        preview,
        screenshot,
    })
}

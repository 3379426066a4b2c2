//! Step 3, `detect`: the framework of the cloned repository, read inside the sandbox.

use super::toolbox;
use super::DEFAULT_PATH;
use crate::pipeline::failure::{AtStep, Step};
use crate::{detect_in_sandbox, PreviewError};
use forge_daytona::{CallOptions, Client, Toolbox};
use forge_detect::{DetectOptions, Detection};
use serde::{Deserialize, Serialize};

/// What to detect.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DetectFrameworkInput", optional_fields = nullable))]
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
    let tb = toolbox(client, &input.sandbox_id, Step::Detect).await?;
    run(client, &tb, input, call).await
}

/// The preview host suffix of a sandbox (`.proxy.daytona.works` for
/// `https://3000-<id>.proxy.daytona.works`), so that the dev server accepts its preview host.
/// `None` for IP-address hosts (the embedded backend), which dev servers accept anyway.
pub(crate) async fn preview_domain(client: &Client, sandbox_id: &str) -> Option<String> {
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

/// The step inside the pipeline, with the sandbox's toolbox.
pub(crate) async fn run(
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

/// A detection request for the repository at `path` (the steps that detect when not told).
pub(crate) fn input_of(sandbox_id: &str, path: Option<&String>) -> DetectInput {
    DetectInput {
        sandbox_id: sandbox_id.to_owned(),
        path: path.cloned(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn preview_hosts() {
        assert_eq!(
            url_host("https://3000-abc.proxy.daytona.works/x").as_deref(),
            Some("3000-abc.proxy.daytona.works")
        );
        assert_eq!(
            url_host("http://127.0.0.1:4000").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("http://[::1]:4000/").as_deref(), Some("::1"));
    }
}

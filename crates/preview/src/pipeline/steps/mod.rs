//! The pipeline's steps, one file each, each usable on its own: JSON-serialisable input and
//! output, so that an Inngest function can run them as separate `step.run`s (production
//! serialises step results between runs) and a route handler can run the whole chain with
//! [`clone_and_preview`](super::clone_and_preview).
//!
//! Every step resolves its sandbox by id, so the only state that crosses a step boundary is in
//! the outputs. Inside the whole pipeline the toolbox is resolved once and each step's `run`
//! takes it, with typed parameters (durations as `Duration`) converted from the JSON input at
//! the edge.

pub mod clone;
pub mod create;
pub mod detect;
pub mod health;
pub mod install;
mod launch;
pub(crate) mod marker;
pub(crate) mod package_manager;
pub mod restart;
pub mod start;
pub mod verify;

use crate::pipeline::failure::{AtStep, Step};
use crate::PreviewError;
use forge_daytona::{Client, Toolbox};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the repository is cloned unless told otherwise (the guide's folder, relative to the
/// sandbox's work dir).
pub const DEFAULT_PATH: &str = "workspace/project";
/// Lines of log kept in outputs and errors.
pub const LOG_TAIL_LINES: usize = 40;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `base`/`rel`, where `rel` may be `.` or start with `./`.
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

/// `env` with [`node_options`] for a sandbox of `memory_gib`.
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

/// The toolbox of the sandbox a step was given by id (a failure is that step's).
async fn toolbox(client: &Client, sandbox_id: &str, step: Step) -> Result<Toolbox, PreviewError> {
    client.toolbox_for(sandbox_id).await.at(step, sandbox_id)
}

/// The sandbox's memory in GiB: `given`, else asked of the control plane.
async fn memory_of(client: &Client, sandbox_id: &str, given: Option<f64>) -> Option<f64> {
    match given {
        Some(m) => Some(m),
        None => client.get(sandbox_id).await.ok().map(|s| s.memory),
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
    fn paths_join() {
        assert_eq!(join("workspace/project", "."), "workspace/project");
        assert_eq!(
            join("workspace/project/", "./apps/web"),
            "workspace/project/apps/web"
        );
    }
}

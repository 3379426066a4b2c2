//! Snapshots and volumes (`/snapshots`, `/volumes`), and the sandbox operations built on them
//! or beside the lifecycle: fork, snapshot of a sandbox, pause, recover (network settings:
//! `network.rs`).
//! Each waits, as the official SDKs do, for the state the operation leads to.

use crate::call::CallOptions;
use crate::client::{seg, Client, DEFAULT_LIFECYCLE_TIMEOUT};
use crate::error::{Error, Result};
use crate::fetch::Method;
use crate::http::Req;
use forge_wire::{
    CreateBuildInfo, CreateSnapshot, CreateVolume, PaginatedSnapshots, Sandbox, SandboxState,
    Snapshot, SnapshotState, Volume,
};

/// What a snapshot is made from.
#[derive(Clone, Debug)]
pub enum SnapshotSource {
    /// An image name (recorded by the embedded backend: its sandboxes have the machine's
    /// toolchain).
    Image(String),
    /// A Dockerfile, built by running its steps.
    Dockerfile(String),
}

fn require(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    Ok(())
}

impl Client {
    /// `POST /snapshots`, then waits until it is `active` (an error when the build failed,
    /// with its reason). Default wait: 10 minutes (a build installs packages).
    pub async fn create_snapshot(
        &self,
        name: &str,
        source: &SnapshotSource,
        opts: &CallOptions,
    ) -> Result<Snapshot> {
        require("snapshot name", name)?;
        let deadline = opts.deadline(Some(std::time::Duration::from_mins(10)));
        let body = CreateSnapshot {
            name: name.to_string(),
            image_name: match source {
                SnapshotSource::Image(i) => Some(i.clone()),
                SnapshotSource::Dockerfile(_) => None,
            },
            build_info: match source {
                SnapshotSource::Dockerfile(d) => Some(CreateBuildInfo {
                    dockerfile_content: d.clone(),
                    context_hashes: None,
                }),
                SnapshotSource::Image(_) => None,
            },
            ..Default::default()
        };
        let url = self.transport.api("/snapshots");
        let snap: Snapshot = self
            .transport
            .json(
                Req::new(Method::POST, url, "create snapshot").json(&body)?,
                &deadline,
            )
            .await?;
        if let Some(done) = settled(name, snap.clone())? {
            return Ok(done);
        }
        let id = snap.id.as_str();
        let condition = crate::wait::from_fn(crate::wait::Backoff::LIFECYCLE, move || async move {
            settled(name, self.snapshot(id, opts).await?)
        });
        deadline.wait("create snapshot", condition).await
    }

    /// `GET /snapshots/{id or name}`.
    pub async fn snapshot(&self, id_or_name: &str, opts: &CallOptions) -> Result<Snapshot> {
        require("snapshot id", id_or_name)?;
        let url = self
            .transport
            .api(&format!("/snapshots/{}", seg(id_or_name)));
        self.transport
            .json(
                Req::new(Method::GET, url, "get snapshot"),
                &self.deadline(opts),
            )
            .await
    }

    /// `GET /snapshots?page=&limit=`.
    pub async fn snapshots(
        &self,
        page: u64,
        limit: u64,
        opts: &CallOptions,
    ) -> Result<PaginatedSnapshots> {
        let url = self.transport.api("/snapshots");
        let req = Req::new(Method::GET, url, "list snapshots")
            .query("page", page.max(1))
            .query("limit", limit.clamp(1, 200));
        self.transport.json(req, &self.deadline(opts)).await
    }

    /// `DELETE /snapshots/{id or name}` (looked up first: the route wants the id).
    pub async fn delete_snapshot(&self, id_or_name: &str, opts: &CallOptions) -> Result<()> {
        let snap = self.snapshot(id_or_name, opts).await?;
        let url = self.transport.api(&format!("/snapshots/{}", seg(&snap.id)));
        self.transport
            .empty(
                Req::new(Method::DELETE, url, "delete snapshot"),
                &self.deadline(opts),
            )
            .await
    }

    /// `POST /volumes`.
    pub async fn create_volume(&self, name: &str, opts: &CallOptions) -> Result<Volume> {
        require("volume name", name)?;
        let url = self.transport.api("/volumes");
        let body = CreateVolume {
            name: name.to_string(),
        };
        self.transport
            .json(
                Req::new(Method::POST, url, "create volume").json(&body)?,
                &self.deadline(opts),
            )
            .await
    }

    /// `GET /volumes`.
    pub async fn volumes(&self, opts: &CallOptions) -> Result<Vec<Volume>> {
        let url = self.transport.api("/volumes");
        self.transport
            .json(
                Req::new(Method::GET, url, "list volumes"),
                &self.deadline(opts),
            )
            .await
    }

    /// `GET /volumes/by-name/{name}`.
    pub async fn volume(&self, name: &str, opts: &CallOptions) -> Result<Volume> {
        require("volume name", name)?;
        let url = self
            .transport
            .api(&format!("/volumes/by-name/{}", seg(name)));
        self.transport
            .json(
                Req::new(Method::GET, url, "get volume"),
                &self.deadline(opts),
            )
            .await
    }

    /// `DELETE /volumes/{id}`.
    pub async fn delete_volume(&self, id: &str, opts: &CallOptions) -> Result<()> {
        require("volume id", id)?;
        let url = self.transport.api(&format!("/volumes/{}", seg(id)));
        self.transport
            .empty(
                Req::new(Method::DELETE, url, "delete volume"),
                &self.deadline(opts),
            )
            .await
    }

    /// `POST /sandbox/{id}/fork {name}`: a new sandbox with a copy of this one's files; waits
    /// until it is started.
    pub async fn fork(&self, id: &str, name: Option<&str>, opts: &CallOptions) -> Result<Sandbox> {
        require("sandbox id", id)?;
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self.transport.api(&format!("/sandbox/{}/fork", seg(id)));
        let body = serde_json::json!({ "name": name });
        let forked: Sandbox = self
            .transport
            .json(
                Req::new(Method::POST, url, "fork sandbox").json(&body)?,
                &deadline,
            )
            .await?;
        self.wait_for(forked, &[SandboxState::Started], &deadline, "fork sandbox")
            .await
    }

    /// `POST /sandbox/{id}/snapshot {name}`: a snapshot of the sandbox's files; waits until the
    /// snapshot is active.
    pub async fn snapshot_sandbox(
        &self,
        id: &str,
        name: &str,
        opts: &CallOptions,
    ) -> Result<Snapshot> {
        require("sandbox id", id)?;
        require("snapshot name", name)?;
        let url = self
            .transport
            .api(&format!("/sandbox/{}/snapshot", seg(id)));
        let body = serde_json::json!({ "name": name });
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        self.transport
            .empty(
                Req::new(Method::POST, url, "snapshot sandbox").json(&body)?,
                &deadline,
            )
            .await?;
        self.snapshot(name, opts).await
    }

    /// `POST /sandbox/{id}/pause`: every process of the sandbox frozen (resume with
    /// [`Client::start`]); waits until it is `paused`.
    pub async fn pause(&self, id: &str, opts: &CallOptions) -> Result<Sandbox> {
        require("sandbox id", id)?;
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self.transport.api(&format!("/sandbox/{}/pause", seg(id)));
        let s: Sandbox = self
            .transport
            .json(Req::new(Method::POST, url, "pause sandbox"), &deadline)
            .await?;
        self.wait_for(
            s,
            &[SandboxState::Paused, SandboxState::Stopped],
            &deadline,
            "pause sandbox",
        )
        .await
    }

    fn deadline(&self, opts: &CallOptions) -> crate::call::Deadline {
        opts.deadline(self.transport.default_timeout())
    }
}

/// A snapshot that is active (`Some`), still building (`None`) or failed (the error).
fn settled(name: &str, snap: Snapshot) -> Result<Option<Snapshot>> {
    match snap.state {
        SnapshotState::Active => Ok(Some(snap)),
        SnapshotState::Error | SnapshotState::BuildFailed => {
            Err(Error::Server(crate::error::ApiError {
                status: 400,
                message: format!(
                    "snapshot {name} failed: {}",
                    snap.error_reason.unwrap_or_default()
                ),
                code: Some("SNAPSHOT_FAILED".into()),
                source: None,
            }))
        }
        _ => Ok(None),
    }
}

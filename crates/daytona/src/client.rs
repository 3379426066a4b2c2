//! The control plane: sandbox lifecycle, listing and preview links (daytona-wire.md §3, §8).

use crate::call::{CallOptions, Deadline};
use crate::error::{Error, Result};
use crate::fetch::Method;
use crate::http::{Req, Transport};
use crate::retry::RetryClass;
use crate::toolbox::Toolbox;
use crate::wait::{self, Backoff, Condition};
use forge_wire::{
    CreateBuildInfo, CreateSandbox, ListSandboxesResponse, PortPreviewUrl, Sandbox, SandboxState,
    SandboxVolume, StringMap, ToolboxProxyUrl,
};
use std::time::Duration;

/// Default wait of create / start / stop / delete(wait), as in the SDK.
pub const DEFAULT_LIFECYCLE_TIMEOUT: Duration = Duration::from_mins(1);

/// The label the SDK adds to every create; `process.code_run` reads it.
pub const LANGUAGE_LABEL: &str = "code-toolbox-language";

/// Sizes of the integration guide's `workspaceClass`, which the API does not have: we send
/// them as resources (`cpu`, `memory` GiB, `disk` GiB). Disk sizes are ours: 10 / 20 / 40 GiB,
/// enough for a `node_modules` of a large monorepo at `large`, within the cloud's default
/// per-sandbox disk quota at `small`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "lowercase"))]
pub enum WorkspaceClass {
    Small,
    Medium,
    Large,
}

impl WorkspaceClass {
    /// `(cpu, memory GiB, disk GiB)`.
    pub fn resources(self) -> Resources {
        let (cpu, memory, disk) = match self {
            WorkspaceClass::Small => (2, 8, 10),
            WorkspaceClass::Medium => (4, 16, 20),
            WorkspaceClass::Large => (8, 32, 40),
        };
        Resources {
            cpu: Some(cpu),
            memory: Some(memory),
            disk: Some(disk),
            gpu: None,
        }
    }

    pub fn parse(s: &str) -> Result<WorkspaceClass> {
        match s.to_ascii_lowercase().as_str() {
            "small" => Ok(WorkspaceClass::Small),
            "medium" => Ok(WorkspaceClass::Medium),
            "large" => Ok(WorkspaceClass::Large),
            other => Err(Error::InvalidArgument(format!(
                "workspaceClass must be small, medium or large, not {other:?}"
            ))),
        }
    }
}

/// Explicit resources (memory and disk in GiB). Only valid with an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub disk: Option<u32>,
    pub gpu: Option<u32>,
}

/// What to create. An `image` is sent as `buildInfo.dockerfileContent = "FROM <image>\n"`;
/// a `snapshot` by name. Explicit `resources` win over `workspace_class`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateParams {
    pub name: Option<String>,
    pub image: Option<String>,
    pub snapshot: Option<String>,
    pub user: Option<String>,
    pub workspace_class: Option<WorkspaceClass>,
    pub resources: Option<Resources>,
    pub public: Option<bool>,
    /// Sent as `env`.
    pub env: StringMap,
    pub labels: StringMap,
    /// The `code-toolbox-language` label: `typescript` (default), `javascript` or `python`.
    pub language: Option<String>,
    /// Minutes; 0 disables auto-stop.
    pub auto_stop_interval: Option<u32>,
    /// Minutes; 0 means the maximum.
    pub auto_archive_interval: Option<u32>,
    /// Minutes; negative disables, 0 deletes on stop.
    pub auto_delete_interval: Option<i32>,
    /// Region; falls back to the config's target.
    pub target: Option<String>,
    pub volumes: Vec<SandboxVolume>,
    /// Deleted as soon as it stops (sends `autoDeleteInterval: 0`, as the SDK's `ephemeral`).
    pub ephemeral: bool,
    /// Block all outbound network traffic.
    pub network_block_all: Option<bool>,
    /// Allowed outbound CIDRs, comma-separated.
    pub network_allow_list: Option<String>,
    /// Names the sandbox may reach, and nothing else: `example.com` is that name only,
    /// `*.example.com` every name below it (not `example.com` itself). Sent as
    /// `domainAllowList` (comma-separated, as the official SDK sends it); checked before
    /// sending ([`crate::network::domain_allow_list`]). Empty: no list.
    pub domain_allow_list: Option<Vec<String>>,
    /// Makes the create idempotent: called again with the same key, `create` returns the
    /// sandbox it made (found by its [`IDEMPOTENCY_LABEL`](crate::IDEMPOTENCY_LABEL)) instead
    /// of making another. See [`crate::idempotency`].
    pub idempotency_key: Option<String>,
}

impl CreateParams {
    /// The `POST /sandbox` body, as the official SDK builds it.
    pub fn to_wire(&self, default_target: Option<&str>) -> Result<CreateSandbox> {
        if self.image.is_some() && self.snapshot.is_some() {
            return Err(Error::InvalidArgument(
                "give either image or snapshot, not both".into(),
            ));
        }
        let resources = self
            .resources
            .or(self.workspace_class.map(WorkspaceClass::resources));
        if resources.is_some() && self.snapshot.is_some() {
            return Err(Error::InvalidArgument(
                "resources / workspaceClass need an image; a snapshot has fixed resources".into(),
            ));
        }
        let language = self.language.clone().unwrap_or_else(|| "typescript".into());
        if !matches!(language.as_str(), "typescript" | "javascript" | "python") {
            return Err(Error::InvalidArgument(format!(
                "language must be typescript, javascript or python, not {language:?}"
            )));
        }
        let mut labels = self.labels.clone();
        labels.insert(LANGUAGE_LABEL.into(), language);
        let build_info = match &self.image {
            Some(image) if image.trim().is_empty() || image.contains('\n') => {
                return Err(Error::InvalidArgument(format!(
                    "not an image name: {image:?}"
                )))
            }
            Some(image) => Some(CreateBuildInfo {
                dockerfile_content: format!("FROM {}\n", image.trim()),
                context_hashes: None,
            }),
            None => None,
        };
        let r = resources.unwrap_or_default();
        // `..Default::default()` keeps this compiling when forge-wire gains fields.
        #[allow(clippy::needless_update)]
        let body = CreateSandbox {
            name: self.name.clone(),
            snapshot: self.snapshot.clone(),
            user: self.user.clone(),
            env: self.env.clone(),
            labels,
            public: self.public,
            target: self.target.clone().or(default_target.map(str::to_owned)),
            cpu: r.cpu,
            gpu: r.gpu,
            memory: r.memory,
            disk: r.disk,
            auto_stop_interval: self.auto_stop_interval,
            auto_archive_interval: self.auto_archive_interval,
            auto_delete_interval: if self.ephemeral {
                Some(0)
            } else {
                self.auto_delete_interval
            },
            network: forge_wire::UpdateNetworkSettings {
                network_block_all: self.network_block_all,
                network_allow_list: self.network_allow_list.clone(),
                domain_allow_list: match self.domain_allow_list.as_deref() {
                    Some(entries) => Some(crate::network::domain_allow_list(entries)?)
                        .filter(|list| !list.is_empty()),
                    None => None,
                },
            },
            volumes: if self.volumes.is_empty() {
                None
            } else {
                Some(self.volumes.clone())
            },
            build_info,
            ..Default::default()
        };
        Ok(body)
    }
}

/// Filter and paging of `GET /sandbox`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub cursor: Option<String>,
    /// 1–200; the server's default is 100.
    pub limit: Option<u32>,
    /// Every label must match; sent as a JSON string.
    pub labels: Option<StringMap>,
    pub states: Vec<SandboxState>,
    /// Name prefix.
    pub name: Option<String>,
    /// Id prefix.
    pub id: Option<String>,
    /// What to sort by (the server's default: last activity).
    pub sort: Option<ListSort>,
    /// Sort direction (the server's default: descending).
    pub order: Option<ListOrder>,
}

/// What `GET /sandbox` sorts by (its `sort`), with the API's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSort {
    Name,
    Cpu,
    MemoryGib,
    DiskGib,
    LastActivityAt,
    CreatedAt,
}

/// Each sort key and its wire name.
const LIST_SORTS: [(ListSort, &str); 6] = [
    (ListSort::Name, "name"),
    (ListSort::Cpu, "cpu"),
    (ListSort::MemoryGib, "memoryGib"),
    (ListSort::DiskGib, "diskGib"),
    (ListSort::LastActivityAt, "lastActivityAt"),
    (ListSort::CreatedAt, "createdAt"),
];

impl ListSort {
    /// The wire name (`lastActivityAt`, ...).
    pub fn as_str(self) -> &'static str {
        LIST_SORTS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("lastActivityAt", |(_, n)| n)
    }
    /// The key of a wire name; `InvalidArgument` naming the accepted ones otherwise.
    pub fn parse(name: &str) -> Result<ListSort> {
        LIST_SORTS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = LIST_SORTS.iter().map(|(_, n)| *n).collect();
                Error::InvalidArgument(format!(
                    "sort must be one of {} (got '{name}')",
                    names.join(", ")
                ))
            })
    }
}

/// Sort direction of `GET /sandbox` (its `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    Asc,
    Desc,
}

impl ListOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            ListOrder::Asc => "asc",
            ListOrder::Desc => "desc",
        }
    }
    /// `asc` or `desc`; `InvalidArgument` otherwise.
    pub fn parse(name: &str) -> Result<ListOrder> {
        match name {
            "asc" => Ok(ListOrder::Asc),
            "desc" => Ok(ListOrder::Desc),
            other => Err(Error::InvalidArgument(format!(
                "order must be asc or desc (got '{other}')"
            ))),
        }
    }
}

/// A sandbox timer (`POST /sandbox/{id}/<timer>/{minutes}`), with the API's meaning of its
/// minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Minutes without activity before a started sandbox is stopped; 0: never.
    AutoStop,
    /// Minutes stopped before it is archived; 0: the longest the server allows.
    AutoArchive,
    /// Minutes stopped before it is deleted; 0: as soon as it stops; negative: never.
    AutoDelete,
}

impl Interval {
    /// Its path segment, what the call is named in errors, and whether negative minutes mean
    /// something (only for auto-delete: never).
    fn wire(self) -> (&'static str, &'static str, bool) {
        match self {
            Interval::AutoStop => ("autostop", "set auto-stop interval", false),
            Interval::AutoArchive => ("autoarchive", "set auto-archive interval", false),
            Interval::AutoDelete => ("autodelete", "set auto-delete interval", true),
        }
    }
}

/// One page of sandboxes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    pub items: Vec<Sandbox>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A port's preview link (`PortPreviewUrl` on the wire). `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviewUrl {
    pub sandbox_id: String,
    pub url: String,
    /// Send as `X-Daytona-Preview-Token` to reach a private sandbox's port.
    pub token: String,
}

impl std::fmt::Debug for PreviewUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewUrl")
            .field("sandbox_id", &self.sandbox_id)
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `GET .../signed-preview-url`: a URL that carries its own short-lived token, usable without
/// headers (e.g. in an iframe). `Debug` hides the token.
pub use forge_wire::SignedPortPreviewUrl as SignedPreviewUrl;

/// The Daytona client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Transport,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", self.transport.config())
            .finish()
    }
}

/// A path segment, percent-encoded (ids and names go into paths).
pub(crate) fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn require_id(id: &str) -> Result<&str> {
    if id.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "sandbox id must not be empty".into(),
        ));
    }
    Ok(id)
}

impl Client {
    /// Resolves the config (environment included) and builds the client on the default
    /// transport ([`crate::fetch::default_fetch`]: reqwest natively, the installed JavaScript
    /// `fetch` in the WebAssembly build).
    pub fn new(config: crate::config::DaytonaConfig) -> Result<Client> {
        let resolved = config.resolve()?;
        Ok(Client {
            transport: Transport::new(resolved)?,
        })
    }

    /// Builds the client from an already validated config, without reading the environment.
    pub fn from_resolved(config: crate::config::ResolvedConfig) -> Result<Client> {
        Ok(Client {
            transport: Transport::new(config)?,
        })
    }

    /// Builds the client on another transport: every request of the client and its
    /// toolboxes goes through `fetch` (the WebAssembly build's JavaScript `fetch`; see
    /// [`crate::fetch`]). The config is used as given, without reading the environment.
    pub fn with_fetch(
        config: crate::config::ResolvedConfig,
        fetch: std::sync::Arc<dyn crate::fetch::Fetch>,
    ) -> Result<Client> {
        Ok(Client {
            transport: Transport::with_fetch(config, fetch)?,
        })
    }

    /// The API base URL in use.
    pub fn api_url(&self) -> &str {
        &self.transport.config().api_url
    }

    fn plain_deadline(&self, opts: &CallOptions) -> Deadline {
        opts.deadline(self.transport.default_timeout())
    }

    /// `POST /sandbox`, then waits for `started` (default 60 s). The create is sent once,
    /// whatever fails afterwards.
    ///
    /// A create that is aborted or runs out of time leaves nothing behind: the caller gets
    /// no sandbox to delete, so we delete it. An abort while the `POST` is in flight lets the
    /// request finish in the background (its answer names the sandbox) and then deletes.
    ///
    /// With [`CreateParams::idempotency_key`] the create is idempotent (see
    /// [`crate::idempotency`]).
    pub async fn create(&self, params: &CreateParams, opts: &CallOptions) -> Result<Sandbox> {
        match &params.idempotency_key {
            // Boxed: the look-up loop holds a whole create; inline, every caller's future
            // would carry both.
            Some(key) => Box::pin(self.create_idempotent(key, params, opts)).await,
            None => self.create_once(params, opts).await,
        }
    }

    /// One `POST /sandbox` and the wait for `started`.
    pub(crate) async fn create_once(
        &self,
        params: &CreateParams,
        opts: &CallOptions,
    ) -> Result<Sandbox> {
        let body = params.to_wire(self.transport.config().target.as_deref())?;
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let req = Req::new(
            Method::POST,
            self.transport.api("/sandbox"),
            "create sandbox",
        )
        .json(&body)?
        .class(RetryClass::Once);
        if deadline.is_cancelled() {
            return Err(Error::Aborted);
        }
        let transport = self.transport.clone();
        let post_deadline = deadline.without_cancel();
        let mut post =
            tokio::spawn(async move { transport.json::<Sandbox>(req, &post_deadline).await });
        let sandbox = match deadline.run("create sandbox", joined(&mut post)).await {
            Ok(sandbox) => sandbox,
            Err(Error::Aborted) => {
                let client = self.clone();
                let cleanup = tokio::spawn(async move {
                    if let Ok(Ok(sandbox)) = post.await {
                        client.discard(&sandbox.id).await;
                    }
                });
                let _ = cleanup.await;
                return Err(Error::Aborted);
            }
            Err(e) => return Err(e),
        };
        let id = sandbox.id.clone();
        match self
            .wait_started(sandbox, &deadline, "create sandbox")
            .await
        {
            Err(e @ (Error::Aborted | Error::Timeout { .. })) => {
                let client = self.clone();
                let _ = tokio::spawn(async move { client.discard(&id).await }).await;
                Err(e)
            }
            r => r,
        }
    }

    /// Best-effort delete of a sandbox nobody holds (an aborted create), bounded in time.
    /// Its request shows in `FORGE_LOG=debug` like any other; a failure has no one to go to.
    async fn discard(&self, id: &str) {
        let opts = CallOptions::new().with_timeout(Duration::from_secs(30));
        let _ = self.delete(id, false, &opts).await;
    }

    /// `GET /sandbox/{idOrName}`.
    pub async fn get(&self, id_or_name: &str) -> Result<Sandbox> {
        self.get_with(id_or_name, &CallOptions::default()).await
    }

    pub async fn get_with(&self, id_or_name: &str, opts: &CallOptions) -> Result<Sandbox> {
        self.get_within(id_or_name, &self.plain_deadline(opts))
            .await
    }

    pub(crate) async fn get_within(&self, id: &str, deadline: &Deadline) -> Result<Sandbox> {
        let url = self
            .transport
            .api(&format!("/sandbox/{}", seg(require_id(id)?)));
        self.transport
            .json(Req::new(Method::GET, url, "get sandbox"), deadline)
            .await
    }

    /// One page of `GET /sandbox`.
    pub async fn list(&self, query: &ListQuery, opts: &CallOptions) -> Result<ListPage> {
        self.list_within(query, &self.plain_deadline(opts)).await
    }

    async fn list_within(&self, query: &ListQuery, deadline: &Deadline) -> Result<ListPage> {
        let mut req = Req::new(
            Method::GET,
            self.transport.api("/sandbox"),
            "list sandboxes",
        )
        .query_opt("cursor", query.cursor.as_ref())
        .query_opt("limit", query.limit)
        .query_opt("id", query.id.as_ref())
        .query_opt("name", query.name.as_ref())
        .query_opt("sort", query.sort.map(ListSort::as_str))
        .query_opt("order", query.order.map(ListOrder::as_str));
        if let Some(labels) = &query.labels {
            let json = serde_json::to_string(labels)
                .map_err(|e| Error::InvalidArgument(format!("labels: {e}")))?;
            req = req.query("labels", json);
        }
        for s in &query.states {
            req = req.query("states", s.as_str());
        }
        let page: ListSandboxesResponse = self.transport.json(req, deadline).await?;
        Ok(ListPage {
            items: page.items,
            next_cursor: page.next_cursor.filter(|c| !c.is_empty()),
        })
    }

    /// Every page of `GET /sandbox`, following `nextCursor` (the deadline covers all pages).
    pub async fn list_all(&self, query: &ListQuery, opts: &CallOptions) -> Result<Vec<Sandbox>> {
        let deadline = self.plain_deadline(opts);
        let mut q = query.clone();
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.list_within(&q, &deadline).await?;
            all.extend(page.items);
            match page.next_cursor {
                // A server repeating a cursor would loop forever.
                Some(c) if seen.insert(c.clone()) => q.cursor = Some(c),
                _ => return Ok(all),
            }
        }
    }

    /// `POST /sandbox/{id}/start`, then waits for `started` (default 60 s).
    pub async fn start(&self, id: &str, opts: &CallOptions) -> Result<Sandbox> {
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self
            .transport
            .api(&format!("/sandbox/{}/start", seg(require_id(id)?)));
        let sandbox: Sandbox = self
            .transport
            .json(Req::new(Method::POST, url, "start sandbox"), &deadline)
            .await?;
        self.wait_started(sandbox, &deadline, "start sandbox").await
    }

    /// `POST /sandbox/{id}/recover`: a sandbox in `error` (a recoverable one) started again,
    /// then waits for `started` (default 60 s). Any other state is the server's 400.
    pub async fn recover(&self, id: &str, opts: &CallOptions) -> Result<Sandbox> {
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self
            .transport
            .api(&format!("/sandbox/{}/recover", seg(require_id(id)?)));
        let sandbox: Sandbox = self
            .transport
            .json(Req::new(Method::POST, url, "recover sandbox"), &deadline)
            .await?;
        self.wait_started(sandbox, &deadline, "recover sandbox")
            .await
    }

    /// Sets one of the sandbox's timers to `minutes` (see [`Interval`] for what 0 and negative
    /// values mean; negative is refused for auto-stop and auto-archive), then one `GET`.
    pub async fn set_interval(
        &self,
        id: &str,
        interval: Interval,
        minutes: i32,
        opts: &CallOptions,
    ) -> Result<Sandbox> {
        let (segment, what, negative_ok) = interval.wire();
        if minutes < 0 && !negative_ok {
            return Err(Error::InvalidArgument(format!(
                "{what}: minutes must not be negative (got {minutes})"
            )));
        }
        let deadline = self.plain_deadline(opts);
        let url = self.transport.api(&format!(
            "/sandbox/{}/{segment}/{minutes}",
            seg(require_id(id)?)
        ));
        self.transport
            .empty(Req::new(Method::POST, url, what), &deadline)
            .await?;
        self.get_within(id, &deadline).await
    }

    /// `POST /sandbox/{id}/stop?force=`, then waits for `stopped` (default 60 s).
    pub async fn stop(&self, id: &str, force: bool, opts: &CallOptions) -> Result<Sandbox> {
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self
            .transport
            .api(&format!("/sandbox/{}/stop", seg(require_id(id)?)));
        let req = Req::new(Method::POST, url, "stop sandbox").query("force", force);
        let sandbox: Sandbox = self.transport.json(req, &deadline).await?;
        self.wait_for(
            sandbox,
            &[SandboxState::Stopped, SandboxState::Destroyed],
            &deadline,
            "stop sandbox",
        )
        .await
    }

    /// `POST /sandbox/{id}/archive` (the sandbox must be stopped), then one `GET`.
    pub async fn archive(&self, id: &str, opts: &CallOptions) -> Result<Sandbox> {
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self
            .transport
            .api(&format!("/sandbox/{}/archive", seg(require_id(id)?)));
        self.transport
            .empty(Req::new(Method::POST, url, "archive sandbox"), &deadline)
            .await?;
        self.get_within(id, &deadline).await
    }

    /// `DELETE /sandbox/{id}`; with `wait`, polls until it is gone (404 counts as gone).
    pub async fn delete(&self, id: &str, wait: bool, opts: &CallOptions) -> Result<()> {
        let deadline = opts.deadline(Some(DEFAULT_LIFECYCLE_TIMEOUT));
        let url = self
            .transport
            .api(&format!("/sandbox/{}", seg(require_id(id)?)));
        self.transport
            .empty(Req::new(Method::DELETE, url, "delete sandbox"), &deadline)
            .await?;
        if wait {
            let gone = wait::from_fn(Backoff::LIFECYCLE, || async {
                match self.get_within(id, &deadline).await {
                    Err(Error::NotFound(_)) => Ok(Some(())),
                    Ok(s) if s.state == SandboxState::Destroyed => Ok(Some(())),
                    Ok(_) | Err(Error::Connection(_) | Error::Server(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            deadline.wait("delete sandbox", gone).await?;
        }
        Ok(())
    }

    /// `GET /sandbox/{id}/ports/{port}/preview-url` → `{sandboxId, url, token}`.
    pub async fn preview_url(&self, id: &str, port: u16) -> Result<PreviewUrl> {
        if port == 0 {
            return Err(Error::InvalidArgument("port must be 1-65535".into()));
        }
        let url = self.transport.api(&format!(
            "/sandbox/{}/ports/{port}/preview-url",
            seg(require_id(id)?)
        ));
        let deadline = self.plain_deadline(&CallOptions::default());
        let p: PortPreviewUrl = self
            .transport
            .json(Req::new(Method::GET, url, "preview url"), &deadline)
            .await?;
        Ok(PreviewUrl {
            sandbox_id: p.sandbox_id,
            url: p.url,
            token: p.token,
        })
    }

    /// `GET /sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=` (server default
    /// 60 s, at most 24 h).
    pub async fn signed_preview_url(
        &self,
        id: &str,
        port: u16,
        expires_in: Option<Duration>,
    ) -> Result<SignedPreviewUrl> {
        if port == 0 {
            return Err(Error::InvalidArgument("port must be 1-65535".into()));
        }
        let url = self.transport.api(&format!(
            "/sandbox/{}/ports/{port}/signed-preview-url",
            seg(require_id(id)?)
        ));
        let req = Req::new(Method::GET, url, "signed preview url")
            .query_opt("expiresInSeconds", expires_in.map(|d| d.as_secs().max(1)));
        let deadline = self.plain_deadline(&CallOptions::default());
        let mut r: SignedPreviewUrl = self.transport.json(req, &deadline).await?;
        if r.port == 0 {
            r.port = port;
        }
        Ok(r)
    }

    /// `POST /sandbox/{id}/ports/{port}/signed-preview-url/{token}/expire`: the signed URL of
    /// that token stops working at once.
    pub async fn expire_signed_preview_url(&self, id: &str, port: u16, token: &str) -> Result<()> {
        if port == 0 {
            return Err(Error::InvalidArgument("port must be 1-65535".into()));
        }
        if token.is_empty() {
            return Err(Error::InvalidArgument("token must not be empty".into()));
        }
        let url = self.transport.api(&format!(
            "/sandbox/{}/ports/{port}/signed-preview-url/{}/expire",
            seg(require_id(id)?),
            seg(token)
        ));
        let token = token.to_owned();
        let req = Req::new(Method::POST, url, "expire signed preview url").secret(Some(&token));
        let deadline = self.plain_deadline(&CallOptions::default());
        self.transport.empty(req, &deadline).await
    }

    /// The toolbox of a sandbox: `toolboxProxyUrl + "/" + id`, asking the API when the JSON
    /// lacks `toolboxProxyUrl`.
    pub async fn toolbox(&self, sandbox: &Sandbox) -> Result<Toolbox> {
        let base = if let Some(u) = sandbox
            .toolbox_proxy_url
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            u.to_string()
        } else {
            let url = self.transport.api(&format!(
                "/sandbox/{}/toolbox-proxy-url",
                seg(require_id(&sandbox.id)?)
            ));
            let deadline = self.plain_deadline(&CallOptions::default());
            let r: ToolboxProxyUrl = self
                .transport
                .json(Req::new(Method::GET, url, "toolbox proxy url"), &deadline)
                .await?;
            r.url
        };
        let sep = if base.ends_with('/') { "" } else { "/" };
        Ok(Toolbox::new(
            self.transport.clone(),
            format!("{base}{sep}{}", seg(&sandbox.id)),
            sandbox.id.clone(),
            sandbox.labels.get(LANGUAGE_LABEL).cloned(),
        ))
    }

    /// [`toolbox`](Self::toolbox) for a sandbox known by id.
    pub async fn toolbox_for(&self, id: &str) -> Result<Toolbox> {
        let sandbox = self.get(id).await?;
        self.toolbox(&sandbox).await
    }

    pub(crate) async fn wait_started(
        &self,
        sandbox: Sandbox,
        deadline: &Deadline,
        what: &str,
    ) -> Result<Sandbox> {
        self.wait_for(sandbox, &[SandboxState::Started], deadline, what)
            .await
    }

    /// Polls `GET /sandbox/{id}` until the state is one of `targets` ([`Backoff::LIFECYCLE`]).
    /// `error` / `build_failed` end the wait at once with the server's reason.
    pub(crate) async fn wait_for(
        &self,
        sandbox: Sandbox,
        targets: &[SandboxState],
        deadline: &Deadline,
        what: &str,
    ) -> Result<Sandbox> {
        let reaches = Reaches {
            client: self,
            deadline,
            targets,
            tolerant: !targets.contains(&SandboxState::Started),
            sandbox,
            fresh: true,
        };
        deadline.wait(what, reaches).await
    }
}

/// The condition "the sandbox is in one of `targets`", checked on `sandbox` as given first,
/// then on a fresh `GET` each time.
struct Reaches<'a> {
    client: &'a Client,
    deadline: &'a Deadline,
    targets: &'a [SandboxState],
    /// Connection and server errors are passed over (stop and delete: the sandbox may be
    /// going away), not while starting.
    tolerant: bool,
    sandbox: Sandbox,
    /// `sandbox` is what the server just answered: check it before asking again.
    fresh: bool,
}

impl Condition for Reaches<'_> {
    type Output = Sandbox;
    type Error = Error;

    async fn check(&mut self) -> Result<Option<Sandbox>> {
        if !std::mem::take(&mut self.fresh) {
            match self
                .client
                .get_within(&self.sandbox.id, self.deadline)
                .await
            {
                Ok(s) => self.sandbox = s,
                Err(Error::NotFound(_)) if self.targets.contains(&SandboxState::Destroyed) => {
                    self.sandbox.state = SandboxState::Destroyed;
                }
                Err(Error::Connection(_) | Error::Server(_)) if self.tolerant => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        if self.targets.contains(&self.sandbox.state) {
            return Ok(Some(self.sandbox.clone()));
        }
        if self.sandbox.state.is_failed() {
            return Err(Error::SandboxFailed {
                id: self.sandbox.id.clone(),
                state: self.sandbox.state.to_string(),
                reason: crate::error::scrub(
                    self.sandbox
                        .error_reason
                        .as_deref()
                        .unwrap_or("no reason given"),
                    self.client.transport.secrets(),
                ),
            });
        }
        Ok(None)
    }

    fn backoff(&self) -> Backoff {
        Backoff::LIFECYCLE
    }
}

/// The result of a spawned request; a panicked or cancelled task is a connection failure.
async fn joined<T>(handle: &mut tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match handle.await {
        Ok(r) => r,
        Err(e) => Err(Error::Connection(format!("request task ended: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_like_the_sdk() {
        let p = CreateParams {
            image: Some("node:22-bookworm".into()),
            workspace_class: Some(WorkspaceClass::Medium),
            public: Some(true),
            ..Default::default()
        };
        let v = serde_json::to_value(p.to_wire(Some("eu")).unwrap()).unwrap();
        assert_eq!(
            v["buildInfo"]["dockerfileContent"],
            "FROM node:22-bookworm\n"
        );
        assert_eq!(v["cpu"], 4);
        assert_eq!(v["memory"], 16);
        assert_eq!(v["disk"], 20);
        assert_eq!(v["env"], serde_json::json!({}));
        assert_eq!(v["labels"][LANGUAGE_LABEL], "typescript");
        assert_eq!(v["target"], "eu");
        assert!(v.get("snapshot").is_none());
        let bad = CreateParams {
            snapshot: Some("s".into()),
            workspace_class: Some(WorkspaceClass::Small),
            ..Default::default()
        };
        assert_eq!(
            bad.to_wire(None).unwrap_err().code(),
            "DAYTONA_INVALID_ARGUMENT"
        );
    }
}

//! `Sandbox`: a handle on one sandbox. Cheap; re-attach from an id with `daytona.getSandbox(id)`.
//! `JSON.stringify(sandbox)` gives its plain data (`toJSON()`), never the handle.

use crate::client::{into, Inner};
use crate::dto::{ForkSandboxParams, NetworkSettings, PreviewLink, SandboxInfo, SignedPreviewLink};
use crate::error::Rejection;
use crate::fs::SandboxFs;
use crate::git::SandboxGit;
use crate::json::Json;
use crate::process::SandboxProcess;
use crate::promise::{spawn_promise, Pending};
use forge_daytona::{CallOptions, Client, Interval, Toolbox};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// What a sandbox handle and its sub-objects (`process`, `fs`, `git`) share.
pub(crate) struct SandboxCore {
    pub id: String,
    pub inner: Arc<Inner>,
    pub client: Client,
    data: Mutex<forge_wire::Sandbox>,
    toolbox: OnceCell<Toolbox>,
}

impl SandboxCore {
    /// The sandbox's toolbox, resolved once per handle.
    pub(crate) async fn toolbox(&self) -> std::result::Result<Toolbox, Rejection> {
        if let Some(tb) = self.toolbox.get() {
            // Every toolbox call comes here: no copy of the sandbox record once resolved.
            return Ok(tb.clone());
        }
        let data = self.snapshot();
        self.toolbox
            .get_or_try_init(|| async { self.client.toolbox(&data).await.map_err(into) })
            .await
            .cloned()
    }

    fn snapshot(&self) -> forge_wire::Sandbox {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn set(&self, sb: forge_wire::Sandbox) {
        if let Ok(mut d) = self.data.lock() {
            *d = sb;
        }
    }
}

/// A Daytona sandbox.
#[napi]
pub struct Sandbox {
    core: Arc<SandboxCore>,
}

impl Sandbox {
    pub(crate) fn new(inner: Arc<Inner>, client: Client, sb: forge_wire::Sandbox) -> Self {
        Sandbox {
            core: Arc::new(SandboxCore {
                id: sb.id.clone(),
                inner,
                client,
                data: Mutex::new(sb),
                toolbox: OnceCell::new(),
            }),
        }
    }
}

fn lifecycle_opts(timeout: Option<u32>, cancel: forge_daytona::CancellationToken) -> CallOptions {
    let mut opts = CallOptions::new().with_cancel(cancel);
    if let Some(t) = timeout.filter(|t| *t > 0) {
        opts = opts.with_timeout(Duration::from_secs(u64::from(t)));
    }
    opts
}

impl Sandbox {
    /// Sets one of the sandbox's timers; its record (as the server now has it) kept.
    fn timer(&self, env: &Env, interval: Interval, minutes: i32) -> Result<Pending<()>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let sb = core
                .client
                .set_interval(&core.id, interval, minutes, &CallOptions::new())
                .await
                .map_err(into)?;
            core.set(sb);
            Ok::<_, Rejection>(())
        })
    }

    /// A lifecycle call (`op` on the client, the id and the call's options) whose answer is the
    /// sandbox's new record, as a promise; `timeout` in seconds, `signal` aborts the wait.
    fn lifecycle<F, Fut>(
        &self,
        env: &Env,
        timeout: Option<u32>,
        signal: Option<Object>,
        op: F,
    ) -> Result<Pending<()>>
    where
        F: FnOnce(Client, String, CallOptions) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = forge_daytona::Result<forge_wire::Sandbox>> + Send,
    {
        let core = self.core.clone();
        spawn_promise(env, signal, move |cancel| async move {
            let opts = lifecycle_opts(timeout, cancel);
            let sb = op(core.client.clone(), core.id.clone(), opts)
                .await
                .map_err(into)?;
            core.set(sb);
            Ok::<_, Rejection>(())
        })
    }
}

/// A port number from JS (1-65535).
fn port_arg(port: u32) -> std::result::Result<u16, Rejection> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Rejection::invalid(format!("port must be 1-65535, got {port}")))
}

#[napi]
impl Sandbox {
    /// The sandbox id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.core.id.clone()
    }

    /// The sandbox name (defaults to its id).
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.core.snapshot().name
    }

    /// The state as last seen (`started`, `stopped`, `archived`, ...). `refresh()` updates it;
    /// lifecycle calls update it too.
    #[napi(getter)]
    pub fn state(&self) -> String {
        self.core.snapshot().state.as_str().to_owned()
    }

    /// Whether preview URLs are public (no token needed).
    #[napi(getter)]
    pub fn public(&self) -> bool {
        self.core.snapshot().public
    }

    /// Creation time (ISO-8601), when the server gave one.
    #[napi(getter)]
    pub fn created_at(&self) -> Option<String> {
        self.core.snapshot().created_at
    }

    /// The sandbox labels.
    #[napi(getter)]
    pub fn labels(&self) -> HashMap<String, String> {
        self.core.snapshot().labels.into_iter().collect()
    }

    /// The names the sandbox may reach (`example.com,*.example.org`, normalised), if it is
    /// limited to them; as last seen (`refresh()`, `updateNetworkSettings` update it).
    #[napi(getter)]
    pub fn domain_allow_list(&self) -> Option<String> {
        self.core.snapshot().domain_allow_list
    }

    /// Plain data of the sandbox: what `JSON.stringify(sandbox)` gives, safe to return from an
    /// Inngest step or a server action.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> SandboxInfo {
        SandboxInfo::from(&self.core.snapshot())
    }

    /// Commands, code and sessions inside the sandbox.
    #[napi(getter)]
    pub fn process(&self) -> SandboxProcess {
        SandboxProcess::new(self.core.clone())
    }

    /// Files inside the sandbox.
    #[napi(getter)]
    pub fn fs(&self) -> SandboxFs {
        SandboxFs::new(self.core.clone())
    }

    /// Git repositories inside the sandbox.
    #[napi(getter)]
    pub fn git(&self) -> SandboxGit {
        SandboxGit::new(self.core.clone())
    }

    /// Fetches the sandbox again and updates `state`.
    #[napi(ts_return_type = "Promise<SandboxInfo>")]
    pub fn refresh(&self, env: &Env) -> Result<Pending<SandboxInfo>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let sb = core.client.get(&core.id).await.map_err(into)?;
            let info = SandboxInfo::from(&sb);
            core.set(sb);
            Ok::<_, Rejection>(info)
        })
    }

    /// Starts a stopped or archived sandbox and waits until it is `started` (`timeout` in
    /// seconds, default 60).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start(
        &self,
        env: &Env,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        self.lifecycle(env, timeout, signal, |c, id, o| async move {
            c.start(&id, &o).await
        })
    }

    /// Stops the sandbox (its processes are killed; files are kept) and waits until it is
    /// `stopped` (`timeout` in seconds, default 60).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop(
        &self,
        env: &Env,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        self.lifecycle(env, timeout, signal, |c, id, o| async move {
            c.stop(&id, false, &o).await
        })
    }

    /// Starts a sandbox in `error` again (Daytona's recover) and waits until it is `started`
    /// (`timeout` in seconds, default 60). A sandbox in any other state: `DAYTONA_BAD_REQUEST`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn recover(
        &self,
        env: &Env,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        self.lifecycle(env, timeout, signal, |c, id, o| async move {
            c.recover(&id, &o).await
        })
    }

    /// Minutes without activity (commands, file calls) before the sandbox is stopped; 0:
    /// never. Negative: `DAYTONA_INVALID_ARGUMENT`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_autostop_interval(&self, env: &Env, minutes: i32) -> Result<Pending<()>> {
        self.timer(env, Interval::AutoStop, minutes)
    }

    /// Minutes stopped before the sandbox is archived; 0: the longest the server allows (30
    /// days on the embedded backend). Negative: `DAYTONA_INVALID_ARGUMENT`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_auto_archive_interval(&self, env: &Env, minutes: i32) -> Result<Pending<()>> {
        self.timer(env, Interval::AutoArchive, minutes)
    }

    /// Minutes stopped before the sandbox is deleted; 0: as soon as it stops; negative: never.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_auto_delete_interval(&self, env: &Env, minutes: i32) -> Result<Pending<()>> {
        self.timer(env, Interval::AutoDelete, minutes)
    }

    /// Pauses the sandbox: every process frozen, memory kept (`state` becomes `paused`);
    /// `start()` resumes it. Waits until it is paused (`timeout` in seconds, default 60).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn pause(
        &self,
        env: &Env,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        self.lifecycle(env, timeout, signal, |c, id, o| async move {
            c.pause(&id, &o).await
        })
    }

    /// Forks the sandbox: a new sandbox with a copy of its files, started (`timeout` in
    /// seconds, default 60). The two are independent from then on.
    #[napi(
        ts_args_type = "params?: ForkSandboxParams | null, timeout?: number | undefined | null, signal?: AbortSignal",
        ts_return_type = "Promise<Sandbox>"
    )]
    pub fn fork(
        &self,
        env: &Env,
        params: Option<Unknown>,
        timeout: Option<u32>,
        signal: Option<Object>,
    ) -> Result<Pending<Sandbox>> {
        let core = self.core.clone();
        let params: ForkSandboxParams = crate::client::read_options(env, params, "fork params")?;
        let name = params.name;
        spawn_promise(env, signal, move |cancel| async move {
            let sb = core
                .client
                .fork(&core.id, name.as_deref(), &lifecycle_opts(timeout, cancel))
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(Sandbox::new(core.inner.clone(), core.client.clone(), sb))
        })
    }

    /// Saves the sandbox's files as a snapshot named `name`, to start new sandboxes from
    /// (`daytona.create({ snapshot: name })`); waits until it is `active` (`timeout` in
    /// seconds, default 60).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_snapshot(
        &self,
        env: &Env,
        name: String,
        timeout: Option<u32>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let core = self.core.clone();
        spawn_promise(env, signal, move |cancel| async move {
            core.client
                .snapshot_sandbox(&core.id, &name, &lifecycle_opts(timeout, cancel))
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(())
        })
    }

    /// Blocks (`{ networkBlockAll: true }`) or restores (`false`) the sandbox's outbound
    /// network, limits it to addresses (`{ networkAllowList: '203.0.113.0/24' }`) or to names
    /// (`{ domainAllowList: ['example.com', '*.example.org'] }`), at once, while it runs: one
    /// request with every setting given, as the official SDK sends it.
    #[napi(
        ts_args_type = "settings: NetworkSettings",
        ts_return_type = "Promise<void>"
    )]
    pub fn update_network_settings(&self, env: &Env, settings: Unknown) -> Result<Pending<()>> {
        let settings: NetworkSettings = Json::read(env, settings, "network settings")?;
        let settings = forge_daytona::NetworkSettings {
            block_all: settings.network_block_all,
            allow_list: settings.network_allow_list,
            domain_allow_list: settings
                .domain_allow_list
                .map(crate::dto::DomainAllowList::entries),
        };
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let sb = core
                .client
                .update_network_settings(&core.id, &settings, &CallOptions::new())
                .await
                .map_err(into)?;
            core.set(sb);
            Ok::<_, Rejection>(())
        })
    }

    /// Archives a stopped sandbox (files kept in cold storage).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn archive(&self, env: &Env) -> Result<Pending<()>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let sb = core
                .client
                .archive(&core.id, &CallOptions::new())
                .await
                .map_err(into)?;
            core.set(sb);
            Ok::<_, Rejection>(())
        })
    }

    /// Deletes the sandbox, its processes and its files.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete(&self, env: &Env) -> Result<Pending<()>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            core.client
                .delete(&core.id, false, &CallOptions::new())
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(())
        })
    }

    /// The preview URL of a port, and the token private sandboxes need
    /// (`X-Daytona-Preview-Token` header).
    #[napi(ts_return_type = "Promise<PreviewLink>")]
    pub fn get_preview_url(&self, env: &Env, port: u32) -> Result<Pending<PreviewLink>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let port16 = port_arg(port)?;
            let p = core
                .client
                .preview_url(&core.id, port16)
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(PreviewLink {
                sandbox_id: p.sandbox_id,
                port,
                url: p.url,
                token: p.token,
            })
        })
    }

    /// A signed preview URL of a port: opens the preview with no header or cookie (a link to
    /// share, an iframe) for `expiresInSeconds` (1 to 86 400, default 60), or until
    /// `expireSignedPreviewUrl(port, token)`. It opens that port of this sandbox only.
    #[napi(ts_return_type = "Promise<SignedPreviewLink>")]
    pub fn get_signed_preview_url(
        &self,
        env: &Env,
        port: u32,
        expires_in_seconds: Option<u32>,
    ) -> Result<Pending<SignedPreviewLink>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let port16 = port_arg(port)?;
            let expires = expires_in_seconds.map(|s| Duration::from_secs(u64::from(s)));
            let s = core
                .client
                .signed_preview_url(&core.id, port16, expires)
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(SignedPreviewLink {
                sandbox_id: s.sandbox_id,
                port,
                token: s.token,
                url: s.url,
            })
        })
    }

    /// Ends a signed preview URL of a port at once (its `token`, from `getSignedPreviewUrl`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn expire_signed_preview_url(
        &self,
        env: &Env,
        port: u32,
        token: String,
    ) -> Result<Pending<()>> {
        let core = self.core.clone();
        spawn_promise(env, None, move |_| async move {
            let port16 = port_arg(port)?;
            core.client
                .expire_signed_preview_url(&core.id, port16, &token)
                .await
                .map_err(into)
        })
    }

    /// Detects the framework, package manager and commands of a repository folder inside the
    /// sandbox (absolute, or relative to the work dir, e.g. `workspace/project`), in two round
    /// trips: one listing and one bulk download of the few files detection reads. Same answer
    /// as `detectFramework` on a local copy of the folder.
    #[napi(
        ts_args_type = "path: string, options?: DetectFrameworkOptions | null, signal?: AbortSignal",
        ts_return_type = "Promise<FrameworkDetection>"
    )]
    pub fn detect_framework(
        &self,
        env: &Env,
        path: String,
        options: Option<Unknown>,
        signal: Option<Object>,
    ) -> Result<Pending<Json<forge_detect::Detection>>> {
        let options = crate::client::read_options(env, options, crate::detect::WHAT)?;
        self.detect_in(env, path, options, signal)
    }

    /// Alias of `getPreviewUrl`, as the official SDK names it.
    #[napi(ts_return_type = "Promise<PreviewLink>")]
    pub fn get_preview_link(&self, env: &Env, port: u32) -> Result<Pending<PreviewLink>> {
        self.get_preview_url(env, port)
    }
}

impl Sandbox {
    /// `detectFramework` of a folder of this sandbox, with its options read.
    pub(crate) fn detect_in(
        &self,
        env: &Env,
        path: String,
        options: crate::detect::DetectFrameworkOptions,
        signal: Option<Object>,
    ) -> Result<Pending<Json<forge_detect::Detection>>> {
        let core = self.core.clone();
        let opts = crate::detect::core_options(options);
        spawn_promise(env, signal, move |cancel| async move {
            let opts = opts?;
            let tb = core.toolbox().await?;
            let call = CallOptions::new().with_cancel(cancel);
            let d = forge_preview::detect_in_sandbox(&tb, &path, &opts, &call)
                .await
                .map_err(crate::error::IntoRejection::into_rejection)?;
            Json::of(&d)
        })
    }
}

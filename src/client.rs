//! `Daytona`: the entry class. Talks to Daytona cloud, a self-hosted Daytona, or the embedded
//! local backend (`{ backend: 'local' }`), with the same code.

use crate::dto::{
    CleanupFilter, CleanupResult, CreateSandboxOptions, DaytonaOptions, ListSandboxesQuery,
};
use crate::error::Rejection;
use crate::json::Json;
use crate::local;
use crate::promise::{spawn_promise, Pending};
use crate::sandbox::Sandbox;
use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, ListQuery, WorkspaceClass};
use forge_wire::{SandboxState, SandboxVolume};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Where the client's backend comes from.
enum Backend {
    /// A configured client (cloud, self-hosted, or an explicit local URL).
    Remote(Client),
    /// The embedded backend of this process, started on first use.
    Local(Option<Duration>),
}

/// Shared state behind a `Daytona` instance and the sandboxes it hands out.
pub(crate) struct Inner {
    backend: Backend,
    local_client: OnceCell<Client>,
}

impl Inner {
    /// The client, starting the embedded backend first when this is a local client.
    pub(crate) async fn client(&self) -> std::result::Result<Client, Rejection> {
        match &self.backend {
            Backend::Remote(c) => Ok(c.clone()),
            Backend::Local(timeout) => self
                .local_client
                .get_or_try_init(|| async {
                    let (url, key) = local::ensure_started().await?;
                    let mut config = DaytonaConfig::new()
                        .with_api_key(key)
                        .with_api_url(url)
                        .with_user_agent_suffix(user_agent_suffix());
                    if let Some(t) = timeout {
                        config = config.with_request_timeout(*t);
                    }
                    Client::new(config).map_err(crate::error::IntoRejection::into_rejection)
                })
                .await
                .cloned(),
        }
    }
}

fn user_agent_suffix() -> String {
    format!("napi/{}", env!("CARGO_PKG_VERSION"))
}

/// The Daytona client.
///
/// ```js
/// const daytona = new Daytona({ backend: 'local' })      // embedded backend, no account needed
/// const daytona = new Daytona({ apiKey, apiUrl, target }) // Daytona cloud or self-hosted
/// ```
#[napi]
pub struct Daytona {
    pub(crate) inner: Arc<Inner>,
}

fn wants_local(options: &DaytonaOptions) -> bool {
    match options.backend {
        Some(b) => b == crate::dto::Backend::Local,
        None => {
            options.api_key.is_none()
                && options.jwt_token.is_none()
                && options.api_url.is_none()
                && std::env::var("FORGE_BACKEND").is_ok_and(|v| v == "local")
        }
    }
}

fn build(options: DaytonaOptions) -> std::result::Result<Inner, Rejection> {
    let timeout = options
        .request_timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)));
    let backend = if wants_local(&options) {
        Backend::Local(timeout)
    } else {
        let mut config = DaytonaConfig::from_env().with_user_agent_suffix(user_agent_suffix());
        if let Some(k) = options.api_key {
            config = config.with_api_key(k);
        }
        if let Some(t) = options.jwt_token {
            config.jwt_token = Some(t);
        }
        if let Some(o) = options.organization_id {
            config = config.with_organization_id(o);
        }
        if let Some(u) = options.api_url {
            config = config.with_api_url(u);
        }
        if let Some(t) = options.target {
            config = config.with_target(t);
        }
        if let Some(t) = timeout {
            config = config.with_request_timeout(t);
        }
        Backend::Remote(Client::new(config).map_err(crate::error::IntoRejection::into_rejection)?)
    };
    Ok(Inner {
        backend,
        local_client: OnceCell::new(),
    })
}

/// An optional options object (`undefined` and `null` are no options), read as JSON.
pub(crate) fn read_options<T: serde::de::DeserializeOwned + Default>(
    env: &Env,
    options: Option<Unknown>,
    what: &str,
) -> Result<T> {
    match options {
        Some(v) if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => {
            Json::read(env, v, what)
        }
        _ => Ok(T::default()),
    }
}

pub(crate) fn create_params(
    o: CreateSandboxOptions,
) -> std::result::Result<CreateParams, Rejection> {
    let workspace_class = match o.workspace_class.as_deref() {
        Some(c) => {
            Some(WorkspaceClass::parse(c).map_err(crate::error::IntoRejection::into_rejection)?)
        }
        None => None,
    };
    let resources = (o.cpu.is_some() || o.memory.is_some() || o.disk.is_some()).then_some(
        forge_daytona::Resources {
            cpu: o.cpu,
            memory: o.memory,
            disk: o.disk,
            gpu: None,
        },
    );
    let labels: forge_wire::StringMap = o.labels.unwrap_or_default().into_iter().collect();
    let language = o
        .language
        .or_else(|| labels.get(forge_daytona::LANGUAGE_LABEL).cloned());
    Ok(CreateParams {
        name: o.name,
        language,
        image: o.image,
        snapshot: o.snapshot,
        user: o.user,
        workspace_class,
        resources,
        public: o.public,
        env: o.env_vars.unwrap_or_default().into_iter().collect(),
        labels,
        auto_stop_interval: o.auto_stop_interval,
        auto_archive_interval: o.auto_archive_interval,
        auto_delete_interval: o.auto_delete_interval,
        target: o.target,
        network_block_all: o.network_block_all,
        network_allow_list: o.network_allow_list,
        domain_allow_list: o
            .domain_allow_list
            .map(crate::dto::DomainAllowList::entries),
        volumes: o
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| SandboxVolume {
                volume_id: v.volume_id,
                mount_path: v.mount_path,
                subpath: v.subpath,
            })
            .collect(),
        idempotency_key: o.idempotency_key,
        ..Default::default()
    })
}

fn list_query(q: ListSandboxesQuery) -> std::result::Result<ListQuery, Rejection> {
    let states = q
        .states
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            serde_json::from_value::<SandboxState>(serde_json::Value::String(s.clone()))
                .ok()
                .filter(|st| *st != SandboxState::Unknown || s == "unknown")
                .ok_or_else(|| Rejection::invalid(format!("unknown sandbox state '{s}'")))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let invalid = |e: forge_daytona::Error| Rejection::invalid(e.to_string());
    Ok(ListQuery {
        limit: q.limit,
        labels: q.labels.map(|l| l.into_iter().collect()),
        states,
        sort: q
            .sort
            .as_deref()
            .map(forge_daytona::ListSort::parse)
            .transpose()
            .map_err(invalid)?,
        order: q
            .order
            .as_deref()
            .map(forge_daytona::ListOrder::parse)
            .transpose()
            .map_err(invalid)?,
        ..Default::default()
    })
}

#[napi]
impl Daytona {
    /// Creates a client. Options fall back to the environment like the official SDK
    /// (`DAYTONA_API_KEY`, `DAYTONA_API_URL`, `DAYTONA_TARGET`, ...). Throws
    /// `DAYTONA_AUTH` when no credentials can be found for a remote backend.
    #[napi(constructor, ts_args_type = "options?: DaytonaOptions | null")]
    pub fn new(env: Env, options: Option<Unknown>) -> Result<Self> {
        let options: DaytonaOptions = read_options(&env, options, "Daytona options")?;
        let inner = build(options).map_err(|f| f.into_js(&env))?;
        if matches!(inner.backend, Backend::Local(_)) {
            local::register_exit_hook(&env)?;
        }
        Ok(Daytona {
            inner: Arc::new(inner),
        })
    }

    /// Creates a sandbox and waits until it is `started` (default 60 s, `timeout` in seconds).
    #[napi(
        ts_args_type = "options?: CreateSandboxOptions | null, signal?: AbortSignal",
        ts_return_type = "Promise<Sandbox>"
    )]
    pub fn create(
        &self,
        env: &Env,
        options: Option<Unknown>,
        signal: Option<Object>,
    ) -> Result<Pending<Sandbox>> {
        let inner = self.inner.clone();
        let options: CreateSandboxOptions = read_options(env, options, "create options")?;
        let timeout = options.timeout;
        let params = create_params(options);
        spawn_promise(env, signal, move |cancel| async move {
            let params = params?;
            let client = inner.client().await?;
            let mut opts = CallOptions::new().with_cancel(cancel);
            if let Some(t) = timeout.filter(|t| *t > 0) {
                opts = opts.with_timeout(Duration::from_secs(u64::from(t)));
            }
            let sb = client.create(&params, &opts).await.map_err(into)?;
            Ok::<_, Rejection>(Sandbox::new(inner, client, sb))
        })
    }

    /// Gets a sandbox by id or name (`DAYTONA_NOT_FOUND` when there is none). Use it to
    /// re-attach to a sandbox from an id stored in a previous Inngest step.
    #[napi(ts_return_type = "Promise<Sandbox>")]
    pub fn get_sandbox(&self, env: &Env, id: String) -> Result<Pending<Sandbox>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            let client = inner.client().await?;
            let sb = client.get(&id).await.map_err(into)?;
            Ok::<_, Rejection>(Sandbox::new(inner, client, sb))
        })
    }

    /// Alias of `getSandbox`, as the official SDK names it.
    #[napi(ts_return_type = "Promise<Sandbox>")]
    pub fn get(&self, env: &Env, id: String) -> Result<Pending<Sandbox>> {
        self.get_sandbox(env, id)
    }

    /// Lists sandboxes (every page), optionally filtered by labels and states.
    #[napi(
        ts_args_type = "query?: ListSandboxesQuery | null",
        ts_return_type = "Promise<Array<Sandbox>>"
    )]
    pub fn list_sandboxes(
        &self,
        env: &Env,
        query: Option<Unknown>,
    ) -> Result<Pending<Vec<Sandbox>>> {
        let inner = self.inner.clone();
        // A misspelt filter (`label`) must not list, and hand to a cleanup, every sandbox.
        let query = list_query(read_options(env, query, "listSandboxes query")?);
        spawn_promise(env, None, move |_| async move {
            let query = query?;
            let client = inner.client().await?;
            let all = client
                .list_all(&query, &CallOptions::new())
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(
                all.into_iter()
                    .map(|sb| Sandbox::new(inner.clone(), client.clone(), sb))
                    .collect(),
            )
        })
    }

    /// Deletes the sandboxes made under `key` (a `createSandbox` / `create` `idempotencyKey`)
    /// and/or carrying every one of `labels`, waits until they are gone, and returns their
    /// ids. For a workflow's `onFailure`, so that a failed run leaves no sandbox behind:
    ///
    /// ```js
    /// onFailure: async ({ event, step }) => {
    ///   await step.run('cleanup', () => daytona.cleanup({ key: `${event.data.event.id}:create-sandbox` }))
    /// }
    /// ```
    #[napi(ts_return_type = "Promise<CleanupResult>")]
    pub fn cleanup(
        &self,
        env: &Env,
        filter: CleanupFilter,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<CleanupResult>> {
        let inner = self.inner.clone();
        let cleanup = forge_daytona::Cleanup {
            key: filter.key,
            labels: filter.labels.unwrap_or_default().into_iter().collect(),
        };
        spawn_promise(env, signal, move |cancel| async move {
            let client = inner.client().await?;
            let deleted = client
                .cleanup(&cleanup, &CallOptions::new().with_cancel(cancel))
                .await
                .map_err(into)?;
            Ok::<_, Rejection>(CleanupResult { deleted })
        })
    }

    /// Snapshots: `create`, `get`, `list`, `delete` (the official SDK's `daytona.snapshot`).
    #[napi(getter)]
    pub fn snapshot(&self) -> crate::snapshots::SnapshotService {
        crate::snapshots::SnapshotService::new(self.inner.clone())
    }

    /// Volumes: `create`, `get`, `list`, `delete` (the official SDK's `daytona.volume`).
    #[napi(getter)]
    pub fn volume(&self) -> crate::snapshots::VolumeService {
        crate::snapshots::VolumeService::new(self.inner.clone())
    }

    /// The control-plane URL in use (for the embedded backend: once it has started).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn api_url(&self, env: &Env) -> Result<Pending<String>> {
        let inner = self.inner.clone();
        spawn_promise(env, None, move |_| async move {
            Ok::<_, Rejection>(inner.client().await?.api_url().to_owned())
        })
    }
}

pub(crate) fn into(e: forge_daytona::Error) -> Rejection {
    crate::error::IntoRejection::into_rejection(e)
}

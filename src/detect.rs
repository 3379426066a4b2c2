//! JS face of forge-detect: `detectFramework(folder | files, options?)` (a promise; the
//! folder walk runs on the libuv thread pool) and `detectFrameworkSync(files, options?)` for
//! in-memory maps. The sandbox form is added on the client side: it lists the sandbox folder
//! once, downloads `forge_detect::candidate_paths` in one bulk call and runs
//! `forge_detect::detect_snapshot`.

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{Failure, IntoFailure};

impl IntoFailure for forge_detect::DetectError {
    fn into_failure(self) -> Failure {
        Failure::new(self.code(), self.to_string())
    }
}

/// Options of `detectFramework` / `detectFrameworkSync`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct DetectFrameworkOptions {
    /// The app folder to answer for, relative to the given folder (a monorepo package such as
    /// `apps/web`), instead of the automatic pick.
    pub root: Option<String>,
    /// Port to put in the dev command (default: the port the project pins, else the
    /// framework's own default). Ignored where the app hard-codes its port.
    pub port: Option<u32>,
    /// Preview host names the dev server must accept; a leading `.` allows every subdomain.
    /// Default `['.daytona.work']`.
    pub allowed_hosts: Option<Vec<String>>,
}

/// The framework found.
#[napi(object, object_from_js = false)]
pub struct DetectedFramework {
    /// Stable id: `nextjs`, `nuxt`, `vite-react`, `sveltekit`, `express`, `static`, ...
    pub id: String,
    pub name: String,
    /// The dependency version as written in package.json, without `^`/`~`.
    pub version: Option<String>,
}

/// Package manager and how it was found.
#[napi(object, object_from_js = false)]
pub struct DetectedPackageManager {
    /// `npm`, `pnpm`, `yarn` or `bun`.
    pub name: String,
    /// From the `packageManager` field, or `1` / `berry` for Yarn when only that is known.
    pub version: Option<String>,
    /// `packageManager`, `lockfile`, `engines` or `default`.
    pub source: String,
    /// The lockfile found, relative to the repository root.
    pub lockfile: Option<String>,
}

/// The monorepo around the app.
#[napi(object, object_from_js = false)]
pub struct DetectedMonorepo {
    /// `npm-workspaces`, `yarn-workspaces`, `pnpm-workspaces`, `bun-workspaces`, `turbo`,
    /// `nx`, `lerna`, or `folders` (several app folders without a declaration).
    pub tools: Vec<String>,
    /// Every package folder.
    pub packages: Vec<String>,
}

/// Something skipped or guessed; the answer is still given.
#[napi(object, object_from_js = false)]
pub struct DetectionWarning {
    /// Stable code: `PACKAGE_JSON_INVALID`, `SEVERAL_LOCKFILES`, `HARD_CODED_PORT`, ...
    pub code: String,
    pub message: String,
}

/// How to install and start a repository (or one app of it) for a preview.
#[napi(object, object_from_js = false)]
pub struct FrameworkDetection {
    /// `null` when nothing was recognised.
    pub framework: Option<DetectedFramework>,
    /// 0 to 1 (0.95 dependency + config file, 0.9 dependency, lower for servers, tooling,
    /// plain Node and static files; x0.7 when several frameworks tied).
    pub confidence: f64,
    /// Every signal and rule behind the answer.
    pub evidence: Vec<String>,
    pub package_manager: DetectedPackageManager,
    /// Run in `installRoot`; `null` without a package.json.
    pub install_command: Option<String>,
    /// Folder to install in (the lockfile's folder, the monorepo root), repository-relative.
    pub install_root: String,
    /// Run in `root` with `env`; listens on 0.0.0.0:`port`.
    pub dev_command: Option<String>,
    pub build_command: Option<String>,
    pub port: Option<u32>,
    /// Env for the dev command (port, host, allowed preview hosts, framework switches).
    pub env: HashMap<String, String>,
    /// From `.nvmrc`, `.node-version` or `engines.node`.
    pub node_version: Option<String>,
    /// The app folder, repository-relative (`.` for the root).
    pub root: String,
    /// The package name from its package.json.
    pub name: Option<String>,
    pub monorepo: Option<DetectedMonorepo>,
    /// Every app of a monorepo, each with its own full answer.
    pub apps: Vec<FrameworkDetection>,
    pub warnings: Vec<DetectionWarning>,
}

impl From<forge_detect::Detection> for FrameworkDetection {
    fn from(d: forge_detect::Detection) -> Self {
        FrameworkDetection {
            framework: d.framework.map(|f| DetectedFramework {
                id: f.id,
                name: f.name,
                version: f.version,
            }),
            confidence: d.confidence,
            evidence: d.evidence,
            package_manager: DetectedPackageManager {
                name: d.package_manager.name,
                version: d.package_manager.version,
                source: d.package_manager.source,
                lockfile: d.package_manager.lockfile,
            },
            install_command: d.install_command,
            install_root: d.install_root,
            dev_command: d.dev_command,
            build_command: d.build_command,
            port: d.port.map(u32::from),
            env: d.env.into_iter().collect(),
            node_version: d.node_version,
            root: d.root,
            name: d.name,
            monorepo: d.monorepo.map(|m| DetectedMonorepo {
                tools: m.tools,
                packages: m.packages,
            }),
            apps: d.apps.into_iter().map(Into::into).collect(),
            warnings: d
                .warnings
                .into_iter()
                .map(|w| DetectionWarning {
                    code: w.code.to_string(),
                    message: w.message,
                })
                .collect(),
        }
    }
}

fn core_options(
    o: Option<DetectFrameworkOptions>,
) -> std::result::Result<forge_detect::DetectOptions, Failure> {
    let o = o.unwrap_or_default();
    let port = match o.port {
        Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            Failure::invalid(format!("port must be between 1 and 65535, got {p}"))
        })?),
        None => None,
    };
    Ok(forge_detect::DetectOptions {
        root: o.root,
        port,
        allowed_hosts: o.allowed_hosts.unwrap_or_default(),
    })
}

enum Input {
    Folder(String),
    Files(HashMap<String, String>),
}

fn run(
    input: Input,
    opts: std::result::Result<forge_detect::DetectOptions, Failure>,
) -> std::result::Result<FrameworkDetection, Failure> {
    let opts = opts?;
    let d = match input {
        Input::Folder(path) => forge_detect::detect_dir(path, &opts),
        Input::Files(files) => forge_detect::detect_files(files, &opts),
    };
    d.map(Into::into).map_err(IntoFailure::into_failure)
}

/// Detection off the JS thread.
pub struct DetectTask {
    input: Option<Input>,
    opts: Option<std::result::Result<forge_detect::DetectOptions, Failure>>,
}

/// The outcome carried from the thread pool back to JS (the failure becomes a typed JS
/// error in `resolve`, where an `Env` exists).
pub struct DetectOutcome(std::result::Result<FrameworkDetection, Failure>);

impl Task for DetectTask {
    type Output = DetectOutcome;
    type JsValue = FrameworkDetection;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(DetectOutcome(match (self.input.take(), self.opts.take()) {
            (Some(i), Some(o)) => run(i, o),
            _ => Err(Failure::invalid("detection already ran")),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.0.map_err(|f| f.into_js(&env))
    }
}

/// Detects the framework, package manager, install and dev commands of a repository.
///
/// `input` is a local folder path, or an in-memory map `{ 'package.json': '...', ... }` of
/// repository-relative paths to file contents. For monorepos the answer is the most likely
/// preview app (override with `options.root`) and `apps` lists every app with its own answer.
/// Rejects with `code` `DETECT_NOT_FOUND`, `DETECT_NOT_A_DIRECTORY`, `DETECT_ROOT_NOT_FOUND`,
/// `DETECT_INVALID_ROOT` or `DAYTONA_INVALID_ARGUMENT`; problems inside the repository are
/// `warnings`, never rejections.
#[napi(ts_return_type = "Promise<FrameworkDetection>")]
pub fn detect_framework(
    input: Either<String, HashMap<String, String>>,
    options: Option<DetectFrameworkOptions>,
) -> AsyncTask<DetectTask> {
    let input = match input {
        Either::A(path) => Input::Folder(path),
        Either::B(files) => Input::Files(files),
    };
    AsyncTask::new(DetectTask {
        input: Some(input),
        opts: Some(core_options(options)),
    })
}

/// Synchronous detection of an in-memory `{ path: content }` map (no I/O, microseconds).
#[napi]
pub fn detect_framework_sync(
    env: Env,
    files: HashMap<String, String>,
    options: Option<DetectFrameworkOptions>,
) -> Result<FrameworkDetection> {
    run(Input::Files(files), core_options(options)).map_err(|f| f.into_js(&env))
}

//! JS face of forge-detect: `detectFramework(folder | files, options?)` (a promise; the
//! folder walk runs on the libuv thread pool) and `detectFrameworkSync(files, options?)` for
//! in-memory maps. The sandbox form is added on the client side: it lists the sandbox folder
//! once, downloads `forge_detect::candidate_paths` in one bulk call and runs
//! `forge_detect::detect_snapshot`.
//!
//! The answer crosses the boundary as [`Json`] (the core's serde JSON, one `JSON.parse`). The
//! `#[napi(object)]` structs below are therefore only the TypeScript description of that JSON
//! (same names, same nullability; `__test__/detect.test.mjs` checks the shape).

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{Code, IntoRejection, Rejection};
use crate::json::Json;
use crate::promise::{spawn_promise, Pending};

impl IntoRejection for forge_detect::DetectError {
    fn into_rejection(self) -> Rejection {
        Rejection::new(self.code(), self.to_string())
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
    /// With a sandbox as input: the repository folder inside it (absolute, or relative to
    /// the work dir, e.g. `workspace/project`). Default: the work dir.
    pub path: Option<String>,
}

/// The framework found.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct DetectedFramework {
    /// Stable id: `nextjs`, `nuxt`, `vite-react`, `sveltekit`, `express`, `static`, ...
    pub id: String,
    pub name: String,
    /// The dependency version as written in package.json, without `^`/`~`.
    #[napi(ts_type = "string | null")]
    pub version: Option<String>,
}

/// Package manager and how it was found.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct DetectedPackageManager {
    /// `npm`, `pnpm`, `yarn` or `bun`.
    pub name: String,
    /// From the `packageManager` field, or `1` / `berry` for Yarn when only that is known.
    #[napi(ts_type = "string | null")]
    pub version: Option<String>,
    /// `packageManager`, `lockfile`, `engines` or `default`.
    pub source: String,
    /// The lockfile found, relative to the repository root.
    #[napi(ts_type = "string | null")]
    pub lockfile: Option<String>,
    /// The npm package that runs this package manager where the sandbox has none or another
    /// major (`pnpm@10.2.0`, `pnpm@9` from the lockfile's format, `yarn@1`,
    /// `@yarnpkg/cli-dist@4`); `null` for npm. The pipeline installs it when needed.
    #[napi(ts_type = "string | null")]
    pub fetch_spec: Option<String>,
}

/// The monorepo around the app.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct DetectedMonorepo {
    /// `npm-workspaces`, `yarn-workspaces`, `pnpm-workspaces`, `bun-workspaces`, `turbo`,
    /// `nx`, `lerna`, or `folders` (several app folders without a declaration).
    pub tools: Vec<String>,
    /// Every package folder.
    pub packages: Vec<String>,
    /// The folder the root package.json's scripts run the app in (`yarn --cwd website
    /// start`), when the root is no app itself.
    #[napi(ts_type = "string | null")]
    pub entry: Option<String>,
}

/// Something skipped or guessed; the answer is still given.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct DetectionWarning {
    /// Stable code: `PACKAGE_JSON_INVALID`, `SEVERAL_LOCKFILES`, `HARD_CODED_PORT`, ...
    pub code: String,
    pub message: String,
}

/// How to install and start a repository (or one app of it) for a preview.
#[napi(object, object_from_js = false)]
#[allow(dead_code)] // TypeScript description of the JSON answer; never built in Rust
pub struct FrameworkDetection {
    /// `null` when nothing was recognised.
    #[napi(ts_type = "DetectedFramework | null")]
    pub framework: Option<DetectedFramework>,
    /// 0 to 1 (0.95 dependency + config file, 0.9 dependency, lower for servers, tooling,
    /// plain Node and static files; x0.7 when several frameworks tied).
    pub confidence: f64,
    /// Every signal and rule behind the answer.
    pub evidence: Vec<String>,
    pub package_manager: DetectedPackageManager,
    /// Run in `installRoot`; `null` without a package.json.
    #[napi(ts_type = "string | null")]
    pub install_command: Option<String>,
    /// Folder to install in (the lockfile's folder, the monorepo root), repository-relative.
    pub install_root: String,
    /// Env for the install: download-only postinstalls (Cypress, Playwright, Puppeteer,
    /// Electron, …) switched off by their documented variables; the evidence says why.
    pub install_env: HashMap<String, String>,
    /// Run in `installRoot` after the install: builds the workspace packages the app depends
    /// on (through the repository's turbo, pnpm's filter, or each package's build script).
    #[napi(ts_type = "string | null")]
    pub prepare_command: Option<String>,
    /// Run in `root` with `env`; listens on 0.0.0.0:`port`.
    #[napi(ts_type = "string | null")]
    pub dev_command: Option<String>,
    #[napi(ts_type = "string | null")]
    pub build_command: Option<String>,
    #[napi(ts_type = "number | null")]
    pub port: Option<u32>,
    /// Env for the dev command (port, host, allowed preview hosts, framework switches).
    pub env: HashMap<String, String>,
    /// From `.nvmrc`, `.node-version` or `engines.node`.
    #[napi(ts_type = "string | null")]
    pub node_version: Option<String>,
    /// The app folder, repository-relative (`.` for the root).
    pub root: String,
    /// The package name from its package.json.
    #[napi(ts_type = "string | null")]
    pub name: Option<String>,
    #[napi(ts_type = "DetectedMonorepo | null")]
    pub monorepo: Option<DetectedMonorepo>,
    /// Every app of a monorepo, each with its own full answer.
    pub apps: Vec<FrameworkDetection>,
    pub warnings: Vec<DetectionWarning>,
}

pub(crate) fn core_options(
    o: Option<DetectFrameworkOptions>,
) -> std::result::Result<forge_detect::DetectOptions, Rejection> {
    let o = o.unwrap_or_default();
    let port = match o.port {
        Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            Rejection::invalid(format!("port must be between 1 and 65535, got {p}"))
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
    opts: std::result::Result<forge_detect::DetectOptions, Rejection>,
) -> std::result::Result<forge_detect::Detection, Rejection> {
    let opts = opts?;
    let d = match input {
        Input::Folder(path) => forge_detect::detect_dir(path, &opts),
        Input::Files(files) => forge_detect::detect_files(files, &opts),
    };
    d.map_err(IntoRejection::into_rejection)
}

/// Detects the framework, package manager, install and dev commands of a repository.
///
/// `input` is a local folder path, a `Sandbox` (the folder `options.path` inside it, read in
/// two round trips), or an in-memory map `{ 'package.json': '...', ... }` of
/// repository-relative paths to file contents. For monorepos the answer is the most likely
/// preview app (override with `options.root`) and `apps` lists every app with its own answer.
/// Rejects with `code` `DETECT_NOT_FOUND`, `DETECT_NOT_A_DIRECTORY`, `DETECT_ROOT_NOT_FOUND`,
/// `DETECT_INVALID_ROOT` or `DAYTONA_INVALID_ARGUMENT`; problems inside the repository are
/// `warnings`, never rejections.
///
/// A small folder (at most 400 entries, a fraction of a millisecond) and a files map are
/// answered on the calling thread with an already-resolved promise; larger folders are walked
/// on the runtime's blocking pool.
#[napi(ts_return_type = "Promise<FrameworkDetection>")]
pub fn detect_framework(
    env: Env,
    #[napi(ts_arg_type = "string | Sandbox | Record<string, string>")] input: Either3<
        String,
        ClassInstance<'_, crate::sandbox::Sandbox>,
        HashMap<String, String>,
    >,
    options: Option<DetectFrameworkOptions>,
) -> Result<Pending<Json<forge_detect::Detection>>> {
    let input = match input {
        Either3::A(path) => Either::A(path),
        Either3::B(sandbox) => {
            // A folder inside a sandbox: `options.path` (default: the work dir).
            let path = options
                .as_ref()
                .and_then(|o| o.path.clone())
                .unwrap_or_else(|| ".".to_owned());
            return sandbox.detect_framework(&env, path, options, None);
        }
        Either3::C(files) => Either::B(files),
    };
    let opts = core_options(options);
    let input = match (input, &opts) {
        (Either::A(path), Ok(o)) => {
            let small = forge_detect::WalkLimits {
                max_entries: 400,
                ..Default::default()
            };
            match forge_detect::detect_dir_within(&path, o, small) {
                Ok(d) if !d.warnings.iter().any(|w| w.code == "WALK_TRUNCATED") => {
                    return resolved(&env, &d);
                }
                _ => Input::Folder(path),
            }
        }
        (Either::A(path), Err(_)) => Input::Folder(path),
        (Either::B(files), Ok(o)) => {
            match forge_detect::detect_files(files.iter().map(|(p, c)| (p.as_str(), c.as_str())), o)
            {
                Ok(d) => return resolved(&env, &d),
                Err(_) => Input::Files(files),
            }
        }
        (Either::B(files), Err(_)) => Input::Files(files),
    };
    // Failures (and big folders) go through the runtime, which rejects with a typed error.
    spawn_promise(&env, None, move |_| async move {
        let d = tokio::task::spawn_blocking(move || run(input, opts))
            .await
            .map_err(|e| Rejection::of(Code::Internal, e.to_string()))??;
        Json::of(&d)
    })
}

/// An already-resolved promise of the answer (`Json::of` fails only on a bug).
fn resolved(
    env: &Env,
    d: &forge_detect::Detection,
) -> Result<Pending<Json<forge_detect::Detection>>> {
    let json = Json::of(d).map_err(|f| f.into_js(env))?;
    crate::promise::resolved(env, json)
}

/// Synchronous detection of an in-memory `{ path: content }` map (no I/O, microseconds).
#[napi(ts_return_type = "FrameworkDetection")]
pub fn detect_framework_sync(
    env: Env,
    files: HashMap<String, String>,
    options: Option<DetectFrameworkOptions>,
) -> Result<Json<forge_detect::Detection>> {
    run(Input::Files(files), core_options(options))
        .and_then(|d| Json::of(&d))
        .map_err(|f| f.into_js(&env))
}

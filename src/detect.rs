//! JS face of forge-detect: `detectFramework(folder | files, options?)` (a promise; the
//! folder walk runs on the libuv thread pool) and `detectFrameworkSync(files, options?)` for
//! in-memory maps. The sandbox form is added on the client side: it lists the sandbox folder
//! once, downloads `forge_detect::candidate_paths` in one bulk call and runs
//! `forge_detect::detect_snapshot`.
//!
//! The answer crosses the boundary as [`Json`] (the core's serde JSON, one `JSON.parse`); its
//! TypeScript (`FrameworkDetection`) is generated from `forge_detect::Detection` (`typings.rs`).

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::client::read_options;
use crate::error::{Code, IntoRejection, Rejection};
use crate::json::Json;
use crate::promise::{spawn_promise, Pending};

impl IntoRejection for forge_detect::DetectError {
    fn into_rejection(self) -> Rejection {
        Rejection::new(self.code(), self.to_string())
    }
}

/// Options of `detectFramework` / `detectFrameworkSync` (read as JSON, like every options
/// object: a misspelt key is refused).
#[derive(Default, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
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

/// What the options are called in errors.
pub(crate) const WHAT: &str = "detectFramework options";

pub(crate) fn core_options(
    o: DetectFrameworkOptions,
) -> std::result::Result<forge_detect::DetectOptions, Rejection> {
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
#[napi(
    ts_args_type = "input: string | Sandbox | Record<string, string>, options?: DetectFrameworkOptions | null",
    ts_return_type = "Promise<FrameworkDetection>"
)]
pub fn detect_framework(
    env: Env,
    input: Either3<String, ClassInstance<'_, crate::sandbox::Sandbox>, HashMap<String, String>>,
    options: Option<Unknown>,
) -> Result<Pending<Json<forge_detect::Detection>>> {
    let options: DetectFrameworkOptions = read_options(&env, options, WHAT)?;
    let input = match input {
        Either3::A(path) => Either::A(path),
        Either3::B(sandbox) => {
            // A folder inside a sandbox: `options.path` (default: the work dir).
            let path = options.path.clone().unwrap_or_else(|| ".".to_owned());
            return sandbox.detect_in(&env, path, options, None);
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
#[napi(
    ts_args_type = "files: Record<string, string>, options?: DetectFrameworkOptions | null",
    ts_return_type = "FrameworkDetection"
)]
pub fn detect_framework_sync(
    env: Env,
    files: HashMap<String, String>,
    options: Option<Unknown>,
) -> Result<Json<forge_detect::Detection>> {
    let options: DetectFrameworkOptions = read_options(&env, options, WHAT)?;
    run(Input::Files(files), core_options(options))
        .and_then(|d| Json::of(&d))
        .map_err(|f| f.into_js(&env))
}

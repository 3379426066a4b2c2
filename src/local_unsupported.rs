//! `crate::local` off Linux (and in the WebAssembly build), where the embedded backend is not built (its sandboxes are Linux
//! namespace containers; `forge-local` is a Linux-only dependency): `new Daytona({ backend:
//! 'local' })` throws `DAYTONA_LOCAL_UNSUPPORTED`, which names this platform and says how to
//! run `forge local` on Linux instead. Same functions as `src/local.rs`, so callers do not
//! change.

use crate::error::{Code, Rejection};

fn refusal() -> Rejection {
    Rejection::of(Code::LocalUnsupported, message())
}

#[cfg(not(target_family = "wasm"))]
fn message() -> String {
    forge_wire::platform::local_unsupported(std::env::consts::OS, std::env::consts::ARCH)
}

/// The WebAssembly build runs where a native `forge local` usually can too (the same Linux
/// machine or container): say so.
#[cfg(target_family = "wasm")]
fn message() -> String {
    "the embedded backend (backend: 'local') is not in the WebAssembly build: its sandboxes \
     are Linux namespace containers, which WASI cannot start. Run `npx forge local` (the \
     native command line, on Linux or in a Linux container) and pass the DAYTONA_API_URL and \
     DAYTONA_API_KEY it prints as apiUrl / apiKey, or set DAYTONA_API_KEY to use Daytona"
        .to_owned()
}

/// Called when a local client is made: refuses it here, at construction, rather than at its
/// first call.
pub(crate) fn register_exit_hook(env: &napi::Env) -> napi::Result<()> {
    Err(refusal().into_js(env))
}

/// Unreachable in practice (no local client can be made), refused the same way all the same.
#[allow(clippy::unused_async)]
pub(crate) async fn ensure_started() -> Result<(String, String), Rejection> {
    Err(refusal())
}

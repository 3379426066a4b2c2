//! `crate::local` off Linux, where the embedded backend is not built (its sandboxes are Linux
//! namespace containers; `forge-local` is a Linux-only dependency): `new Daytona({ backend:
//! 'local' })` throws `DAYTONA_LOCAL_UNSUPPORTED`, which names this platform and says how to
//! run `forge local` on Linux instead. Same functions as `src/local.rs`, so callers do not
//! change.

use crate::error::{Code, Rejection};

fn refusal() -> Rejection {
    Rejection::of(
        Code::LocalUnsupported,
        forge_wire::platform::local_unsupported(std::env::consts::OS, std::env::consts::ARCH),
    )
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

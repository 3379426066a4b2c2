//! The embedded local backend of this process: one per process, started on first use by a
//! `new Daytona({ backend: 'local' })` client with the settings of `FORGE_*` variables
//! (`LocalConfig::from_env`), stopped when the process exits (a napi env cleanup hook drops
//! it). Its sandboxes keep running after that (a `next dev` restart finds them and their
//! previews again), unless `FORGE_STOP_SANDBOXES_ON_EXIT=1`.

use crate::error::{Code, Rejection};
use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{FnArgs, Function, Object, Unknown};
use napi::Env;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// URL and key of the running backend.
static ADDRESS: OnceCell<(String, String)> = OnceCell::const_new();
/// The backend itself, taken and dropped at exit.
static HANDLE: Mutex<Option<forge_local::LocalBackend>> = Mutex::new(None);
static HOOKED: AtomicBool = AtomicBool::new(false);

/// `process.on(event, listener)`.
type EventOn<'a> = Function<'a, FnArgs<(String, Function<'a, (), ()>)>, Unknown<'a>>;

/// Registers the exit hook once per process. Called from the JS thread when a local client
/// is made, so that the hook exists before the backend can start.
pub(crate) fn register_exit_hook(env: &Env) -> napi::Result<()> {
    if HOOKED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    // A natural exit runs env cleanup hooks; `process.exit()` does not, but emits 'exit'.
    env.add_env_cleanup_hook((), |()| stop())?;
    let process: Object = env.get_global()?.get_named_property("process")?;
    let on: EventOn = process.get_named_property("on")?;
    let on_exit = env.create_function_from_closure::<(), (), _>("forgeLocalBackendExit", |_| {
        stop();
        Ok(())
    })?;
    on.apply(process, ("exit".to_owned(), on_exit).into())?;
    Ok(())
}

/// Drops the backend (its sandboxes are stopped only with `FORGE_STOP_SANDBOXES_ON_EXIT=1`).
fn stop() {
    if let Ok(mut h) = HANDLE.lock() {
        drop(h.take());
    }
}

/// Starts the backend if needed; returns its API URL and key.
pub(crate) async fn ensure_started() -> Result<(String, String), Rejection> {
    ADDRESS
        .get_or_try_init(|| async {
            let b = forge_local::LocalBackend::start(forge_local::LocalConfig::from_env())
                .await
                .map_err(|e| Rejection::of(Code::LocalBackend, e.to_string()))?;
            let address = (b.api_url(), b.api_key().to_owned());
            if let Ok(mut h) = HANDLE.lock() {
                *h = Some(b);
            }
            Ok(address)
        })
        .await
        .cloned()
}

//! Spike: can an async export, on wasm32-wasip1-threads, call a JS function that returns a
//! Promise and get its value back on the awaiting Tokio task?

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

/// The project's own runtime shape (src/lib.rs): multi-thread, `enable_all`, 8 MiB stacks.
/// Chosen at load time by `SPIKE_RT=custom` so one build tries both runtimes.
#[napi_derive::module_init]
fn init() {
    // `SPIKE_RT=time`: timers but no I/O driver: the fix (docs/wasm.md). On WASI the I/O
    // driver parks a worker in `poll_oneoff`, which another thread cannot interrupt (mio has
    // no waker there; with nothing to wait for it returns at once, so an idle runtime spins).
    // Without it a worker parks on Tokio's condvar, which the JS thread's wake notifies, as
    // long as Tokio is built with `cfg(target_feature = "atomics")` (../../.cargo/config.toml;
    // otherwise a timed park is a plain `std::thread::sleep`).
    if std::env::var("SPIKE_RT").as_deref() == Ok("time") {
        // napi-rs's own runtime runs its WASI heap sync before every poll (`on_before_task_poll`);
        // a custom one has to do the same, or a worker may touch memory another thread grew.
        if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .enable_time()
            .on_before_task_poll(|_| napi::sys::wasi_heap_sync::refresh_if_behind())
            .build()
        {
            create_custom_tokio_runtime(rt);
        }
    }
    if std::env::var("SPIKE_RT").as_deref() == Ok("custom") {
        if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(8 * 1024 * 1024)
            .build()
        {
            create_custom_tokio_runtime(rt);
        }
    }
}

/// A: the canonical napi-rs shape: a threadsafe function whose return value is a Promise,
/// `call_async` then `.await` the Promise, from a `#[napi] async fn`.
#[napi]
pub async fn call_tsfn(
    f: ThreadsafeFunction<String, Promise<String>>,
    arg: String,
) -> Result<String> {
    let p = f.call_async(Ok(arg)).await?;
    let v = p.await?;
    Ok(format!("rust got: {v}"))
}

/// B: the same, N times in a row, with a Tokio timer between calls (a task woken by a timer
/// and by JS alternately).
#[napi]
pub async fn call_tsfn_loop(f: ThreadsafeFunction<u32, Promise<u32>>, n: u32) -> Result<u32> {
    let mut sum = 0;
    for i in 0..n {
        let p = f.call_async(Ok(i)).await?;
        sum += p.await?;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    Ok(sum)
}

/// C: the call made from a task spawned on the runtime (not the export's own future), the
/// answer sent back through a oneshot: the shape a transport seam inside a core crate has.
#[napi]
pub async fn call_tsfn_spawned(
    f: ThreadsafeFunction<String, Promise<String>>,
    arg: String,
) -> Result<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    napi::bindgen_prelude::spawn(async move {
        let r = async { f.call_async(Ok(arg)).await?.await }.await;
        let _ = tx.send(r);
    });
    rx.await.map_err(|_| Error::from_reason("sender dropped"))?
}

/// Which thread runs the export's future (0 = the JS thread under wasi, else a worker).
#[napi]
pub async fn runtime_alive() -> Result<String> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    if std::env::var("SPIKE_TRACE").is_ok() {
        eprintln!("rust: stderr from a runtime worker");
    }
    Ok("alive".to_owned())
}

// The project's own files, unchanged (error.rs here is a shim of what they use).
#[path = "../../../src/callback.rs"]
mod callback;
mod error;
#[path = "../../../src/promise.rs"]
mod promise;

/// D: the project's own path: a sync export that returns `spawn_promise`'s promise (work on
/// the runtime, settled through promise.rs's one raw threadsafe function), whose work calls a
/// JS function through callback.rs's `JsCallback` (`call_async_catch`, then the returned
/// promise awaited) `n` times.
#[napi(ts_return_type = "Promise<number>")]
pub fn project_path(
    env: Env,
    f: callback::JsCallback<u32>,
    n: u32,
) -> Result<promise::Pending<u32>> {
    promise::spawn_promise(&env, None, move |_token| async move {
        for i in 0..n {
            f.call("onValue", i).await?;
        }
        Ok::<u32, error::Rejection>(n)
    })
}

/// E: a JS function that answers with a value (a fetch's response) through the project's
/// settle path: a ThreadsafeFunction returning Promise<String>, awaited inside spawn_promise.
#[napi(ts_return_type = "Promise<string>")]
pub fn project_fetch(
    env: Env,
    f: ThreadsafeFunction<String, Promise<String>>,
    url: String,
) -> Result<promise::Pending<String>> {
    promise::spawn_promise(&env, None, move |_token| async move {
        let p = f
            .call_async(Ok(url))
            .await
            .map_err(|e| error::Rejection::of(error::Code::CallbackError, e.reason))?;
        p.await
            .map_err(|e| error::Rejection::of(error::Code::CallbackError, e.reason))
    })
}

mod client;

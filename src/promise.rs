//! The one way core work becomes a JS promise: [`spawn_promise`], with `AbortSignal` support
//! and typed rejections.
//!
//! Why this and not napi-rs's `AsyncBlock`: that makes a threadsafe function per call (a libuv
//! handle, an async resource and two cleanup hooks, made and torn down each time) and spawns two
//! tasks; a profile of a call that does no I/O at all showed that round trip costing more CPU
//! than the HTTP request of a typical call. Here each JS thread has one threadsafe function that
//! every call settles through ([`settle`]), and the work is one task that catches its own panics.
//!
//! napi-rs's own `AbortSignal` adapter replaces `signal.onabort` and ignores an already-aborted
//! signal, so we read `signal.aborted` and use `addEventListener('abort', ..., {once: true})`
//! ourselves: the user's handlers stay intact and a pre-aborted signal rejects at once.

use crate::error::{IntoRejection, Rejection};
use napi::bindgen_prelude::*;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// `EventTarget.addEventListener(type, listener, options)`.
type AddEventListener<'a> = Function<'a, FnArgs<(String, Function<'a, (), ()>, Object<'a>)>, ()>;

/// Makes a cancellation token that fires when `signal` aborts. Returns the token already
/// cancelled when the signal was aborted before the call.
pub(crate) fn token_for(env: &Env, signal: Option<Object>) -> Result<CancellationToken> {
    let token = CancellationToken::new();
    let Some(signal) = signal else {
        return Ok(token);
    };
    let aborted: Option<bool> = signal.get_named_property("aborted").ok();
    if aborted == Some(true) {
        token.cancel();
        return Ok(token);
    }
    let add: Option<AddEventListener> = signal.get_named_property("addEventListener").ok();
    let Some(add) = add else {
        return Err(Rejection::invalid("signal must be an AbortSignal").into_js(env));
    };
    let t = token.clone();
    let on_abort = env.create_function_from_closure::<(), (), _>("onAbort", move |_| {
        t.cancel();
        Ok(())
    })?;
    let mut opts = Object::new(env)?;
    opts.set_named_property("once", true)?;
    add.apply(signal, ("abort".to_owned(), on_abort, opts).into())?;
    Ok(token)
}

/// How long an aborted call may take to clean up inside the sandbox before it rejects.
const ABORT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `work` (given the cancellation token) on the runtime and returns its promise. A core
/// error rejects with a typed JS error; an abort rejects with `code: 'DAYTONA_ABORTED'` once
/// the work has cleaned up (or after [`ABORT_GRACE`]). The future is built on the runtime, not
/// here (see [`deferred`]).
pub(crate) fn spawn_promise<T, E, F, Fut>(
    env: &Env,
    signal: Option<Object>,
    work: F,
) -> Result<Pending<T>>
where
    T: ToNapiValue + Send + 'static,
    E: IntoRejection + Send + 'static,
    F: FnOnce(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
{
    let token = token_for(env, signal)?;
    settle::spawn(env, abortable(token.clone(), deferred(work, token)))
}

/// An already-resolved promise of `value`, for an answer computed on the calling thread in
/// microseconds (detection of a files map or a small folder), where the round trip through the
/// runtime and back would cost more than the work. Same type as [`spawn_promise`]'s.
pub(crate) fn resolved<T: ToNapiValue>(env: &Env, value: T) -> Result<Pending<T>> {
    let raw = env.raw();
    let mut deferred = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    // SAFETY: called from a napi method, on the JS thread of `env`; `deferred` is settled
    // once, here, before anyone else sees the promise.
    unsafe {
        check_status!(napi::sys::napi_create_promise(
            raw,
            &raw mut deferred,
            &raw mut promise
        ))?;
        let v = T::to_napi_value(raw, value)?;
        check_status!(napi::sys::napi_resolve_deferred(raw, deferred, v))?;
    }
    Ok(Pending::new(promise))
}

/// `options.signal`, when it is an object (anything else is no signal).
pub(crate) fn signal_of<'a>(options: Option<&Object<'a>>) -> Result<Option<Object<'a>>> {
    let Some(options) = options else {
        return Ok(None);
    };
    let v: Option<Unknown> = options.get("signal")?;
    match v {
        // SAFETY: the value's type was checked to be an object just before.
        Some(v) if v.get_type()? == ValueType::Object => Ok(Some(unsafe { v.cast()? })),
        _ => Ok(None),
    }
}

/// `work`'s future, made (and boxed) on the runtime at the first poll rather than here.
///
/// Why: this runs on the JS thread, whose stack V8 bounds (~1 MB, less when the caller is
/// deep in a framework). A future built here lands in this frame, and moved through the
/// wrappers below it can take several copies: with fat LTO the pipeline's made one frame
/// ~1 MB and `cloneAndPreview({ signal })` failed with "Maximum call stack size exceeded".
/// Deferred, the frame holds only the closure's captures; the runtime's workers have 8 MiB.
async fn deferred<T, E, F, Fut>(work: F, token: CancellationToken) -> std::result::Result<T, E>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    Box::pin(work(token)).await
}

/// `fut` raced against the abort `token`: an abort lets the work clean up (it watches the
/// same token) for up to [`ABORT_GRACE`], then ends the call with `DAYTONA_ABORTED`.
async fn abortable<T, E: IntoRejection>(
    token: CancellationToken,
    fut: impl Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, Rejection> {
    tokio::pin!(fut);
    tokio::select! {
        biased;
        r = &mut fut => r.map_err(IntoRejection::into_rejection),
        () = token.cancelled() => {
            // The core watches the same token: give it a moment to undo what it started
            // (kill the command, delete its session) before the promise rejects.
            let _ = tokio::time::timeout(ABORT_GRACE, &mut fut).await;
            Err(Rejection::aborted())
        }
    }
}

/// The promise of a call started with [`spawn_promise`], resolving to a `T`.
pub struct Pending<T> {
    promise: napi::sys::napi_value,
    _result: std::marker::PhantomData<fn() -> T>,
}

impl<T> Pending<T> {
    fn new(promise: napi::sys::napi_value) -> Self {
        Pending {
            promise,
            _result: std::marker::PhantomData,
        }
    }
}

impl<T> TypeName for Pending<T> {
    fn type_name() -> &'static str {
        "Promise"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T> ToNapiValue for Pending<T> {
    /// SAFETY (for callers): `promise` was made by `napi_create_promise` in this env, on this
    /// thread, during the same call that returns it.
    unsafe fn to_napi_value(_env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        Ok(val.promise)
    }
}

/// Settling promises from the Tokio threads, cheaply.
///
/// Each JS thread has one threadsafe function, made on first use, that every call settles
/// through; the work is one task that catches its own panics. The threadsafe function keeps
/// the event loop alive only while calls are pending (ref'd on the first, unref'd after the
/// last), as the per-call ones did. When the environment is torn down, a cleanup hook (run
/// before Node finalizes the threadsafe function) closes the channel, and results that come
/// later are dropped instead of being sent to a freed function.
mod settle {
    use crate::error::Rejection;
    use napi::bindgen_prelude::*;
    use napi::sys;
    use std::cell::RefCell;
    use std::ffi::c_void;
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::{Arc, RwLock};
    use std::task::{Context, Poll};

    /// Makes the JS value of a result on the JS thread: `Ok` resolves, `Err` rejects.
    type Finish = Box<
        dyn FnOnce(sys::napi_env) -> std::result::Result<sys::napi_value, sys::napi_value> + Send,
    >;

    /// A finished call on its way to the JS thread.
    struct Settle {
        deferred: sys::napi_deferred,
        finish: Finish,
    }

    // SAFETY: the deferred handle is only used on the JS thread (in `deliver`); other threads
    // only move it along.
    unsafe impl Send for Settle {}

    #[derive(Clone, Copy)]
    struct RawTsfn(sys::napi_threadsafe_function);

    // SAFETY: calling a threadsafe function from any thread is what it is for; `Channel`
    // guards its lifetime.
    unsafe impl Send for RawTsfn {}
    unsafe impl Sync for RawTsfn {}

    /// The threadsafe function of one JS thread; `None` once its environment is torn down.
    struct Channel {
        tsfn: RwLock<Option<RawTsfn>>,
    }

    impl Channel {
        fn send(&self, settle: Settle) {
            let item = Box::into_raw(Box::new(settle));
            let tsfn = self
                .tsfn
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let queued = match *tsfn {
                // SAFETY: the read guard keeps the teardown hook from closing the function
                // while this call runs.
                Some(RawTsfn(f)) => unsafe {
                    sys::napi_call_threadsafe_function(
                        f,
                        item.cast(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    ) == sys::Status::napi_ok
                },
                None => false,
            };
            drop(tsfn);
            if !queued {
                // The environment is gone: nobody is waiting for this result.
                // SAFETY: not queued, so still ours.
                drop(unsafe { Box::from_raw(item) });
            }
        }
    }

    /// This thread's channel and its count of pending calls.
    struct Local {
        env: sys::napi_env,
        tsfn: sys::napi_threadsafe_function,
        channel: Arc<Channel>,
        pending: usize,
    }

    thread_local! {
        static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    }

    /// Counts a new pending call (creating this thread's channel on first use) and returns
    /// the channel its result goes through.
    fn begin(env: sys::napi_env) -> Result<Arc<Channel>> {
        LOCAL.with(|cell| {
            let mut local = cell.borrow_mut();
            if let Some(l) = local.as_mut().filter(|l| l.env == env) {
                if l.pending == 0 {
                    // SAFETY: on the JS thread of `env`, the function alive (its hook has not run).
                    check_status!(unsafe { sys::napi_ref_threadsafe_function(env, l.tsfn) })?;
                }
                l.pending += 1;
                return Ok(l.channel.clone());
            }
            let mut name = std::ptr::null_mut();
            // SAFETY: `begin` runs on the JS thread of `env` (inside a napi call); the C string
            // is static and 12 bytes long.
            check_status!(unsafe {
                sys::napi_create_string_utf8(env, c"forge-settle".as_ptr(), 12, &raw mut name)
            })?;
            let mut tsfn = std::ptr::null_mut();
            // SAFETY: as above; no JS function and no context: `deliver` gets each item as its
            // `data` and finalizes nothing of ours.
            check_status!(unsafe {
                sys::napi_create_threadsafe_function(
                    env,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    name,
                    0,
                    1,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut(),
                    Some(deliver),
                    &raw mut tsfn,
                )
            })?;
            let channel = Arc::new(Channel {
                tsfn: RwLock::new(Some(RawTsfn(tsfn))),
            });
            let hook = Arc::into_raw(channel.clone());
            // SAFETY: as above; `hook` is an `Arc` reference leaked for the hook, taken back
            // by `teardown` (or just below when the hook is not registered).
            let added =
                unsafe { add_env_cleanup_hook(env, Some(teardown), hook.cast_mut().cast()) };
            if added != sys::Status::napi_ok {
                // SAFETY: the hook was not registered, so this reference is still ours.
                drop(unsafe { Arc::from_raw(hook) });
                // SAFETY: the function was made just above and nothing else holds it.
                unsafe {
                    sys::napi_release_threadsafe_function(
                        tsfn,
                        sys::ThreadsafeFunctionReleaseMode::abort,
                    )
                };
                check_status!(added)?;
            }
            // A new threadsafe function is ref'd: it keeps the loop alive for this first call.
            *local = Some(Local {
                env,
                tsfn,
                channel: channel.clone(),
                pending: 1,
            });
            Ok(channel)
        })
    }

    /// One call fewer pending; the last one lets the event loop exit again.
    fn end(env: sys::napi_env) {
        let _ = LOCAL.try_with(|cell| {
            if let Some(l) = cell.borrow_mut().as_mut().filter(|l| l.env == env) {
                l.pending = l.pending.saturating_sub(1);
                if l.pending == 0 {
                    // SAFETY: `end` runs in `deliver`, on the JS thread of `env`, and the
                    // function is alive (its environment's teardown hook has not run: it would
                    // have cleared `LOCAL`).
                    unsafe { sys::napi_unref_threadsafe_function(env, l.tsfn) };
                }
            }
        });
    }

    /// Runs on the JS thread for each finished call (or with a null `env` while Node drains
    /// the queue at teardown: then only frees the item).
    unsafe extern "C" fn deliver(
        env: sys::napi_env,
        _js_callback: sys::napi_value,
        _context: *mut c_void,
        data: *mut c_void,
    ) {
        if data.is_null() {
            return;
        }
        // SAFETY: every item is a `Box<Settle>` queued by `Channel::send`.
        let settle = unsafe { Box::from_raw(data.cast::<Settle>()) };
        if env.is_null() {
            return;
        }
        end(env);
        let Settle { deferred, finish } = *settle;
        let outcome = catch_unwind(AssertUnwindSafe(|| finish(env)))
            .unwrap_or_else(|_| Err(internal(env, "panic while converting a result")));
        // SAFETY: on the JS thread with a live env; `deferred` came from `napi_create_promise`
        // in `spawn` and is settled exactly once (each `Settle` is delivered once).
        unsafe {
            match outcome {
                Ok(v) => sys::napi_resolve_deferred(env, deferred, v),
                Err(e) => sys::napi_reject_deferred(env, deferred, e),
            };
        }
    }

    #[cfg(not(target_family = "wasm"))]
    use sys::napi_add_env_cleanup_hook as add_env_cleanup_hook;

    // The WebAssembly build: napi-rs declares the cleanup hooks in the `napi` import module
    // (its src/lib.rs), napi-sys in `env`; one symbol with two import modules fails the link
    // ("import module mismatch for symbol: napi_add_env_cleanup_hook"), so this declares it as
    // napi-rs does.
    #[cfg(target_family = "wasm")]
    #[link(wasm_import_module = "napi")]
    extern "C" {
        #[link_name = "napi_add_env_cleanup_hook"]
        fn add_env_cleanup_hook(
            env: sys::napi_env,
            fun: Option<unsafe extern "C" fn(arg: *mut c_void)>,
            arg: *mut c_void,
        ) -> sys::napi_status;
    }

    /// Closes the channel before Node finalizes the threadsafe function.
    unsafe extern "C" fn teardown(arg: *mut c_void) {
        // SAFETY: `arg` is the reference `begin` leaked for this hook.
        let channel = unsafe { Arc::from_raw(arg.cast_const().cast::<Channel>()) };
        *channel
            .tsfn
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let _ = LOCAL.try_with(|cell| {
            let mut local = cell.borrow_mut();
            if local
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(&l.channel, &channel))
            {
                *local = None;
            }
        });
    }

    /// A bug of ours as a `DaytonaError` (`DAYTONA_INTERNAL`), like every other rejection.
    fn internal(env: sys::napi_env, message: &str) -> sys::napi_value {
        let e = crate::error::Rejection::of(crate::error::Code::Internal, message);
        error_value(env, e.into_js(&Env::from_raw(env)))
    }

    fn error_value(env: sys::napi_env, e: Error) -> sys::napi_value {
        // An error already thrown (the WebAssembly build's `DaytonaError`s, error.rs `carry`):
        // the rejection is that exception, taken back.
        if e.status == Status::PendingException {
            let mut pending = false;
            let mut value = std::ptr::null_mut();
            // SAFETY: on the JS thread with a live env.
            let taken = unsafe {
                sys::napi_is_exception_pending(env, &raw mut pending) == sys::Status::napi_ok
                    && pending
                    && sys::napi_get_and_clear_last_exception(env, &raw mut value)
                        == sys::Status::napi_ok
            };
            if taken && !value.is_null() {
                return value;
            }
        }
        // SAFETY: on the JS thread with a live env.
        unsafe { JsError::from(e).into_value(env) }
    }

    /// Polls the work, turning a panic into an error instead of a promise that never settles.
    struct CatchUnwind<F>(Pin<Box<F>>);

    impl<F: Future> Future for CatchUnwind<F> {
        type Output = std::thread::Result<F::Output>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let fut = self.0.as_mut();
            match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                Err(panic) => Poll::Ready(Err(panic)),
            }
        }
    }

    /// Starts `work` on the Tokio runtime and returns its promise.
    pub(super) fn spawn<T, W>(env: &Env, work: W) -> Result<super::Pending<T>>
    where
        T: ToNapiValue + Send + 'static,
        W: Future<Output = std::result::Result<T, Rejection>> + Send + 'static,
    {
        let raw_env = env.raw();
        let mut deferred = std::ptr::null_mut();
        let mut promise = std::ptr::null_mut();
        // SAFETY: `spawn` is called from a napi method, on the JS thread of `env`.
        check_status!(unsafe {
            sys::napi_create_promise(raw_env, &raw mut deferred, &raw mut promise)
        })?;
        let channel = match begin(raw_env) {
            Ok(c) => c,
            Err(e) => {
                // SAFETY: as above; the deferred has not been handed to anyone else.
                unsafe { sys::napi_reject_deferred(raw_env, deferred, error_value(raw_env, e)) };
                return Ok(super::Pending::new(promise));
            }
        };
        let settle_on_js = Deferred(deferred);
        napi::bindgen_prelude::spawn(async move {
            let outcome = CatchUnwind(Box::pin(work)).await;
            let finish: Finish = match outcome {
                Ok(Ok(v)) => Box::new(move |env| {
                    // SAFETY: on the JS thread with a live env (see `deliver`).
                    unsafe { T::to_napi_value(env, v) }.map_err(|e| internal(env, &e.reason))
                }),
                Ok(Err(f)) => {
                    Box::new(move |env| Err(error_value(env, f.into_js(&Env::from_raw(env)))))
                }
                Err(_) => Box::new(move |env| Err(internal(env, "panic in an async call"))),
            };
            channel.send(Settle {
                deferred: settle_on_js.into_raw(),
                finish,
            });
        });
        Ok(super::Pending::new(promise))
    }

    /// The deferred of a pending promise, carried to the Tokio task.
    struct Deferred(sys::napi_deferred);

    // SAFETY: only moved along; used on the JS thread (see `Settle`).
    unsafe impl Send for Deferred {}

    impl Deferred {
        fn into_raw(self) -> sys::napi_deferred {
            self.0
        }
    }
}

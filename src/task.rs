//! Running core futures as JS promises, with `AbortSignal` support and typed rejections.
//!
//! napi-rs's own `AbortSignal` adapter replaces `signal.onabort` and ignores an already-aborted
//! signal, so we read `signal.aborted` and use `addEventListener('abort', ..., {once: true})`
//! ourselves: the user's handlers stay intact and a pre-aborted signal rejects at once.

use crate::error::{Failure, IntoFailure};
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
        return Err(Error::new(
            Status::InvalidArg,
            "signal must be an AbortSignal",
        ));
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

/// Runs `work` (given the cancellation token) as a promise. A core error rejects with a
/// typed JS error; an abort rejects with `code: 'DAYTONA_ABORTED'` once the work has cleaned
/// up (or after [`ABORT_GRACE`]).
pub(crate) fn promise<T, E, F, Fut>(
    env: &Env,
    signal: Option<Object>,
    work: F,
) -> Result<AsyncBlock<T>>
where
    T: ToNapiValue + Send + 'static,
    E: IntoFailure + Send + 'static,
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
{
    let token = token_for(env, signal)?;
    let fut = work(token.clone());
    let guarded = async move {
        tokio::pin!(fut);
        let r: std::result::Result<T, Failure> = tokio::select! {
            biased;
            r = &mut fut => r.map_err(IntoFailure::into_failure),
            _ = token.cancelled() => {
                // The core watches the same token: give it a moment to undo what it started
                // (kill the command, delete its session) before the promise rejects.
                let _ = tokio::time::timeout(ABORT_GRACE, &mut fut).await;
                Err(Failure::aborted())
            }
        };
        Ok(r)
    };
    AsyncBlockBuilder::build_with_map(env, guarded, |env, r| match r {
        Ok(v) => Ok(v),
        Err(f) => Err(f.into_js(&env)),
    })
}

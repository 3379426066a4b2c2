//! The one way Rust calls a user's JS callback: [`JsCallback`] (log chunks of a session
//! command, progress events of the pipeline).
//!
//! Each call waits for the callback to return and, when it returns a promise, for that promise
//! to settle, before the next value is delivered: a slow consumer slows the producer down
//! (the log socket, the progress queue) and nothing is dropped or reordered. A callback that
//! throws or whose promise rejects never reaches `uncaughtException`: the call goes through
//! `call_async_catch`, and the error ends the caller's work as one typed rejection,
//! `DAYTONA_CALLBACK_ERROR`.

use crate::error::{Code, Rejection};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};

/// What a callback returned: a promise to wait for before the next value, or anything else
/// (ignored).
pub struct CallbackReturn(Option<Promise<UnknownReturnValue>>);

impl FromNapiValue for CallbackReturn {
    unsafe fn from_napi_value(
        env: napi::sys::napi_env,
        value: napi::sys::napi_value,
    ) -> Result<Self> {
        let mut is_promise = false;
        // SAFETY: `env` and `value` come from napi-rs for this very call.
        let status = unsafe { napi::sys::napi_is_promise(env, value, &raw mut is_promise) };
        if status != napi::sys::Status::napi_ok || !is_promise {
            return Ok(CallbackReturn(None));
        }
        // SAFETY: as above; `value` is a promise.
        unsafe { Promise::from_napi_value(env, value) }.map(|p| CallbackReturn(Some(p)))
    }
}

type Tsfn<T> = ThreadsafeFunction<T, CallbackReturn, T, Status, false>;

/// A user callback `(value: T) => unknown`, callable from any thread.
pub struct JsCallback<T: ToNapiValue + 'static>(Tsfn<T>);

impl<T: ToNapiValue + 'static> TypeName for JsCallback<T> {
    fn type_name() -> &'static str {
        "Function"
    }
    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl<T: ToNapiValue + 'static> ValidateNapiValue for JsCallback<T> {}

impl<T: ToNapiValue + 'static> FromNapiValue for JsCallback<T> {
    unsafe fn from_napi_value(
        env: napi::sys::napi_env,
        value: napi::sys::napi_value,
    ) -> Result<Self> {
        // SAFETY: the caller's contract (a live env, a value of it) is passed on unchanged.
        unsafe { Tsfn::<T>::from_napi_value(env, value) }.map(JsCallback)
    }
}

impl<T: ToNapiValue + Send + 'static> JsCallback<T> {
    /// Calls the callback with `value` and waits for it (and for the promise it returned, if
    /// any). `name` is the option's name (`onStdout`, `onProgress`) for the error message.
    pub(crate) async fn call(&self, name: &str, value: T) -> std::result::Result<(), Rejection> {
        let ret = self
            .0
            .call_async_catch(value)
            .await
            .map_err(|e| threw(name, &e))?;
        if let Some(p) = ret.0 {
            p.await.map_err(|e| threw(name, &e))?;
        }
        Ok(())
    }
}

/// `DAYTONA_CALLBACK_ERROR` with what the callback threw (its message only: a callback's own
/// error is the user's text, which may hold anything but never one of our secrets).
fn threw(name: &str, e: &napi::Error) -> Rejection {
    let reason = if e.reason.is_empty() {
        "(no message)"
    } else {
        e.reason.as_str()
    };
    Rejection::of(
        Code::CallbackError,
        format!("the {name} callback threw: {reason}"),
    )
}

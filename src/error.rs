//! The one place where core errors become JS errors.
//!
//! Every rejection is an instance of the exported `DaytonaError` class (a real `Error`
//! subclass, so `instanceof` narrows a `catch`) whose `code` is a stable string
//! (`DAYTONA_NOT_FOUND`, `GIT_AUTH_FAILED`, `DAYTONA_ABORTED`, ...; their union is generated
//! into the typings from the error enums, see `typings.rs`), with `status` (HTTP status when
//! there was one) and `retryable`, so that an Inngest function can decide between rethrowing
//! and `NonRetriableError`. Messages come from the core crates, which never put secrets in them.

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// What a call rejects with: a core error (or one of the binding's own, [`Code`]) flattened to
/// what JS sees.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub retryable: bool,
    /// The server's own code when it gave one (`GIT_AUTH_FAILED`, `FILE_NOT_FOUND`, ...).
    pub server_code: Option<String>,
    /// Extra properties of a pipeline failure (`step`, `logTail`, `reason`, ...).
    pub details: Vec<(&'static str, Detail)>,
}

/// The codes the binding itself gives (the core crates' codes come from their error enums).
/// Each is written once (`#[strum(serialize)]`); `Code::VARIANTS` lists them for the typings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantNames)]
pub(crate) enum Code {
    /// The call was cancelled through its `AbortSignal`.
    #[strum(serialize = "DAYTONA_ABORTED")]
    Aborted,
    /// Bad arguments from JS.
    #[strum(serialize = "DAYTONA_INVALID_ARGUMENT")]
    InvalidArgument,
    /// A user callback threw or its promise rejected.
    #[strum(serialize = "DAYTONA_CALLBACK_ERROR")]
    CallbackError,
    /// The embedded backend could not be started.
    #[strum(serialize = "DAYTONA_LOCAL_BACKEND")]
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    LocalBackend,
    /// `backend: 'local'` on a platform the embedded backend is not built for (it is Linux
    /// only): the message says to run `forge local` on Linux and pass its URL and key.
    #[strum(serialize = "DAYTONA_LOCAL_UNSUPPORTED")]
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    LocalUnsupported,
    /// A bug of ours (a result that could not be serialised, a task that panicked).
    #[strum(serialize = "DAYTONA_INTERNAL")]
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The `DaytonaError` class and `isDaytonaError`, in JavaScript: a class that extends `Error`
/// cannot be made with napi's classes, whose instances are wrapped native objects. The brand
/// lets `isDaytonaError` recognise an error of another copy of this package (a bundler may
/// load two), where `instanceof` cannot.
///
/// `guard` wraps every exported function and method so that napi-rs's own argument
/// conversion errors (a number where a string was expected: thrown before our code runs, as a
/// plain `Error` whose message quotes the value) become `DAYTONA_INVALID_ARGUMENT`
/// `DaytonaError`s saying which type was expected and which was given, never the value.
const ERROR_CLASS_JS: &str = r"(() => {
  const brand = Symbol.for('@smartapi-forge/daytona.DaytonaError')
  class DaytonaError extends Error {
    constructor(message, properties) {
      super(message)
      Object.defineProperty(this, brand, { value: true })
      if (properties != null) Object.assign(this, properties)
    }
  }
  Object.defineProperty(DaytonaError.prototype, 'name', { value: 'DaytonaError', writable: true, configurable: true })
  const isDaytonaError = (value) => value instanceof DaytonaError || (value instanceof Error && value[brand] === true)

  const conversion = /^(?:InvalidArg|\w+Expected)$/
  const jsType = (rust) =>
    /^(?:String|&str)$/.test(rust) ? 'a string'
    : /^(?:[ui](?:8|16|32|64)|f(?:32|64)|usize)$/.test(rust) ? 'a number'
    : rust === 'bool' ? 'true or false'
    : /^(?:Vec|Array)/.test(rust) ? 'an array'
    : /^(?:Buffer|Uint8Array)/.test(rust) ? 'a Buffer'
    : /Function|Callback/.test(rust) ? 'a function'
    : 'an object'
  const invalid = (e, where) => {
    const m = /(?:JavaScript value `(\w+)|napi value (\w+))[^`]*(?:`)? into rust type `([^`]+)`(?: on (\S+))?/.exec(String(e.message))
    const message = m
      ? `${m[4] ?? `an argument of ${where}`} must be ${jsType(m[3])}, got ${(m[1] ?? m[2]).toLowerCase()}`
      : `invalid argument of ${where}`
    return new DaytonaError(message, { name: 'DaytonaError', code: 'DAYTONA_INVALID_ARGUMENT', retryable: false, status: null })
  }
  const wrap = (f, where) => ({
    [f.name](...args) {
      try {
        return f.apply(this, args)
      } catch (e) {
        throw e instanceof Error && !isDaytonaError(e) && conversion.test(e.code) ? invalid(e, where) : e
      }
    },
  })[f.name]
  const guard = (exports) => {
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== 'function' || value === DaytonaError || value === isDaytonaError) continue
      const proto = value.prototype
      const methods = proto ? Object.getOwnPropertyNames(proto).filter((k) => k !== 'constructor') : []
      if (methods.length === 0) {
        exports[name] = wrap(value, name)
        continue
      }
      for (const k of methods) {
        const d = Object.getOwnPropertyDescriptor(proto, k)
        if (typeof d.value === 'function' && d.writable) proto[k] = wrap(d.value, `${name}.${k}`)
      }
    }
  }
  return { DaytonaError, isDaytonaError, guard }
})()";

/// What [`ERROR_CLASS_JS`] made, kept per JS environment (the main thread and each worker
/// load the addon once each) so that every rejection is built from that environment's class.
struct ErrorClass(ObjectRef<false>);

/// Adds `DaytonaError` and `isDaytonaError` to the module's exports (their TypeScript comes
/// from `typings.rs`: a class made at run time has no napi type definition) and guards the
/// other exports' argument conversions (napi-rs calls this hook after registering them).
#[napi(module_exports)]
pub fn install_error_class(mut exports: Object, env: Env) -> Result<()> {
    let made: Object = env.run_script(ERROR_CLASS_JS)?;
    let guard: Function<Object, ()> = made.get_named_property("guard")?;
    guard.call(exports)?;
    let class: Unknown = made.get_named_property("DaytonaError")?;
    let is: Unknown = made.get_named_property("isDaytonaError")?;
    exports.set_named_property("DaytonaError", class)?;
    exports.set_named_property("isDaytonaError", is)?;
    env.set_instance_data(ErrorClass(made.create_ref()?), (), |_| {})
}

/// A new `DaytonaError` with `message`; a plain `Error` only if the class is missing (it is
/// installed before any export can be called).
fn new_error(env: &Env, message: String) -> Result<Object<'_>> {
    if let Some(ErrorClass(made)) = env.get_instance_data::<ErrorClass>()? {
        let class: Function<String, Unknown> =
            made.get_value(env)?.get_named_property("DaytonaError")?;
        let obj = class.new_instance(message)?;
        // SAFETY: `new` of a class gives an object.
        return Ok(unsafe { Object::from_napi_value(env.raw(), obj.raw())? });
    }
    env.create_error(Error::new(Status::GenericFailure, message))
}

/// The value of one extra error property.
#[derive(Debug, Clone)]
pub(crate) enum Detail {
    Str(String),
    Num(f64),
    Bool(bool),
    Lines(Vec<String>),
}

impl Rejection {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Rejection {
            code: code.to_owned(),
            message: message.into(),
            status: None,
            retryable: false,
            server_code: None,
            details: Vec::new(),
        }
    }

    /// One of the binding's own failures.
    pub fn of(code: Code, message: impl Into<String>) -> Self {
        Rejection::new(code.as_str(), message)
    }

    /// The call was cancelled through its `AbortSignal`.
    pub fn aborted() -> Self {
        Rejection::of(Code::Aborted, "The operation was aborted")
    }

    /// Bad arguments from JS.
    pub fn invalid(message: impl Into<String>) -> Self {
        Rejection::of(Code::InvalidArgument, message)
    }

    /// Builds the JS error object, a `DaytonaError`. Its `name` is `DaytonaError` (or
    /// `AbortError` for aborts, as `fetch` users expect).
    pub fn into_js(self, env: &Env) -> Error {
        match self.build(env) {
            Ok(err) => err,
            Err(e) => e,
        }
    }

    fn build(self, env: &Env) -> Result<Error> {
        let name = if self.code == Code::Aborted.as_str() {
            "AbortError"
        } else {
            "DaytonaError"
        };
        let mut obj = new_error(env, self.message)?;
        obj.set_named_property("name", name)?;
        obj.set_named_property("code", self.code)?;
        obj.set_named_property("retryable", self.retryable)?;
        match self.status {
            Some(s) => obj.set_named_property("status", u32::from(s))?,
            None => obj.set_named_property("status", Null)?,
        }
        if let Some(sc) = self.server_code {
            obj.set_named_property("serverCode", sc)?;
        }
        for (k, v) in self.details {
            match v {
                Detail::Str(s) => obj.set_named_property(k, s)?,
                Detail::Num(n) => obj.set_named_property(k, n)?,
                Detail::Bool(b) => obj.set_named_property(k, b)?,
                Detail::Lines(l) => obj.set_named_property(k, l)?,
            }
        }
        carry(env, obj)
    }
}

/// The error object as a napi `Error` that reaches JS as this very object. Natively napi-rs
/// keeps a reference to it.
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::unnecessary_wraps)]
fn carry(_env: &Env, obj: Object<'_>) -> Result<Error> {
    Ok(Error::from(obj.to_unknown()))
}

/// In the WebAssembly build `Error::from(Unknown)` keeps only the message (napi-rs 3.16 makes
/// no reference there), which would lose the class, code and status. So the object is thrown
/// at once and the `Error` says an exception is pending: napi-rs then lets that exception
/// reach JS as it is, and a rejection takes it back (`promise.rs`, `error_value`).
#[cfg(target_family = "wasm")]
fn carry(env: &Env, obj: Object<'_>) -> Result<Error> {
    let message: String = obj.get_named_property("message")?;
    env.throw(obj)?;
    Ok(Error::new(Status::PendingException, message))
}

/// Converts a core error into a [`Rejection`]. Implemented once per core crate.
pub(crate) trait IntoRejection {
    fn into_rejection(self) -> Rejection;
}

impl IntoRejection for Rejection {
    fn into_rejection(self) -> Rejection {
        self
    }
}

impl IntoRejection for forge_daytona::Error {
    fn into_rejection(self) -> Rejection {
        Rejection {
            code: self.code().to_owned(),
            status: self.status(),
            retryable: self.retryable(),
            server_code: self.daemon_code().map(str::to_owned),
            message: self.to_string(),
            details: Vec::new(),
        }
    }
}

impl IntoRejection for forge_preview::PreviewError {
    fn into_rejection(self) -> Rejection {
        match self {
            forge_preview::PreviewError::Daytona(e) => e.into_rejection(),
            forge_preview::PreviewError::Detect(e) => e.into_rejection(),
            forge_preview::PreviewError::Step(f) => step_failure(*f),
        }
    }
}

/// A failed pipeline step: the underlying error's code, status and retryability when the
/// control plane failed, plus `step`, `sandboxId`, `logTail`, `reason`, `excerpt`, `exitCode`
/// (a failed install) or `status` (verification's last HTTP status), and `kept`.
fn step_failure(f: forge_preview::pipeline::StepFailure) -> Rejection {
    use forge_preview::pipeline::StepError;
    let retryable = f.retryable();
    let code = f.code();
    let mut d = vec![("step", Detail::Str(f.step.as_str().to_owned()))];
    let mut out = match f.error {
        StepError::Source(src) => src.into_rejection(),
        StepError::InstallFailed { exit_code } => {
            d.push(("exitCode", Detail::Num(f64::from(exit_code))));
            Rejection::new(code, String::new())
        }
        StepError::NoDevCommand => Rejection::new(code, String::new()),
        StepError::PortInUse { port } => {
            d.push(("port", Detail::Num(f64::from(port))));
            Rejection::new(code, String::new())
        }
        StepError::VerifyFailed {
            reason,
            http_status,
        } => {
            d.push(("reason", Detail::Str(reason.code().to_owned())));
            let mut out = Rejection::new(code, String::new());
            out.status = http_status;
            out
        }
    };
    code.clone_into(&mut out.code);
    out.retryable = retryable;
    out.message = format!("{} step failed: {}", f.step, f.message);
    if let Some(id) = f.sandbox_id {
        d.push(("sandboxId", Detail::Str(id)));
    }
    d.push(("logTail", Detail::Lines(f.log_tail)));
    if let Some(x) = f.excerpt {
        d.push(("excerpt", Detail::Str(x)));
    }
    d.push(("kept", Detail::Bool(f.kept)));
    out.details = d;
    out
}

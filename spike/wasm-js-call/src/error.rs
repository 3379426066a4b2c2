//! A shim of the project's src/error.rs: only what promise.rs and callback.rs use, so that
//! those two files run here unchanged. A rejection becomes a JS Error with a `code`.
use napi::bindgen_prelude::*;

#[derive(Debug, Clone, Copy)]
pub enum Code {
    Internal,
    CallbackError,
    Aborted,
    Invalid,
}

pub struct Rejection {
    code: Code,
    message: String,
}

impl Rejection {
    pub fn of(code: Code, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Rejection {
        Rejection::of(Code::Invalid, message)
    }
    pub fn aborted() -> Rejection {
        Rejection::of(Code::Aborted, "aborted")
    }
    pub fn into_js(self, _env: &Env) -> Error {
        Error::new(
            Status::GenericFailure,
            format!("{:?}: {}", self.code, self.message),
        )
    }
}

pub trait IntoRejection {
    fn into_rejection(self) -> Rejection;
}

impl IntoRejection for Rejection {
    fn into_rejection(self) -> Rejection {
        self
    }
}

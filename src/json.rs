//! How a JSON-shaped core value crosses the boundary: [`Json`], as its serde JSON, one
//! `JSON.parse` on the way out and one `JSON.stringify` on the way in.
//!
//! The core crates own these types (pipeline inputs and results, detection answers) and
//! describe them with serde; crossing as JSON keeps that one description, keeps the binding
//! from copying each type as a napi struct, and is one napi call instead of one per field
//! (10x cheaper for a detection answer, which keeps detection in the microseconds). The
//! serialisation happens on the runtime's threads ([`Json::of`]); only the parse runs on the JS
//! thread. Inputs go through `JSON.stringify`, so functions and an `AbortSignal` in an options
//! object drop out on the way, and a bad field is one typed `DAYTONA_INVALID_ARGUMENT` whose
//! message never echoes the value (a token given as the wrong type must not end up in an
//! error).

use crate::error::{Code, Rejection};
use napi::bindgen_prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A `T` on its way to JS, already serialised.
pub struct Json<T> {
    text: String,
    _value: PhantomData<fn() -> T>,
}

impl<T: Serialize> Json<T> {
    /// Serialises `value` (call it on the runtime, not on the JS thread).
    pub(crate) fn of(value: &T) -> std::result::Result<Self, Rejection> {
        serde_json::to_string(value)
            .map(|text| Json {
                text,
                _value: PhantomData,
            })
            .map_err(|e| Rejection::of(Code::Internal, e.to_string()))
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Reads the JS object `obj` as a `T`; `what` names it in the error (`cloneRepository
    /// input`).
    pub(crate) fn read(env: &Env, obj: &Object, what: &str) -> Result<T> {
        let json: Object = env.get_global()?.get_named_property("JSON")?;
        let stringify: Function<Object, String> = json.get_named_property("stringify")?;
        let text = stringify.call(*obj).map_err(|_| {
            Rejection::invalid(format!("{what} must be a JSON-serialisable object")).into_js(env)
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Rejection::invalid(format!(
                "invalid {what}: {}",
                without_values(&e.to_string())
            ))
            .into_js(env)
        })
    }
}

impl<T> TypeName for Json<T> {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T> ToNapiValue for Json<T> {
    unsafe fn to_napi_value(raw: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(raw);
        let json: Object = env.get_global()?.get_named_property("JSON")?;
        let parse: Function<String, Unknown> = json.get_named_property("parse")?;
        Ok(parse.call(val.text)?.raw())
    }
}

/// Removes quoted parts of a serde message: they may echo the input.
fn without_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    for c in msg.chars() {
        match c {
            '"' | '`' => {
                quoted = !quoted;
                if !quoted {
                    out.push_str("<value>");
                }
            }
            _ if !quoted => out.push(c),
            _ => {}
        }
    }
    out
}

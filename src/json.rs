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
//! error). Keys the type does not have are refused too, with the closest one it has ("did
//! you mean `image`?"), so that a misspelt option is never silently ignored.

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
    /// Reads the JS value `value` (an object) as a `T`; `what` names it in the error
    /// (`cloneRepository input`).
    pub(crate) fn read(env: &Env, value: Unknown, what: &str) -> Result<T> {
        Self::read_with(env, value, what, &[])
    }

    /// [`Json::read`] where keys of `also` belong to the same object but another reader
    /// (`cloneAndPreview`'s options are create options too; `onProgress`, `signal`).
    pub(crate) fn read_with(env: &Env, value: Unknown, what: &str, also: &[&str]) -> Result<T> {
        parse::<T>(env, value, what, also).map_err(|r| r.into_js(env))
    }
}

/// `JSON.stringify` of `value`, checked against `T`'s fields and read as a `T`.
fn parse<T: DeserializeOwned>(
    env: &Env,
    value: Unknown,
    what: &str,
    also: &[&str],
) -> std::result::Result<T, Rejection> {
    let not_object = || Rejection::invalid(format!("{what} must be an object"));
    if value.get_type().map_err(|_| not_object())? != ValueType::Object {
        return Err(not_object());
    }
    let text = stringify(env, value)
        .map_err(|_| Rejection::invalid(format!("{what} must be a JSON-serialisable object")))?;
    // An array is a JS object too, and serde would read a struct from it by position.
    let json: serde_json::Value = serde_json::from_str(&text)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(not_object)?;
    let known = fields_of::<T>();
    // A type read through `#[serde(flatten)]` names no fields: nothing to check against.
    if let (serde_json::Value::Object(map), false) = (&json, known.is_empty()) {
        let mut keys: Vec<&str> = known.to_vec();
        keys.extend_from_slice(also);
        if let Some(unknown) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(Rejection::invalid(unknown_key(unknown, &keys, what)));
        }
    }
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        Rejection::invalid(explain(&path, &e.into_inner().to_string(), what))
    })
}

fn stringify(env: &Env, value: Unknown) -> Result<String> {
    let json: Object = env.get_global()?.get_named_property("JSON")?;
    let stringify: Function<Unknown, String> = json.get_named_property("stringify")?;
    stringify.call(value)
}

/// The field names serde reads for `T`: its derived `Deserialize` hands them to
/// `deserialize_struct`, which this deserializer records and then refuses.
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// `unknown option `imagee` in create options: did you mean `image`?`
fn unknown_key(key: &str, known: &[&str], what: &str) -> String {
    let closest = known
        .iter()
        .map(|k| {
            (
                distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min();
    match closest {
        Some((d, k)) if d <= 2.max(key.len() / 3) => {
            format!("unknown option `{key}` in {what}: did you mean `{k}`?")
        }
        _ => format!(
            "unknown option `{key}` in {what} (known: {})",
            known.join(", ")
        ),
    }
}

/// Edit distance (insertions, deletions, substitutions, transpositions of neighbours).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// What serde's expectations mean to a JS caller.
const EXPECTED: &[(&str, &str)] = &[
    ("u8", "an integer from 0 to 255"),
    ("u16", "an integer from 0 to 65535"),
    ("u32", "a non-negative integer"),
    ("u64", "a non-negative integer"),
    ("i32", "an integer"),
    ("i64", "an integer"),
    ("f32", "a number"),
    ("f64", "a number"),
    ("a boolean", "true or false"),
    ("a map", "an object"),
    ("a sequence", "an array"),
];

/// A serde message as `<option> is required` / `<option> must be <what was expected>`,
/// without the value (which may be a token given in the wrong place).
fn explain(path: &str, msg: &str, what: &str) -> String {
    let field = |name: &str| match path {
        "." | "" => name.to_owned(),
        p => format!("{p}.{name}"),
    };
    let subject = if path == "." { what } else { path };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        return format!("{} is required", field(rest.trim_end_matches('`')));
    }
    if let Some((key, expected)) = msg
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once("`, expected "))
    {
        // A nested object's misspelt key (`browser: { timeoutMS }`): a key, not a value.
        return format!(
            "unknown option `{key}` in {subject}: expected {}",
            expected.replace('`', "'")
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        return format!("{subject} must be {}", expected.replace('`', "'"));
    }
    if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("invalid length")
    {
        if let Some((_, expected)) = msg.rsplit_once(", expected ") {
            let phrase = EXPECTED.iter().find(|(k, _)| *k == expected).map_or_else(
                || {
                    if expected.starts_with("struct ") || expected.starts_with("a map") {
                        "an object".to_owned()
                    } else {
                        expected.to_owned()
                    }
                },
                |(_, p)| (*p).to_owned(),
            );
            return format!("{subject} must be {phrase}");
        }
    }
    format!("invalid {what}: {}", without_values(msg))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Input {
        repo_url: String,
        install_command: Option<String>,
        port: Option<u16>,
    }

    #[test]
    fn fields_are_the_serde_names() {
        assert_eq!(fields_of::<Input>(), ["repoUrl", "installCommand", "port"]);
        // A map names no fields: no key check.
        assert!(fields_of::<std::collections::BTreeMap<String, String>>().is_empty());
    }

    #[test]
    fn a_misspelt_key_gets_the_closest_one() {
        let known = ["image", "snapshot", "installCommand", "apiKey"];
        assert_eq!(
            unknown_key("imagee", &known, "create options"),
            "unknown option `imagee` in create options: did you mean `image`?"
        );
        assert!(
            unknown_key("instalCommand", &known, "x").ends_with("did you mean `installCommand`?")
        );
        assert!(unknown_key("apikey", &known, "x").ends_with("did you mean `apiKey`?"));
        assert!(unknown_key("colour", &known, "x").contains("(known: image, snapshot"));
    }

    #[test]
    fn serde_messages_become_option_messages_without_values() {
        let read = |text: &str| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let e = serde_path_to_error::deserialize::<_, Input>(v)
                .err()
                .unwrap();
            explain(&e.path().to_string(), &e.into_inner().to_string(), "input")
        };
        assert_eq!(read("{}"), "repoUrl is required");
        assert_eq!(read(r#"{"repoUrl": 5}"#), "repoUrl must be a string");
        assert_eq!(
            read(r#"{"repoUrl": "u", "port": 70000}"#),
            "port must be an integer from 0 to 65535"
        );
        assert_eq!(
            read(r#"{"repoUrl": "u", "port": "ghp_secret"}"#),
            "port must be an integer from 0 to 65535"
        );
        assert_eq!(
            read(r#"{"repoUrl": "u", "port": -1}"#),
            "port must be an integer from 0 to 65535"
        );
    }
}

//! The WebAssembly build's HTTP transport (docs/wasm.md): WASI gives the process no sockets, so
//! every request of the client, its toolboxes and the preview probe goes out through a
//! JavaScript function around `fetch` (`wasm-fetch.js`), which `index.js` installs once when
//! the WebAssembly build is the one loaded. The function is called through a threadsafe
//! function from the Tokio worker that sends the request; its promise's answer wakes that
//! worker (the runtime in `lib.rs` is built so that it can, see docs/wasm.md "The fix").

use bytes::Bytes;
use forge_daytona::fetch::{
    Body, Fetch, FetchError, FetchErrorKind, Form, HeaderMap, Part, PartData, Request, Response,
    StatusCode,
};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use std::sync::Arc;

/// One request, as the JavaScript function gets it.
#[napi(object)]
pub struct FetchArgs {
    pub method: String,
    /// With the query already in it.
    pub url: String,
    /// `[name, value]` pairs, in order.
    pub headers: Vec<Vec<String>>,
    /// The body, viewing WebAssembly memory: the JavaScript side copies it before sending.
    pub body: Option<Buffer>,
}

/// What the function's promise resolves to: an answer, or (`error` set) a failure below HTTP.
#[napi(object)]
pub struct FetchAnswer {
    pub status: u32,
    pub headers: Vec<Vec<String>>,
    pub body: Option<Buffer>,
    /// `connect` (nothing was sent: the retry policy may repeat even a create), `timeout` or
    /// `other`.
    pub error: Option<String>,
    /// What failed, without the URL.
    pub message: Option<String>,
}

/// Weak: an installed transport does not keep Node's event loop alive.
type JsFetchFn =
    ThreadsafeFunction<FetchArgs, Promise<FetchAnswer>, FetchArgs, Status, false, true>;

struct JsFetch(Arc<JsFetchFn>);

/// Installs `fetch` as the transport of every client made from now on in this process
/// (the WebAssembly build only; `index.js` calls it once). Not part of the public API.
#[napi(js_name = "__installFetch", skip_typescript)]
pub fn install_fetch(fetch: JsFetchFn) -> bool {
    forge_daytona::fetch::install(Arc::new(JsFetch(Arc::new(fetch))))
}

impl Fetch for JsFetch {
    fn fetch(&self, req: Request) -> BoxFuture<'static, Result<Response, FetchError>> {
        let f = self.0.clone();
        Box::pin(async move {
            let args = args(req).await?;
            let answer = f
                .call_async(args)
                .await
                .map_err(|e| {
                    other(format!(
                        "the JavaScript fetch could not be called: {}",
                        e.reason
                    ))
                })?
                .await
                .map_err(|e| other(format!("the JavaScript fetch failed: {}", e.reason)))?;
            response(answer)
        })
    }
}

fn other(message: String) -> FetchError {
    FetchError::new(FetchErrorKind::Other, message)
}

/// The request as the JavaScript function takes it: the query in the URL, a multipart form
/// written out whole (its streamed parts read first).
async fn args(req: Request) -> Result<FetchArgs, FetchError> {
    let url = if req.query.is_empty() {
        req.url
    } else {
        url::Url::parse_with_params(&req.url, &req.query)
            .map_err(|e| other(format!("bad URL: {e}")))?
            .into()
    };
    let mut headers: Vec<Vec<String>> = req
        .headers
        .iter()
        .filter_map(|(k, v)| Some(vec![k.to_string(), v.to_str().ok()?.to_owned()]))
        .collect();
    let body = match req.body {
        Body::Empty => None,
        Body::Bytes(b) => Some(b.to_vec()),
        Body::Multipart(form) => {
            let boundary = boundary();
            headers.push(vec![
                "content-type".into(),
                format!("multipart/form-data; boundary={boundary}"),
            ]);
            Some(multipart(form, &boundary).await?)
        }
    };
    Ok(FetchArgs {
        method: req.method.to_string(),
        url,
        headers,
        body: body.map(Buffer::from),
    })
}

/// A boundary no part contains in practice: 128 random bits (std's randomly seeded hasher
/// keys, WASI's `random_get` underneath), as every multipart writer makes it.
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("forge-{:016x}{:016x}", random(), random())
}

/// `multipart/form-data` (RFC 7578), written out.
async fn multipart(form: Form, boundary: &str) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    for part in form.parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text { name, value } => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        quote(&name)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(value.as_bytes());
            }
            Part::File {
                name,
                file_name,
                data,
            } => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n",
                        quote(&name),
                        quote(&file_name)
                    )
                    .as_bytes(),
                );
                match data {
                    PartData::Bytes(b) => out.extend_from_slice(&b),
                    PartData::Stream(s, _) => {
                        let chunks: Vec<Bytes> = s.try_collect().await.map_err(|e| {
                            FetchError::new(FetchErrorKind::Other, format!("reading a part: {e}"))
                        })?;
                        for c in &chunks {
                            out.extend_from_slice(c);
                        }
                    }
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// A name inside a quoted header parameter (as browsers write it: `"` and line breaks escaped).
fn quote(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The answer as the client reads it; a failure as the kind the retry policy knows.
fn response(answer: FetchAnswer) -> Result<Response, FetchError> {
    if let Some(kind) = answer.error {
        let kind = match kind.as_str() {
            "connect" => FetchErrorKind::Connect,
            "timeout" => FetchErrorKind::Timeout,
            _ => FetchErrorKind::Other,
        };
        return Err(FetchError::new(
            kind,
            answer.message.unwrap_or_else(|| "fetch failed".into()),
        ));
    }
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| other(format!("bad HTTP status {}", answer.status)))?;
    let mut headers = HeaderMap::new();
    for kv in answer.headers {
        if let [k, v] = &kv[..] {
            if let (Ok(k), Ok(v)) = (
                k.parse::<forge_daytona::fetch::header::HeaderName>(),
                v.parse(),
            ) {
                headers.append(k, v);
            }
        }
    }
    let body = Bytes::from(answer.body.map(|b| b.to_vec()).unwrap_or_default());
    let len = body.len() as u64;
    let stream = futures_util::stream::once(async move { Ok(body) }).boxed();
    Ok(Response::new(status, headers, Some(len), stream))
}

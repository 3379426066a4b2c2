//! F: the project's client (forge-daytona) compiled for wasm, its HTTP sent through a JS
//! function (`fetch`-backed, in run-client.mjs) by a `Fetch` over a ThreadsafeFunction: the
//! shape of the binding's wasm transport (docs/wasm.md, step 1). Text bodies only (no
//! multipart, no Buffers: a Buffer made here views the shared wasm memory, which `fetch`
//! refuses). G and H (`object_answer*`, run by run.mjs) narrow down why F hangs: a JS answer
//! does not wake a Tokio task whose worker is parked with a timer pending (docs/wasm.md).

use forge_daytona::fetch::{
    Body, Fetch, FetchError, FetchErrorKind, HeaderMap, Request, Response, StatusCode,
};
use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, ListQuery};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use std::sync::Arc;

/// What the JS function gets.
#[napi(object)]
pub struct FetchArgs {
    pub method: String,
    pub url: String,
    pub headers: Vec<Vec<String>>,
    /// Text: see docs/wasm.md on Buffers.
    pub body: Option<String>,
}

/// What its promise resolves to; a rejection is a connection failure.
#[napi(object)]
pub struct FetchAnswer {
    pub status: u32,
    pub headers: Vec<Vec<String>>,
    /// Text: a Buffer answer hung (see docs/wasm.md).
    pub body: String,
}

type JsFetchFn = ThreadsafeFunction<FetchArgs, Promise<FetchAnswer>>;

struct JsFetch(Arc<JsFetchFn>);

impl Fetch for JsFetch {
    fn fetch(&self, req: Request) -> BoxFuture<'static, std::result::Result<Response, FetchError>> {
        let f = self.0.clone();
        Box::pin(async move {
            let other = |m: String| FetchError::new(FetchErrorKind::Other, m);
            let url = url::Url::parse_with_params(&req.url, &req.query)
                .map_err(|e| other(format!("bad URL: {e}")))?;
            let headers = req
                .headers
                .iter()
                .map(|(k, v)| vec![k.to_string(), v.to_str().unwrap_or("").to_string()])
                .collect();
            let body = match req.body {
                Body::Empty => None,
                Body::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                Body::Multipart(_) => return Err(other("multipart: not in the spike".into())),
            };
            let args = FetchArgs {
                method: req.method.to_string(),
                url: url.to_string(),
                headers,
                body,
            };
            let trace = std::env::var("SPIKE_TRACE").is_ok();
            let promise = f
                .call_async(Ok(args))
                .await
                .map_err(|e| FetchError::new(FetchErrorKind::Connect, e.reason))?;
            if trace {
                eprintln!("rust: JS returned its promise");
            }
            let answer = promise
                .await
                .map_err(|e| FetchError::new(FetchErrorKind::Connect, e.reason))?;
            if trace {
                eprintln!("rust: promise resolved, status {}", answer.status);
            }
            let status = StatusCode::from_u16(answer.status as u16)
                .map_err(|e| other(format!("bad status: {e}")))?;
            let mut map = HeaderMap::new();
            for kv in answer.headers {
                if let [k, v] = &kv[..] {
                    if let (Ok(k), Ok(v)) = (k.parse::<http::HeaderName>(), v.parse()) {
                        map.append(k, v);
                    }
                }
            }
            let bytes = bytes::Bytes::from(answer.body.into_bytes());
            let len = bytes.len() as u64;
            let stream = futures_util::stream::once(async move { Ok(bytes) }).boxed();
            Ok(Response::new(status, map, Some(len), stream))
        })
    }
}

/// `SPIKE_TICKS=1`: the stopgap of case I for the whole client, one 50 ms ticker per process.
fn ticks() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if std::env::var("SPIKE_TICKS").is_ok() {
        STARTED.call_once(|| {
            napi::bindgen_prelude::spawn(async {
                let mut i = tokio::time::interval(std::time::Duration::from_millis(50));
                loop {
                    i.tick().await;
                }
            });
        });
    }
}

fn client(api_url: String, api_key: String, fetch: JsFetchFn) -> Result<Client> {
    ticks();
    let config = DaytonaConfig::new()
        .with_api_key(api_key)
        .with_api_url(api_url)
        .validate()
        .map_err(typed)?;
    Client::with_fetch(config, Arc::new(JsFetch(Arc::new(fetch)))).map_err(typed)
}

/// The client's typed error, its code first (the binding's error mapping is not in the spike).
fn typed(e: forge_daytona::Error) -> Error {
    Error::from_reason(format!("{}: {e}", e.code()))
}

/// Creates a sandbox, gets it back, lists, deletes it; returns what each step saw.
#[napi]
pub async fn wasm_client_round_trip(
    api_url: String,
    api_key: String,
    fetch: JsFetchFn,
) -> Result<Vec<String>> {
    let c = client(api_url, api_key, fetch)?;
    let opts = CallOptions::new().with_timeout(std::time::Duration::from_secs(120));
    let s = c
        .create(&CreateParams::default(), &opts)
        .await
        .map_err(typed)?;
    let got = c.get(&s.id).await.map_err(typed)?;
    let listed = c.list(&ListQuery::default(), &opts).await.map_err(typed)?;
    let listed_it = listed.items.iter().any(|x| x.id == s.id);
    c.delete(&s.id, true, &opts).await.map_err(typed)?;
    let after = c
        .get(&s.id)
        .await
        .map_err(|e| e.code())
        .err()
        .unwrap_or("found");
    Ok(vec![
        format!("created {}", s.id),
        format!("got {} state {:?}", got.id, got.state),
        format!("listed {listed_it}"),
        format!("after delete: {after}"),
    ])
}

/// A call that fails: the typed error code comes back.
#[napi]
pub async fn wasm_client_get(
    api_url: String,
    api_key: String,
    id: String,
    fetch: JsFetchFn,
) -> Result<String> {
    let c = client(api_url, api_key, fetch)?;
    c.get(&id).await.map(|s| s.id).map_err(typed)
}

/// G: only the answer's shape, no network: a JS function resolving a `FetchAnswer` object.
#[napi]
pub async fn object_answer(f: JsFetchFn) -> Result<String> {
    let args = FetchArgs {
        method: "GET".into(),
        url: "x:".into(),
        headers: vec![],
        body: None,
    };
    let a = f.call_async(Ok(args)).await?.await?;
    Ok(format!("{} {} {:?}", a.status, a.body, a.headers))
}

/// H: as G, but raced against a long Tokio timer (what forge-daytona's `Deadline::run` does
/// around every request): does the JS answer still wake the task?
#[napi]
pub async fn object_answer_with_timer(f: JsFetchFn) -> Result<String> {
    let args = FetchArgs {
        method: "GET".into(),
        url: "x:".into(),
        headers: vec![],
        body: None,
    };
    tokio::select! {
        r = async { f.call_async(Ok(args)).await?.await } => r.map(|a| a.body),
        () = tokio::time::sleep(std::time::Duration::from_secs(20)) => Ok("timer fired first (20 s)".into()),
    }
}

/// I: as H, with another task on the runtime ticking every 50 ms: if the missed wake is the
/// timed park, the ticks let the worker see the answer within ~50 ms.
#[napi]
pub async fn object_answer_with_timer_and_ticks(f: JsFetchFn) -> Result<String> {
    let ticker = tokio::spawn(async {
        let mut i = tokio::time::interval(std::time::Duration::from_millis(50));
        loop {
            i.tick().await;
        }
    });
    let r = object_answer_with_timer(f).await;
    ticker.abort();
    r
}

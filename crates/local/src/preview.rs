//! The preview proxy: one 127.0.0.1 listener per (sandbox, port), so a preview URL works from
//! Node's `fetch`, curl and a browser iframe with no DNS setup.
//!
//! Like Daytona's proxy: a non-public sandbox needs its preview token (header
//! `X-Daytona-Preview-Token`, query `DAYTONA_SANDBOX_AUTH_KEY`, the cookie
//! `daytona-sandbox-auth-<id>` set after a query token, or `Authorization: Bearer <api key>`),
//! else 307 to an auth URL; a signed preview URL's path (`/_daytona_signed/<token>/…`, see
//! [`crate::signed`]) opens (sandbox, port) without a header, and an expired or foreign one
//! answers 401; nothing listening answers 502; bodies stream both ways (chunked
//! responses included) and upgrades (WebSocket HMR) are passed through. The listener of a
//! sandbox port lives until the sandbox is deleted or the backend stops, so the URL stays the
//! same across stop/start.
//!
//! Every preview shares the host `127.0.0.1` and browsers do not separate cookies by port, so
//! a browser sends sandbox A's cookie to sandbox B's preview too. What keeps a preview's auth
//! to its own sandbox:
//! - nothing of the proxy's auth reaches a dev server: every `daytona-sandbox-auth-*` cookie,
//!   the token header, the token query key (in any percent-encoding), a signed URL's path
//!   prefix, their copies in the `Referer` and an API-key bearer (any case of the scheme) are
//!   stripped before forwarding, so B's server never sees A's token;
//! - a listener honours only its own sandbox's cookie, and only from a request its own pages
//!   or the user made (`Sec-Fetch-Site` absent, `same-origin` or `none`, and no foreign
//!   `Origin`): a page of B's preview (same site as A's) cannot use A's cookie to act on A;
//! - the `Host` must be this machine's loopback, as for the API (no DNS rebinding).
//!
//! Each sandbox has its own network: the listener of (sandbox, P) reaches port P of that
//! sandbox's loopback through a connection its init makes inside (`container::Runtime::connect`),
//! so nothing else on this machine that listens on P can answer for it.

use crate::util::{bearer, query_pairs, same_secret};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use forge_wire::headers;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Live preview listeners by (sandbox id, port).
#[derive(Default)]
pub struct Previews {
    map: tokio::sync::Mutex<HashMap<(String, u16), Listener>>,
    /// The tokens of signed preview URLs (see [`crate::signed`]).
    pub signed: crate::signed::Grants,
}

struct Listener {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

struct Ctx {
    state: Weak<AppState>,
    sandbox: String,
    port: u16,
}

impl Previews {
    /// The preview URL of a sandbox port, starting its listener on first use (on the port
    /// recorded for it, when a backend before this one had one).
    pub async fn url_for(
        &self,
        state: &Arc<AppState>,
        sandbox: &str,
        port: u16,
    ) -> std::io::Result<String> {
        let mut map = self.map.lock().await;
        let key = (sandbox.to_string(), port);
        if let Some(l) = map.get(&key) {
            if !l.task.is_finished() {
                return Ok(format!("http://{}", l.addr));
            }
        }
        let recorded = state
            .store
            .get(sandbox)
            .await
            .and_then(|r| r.previews.get(&port).copied());
        let listener = match recorded {
            Some(p) => match tokio::net::TcpListener::bind(("127.0.0.1", p)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(
                        "preview port {p} of sandbox {sandbox} is taken ({e}): a new URL"
                    );
                    tokio::net::TcpListener::bind("127.0.0.1:0").await?
                }
            },
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        if recorded != Some(addr.port()) {
            let _ = state
                .store
                .update(sandbox, |rec| {
                    rec.previews.insert(port, addr.port());
                    Ok(())
                })
                .await;
        }
        let ctx = Arc::new(Ctx {
            state: Arc::downgrade(state),
            sandbox: sandbox.to_string(),
            port,
        });
        let app = axum::Router::new().fallback(proxy).with_state(ctx);
        let task = tokio::spawn(async move {
            crate::util::serve(listener, app, std::future::pending()).await;
        });
        map.insert(key, Listener { addr, task });
        Ok(format!("http://{addr}"))
    }

    /// The record of a sandbox (404 when unknown) and the preview URL of its `port`, for the
    /// API's preview-url routes.
    pub async fn open(
        &self,
        state: &Arc<AppState>,
        id: &str,
        port: u16,
    ) -> Result<(crate::store::Record, String), crate::error::Failure> {
        let rec = state
            .store
            .get(id)
            .await
            .ok_or_else(|| crate::store::not_found(id))?;
        let url = self
            .url_for(state, &rec.sandbox.id, port)
            .await
            .map_err(|e| {
                crate::error::Failure::internal(format!("cannot open the preview listener: {e}"))
            })?;
        Ok((rec, url))
    }

    /// Listens again on every preview port a backend before this one recorded.
    pub async fn restore(&self, state: &Arc<AppState>) {
        for rec in state.store.all().await {
            for port in rec.previews.keys() {
                let _ = self.url_for(state, &rec.sandbox.id, *port).await;
            }
        }
    }

    /// Closes every listener of a sandbox.
    pub async fn drop_sandbox(&self, sandbox: &str) {
        self.signed.drop_sandbox(sandbox);
        let mut map = self.map.lock().await;
        map.retain(|(s, _), l| {
            if s == sandbox {
                l.task.abort();
                false
            } else {
                true
            }
        });
    }

    /// Closes every listener.
    pub async fn close_all(&self) {
        let mut map = self.map.lock().await;
        for (_, l) in map.drain() {
            l.task.abort();
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The prefix of every preview cookie (`daytona-sandbox-auth-<sandbox id>`).
const COOKIE_PREFIX: &str = "daytona-sandbox-auth-";

fn cookie_name(sandbox: &str) -> String {
    format!("{COOKIE_PREFIX}{sandbox}")
}

/// The cookie a signed preview URL sets: one per port (a signed token opens one port only),
/// with the preview cookies' prefix so that it is stripped like them.
fn signed_cookie_name(sandbox: &str, port: u16) -> String {
    format!("{COOKIE_PREFIX}{sandbox}-{port}")
}

/// The value of the cookie `name`, when the request is one of the preview's own.
fn own_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    if !own_request(headers) {
        return None;
    }
    cookies(headers)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The cookie pairs of a request, across every `Cookie` header.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
}

/// Whether a browser says this request came from this very origin, or from the user (typed,
/// bookmarked): only then is the cookie honoured. A request made by a page of another
/// preview is `same-site` (all previews are on 127.0.0.1) and carries that page's `Origin`.
fn own_request(headers: &HeaderMap) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if matches!(site.as_deref(), Some(s) if s != "same-origin" && s != "none") {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            origin.strip_prefix("http://") == Some(host)
        }
    }
}

/// The token a request presents, and whether it came in the query (then a cookie is set).
fn presented_token(req: &Request, sandbox: &str) -> (Option<String>, bool) {
    if let Some(t) = req
        .headers()
        .get(headers::PREVIEW_TOKEN)
        .and_then(|v| v.to_str().ok())
    {
        return (Some(t.to_string()), false);
    }
    let q = query_pairs(req.uri().query());
    if let Some((_, t)) = q.iter().find(|(k, _)| k == headers::PREVIEW_TOKEN_QUERY) {
        return (Some(t.clone()), true);
    }
    (own_cookie(req.headers(), &cookie_name(sandbox)), false)
}

/// The `Referer` without any preview credential in it (a page opened with a signed URL or a
/// query token would otherwise tell the dev server its token on every subresource request).
fn strip_referer(headers: &mut HeaderMap) {
    let Some(referer) = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Uri>().ok())
    else {
        headers.remove(header::REFERER);
        return;
    };
    let (Some(scheme), Some(authority)) = (referer.scheme(), referer.authority()) else {
        headers.remove(header::REFERER);
        return;
    };
    let local = Uri::from(
        referer
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| axum::http::uri::PathAndQuery::from_static("/")),
    );
    let local = crate::signed::split_path(&local).map_or(local, |(_, rest)| rest);
    let clean = format!("{scheme}://{authority}{}", strip_token_query(&local));
    match HeaderValue::from_str(&clean) {
        Ok(v) => {
            headers.insert(header::REFERER, v);
        }
        Err(_) => {
            headers.remove(header::REFERER);
        }
    }
}

/// The URI without the token query parameter, however its name is percent-encoded.
fn strip_token_query(uri: &Uri) -> Uri {
    let Some(query) = uri.query() else {
        return uri.clone();
    };
    let is_token = |kv: &str| {
        let key = kv.split('=').next().unwrap_or("");
        form_urlencoded::parse(key.as_bytes())
            .next()
            .is_some_and(|(k, _)| k == headers::PREVIEW_TOKEN_QUERY)
    };
    let kept: Vec<&str> = query.split('&').filter(|kv| !is_token(kv)).collect();
    let pq = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    pq.parse().unwrap_or_else(|_| uri.clone())
}

/// Removes every preview cookie (of any sandbox) from the request's `Cookie` headers, keeping
/// the dev server's own cookies.
fn strip_preview_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = cookies(headers)
        .filter(|(k, _)| !k.starts_with(COOKIE_PREFIX))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

async fn proxy(State(ctx): State<Arc<Ctx>>, mut req: Request) -> Response {
    let Some(state) = ctx.state.upgrade() else {
        return plain(StatusCode::BAD_GATEWAY, "backend stopped".into());
    };
    if !crate::auth::loopback_host(req.headers(), state.config.allow_remote) {
        return plain(
            StatusCode::FORBIDDEN,
            "host not allowed: use 127.0.0.1 or localhost".into(),
        );
    }
    let Some(rec) = state.store.get(&ctx.sandbox).await else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("sandbox {} not found", ctx.sandbox),
        );
    };
    if !crate::store::is_running(rec.sandbox.state) {
        return plain(
            StatusCode::BAD_GATEWAY,
            format!("sandbox {} is {}", ctx.sandbox, rec.sandbox.state),
        );
    }
    let bearer_ok = bearer(req.headers()).is_some_and(|k| same_secret(k, &state.api_key));
    let (token, from_query) = presented_token(&req, &ctx.sandbox);
    let token_ok = token
        .as_deref()
        .is_some_and(|t| same_secret(t, &rec.preview_token));
    // A signed URL's token, in its path (then it must be valid, even for a public sandbox:
    // an expired link fails as Daytona's does) or in the cookie it set for this port.
    let grants = &state.previews.signed;
    let signed = crate::signed::split_path(req.uri());
    let signed_ok = match &signed {
        Some((t, _)) => grants.valid(t, &ctx.sandbox, ctx.port),
        None => false,
    };
    if signed.is_some() && !signed_ok {
        return plain(
            StatusCode::UNAUTHORIZED,
            "signed preview URL expired, expired by its owner, or not for this preview".into(),
        );
    }
    let signed_cookie_ok = own_cookie(req.headers(), &signed_cookie_name(&ctx.sandbox, ctx.port))
        .is_some_and(|t| grants.valid(&t, &ctx.sandbox, ctx.port));
    if !rec.sandbox.public && !bearer_ok && !token_ok && !signed_ok && !signed_cookie_ok {
        let location = format!(
            "{}/api/preview-auth?sandboxId={}&port={}",
            state.base_url, ctx.sandbox, ctx.port
        );
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
            "preview authentication required: send X-Daytona-Preview-Token",
        )
            .into_response();
    }
    // From inside the sandbox's own network: whatever else listens on that port number on
    // this machine or in another sandbox is never reached.
    let upstream = match state
        .runtime
        .ensure(&ctx.sandbox, &crate::api::start_spec(&state, &rec.sandbox))
        .await
    {
        Ok(_) => state.runtime.connect(&ctx.sandbox, ctx.port).await,
        Err(_) => None,
    };
    drop(state);

    // Strip what was for the proxy: no token or key of any sandbox reaches a dev server.
    req.headers_mut().remove(headers::PREVIEW_TOKEN);
    strip_preview_cookies(req.headers_mut());
    req.headers_mut().remove(headers::SKIP_PREVIEW_WARNING);
    strip_referer(req.headers_mut());
    if bearer_ok {
        req.headers_mut().remove(header::AUTHORIZATION);
    }
    let signed_token = signed.map(|(t, rest)| {
        *req.uri_mut() = rest;
        t
    });
    *req.uri_mut() = strip_token_query(req.uri());

    let stream = match upstream {
        Some(s) => {
            // Small request heads must not wait on delayed ACKs (see `util::nodelay`).
            let _ = s.set_nodelay(true);
            s
        }
        None => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!("no server is listening on port {} in the sandbox", ctx.port),
            )
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let client_upgrade = req
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let mut res = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("upstream failed: {e}")),
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut res);
            tokio::spawn(async move {
                if let (Ok(a), Ok(b)) = (client_upgrade.await, upstream_upgrade.await) {
                    let mut a = TokioIo::new(a);
                    let mut b = TokioIo::new(b);
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    }
    let (parts, body) = res.into_parts();
    let mut out = Response::from_parts(parts, Body::new(body));
    let set = match signed_token {
        Some(t) => Some((signed_cookie_name(&ctx.sandbox, ctx.port), t)),
        None => {
            (from_query && token_ok).then(|| (cookie_name(&ctx.sandbox), token.unwrap_or_default()))
        }
    };
    if let Some((name, value)) = set {
        if let Ok(v) =
            HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax"))
        {
            out.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_query_key_is_stripped_in_every_spelling() {
        for q in [
            "DAYTONA_SANDBOX_AUTH_KEY=t",
            "DAYTONA%5FSANDBOX%5FAUTH%5FKEY=t",
            "%44AYTONA_SANDBOX_AUTH_KEY=t",
        ] {
            let uri: Uri = format!("/p?a=1&{q}&b=2").parse().unwrap();
            assert_eq!(strip_token_query(&uri).to_string(), "/p?a=1&b=2", "{q}");
        }
    }

    #[test]
    fn every_preview_cookie_is_stripped_and_others_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; daytona-sandbox-auth-A=x".parse().unwrap(),
        );
        h.append(
            header::COOKIE,
            "daytona-sandbox-auth-B=y; b=2".parse().unwrap(),
        );
        strip_preview_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "daytona-sandbox-auth-A=x".parse().unwrap());
        strip_preview_cookies(&mut h);
        assert!(h.get(header::COOKIE).is_none());
    }

    #[test]
    fn the_referer_loses_every_preview_credential() {
        let mut h = HeaderMap::new();
        h.insert(
            header::REFERER,
            "http://127.0.0.1:4000/_daytona_signed/tok/page?a=1&DAYTONA_SANDBOX_AUTH_KEY=k"
                .parse()
                .unwrap(),
        );
        strip_referer(&mut h);
        assert_eq!(h[header::REFERER], "http://127.0.0.1:4000/page?a=1");
        h.insert(header::REFERER, "not a url".parse().unwrap());
        strip_referer(&mut h);
        assert!(h.get(header::REFERER).is_none());
    }

    #[test]
    fn a_cookie_counts_only_for_the_previews_own_pages() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:4000".parse().unwrap());
        assert!(own_request(&h), "no browser headers: curl, fetch");
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(own_request(&h));
        h.insert("sec-fetch-site", "same-site".parse().unwrap());
        assert!(!own_request(&h), "a page of another preview");
        h.insert("sec-fetch-site", "none".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:4001".parse().unwrap());
        assert!(!own_request(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:4000".parse().unwrap());
        assert!(own_request(&h));
    }
}

//! Signed preview URLs: `GET /sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=`
//! and `POST /sandbox/{id}/ports/{port}/signed-preview-url/{token}/expire`, as Daytona serves
//! them (1 s to 24 h, default 60 s; a random token bound to one sandbox and one port).
//!
//! Daytona puts the token in the host name (`https://{port}-{token}.{proxyDomain}`); here every
//! preview is `http://127.0.0.1:<listener>`, so the token is the first segment of the path:
//! `http://127.0.0.1:<listener>/_daytona_signed/<token>/`. The preview listener of that sandbox
//! port accepts it (see [`crate::preview`]), removes the prefix before forwarding (the dev
//! server sees `/`, `/vnc.html`, ...; never the token), and sets a cookie for that port so the
//! page's own absolute links (`/assets/x.js`) work in a browser. A token opens nothing after it
//! expired or was expired, nor another port or another sandbox's preview.
//!
//! Grants live in memory: a backend started again has none (they last a minute by default).

use crate::error::Failure;
use crate::store::not_found;
use crate::util::{query_get, query_pairs, random_token, same_secret};
use crate::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use forge_wire::SignedPortPreviewUrl;
use std::time::{Duration, Instant};

/// The path prefix of a signed preview URL, before its token.
pub const PATH_PREFIX: &str = "/_daytona_signed/";
/// Daytona's default lifetime of a signed URL.
const DEFAULT_TTL: u64 = 60;
/// Daytona's longest lifetime of a signed URL (24 h).
const MAX_TTL: u64 = 24 * 60 * 60;
/// Live grants at most (a loop asking for URLs gets a clear 400, not an ever larger table).
const MAX_GRANTS: usize = 65_536;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/sandbox/{id}/ports/{port}/signed-preview-url", get(issue))
        .route(
            "/sandbox/{id}/ports/{port}/signed-preview-url/{token}/expire",
            post(expire),
        )
}

struct Grant {
    token: String,
    sandbox: String,
    port: u16,
    expires: Instant,
}

/// The live signed-URL tokens of this backend.
#[derive(Default)]
pub struct Grants {
    list: std::sync::Mutex<Vec<Grant>>,
}

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Grant>> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new token for (sandbox, port), valid for `ttl`.
    fn issue(&self, sandbox: &str, port: u16, ttl: Duration) -> Result<String, Failure> {
        let now = Instant::now();
        let mut list = self.lock();
        list.retain(|g| g.expires > now);
        if list.len() >= MAX_GRANTS {
            return Err(Failure::bad_request(format!(
                "too many live signed preview URLs (at most {MAX_GRANTS}): expire some first"
            )));
        }
        let token = random_token(32);
        list.push(Grant {
            token: token.clone(),
            sandbox: sandbox.to_string(),
            port,
            expires: now + ttl,
        });
        Ok(token)
    }

    /// Whether `token` opens the preview of (sandbox, port) now.
    pub fn valid(&self, token: &str, sandbox: &str, port: u16) -> bool {
        let now = Instant::now();
        self.lock().iter().any(|g| {
            g.sandbox == sandbox
                && g.port == port
                && g.expires > now
                && same_secret(&g.token, token)
        })
    }

    /// Ends `token` of (sandbox, port); a token of another sandbox or port is left alone.
    fn expire(&self, token: &str, sandbox: &str, port: u16) {
        self.lock()
            .retain(|g| !(g.sandbox == sandbox && g.port == port && same_secret(&g.token, token)));
    }

    /// Ends every token of a sandbox (it was deleted).
    pub fn drop_sandbox(&self, sandbox: &str) {
        self.lock().retain(|g| g.sandbox != sandbox);
    }
}

/// The token of a signed preview path and the request's URI without it (`/` when nothing
/// follows), or `None` when the path is not a signed one.
pub fn split_path(uri: &Uri) -> Option<(String, Uri)> {
    let rest = uri.path().strip_prefix(PATH_PREFIX)?;
    let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
    // `url + '/x'` on a URL ending in `/` gives `//x`: one slash is meant.
    let path = format!("/{}", path.trim_start_matches('/'));
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Some((
        token.to_string(),
        pq.parse().unwrap_or_else(|_| Uri::from_static("/")),
    ))
}

/// A sandbox port from a route's path (1-65535, else 400).
pub(crate) fn port_of(port: &str) -> Result<u16, Failure> {
    port.parse()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| Failure::bad_request("port must be between 1 and 65535"))
}

/// `GET …/signed-preview-url`: a new token for that sandbox port and the URL that carries it.
async fn issue(
    State(state): State<Shared>,
    Path((id, port)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<SignedPortPreviewUrl>, Failure> {
    let port = port_of(&port)?;
    let pairs = query_pairs(query.as_deref());
    let ttl = match query_get(&pairs, "expiresInSeconds") {
        None | Some("") => DEFAULT_TTL,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_TTL).contains(s))
            .ok_or_else(|| {
                Failure::bad_request("expiresInSeconds must be between 1 second and 24 hours")
            })?,
    };
    let (rec, base) = state.previews.open(&state, &id, port).await?;
    let token = state
        .previews
        .signed
        .issue(&rec.sandbox.id, port, Duration::from_secs(ttl))?;
    Ok(Json(SignedPortPreviewUrl {
        sandbox_id: rec.sandbox.id.clone(),
        port,
        url: format!("{base}{PATH_PREFIX}{token}/"),
        token,
    }))
}

/// `POST …/signed-preview-url/{token}/expire`: that token stops working at once (200 also
/// when it had already expired, as Daytona's).
async fn expire(
    State(state): State<Shared>,
    Path((id, port, token)): Path<(String, String, String)>,
) -> Result<StatusCode, Failure> {
    let port = port_of(&port)?;
    let rec = state.store.get(&id).await.ok_or_else(|| not_found(&id))?;
    state.previews.signed.expire(&token, &rec.sandbox.id, port);
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_prefix_and_token_are_cut_from_the_path() {
        let split = |s: &str| split_path(&s.parse().unwrap()).map(|(t, u)| (t, u.to_string()));
        assert_eq!(
            split("/_daytona_signed/abc/"),
            Some(("abc".into(), "/".into()))
        );
        assert_eq!(
            split("/_daytona_signed/abc"),
            Some(("abc".into(), "/".into()))
        );
        assert_eq!(
            split("/_daytona_signed/abc//vnc.html?x=1"),
            Some(("abc".into(), "/vnc.html?x=1".into()))
        );
        assert_eq!(split("/app/_daytona_signed/abc/"), None);
        assert_eq!(split("/"), None);
    }

    #[test]
    fn a_grant_opens_its_sandbox_port_only_until_expired() {
        let g = Grants::default();
        let t = g.issue("A", 3000, Duration::from_mins(1)).unwrap();
        assert!(g.valid(&t, "A", 3000));
        assert!(!g.valid(&t, "B", 3000));
        assert!(!g.valid(&t, "A", 3001));
        assert!(!g.valid("other", "A", 3000));
        g.expire(&t, "B", 3000);
        assert!(g.valid(&t, "A", 3000), "another sandbox cannot expire it");
        g.expire(&t, "A", 3000);
        assert!(!g.valid(&t, "A", 3000));
        let t = g.issue("A", 3000, Duration::ZERO).unwrap();
        assert!(!g.valid(&t, "A", 3000), "expired");
    }
}

//! Authentication: every request carries `Authorization: Bearer <api key>`. Toolbox requests
//! may instead carry the sandbox's preview token (`X-Daytona-Preview-Token` header or the
//! `DAYTONA_SANDBOX_AUTH_KEY` query parameter), as the Daytona proxy accepts (wire §2.3).

use crate::error::{original_path, Failure};
use crate::util::{query_get, query_pairs, same_secret};
use crate::Shared;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use forge_wire::headers;

/// True when the Host header names this machine's loopback (or is absent). Any other name
/// means a page on another site reached us through DNS rebinding: refused.
fn loopback_host(req: &Request, allow_remote: bool) -> bool {
    let Some(host) = req.headers().get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name == "127.0.0.1"
        || name == "localhost"
        || name == "::1"
        // An address literal cannot come from DNS rebinding (that needs a name the attacker
        // controls): accepted when the backend was told to listen beyond loopback.
        || (allow_remote && name.parse::<std::net::IpAddr>().is_ok())
}

pub async fn require_key(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if !loopback_host(&req, state.config.allow_remote) {
        return Failure::new(
            axum::http::StatusCode::FORBIDDEN,
            "host not allowed: use 127.0.0.1 or localhost",
        )
        .into_response();
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    if bearer.is_some_and(|b| same_secret(b, &state.api_key)) {
        return next.run(req).await;
    }
    let token_claim = preview_claim(&req);
    if preview_token_ok(&state, token_claim).await {
        return next.run(req).await;
    }
    Failure::unauthorized().into_response()
}

/// The (sandbox id, preview token) a toolbox request presents, if any.
fn preview_claim(req: &Request) -> Option<(String, String)> {
    let path = original_path(req);
    let rest = path.strip_prefix("/toolbox/")?;
    let id = rest.split('/').next().unwrap_or("").to_string();
    let from_header = req
        .headers()
        .get(headers::PREVIEW_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_query = query_get(
        &query_pairs(req.uri().query()),
        headers::PREVIEW_TOKEN_QUERY,
    )
    .map(str::to_string);
    Some((id, from_header.or(from_query)?))
}

/// True when the claimed token is the preview token of the sandbox the request addresses.
async fn preview_token_ok(state: &Shared, claim: Option<(String, String)>) -> bool {
    let Some((id, token)) = claim else {
        return false;
    };
    match state.store.get(&id).await {
        Some(rec) => same_secret(&token, &rec.preview_token),
        None => false,
    }
}

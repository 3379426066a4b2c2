//! Authentication: every API and toolbox request carries `Authorization: Bearer <api key>`
//! (the scheme in any case, as RFC 9110 says). A sandbox's preview token is *not* accepted
//! here: it opens that sandbox's preview and nothing else (a page served by a preview, or a
//! sandbox that reads its own token, must not reach the toolbox: `/toolbox/{id}/process/execute`
//! with a preview token would be a shell on the sandbox for whoever holds a preview link).

use crate::error::Failure;
use crate::util::{bearer, same_secret};
use crate::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// True when the Host header names this machine's loopback (or is absent). Any other name
/// means a page on another site reached us through DNS rebinding: refused. The API and every
/// preview listener ask the same.
pub fn loopback_host(headers: &HeaderMap, allow_remote: bool) -> bool {
    let Some(host) = headers.get(header::HOST) else {
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

/// The answer to a request whose `Host` is not this machine's loopback.
pub fn host_refused() -> Failure {
    Failure::new(
        axum::http::StatusCode::FORBIDDEN,
        "host not allowed: use 127.0.0.1 or localhost",
    )
}

pub async fn require_key(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if !loopback_host(req.headers(), state.config.allow_remote) {
        return host_refused().into_response();
    }
    if bearer(req.headers()).is_some_and(|b| same_secret(b, &state.api_key)) {
        return next.run(req).await;
    }
    Failure::unauthorized().into_response()
}

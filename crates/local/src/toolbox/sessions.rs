//! Background sessions (being built).

use crate::Shared;
use axum::Router;

/// Every live session of every sandbox.
#[derive(Default)]
pub struct Sessions {}

impl Sessions {
    /// Kills and forgets every session of a sandbox.
    pub async fn drop_sandbox(&self, _sandbox: &str) {}
}

pub fn routes() -> Router<Shared> {
    Router::new()
}

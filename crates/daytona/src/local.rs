//! Extensions of the embedded backend (`forge local`) that Daytona does not have: callers
//! treat [`Error::NotFound`] / [`Error::BadRequest`] from Daytona as "not available here".

use crate::call::CallOptions;
use crate::client::{seg, Client};
use crate::error::{Error, Result};
use crate::fetch::Method;
use crate::http::Req;
use forge_wire::{DependencyCacheRequest, DependencyCacheResponse};

impl Client {
    /// `POST /forge/sandboxes/{id}/dependencies`: restore a cached `node_modules` into the
    /// sandbox's project before an install, or store it after one (the embedded backend's
    /// dependency cache; Daytona answers 404).
    pub async fn local_dependencies(
        &self,
        sandbox_id: &str,
        request: &DependencyCacheRequest,
        opts: &CallOptions,
    ) -> Result<DependencyCacheResponse> {
        if sandbox_id.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "sandbox id must not be empty".into(),
            ));
        }
        let deadline = opts.deadline(Some(std::time::Duration::from_mins(5)));
        let url = self.transport.api(&format!(
            "/forge/sandboxes/{}/dependencies",
            seg(sandbox_id)
        ));
        self.transport
            .json(
                Req::new(Method::POST, url, "dependency cache").json(request)?,
                &deadline,
            )
            .await
    }
}

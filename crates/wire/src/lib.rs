//! The Daytona wire: one set of serde structs for the JSON the control plane and the toolbox
//! speak (`shared/daytona-api/api.json`, `toolbox.json`). Both the client (`forge-daytona`) and
//! the embedded backend (`forge-local`) use these, so the two cannot drift apart.
//!
//! Field names are the wire's (camelCase, with the daemon's few snake_case fields spelled out).
//! Optional fields are skipped when `None` so that what we send matches the official SDK, which
//! drops `undefined` fields.

pub mod dependencies;
pub mod domains;
pub mod error;
pub mod fs;
pub mod git;
pub mod process;
pub mod sandbox;
pub mod snapshot;
pub mod toolbox;

pub use dependencies::*;
pub use error::*;
pub use fs::*;
pub use git::*;
pub use process::*;
pub use sandbox::*;
pub use snapshot::*;
pub use toolbox::*;

/// The wire level we implement: the `X-Daytona-SDK-Version` we send. The daemon switches its
/// log and session formats on this header (JSON with split stdout/stderr from 0.167.0 on).
pub const SDK_VERSION: &str = "0.218.0";

/// Header names of the Daytona wire (daytona-wire.md §2, §8).
pub mod headers {
    pub const SOURCE: &str = "x-daytona-source";
    pub const SDK_VERSION: &str = "x-daytona-sdk-version";
    pub const ORGANIZATION_ID: &str = "x-daytona-organization-id";
    pub const PREVIEW_TOKEN: &str = "x-daytona-preview-token";
    pub const SKIP_PREVIEW_WARNING: &str = "x-daytona-skip-preview-warning";
    /// Query parameter carrying a preview token where headers cannot be set.
    pub const PREVIEW_TOKEN_QUERY: &str = "DAYTONA_SANDBOX_AUTH_KEY";
}

/// The stream markers of session logs (daytona-wire.md §7.3): every stdout line is written as
/// `\x01\x01\x01<line>\n`, every stderr line as `\x02\x02\x02<line>\n`.
pub const STDOUT_MARKER: [u8; 3] = [1, 1, 1];
pub const STDERR_MARKER: [u8; 3] = [2, 2, 2];

/// Where the embedded backend (`forge-local`) runs, and what to do elsewhere.
pub mod platform {
    /// The stable code of "the embedded backend does not run on this platform", given by
    /// the addon (`backend: 'local'`) and the CLI (`forge local`, `forge preview` without
    /// `DAYTONA_API_KEY`) alike.
    pub const LOCAL_UNSUPPORTED_CODE: &str = "DAYTONA_LOCAL_UNSUPPORTED";

    /// Why the embedded backend cannot start on `os`/`arch` and what works instead. Its
    /// sandboxes are containers built from Linux's own namespaces and cgroups, so it is built
    /// for Linux only; everything else (the client, detection, the pipeline) works on every
    /// platform against a backend that runs elsewhere.
    pub fn local_unsupported(os: &str, arch: &str) -> String {
        format!(
            "the embedded backend (backend: 'local', `forge local`) runs on Linux only: its \
             sandboxes are Linux namespace containers, and this is {os}-{arch}. Run `forge \
             local` on a Linux machine (or in a Linux VM or container) and pass the \
             DAYTONA_API_URL and DAYTONA_API_KEY it prints as apiUrl / apiKey, or set \
             DAYTONA_API_KEY to use Daytona"
        )
    }
}

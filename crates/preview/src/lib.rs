//! `forge-preview`: the parts of the clone → detect → install → start → verify pipeline that
//! need both the Daytona client and the detector. Today: detection of a repository that lives
//! inside a sandbox ([`detect_in_sandbox`]).

mod error;
mod remote_detect;

pub use error::PreviewError;
pub use remote_detect::{detect_in_sandbox, listing_command, MAX_LISTED_FILES};

//! forge-local's integration tests, one test binary: each file beside this one is a module
//! (one link of the crate and its dependencies instead of one per file).

mod common;
mod concurrency;
mod control_plane;
mod crash;
mod exec;
mod files;
mod git;
mod isolation;
mod limits;
mod log_limit;
mod ports;
mod preview;
mod remote_bind;
mod sessions;

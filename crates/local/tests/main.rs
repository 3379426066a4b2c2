//! forge-local's integration tests, one test binary: each file beside this one is a module
//! (one link of the crate and its dependencies instead of one per file).

mod code_run_charts;
mod common;
mod concurrency;
mod control_plane;
mod control_plane_more;
mod crash;
mod daemon_semantics;
mod deps_cache;
mod domains;
mod exec;
mod files;
mod git;
mod hostile;
mod interpreter;
mod isolation;
mod limits;
mod log_limit;
mod ports;
mod preview;
mod pty;
mod remote_bind;
mod sessions;
mod signed_preview;
mod toolbox_system;
mod volume_files;

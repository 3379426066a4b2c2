//! forge-daytona's integration tests, one test binary: each file beside this one is a module
//! (one link of the crate and its dependencies instead of one per file).

mod chaos;
mod common;
mod fetch_seam;
mod http_behaviour;
mod idempotency;
mod lifecycle;
mod logging;
mod network;
mod secrets;
mod snapshots;
mod toolbox_fs;
mod toolbox_git;
mod toolbox_process;
mod toolbox_pty;
mod wire_compat;

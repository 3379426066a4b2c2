//! forge-cli's integration tests, one test binary: each file beside this one is a module (one
//! link of the crate and its dependencies instead of one per file).

mod commands;
mod common;
mod local_backend;
mod preview_cmd;

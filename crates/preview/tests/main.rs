//! forge-preview's integration tests, one test binary: each file beside this one is a module
//! (one link of the crate and its dependencies instead of one per file).

mod browser;
mod classify_http;
mod common;
mod idempotent_steps;
mod install_cache;
mod log_lines;
mod logport;
mod remote_detect;
mod verify_local;

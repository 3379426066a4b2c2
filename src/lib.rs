//! The napi binding: converts between JS and the core crates. No logic lives here.
#![deny(clippy::all)]
// Under `cargo test` napi-derive registers nothing, so exported items look unused.
#![cfg_attr(test, allow(dead_code))]

mod client;
mod detect;
mod dto;
mod error;
mod fs;
mod git;
mod local;
mod pipeline;
mod process;
mod sandbox;
mod session;
mod task;
mod toolbox_dto;

pub use client::Daytona;
pub use sandbox::Sandbox;

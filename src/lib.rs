//! The napi binding: converts between JS and the core crates. No logic lives here.
#![deny(clippy::all)]
// Under `cargo test` napi-derive registers nothing, so exported items look unused.
#![cfg_attr(test, allow(dead_code))]

mod callback;
// The `forge` command line starts processes and serves HTTP: native only.
#[cfg(not(target_family = "wasm"))]
mod cli;
mod client;
mod detect;
mod dto;
mod error;
mod events;
mod fs;
mod git;
mod json;
// The embedded backend is Linux only; elsewhere a local client gets a typed refusal.
#[cfg(target_os = "linux")]
mod local;
#[cfg(not(target_os = "linux"))]
#[path = "local_unsupported.rs"]
mod local;
mod logs;
mod pipeline;
mod process;
mod promise;
mod pty;
mod sandbox;
mod snapshots;
mod toolbox_dto;
#[cfg(target_family = "wasm")]
mod wasm_fetch;
// Generates typings.d.ts (run by scripts/ensure-built.mjs through `cargo test`).
#[cfg(test)]
mod typings;

pub use client::Daytona;

/// napi-rs's tokio runtime, with 8 MiB worker stacks instead of 2 MiB: deep async call chains
/// (the pipeline's steps, TLS and WebSocket handshakes) are far larger in debug builds, and a
/// stack overflow would kill the Node process rather than reject a promise.
///
/// The WebAssembly build's runtime has no I/O driver: WASI has no sockets for it to serve,
/// its worker parks in `poll_oneoff`, which a wake from the JavaScript thread (a `fetch`
/// answered) cannot interrupt, and with nothing to wait for it spins (docs/wasm.md, "The
/// fix"). It runs napi-rs's WASI heap sync before each poll, as napi-rs's own runtime does.
#[napi_derive::module_init]
fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    #[cfg(not(target_family = "wasm"))]
    builder.enable_all();
    #[cfg(target_family = "wasm")]
    builder
        .enable_time()
        .on_before_task_poll(|_| napi::sys::wasi_heap_sync::refresh_if_behind());
    if let Ok(rt) = builder
        .thread_name("forge-rt")
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
pub use sandbox::Sandbox;

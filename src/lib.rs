//! The napi binding: converts between JS and the core crates. No logic lives here.
#![deny(clippy::all)]

mod client;
mod detect;
mod dto;
mod error;
mod local;
mod process;
mod sandbox;
mod task;

pub use client::Daytona;
pub use sandbox::Sandbox;

//! The napi binding: converts between JS and the core crates. No logic lives here.
#![deny(clippy::all)]

mod detect;

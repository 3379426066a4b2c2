//! `forge local`: run the embedded backend in the foreground.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("forge local: not built yet");
    ExitCode::FAILURE
}

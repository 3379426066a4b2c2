//! `forge detect [DIR] [--json]`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("forge detect: not built yet");
    ExitCode::FAILURE
}

//! JS face of the `forge` command line (crates/cli): `runCli(argv, { signal })` runs the same
//! code as the cargo-built `forge` binary and resolves with its exit code. The package's
//! `bin/forge.js` calls it with `process.argv.slice(2)` and turns SIGINT / SIGTERM into the
//! signal's abort.
//!
//! The command writes to this process's stdout and stderr itself (file descriptors 1 and 2).

use crate::promise::{signal_of, spawn_promise, token_for, Pending};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Runs the `forge` command line with `argv` (the arguments after the program name, e.g.
/// `['detect', '.', '--json']`) and resolves with its exit code: 0 done, 1 failed, 2 bad
/// arguments, 130 interrupted. Aborting `signal` is Ctrl-C: what runs in a sandbox is killed and
/// the sandbox deleted (unless `--keep`) before the promise resolves with 130. It never
/// rejects for the command's own failures (they are its output and exit code).
#[napi(
    ts_args_type = "argv: string[], options?: { signal?: AbortSignal }",
    ts_return_type = "Promise<number>"
)]
pub fn run_cli(env: &Env, argv: Vec<String>, options: Option<Object>) -> Result<Pending<i32>> {
    // The command watches the signal itself and cleans up however long that takes, so the
    // promise is not raced against it (an abort would otherwise resolve before the cleanup).
    let cancel = token_for(env, signal_of(options.as_ref())?)?;
    spawn_promise(env, None, move |_| async move {
        Ok::<_, crate::error::Rejection>(forge_cli::run(argv, cancel).await)
    })
}

//! The `forge` binary: [`forge_cli::run`] on a multi-threaded runtime, with SIGINT / SIGTERM
//! turned into its cancellation. A second signal while it cleans up ends the process at once.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forge: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async {
        let cancel = CancellationToken::new();
        let signals = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        if let (Ok(mut int), Ok(mut term)) = signals {
            let c = cancel.clone();
            tokio::spawn(async move {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                c.cancel();
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                eprintln!("forge: interrupted again: exiting without cleaning up");
                std::process::exit(forge_cli::EXIT_CANCELLED);
            });
        }
        forge_cli::run(std::env::args().skip(1).collect(), cancel).await
    });
    // The runtime's tasks (a log follower, a spinner) must not keep the process alive.
    rt.shutdown_background();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

//! Builds `forge-sandbox` (runtime/forge-sandbox.c), the embedded backend's container
//! runtime (see `src/container/`), with the C compiler the `cc` crate finds for the target.
//! The backend embeds the program and writes it into its home at start. Off Linux, or when no
//! compiler works, the file is empty and the backend refuses to start sandboxes (it says why).

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "runtime/forge-sandbox.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["CC", "CFLAGS", "TARGET_CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let program = out.join("forge-sandbox");
    let _ = std::fs::remove_file(&program);
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !(linux && compile(&program)) {
        if linux {
            println!("cargo:warning=forge-local: could not compile {SOURCE}; the embedded backend cannot start sandboxes");
        }
        if let Err(e) = std::fs::write(&program, b"") {
            println!(
                "cargo:warning=forge-local: cannot write {}: {e}",
                program.display()
            );
        }
    }
}

/// Compiles the runtime into `program`: statically where the C library allows it (the
/// program never depends on the machine's shared libraries then), else dynamically.
fn compile(program: &Path) -> bool {
    let compiler = match cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .try_get_compiler()
    {
        Ok(c) => c,
        Err(e) => {
            println!("cargo:warning=forge-local: no C compiler: {e}");
            return false;
        }
    };
    for link in [&["-static"][..], &[][..]] {
        let mut cmd: Command = compiler.to_command();
        cmd.args(["-Os", "-s", "-Wall", "-Wno-format-truncation", "-o"])
            .arg(program)
            .arg(SOURCE)
            .args(link);
        match cmd.output() {
            Ok(o) if o.status.success() => return true,
            Ok(o) => println!(
                "cargo:warning=forge-local: compiling {SOURCE} failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
            Err(e) => println!("cargo:warning=forge-local: cannot run the C compiler: {e}"),
        }
    }
    false
}

//! Builds `libforgeports.so` (shim/forgeports.c), the LD_PRELOAD library that gives every
//! sandbox its own TCP port numbers (see `src/ports.rs`), with the C compiler the `cc` crate
//! finds for the target. When no compiler works the build still succeeds with an empty file,
//! and the backend runs without port mapping (it logs so).

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "shim/forgeports.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["CC", "CFLAGS", "TARGET_CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let so = out.join("libforgeports.so");
    let _ = std::fs::remove_file(&so);
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let built = linux && compile(&so);
    if !built {
        if linux {
            println!(
                "cargo:warning=forge-local: could not compile {SOURCE}; sandboxes will share this machine's ports"
            );
        }
        // An empty library means "not available"; the crate still builds.
        if let Err(e) = std::fs::write(&so, b"") {
            println!(
                "cargo:warning=forge-local: cannot write {}: {e}",
                so.display()
            );
        }
    }
}

/// Compiles the shim into `so`: with `-ldl` first (glibc before 2.34 keeps `dlsym` there),
/// then without it.
fn compile(so: &Path) -> bool {
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
    for libs in [&["-ldl"][..], &[][..]] {
        let mut cmd: Command = compiler.to_command();
        cmd.args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(so)
            .arg(SOURCE)
            .args(libs);
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

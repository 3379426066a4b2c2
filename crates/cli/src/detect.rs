//! `forge detect [DIR] [--json]`: what framework a folder holds and how to start it.

use std::path::PathBuf;
use std::process::ExitCode;

use forge_detect::{detect_dir, DetectOptions, Detection};

#[derive(clap::Args)]
pub struct Args {
    /// The repository or app folder (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Print the whole answer as JSON.
    #[arg(long)]
    json: bool,
    /// Answer for this app folder of a monorepo (relative to DIR) instead of the automatic pick.
    #[arg(long)]
    root: Option<String>,
    /// Port to put in the dev command.
    #[arg(long)]
    port: Option<u16>,
    /// Preview host the dev server must accept (repeatable; a leading `.` allows subdomains).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
}

/// Writes to stdout; a closed pipe (`forge detect | head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

pub fn run(args: Args) -> ExitCode {
    let opts = DetectOptions {
        root: args.root,
        port: args.port,
        allowed_hosts: args.allowed_hosts,
    };
    match detect_dir(&args.dir, &opts) {
        Ok(d) if args.json => match serde_json::to_string_pretty(&d) {
            Ok(s) => {
                out(&format!("{s}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("forge detect: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(d) => {
            out(&human(&d));
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                let err =
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
                out(&format!("{err}\n"));
            } else {
                eprintln!("forge detect: {e} [{}]", e.code());
            }
            ExitCode::FAILURE
        }
    }
}

/// The human answer, one fact per line.
fn human(d: &Detection) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let fw = match &d.framework {
        Some(f) => format!(
            "{}{}",
            f.name,
            f.version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ),
        None => "not recognised".to_string(),
    };
    let _ = writeln!(o, "framework   {fw} (confidence {:.2})", d.confidence);
    let _ = writeln!(o, "root        {}", d.root);
    let pm = &d.package_manager;
    let _ = writeln!(
        o,
        "package mgr {}{} (from {})",
        pm.name,
        pm.version
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default(),
        pm.source
    );
    if let Some(c) = &d.install_command {
        let _ = writeln!(o, "install     {c}   (in {})", d.install_root);
    }
    if let Some(c) = &d.dev_command {
        let _ = writeln!(o, "dev         {c}");
    }
    if let Some(p) = d.port {
        let _ = writeln!(o, "port        {p}");
    }
    for (k, v) in &d.env {
        let _ = writeln!(o, "env         {k}={v}");
    }
    if let Some(c) = &d.build_command {
        let _ = writeln!(o, "build       {c}");
    }
    if let Some(n) = &d.node_version {
        let _ = writeln!(o, "node        {n}");
    }
    if let Some(m) = &d.monorepo {
        let _ = writeln!(
            o,
            "monorepo    {} ({} packages)",
            m.tools.join(", "),
            m.packages.len()
        );
    }
    for a in &d.apps {
        let name = a.framework.as_ref().map_or("?", |f| f.name.as_str());
        let _ = writeln!(
            o,
            "  app       {:<28} {:<24} {}",
            a.root,
            name,
            a.dev_command.as_deref().unwrap_or("-")
        );
    }
    for e in &d.evidence {
        let _ = writeln!(o, "because     {e}");
    }
    for w in &d.warnings {
        let _ = writeln!(o, "warning     [{}] {}", w.code, w.message);
    }
    o
}

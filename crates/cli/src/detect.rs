//! `forge detect [DIR] [--root R] [--port P] [--json]`: what framework a folder holds and how to start it.

use std::path::PathBuf;

use crate::output::{success, Failure};

use forge_detect::{detect_dir, DetectOptions, Detection};

#[derive(clap::Args)]
pub struct Args {
    /// The repository or app folder (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
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

pub fn run(args: &Args, json: bool) -> Result<(), Failure> {
    let opts = DetectOptions {
        root: args.root.clone(),
        port: args.port,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    let d = detect_dir(&args.dir, &opts).map_err(|e| Failure::new(e.code(), e.to_string()))?;
    // A derived Serialize with string keys: to_value cannot fail.
    success(
        json,
        serde_json::to_value(&d).unwrap_or_default(),
        &human(&d),
    );
    Ok(())
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

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

pub fn run(args: Args) -> ExitCode {
    let opts = DetectOptions {
        root: args.root,
        port: args.port,
        allowed_hosts: args.allowed_hosts,
    };
    match detect_dir(&args.dir, &opts) {
        Ok(d) if args.json => match serde_json::to_string_pretty(&d) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("forge detect: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(d) => {
            print_human(&d);
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}})
                );
            } else {
                eprintln!("forge detect: {e} [{}]", e.code());
            }
            ExitCode::FAILURE
        }
    }
}

fn print_human(d: &Detection) {
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
    println!("framework   {fw} (confidence {:.2})", d.confidence);
    println!("root        {}", d.root);
    let pm = &d.package_manager;
    println!(
        "package mgr {}{} (from {})",
        pm.name,
        pm.version
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default(),
        pm.source
    );
    if let Some(c) = &d.install_command {
        println!("install     {c}   (in {})", d.install_root);
    }
    if let Some(c) = &d.dev_command {
        println!("dev         {c}");
    }
    if let Some(p) = d.port {
        println!("port        {p}");
    }
    for (k, v) in &d.env {
        println!("env         {k}={v}");
    }
    if let Some(c) = &d.build_command {
        println!("build       {c}");
    }
    if let Some(n) = &d.node_version {
        println!("node        {n}");
    }
    if let Some(m) = &d.monorepo {
        println!(
            "monorepo    {} ({} packages)",
            m.tools.join(", "),
            m.packages.len()
        );
    }
    for a in &d.apps {
        let name = a.framework.as_ref().map(|f| f.name.as_str()).unwrap_or("?");
        println!(
            "  app       {:<28} {:<24} {}",
            a.root,
            name,
            a.dev_command.as_deref().unwrap_or("-")
        );
    }
    for e in &d.evidence {
        println!("because     {e}");
    }
    for w in &d.warnings {
        println!("warning     [{}] {}", w.code, w.message);
    }
}

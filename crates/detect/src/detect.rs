//! The orchestration: manifests → monorepo → one answer per app → the top-level pick.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::command::{self, Settings};
use crate::dep_env::{self, Phase};
use crate::error::{DetectError, Warning};
use crate::frameworks::Kind;
use crate::listing::join;
use crate::manifest::{clean_version, Manifest};
use crate::matcher;
use crate::package::Pkg;
use crate::pm::{self, PackageManagerInfo};
use crate::snapshot::Snapshot;
use crate::workspaces::{self, MonorepoInfo};

/// The preview domains allowed by default (Daytona's proxy domain family).
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[".daytona.work"];

/// Options of a detection.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// The app folder to answer for (repository-relative), instead of the automatic pick.
    pub root: Option<String>,
    /// The port to put in the dev command instead of the framework's default or the
    /// project's pinned port (ignored where the port is hard-coded in the app).
    pub port: Option<u16>,
    /// Host names the dev server must accept (preview domains; a leading `.` allows
    /// subdomains). Empty means [`DEFAULT_ALLOWED_HOSTS`].
    pub allowed_hosts: Vec<String>,
}

/// The framework found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DetectedFramework"))]
pub struct FrameworkInfo {
    /// Stable id from the frameworks table (`nextjs`, `vite-react`, `sveltekit`, …).
    pub id: String,
    pub name: String,
    /// The dependency version range as written (`^15.0.3` → `15.0.3`).
    pub version: Option<String>,
}

/// The answer for one app folder (and, at the top level, the whole repository).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "FrameworkDetection"))]
pub struct Detection {
    /// `null` when nothing was recognised.
    pub framework: Option<FrameworkInfo>,
    /// 0 to 1: 0.95 dependency and config file, 0.9 dependency, 0.8/0.6 server library with or
    /// without an entry file importing it, 0.6 tooling only, 0.5 plain Node, 0.4 static
    /// files; multiplied by 0.7 when several frameworks tied.
    pub confidence: f64,
    /// Why: every signal and rule that led to the answer.
    pub evidence: Vec<String>,
    pub package_manager: PackageManagerInfo,
    /// Run in `installRoot`; `null` when there is no package.json.
    pub install_command: Option<String>,
    /// Where to run the install (the lockfile's folder, the monorepo root).
    pub install_root: String,
    /// Env for the install: download-only postinstalls a preview never uses, switched off by
    /// their documented variables (see the evidence for each).
    pub install_env: BTreeMap<String, String>,
    /// Run in `installRoot` after the install: builds the workspace packages the app imports
    /// (a monorepo app whose dependencies ship built files); `null` when nothing needs it.
    pub prepare_command: Option<String>,
    /// Run in `root`, with `env`; listens on 0.0.0.0:`port`.
    pub dev_command: Option<String>,
    pub build_command: Option<String>,
    pub port: Option<u16>,
    /// Env for the dev command (port, host, allowed preview hosts, framework switches).
    pub env: BTreeMap<String, String>,
    /// From `.nvmrc`, `.node-version` (nearest first) or `engines.node`.
    pub node_version: Option<String>,
    /// The app folder, repository-relative (`.` for the root).
    pub root: String,
    /// The package name from its package.json.
    pub name: Option<String>,
    pub monorepo: Option<MonorepoInfo>,
    /// Every app of a monorepo, each with its own full answer (empty otherwise).
    pub apps: Vec<Detection>,
    pub warnings: Vec<Warning>,
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    manifests: HashMap<String, Manifest>,
    settings: Settings<'a>,
}

impl Ctx<'_> {
    fn manifest(&self, dir: &str) -> Option<Manifest> {
        self.manifests.get(dir).cloned()
    }
}

fn display(dir: &str) -> String {
    if dir.is_empty() {
        ".".into()
    } else {
        dir.into()
    }
}

/// Detection over a snapshot (phase two). `opts.root` selects the app folder.
pub fn detect_snapshot(snap: &Snapshot, opts: &DetectOptions) -> Result<Detection, DetectError> {
    let mut warnings: Vec<Warning> = snap.listing.warnings().to_vec();
    let mut manifests = HashMap::new();
    for dir in snap.listing.dirs() {
        let p = join(dir, "package.json");
        if let Some(b) = snap.bytes(&p) {
            manifests.insert(
                dir.to_string(),
                Manifest::parse(&p, &b.bytes, b.truncated, &mut warnings),
            );
        } else if snap.listing.has_file(&p) {
            warnings.push(Warning::new(
                "PACKAGE_JSON_UNREAD",
                format!("{p} could not be read; ignored"),
            ));
            manifests.insert(dir.to_string(), Manifest::default());
        }
    }
    let allowed: Vec<String> = if opts.allowed_hosts.is_empty() {
        DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    } else {
        opts.allowed_hosts.clone()
    };
    let ctx = Ctx {
        snap,
        manifests,
        settings: Settings {
            host: "0.0.0.0",
            chosen_port: opts.port,
            allowed_hosts: &allowed,
        },
    };
    let root_dir = match &opts.root {
        Some(r) => {
            let n = crate::source::normalize_path(r)
                .ok_or_else(|| DetectError::InvalidRoot { root: r.clone() })?;
            if !snap.listing.has_dir(&n) {
                return Err(DetectError::RootNotFound { root: r.clone() });
            }
            Some(n)
        }
        None => None,
    };

    let root_pm = pm::detect(snap, "", false, &|d| ctx.manifest(d));
    let mut mono = workspaces::detect(snap, "", ctx.manifests.get(""), &root_pm.info.name);
    let root_app = analyze(&ctx, "", None, false);
    if mono.is_none() && !is_app(&root_app) {
        // A root that is no app and declares no workspaces: its apps are in subfolders.
        mono = ctx
            .manifests
            .get("")
            .and_then(|m| workspaces::folders(snap, m));
    }
    let declared = mono
        .as_ref()
        .is_some_and(|m| m.tools.iter().any(|t| t != "folders"));
    let entry = mono.as_ref().and_then(|m| m.entry.clone());
    // Apps under a root package.json that declares no workspaces install on their own (the
    // root's lockfile is the root package's); under a root without one, lockfiles above
    // still count.
    let own = !declared && ctx.manifests.contains_key("");
    let mut apps: Vec<Detection> = Vec::new();
    if let Some(m) = &mono {
        for dir in &m.packages {
            let a = analyze(&ctx, dir, declared.then_some(""), own);
            if a.framework.is_some() {
                apps.push(a);
            }
        }
    }
    if let Some(m) = mono.as_ref().filter(|_| declared) {
        for a in &mut apps {
            add_prepare(&ctx, m, a);
        }
    }
    let mut pick_evidence = None;
    let mut top = if let Some(dir) = &root_dir {
        let in_mono = mono.as_ref().is_some_and(|m| m.packages.contains(dir));
        let mut a = analyze(
            &ctx,
            dir,
            (in_mono && declared).then_some(""),
            in_mono && own,
        );
        a.evidence
            .insert(0, format!("root {} chosen by the caller", display(dir)));
        if let Some(m) = mono.as_ref().filter(|_| in_mono && declared) {
            add_prepare(&ctx, m, &mut a);
        }
        a
    } else if apps.is_empty() {
        root_app
    } else {
        let mut cands: Vec<&Detection> = apps.iter().collect();
        if root_app.framework.is_some() {
            cands.push(&root_app);
        }
        let key = |d: &Detection| (entry.as_deref() == Some(d.root.as_str()), score(d));
        let best = cands
            .iter()
            .max_by(|a, b| key(a).cmp(&key(b)).then(b.root.cmp(&a.root)))
            .map(|d| (*d).clone());
        let best = best.unwrap_or(root_app);
        pick_evidence = Some(if entry.as_deref() == Some(best.root.as_str()) {
            format!(
                "picked {} among {} apps: the root package.json's scripts run the app there",
                best.root,
                apps.len()
            )
        } else {
            format!(
                "picked {} among {} apps: the rule prefers app frameworks over build tools over servers over tooling, then apps/* and names like web/app/frontend/site over docs/storybook/api/examples, then an app with a dev script, then the shallowest path",
                best.root,
                apps.len()
            )
        });
        best
    };
    if let Some(e) = pick_evidence {
        top.evidence.insert(0, e);
    }
    warnings.append(&mut top.warnings);
    top.warnings = warnings;
    top.monorepo = mono;
    top.apps = apps;
    Ok(top)
}

/// Fills `prepareCommand` of an app of a declared monorepo.
fn add_prepare(ctx: &Ctx, mono: &MonorepoInfo, app: &mut Detection) {
    let dir = if app.root == "." {
        ""
    } else {
        app.root.as_str()
    };
    let exec = command::exec_prefix(&app.package_manager);
    if let Some((cmd, why)) =
        workspaces::prepare(&ctx.manifests, mono, dir, &app.package_manager.name, exec)
    {
        app.evidence.push(why);
        app.prepare_command = Some(cmd);
    }
}

/// An answer that is an app: a framework above the plain-Node / static fallbacks.
fn is_app(d: &Detection) -> bool {
    d.framework
        .as_ref()
        .and_then(|f| crate::frameworks::by_id(&f.id))
        .is_some_and(|f| f.kind > Kind::Runtime)
}

/// The stated top-level pick rule, as a sortable key.
fn score(d: &Detection) -> (u8, i32, bool, i32) {
    let kind = d
        .framework
        .as_ref()
        .and_then(|f| crate::frameworks::by_id(&f.id))
        .map_or(0, |f| f.kind as u8);
    let segs: Vec<&str> = if d.root == "." {
        vec![]
    } else {
        d.root.split('/').collect()
    };
    let mut pref = 0;
    match segs.first() {
        None => pref += 1,
        Some(&"apps" | &"sites") => pref += 2,
        Some(&"packages" | &"libs" | &"examples" | &"tooling") => pref -= 1,
        _ => {}
    }
    if let Some(last) = segs.last() {
        if [
            "web", "app", "frontend", "client", "site", "www", "website", "webapp",
        ]
        .contains(last)
        {
            pref += 2;
        }
        if [
            "docs",
            "storybook",
            "e2e",
            "playground",
            "example",
            "examples",
            "admin",
            "api",
            "server",
            "backend",
            "design-system",
            "ui",
        ]
        .contains(last)
        {
            pref -= 2;
        }
    }
    let has_dev = d
        .evidence
        .iter()
        .any(|e| e.contains("script dev") || e.contains("`dev` script"));
    (kind, pref, has_dev, -(segs.len() as i32))
}

/// The full answer for one folder. `ws_root` is the monorepo root when the folder is one of
/// its packages; `own` says the folder installs on its own (an app in a subfolder of a
/// repository that declares no workspaces).
fn analyze(ctx: &Ctx, dir: &str, ws_root: Option<&str>, own: bool) -> Detection {
    let has_manifest = ctx.manifests.contains_key(dir);
    let mut manifest = ctx.manifest(dir).unwrap_or_default();
    let mut evidence = Vec::new();
    // An Nx project without its own package.json uses the root's dependencies.
    if !has_manifest && ctx.snap.listing.has_file(&join(dir, "project.json")) {
        if let Some(root) = ctx.manifests.get("") {
            manifest.deps = root.deps.clone();
            evidence
                .push("Nx project without package.json: using the root dependencies".to_string());
        }
    }
    let name = manifest.name.clone();
    let pkg = Pkg {
        dir: dir.to_string(),
        manifest,
        snap: ctx.snap,
    };
    let pm = pm::detect(ctx.snap, dir, own, &|d| ctx.manifest(d));
    let choice = matcher::choose(matcher::matches(&pkg));
    let mut warnings = pm.warnings;
    warnings.extend(choice.warnings);
    let mut out = Detection {
        framework: None,
        confidence: 0.0,
        evidence,
        package_manager: pm.info.clone(),
        install_command: (has_manifest || ws_root.is_some()).then(|| pm.install.clone()),
        install_root: display(
            ws_root
                .filter(|_| pm.install_root == dir)
                .unwrap_or(&pm.install_root),
        ),
        install_env: BTreeMap::new(),
        prepare_command: None,
        dev_command: None,
        build_command: None,
        port: None,
        env: BTreeMap::new(),
        node_version: None,
        root: display(dir),
        name,
        monorepo: None,
        apps: Vec::new(),
        warnings,
    };
    if let Some(m) = &choice.chosen {
        let fw = m.fw;
        let version = fw
            .version_of
            .iter()
            .find_map(|d| pkg.manifest.deps.get(*d))
            .map(|v| clean_version(v));
        out.framework = Some(FrameworkInfo {
            id: fw.id.to_string(),
            name: fw.name.to_string(),
            version,
        });
        out.evidence.extend(m.signals.iter().cloned());
        if !choice.others.is_empty() {
            out.evidence.push(format!(
                "also matched, lower precedence: {}",
                choice.others.join(", ")
            ));
        }
        let mut conf = match fw.kind {
            Kind::Framework | Kind::BuildTool => {
                if m.by_file || m.signals.len() > 1 {
                    0.95
                } else {
                    0.9
                }
            }
            Kind::Server => {
                let imported = fw.version_of.first().and_then(|d| pkg.entry_importing(d));
                match imported {
                    Some(f) => {
                        out.evidence
                            .push(format!("{f} imports {}", fw.version_of[0]));
                        0.8
                    }
                    None => 0.6,
                }
            }
            Kind::Tooling => 0.6,
            Kind::Runtime => {
                if fw.id == "static" {
                    0.4
                } else {
                    0.5
                }
            }
        };
        if choice.ambiguous {
            conf *= 0.7;
        }
        out.confidence = conf;
        let plan = command::plan(fw, &pkg, &pm.info, &ctx.settings);
        out.dev_command = plan.command;
        out.build_command = plan.build;
        out.port = plan.port;
        out.env = plan.env;
        out.evidence.extend(plan.evidence);
        let root_manifest = ws_root.and_then(|r| ctx.manifests.get(r));
        let mut dev_of = vec![&pkg.manifest];
        dev_of.extend(root_manifest);
        let (dev_env, why) = dep_env::for_phase(Phase::Dev, &dev_of);
        for (k, v) in dev_env {
            out.env.entry(k).or_insert(v);
        }
        out.evidence.extend(why);
        out.warnings.extend(plan.warnings);
        if fw.id == "static" {
            out.install_command = None;
        }
    } else {
        out.warnings.push(Warning::new(
            "NO_FRAMEWORK",
            format!("no framework recognised in {}", display(dir)),
        ));
    }
    out.evidence.extend(pm.evidence);
    if out.install_command.is_some() {
        // The install covers the install root's package and, in a monorepo, every workspace.
        let install_dir = if out.install_root == "." {
            ""
        } else {
            out.install_root.as_str()
        };
        let covered: Vec<&Manifest> = ctx
            .manifests
            .iter()
            .filter(|(d, _)| {
                d.as_str() == install_dir
                    || d.as_str() == dir
                    || (ws_root.is_some()
                        && (install_dir.is_empty() || d.starts_with(&format!("{install_dir}/"))))
            })
            .map(|(_, m)| m)
            .collect();
        let (env, why) = dep_env::for_phase(Phase::Install, &covered);
        out.install_env = env;
        out.evidence.extend(why);
    }
    out.evidence
        .push(format!("install: `{}` in {}", pm.install, out.install_root));
    out.node_version = node_version(ctx, dir, &mut out.evidence);
    out
}

fn node_version(ctx: &Ctx, dir: &str, evidence: &mut Vec<String>) -> Option<String> {
    for d in pm::ancestors(dir) {
        for f in [".nvmrc", ".node-version"] {
            let p = join(&d, f);
            if let Some(t) = ctx.snap.text(&p) {
                let v = t
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .find(|l| !l.is_empty());
                if let Some(v) = v {
                    evidence.push(format!("Node {v} from {p}"));
                    return Some(v.to_string());
                }
            }
        }
        if let Some(v) = ctx.manifests.get(&d).and_then(|m| m.engines.get("node")) {
            evidence.push(format!(
                "Node {v} from engines.node in {}",
                join(&d, "package.json")
            ));
            return Some(v.clone());
        }
    }
    None
}

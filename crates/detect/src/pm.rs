//! Package manager and install command. Rules, in order:
//! 1. the corepack `packageManager` field of the package, else of the nearest package.json
//!    above it (up to the repository root);
//! 2. lockfiles, in the package folder and then each folder above it up to the root; the
//!    first folder holding any wins. Several in one folder: bun > pnpm > yarn > npm (a stray
//!    package-lock.json is the usual accident), with a `SEVERAL_LOCKFILES` warning;
//! 3. `engines.pnpm` / `engines.yarn` / `engines.bun`;
//! 4. npm (never yarn for a repository without a lockfile).
//!
//! Yarn Berry vs Classic: the field's version, else `.yarnrc.yml`, else `__metadata` in
//! yarn.lock. Install: `npm ci` only with a package-lock.json (else `npm install`),
//! `pnpm install --frozen-lockfile`, `yarn install --frozen-lockfile` (Classic) or
//! `--immutable` (Berry), `bun install --frozen-lockfile`; plain `install` without a lockfile.

use serde::Serialize;

use crate::error::Warning;
use crate::listing::{join, split_parent};
use crate::manifest::Manifest;
use crate::snapshot::Snapshot;

/// Which package manager, which version, and how we know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageManagerInfo {
    /// `npm`, `pnpm`, `yarn` or `bun`.
    pub name: String,
    /// Exact version from the `packageManager` field, or a major (`1`, `berry`) when only that
    /// is known.
    pub version: Option<String>,
    /// `packageManager` (the corepack field), `lockfile`, `engines` or `default`.
    pub source: String,
    /// The lockfile found (repository-relative), if any.
    pub lockfile: Option<String>,
}

/// Lockfiles in preference order (bun > pnpm > yarn > npm).
const LOCKFILES: &[(&str, &str)] = &[
    ("bun.lock", "bun"),
    ("bun.lockb", "bun"),
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
];

pub(crate) struct PmAnswer {
    pub info: PackageManagerInfo,
    pub install: String,
    /// Where the install runs: the folder of the lockfile, else of the package.
    pub install_root: String,
    pub evidence: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// `dir` and every folder above it, nearest first.
pub(crate) fn ancestors(dir: &str) -> Vec<String> {
    let mut out = vec![dir.to_string()];
    let mut d = dir;
    while !d.is_empty() {
        d = split_parent(d).0;
        out.push(d.to_string());
    }
    out
}

pub(crate) fn detect(
    snap: &Snapshot,
    dir: &str,
    manifest_of: &dyn Fn(&str) -> Option<Manifest>,
) -> PmAnswer {
    let mut evidence = Vec::new();
    let mut warnings = Vec::new();
    let dirs = ancestors(dir);

    let field = dirs.iter().find_map(|d| {
        manifest_of(d)
            .and_then(|m| m.package_manager)
            .map(|f| (d.clone(), f))
    });
    let lock = dirs.iter().find_map(|d| {
        let found: Vec<(&str, &str)> = LOCKFILES
            .iter()
            .copied()
            .filter(|(f, _)| snap.listing.has_file(&join(d, f)))
            .collect();
        (!found.is_empty()).then(|| (d.clone(), found))
    });

    let mut name = "npm".to_string();
    let mut version = None;
    let mut source = "default";
    if let Some((d, f)) = &field {
        let spec = f.split('+').next().unwrap_or(f);
        let (n, v) = spec.split_once('@').unwrap_or((spec, ""));
        if ["npm", "pnpm", "yarn", "bun"].contains(&n) {
            name = n.to_string();
            version = (!v.is_empty()).then(|| v.to_string());
            source = "packageManager";
            evidence.push(format!(
                "packageManager field `{f}` in {}",
                join(d, "package.json")
            ));
        } else {
            warnings.push(Warning::new(
                "UNKNOWN_PACKAGE_MANAGER",
                format!("packageManager `{f}` is not npm, pnpm, yarn or bun; ignored"),
            ));
        }
    }
    let mut lockfile = None;
    if let Some((d, found)) = &lock {
        if found.len() > 1 {
            let list: Vec<&str> = found.iter().map(|(f, _)| *f).collect();
            warnings.push(Warning::new(
                "SEVERAL_LOCKFILES",
                format!(
                    "{} holds several lockfiles ({}); the rule bun > pnpm > yarn > npm picks {}",
                    if d.is_empty() { "the root" } else { d },
                    list.join(", "),
                    found[0].0
                ),
            ));
        }
        // With a field, the lockfile of that manager is the one that counts.
        let pick = if source == "packageManager" {
            found.iter().find(|(_, m)| *m == name).copied()
        } else {
            Some(found[0])
        };
        match pick {
            Some((f, m)) => {
                lockfile = Some(join(d, f));
                if source != "packageManager" {
                    name = m.to_string();
                    source = "lockfile";
                    evidence.push(format!("lockfile {}", join(d, f)));
                }
            }
            None => warnings.push(Warning::new(
                "PACKAGE_MANAGER_MISMATCH",
                format!("packageManager says {name} but the lockfile is {}; following the packageManager field", found[0].0),
            )),
        }
    }
    if source == "default" {
        if let Some((m, d)) = dirs.iter().find_map(|d| {
            let man = manifest_of(d)?;
            ["pnpm", "yarn", "bun"]
                .iter()
                .find(|m| man.engines.contains_key(**m))
                .map(|m| (m.to_string(), d.clone()))
        }) {
            evidence.push(format!("engines.{m} in {}", join(&d, "package.json")));
            name = m;
            source = "engines";
        } else {
            evidence.push("no packageManager field or lockfile: npm".to_string());
        }
    }
    if name == "yarn"
        && version
            .as_deref()
            .is_none_or(|v| !v.starts_with(|c: char| c.is_ascii_digit()))
    {
        let berry = dirs.iter().any(|d| {
            snap.listing.has_file(&join(d, ".yarnrc.yml"))
                || snap.listing.has_file(&join(d, ".yarnrc.yaml"))
        }) || lockfile
            .as_deref()
            .and_then(|l| snap.text(l))
            .is_some_and(|t| t.contains("__metadata"));
        version = Some(if berry { "berry" } else { "1" }.to_string());
    }
    let berry = name == "yarn"
        && version
            .as_deref()
            .is_some_and(|v| v == "berry" || !v.starts_with('1'));
    let locked = lockfile.is_some();
    let install = match (name.as_str(), locked) {
        ("npm", true) => "npm ci".to_string(),
        ("yarn", true) if berry => "yarn install --immutable".to_string(),
        ("yarn", true) => "yarn install --frozen-lockfile".to_string(),
        (n, true) => format!("{n} install --frozen-lockfile"),
        (n, false) => format!("{n} install"),
    };
    let install_root = match (&lock, &field) {
        (Some((d, _)), _) => d.clone(),
        (None, Some((d, _))) => d.clone(),
        _ => dir.to_string(),
    };
    PmAnswer {
        info: PackageManagerInfo {
            name,
            version,
            source: source.to_string(),
            lockfile,
        },
        install,
        install_root,
        evidence,
        warnings,
    }
}

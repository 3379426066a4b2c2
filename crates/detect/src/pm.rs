//! Package manager and install command. Rules, in order:
//! 1. the corepack `packageManager` field of the package, else of the nearest package.json
//!    above it (up to the repository root);
//! 2. lockfiles, in the package folder and then each folder above it up to the root; the
//!    first folder holding any wins. Several in one folder: the one that agrees with
//!    package.json (see [`crate::lockfiles`]), then bun > pnpm > yarn > npm, with a
//!    `SEVERAL_LOCKFILES` warning saying which agreed;
//! 3. `engines.pnpm` / `engines.yarn` / `engines.bun`;
//! 4. npm (never yarn for a repository without a lockfile).
//!
//! Yarn Berry vs Classic: the field's version, else `.yarnrc.yml`, else `__metadata` in
//! yarn.lock. Install: `npm ci` only with a package-lock.json (else `npm install`),
//! `pnpm install --frozen-lockfile`, `yarn install --frozen-lockfile` (Classic) or
//! `--immutable` (Berry), `bun install --frozen-lockfile`; plain `install` without a lockfile.
//!
//! Sandboxes (the embedded backend's, Daytona's `node` images) often have npm only, or another
//! major of pnpm than the repository pins: [`PackageManagerInfo::fetch_spec`] names the npm
//! package that runs the wanted one, so the pipeline can run it through `npx` when the sandbox
//! lacks it.

use serde::{Deserialize, Serialize};

use crate::error::Warning;
use crate::listing::{join, split_parent};
use crate::lockfiles::{self, LOCKFILES};
use crate::manifest::Manifest;
use crate::snapshot::Snapshot;

/// Which package manager, which version, and how we know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "DetectedPackageManager")
)]
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
    /// The npm package (with a version) that runs this package manager where the sandbox has
    /// none or another major: `pnpm@10.2.0`, `pnpm@9` (from the lockfile's format),
    /// `yarn@1`, `@yarnpkg/cli-dist@4` (Berry), `bun@1.2.0`; `null` for npm.
    pub fetch_spec: Option<String>,
}

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

/// The answer for the package in `dir`. `own` keeps the search in `dir` (an app in a subfolder
/// of a repository that is not a monorepo installs on its own, whatever the root holds).
pub(crate) fn detect(
    snap: &Snapshot,
    dir: &str,
    own: bool,
    manifest_of: &dyn Fn(&str) -> Option<Manifest>,
) -> PmAnswer {
    let mut evidence = Vec::new();
    let mut warnings = Vec::new();
    let dirs = if own {
        vec![dir.to_string()]
    } else {
        ancestors(dir)
    };

    let field = dirs.iter().find_map(|d| {
        manifest_of(d)
            .and_then(|m| m.package_manager)
            .map(|f| (d.clone(), f))
    });
    let lock = dirs.iter().find_map(|d| {
        let found: Vec<(&str, &str)> = LOCKFILES
            .iter()
            .filter(|l| snap.listing.has_file(&join(d, l.file)))
            .map(|l| (l.file, l.manager))
            .collect();
        (!found.is_empty()).then(|| (d.clone(), order_by_agreement(snap, d, found, manifest_of)))
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
    if let Some((d, ranked)) = &lock {
        if let Some(why) = several_why(d, ranked) {
            warnings.push(Warning::new("SEVERAL_LOCKFILES", why));
        }
        let found: Vec<(&str, &str)> = ranked.iter().map(|(f, m, _)| (*f, *m)).collect();
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
    let fetch_spec = fetch_spec(&name, version.as_deref(), lockfile.as_deref(), snap);
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
            fetch_spec,
        },
        install,
        install_root,
        evidence,
        warnings,
    }
}

/// A lockfile found, its manager, and its agreement with package.json.
type Ranked = (&'static str, &'static str, lockfiles::Agreement);

/// Several lockfiles in `dir`: each with its agreement, best first (agreement, then the
/// priority order of [`LOCKFILES`]).
fn order_by_agreement(
    snap: &Snapshot,
    dir: &str,
    found: Vec<(&'static str, &'static str)>,
    manifest_of: &dyn Fn(&str) -> Option<Manifest>,
) -> Vec<Ranked> {
    if found.len() < 2 {
        return found
            .into_iter()
            .map(|(f, m)| (f, m, lockfiles::Agreement::Unknown))
            .collect();
    }
    let manifest = manifest_of(dir).unwrap_or_default();
    let mut out: Vec<_> = found
        .into_iter()
        .map(|(f, m)| {
            let format = LOCKFILES
                .iter()
                .find(|l| l.file == f)
                .map_or(lockfiles::Format::Opaque, |l| l.format);
            let a = snap
                .bytes(&join(dir, f))
                .map_or(lockfiles::Agreement::Unknown, |b| {
                    lockfiles::agreement(
                        format,
                        &String::from_utf8_lossy(&b.bytes),
                        b.truncated,
                        &manifest,
                    )
                });
            (f, m, a)
        })
        .collect();
    // Stable: equal agreement keeps the priority order.
    out.sort_by_key(|(_, _, a)| a.rank());
    out
}

/// The `SEVERAL_LOCKFILES` message: every lockfile's agreement and the pick.
fn several_why(dir: &str, found: &[Ranked]) -> Option<String> {
    if found.len() < 2 {
        return None;
    }
    let each: Vec<String> = found.iter().map(|(f, _, a)| a.describe(f)).collect();
    let decided = if found[0].2.rank() < found[1].2.rank() {
        "agreement with package.json"
    } else {
        "the rule bun > pnpm > yarn > npm"
    };
    Some(format!(
        "{} holds several lockfiles ({}); {decided} picks {}",
        if dir.is_empty() { "the root" } else { dir },
        each.join("; "),
        found[0].0
    ))
}

/// See [`PackageManagerInfo::fetch_spec`].
fn fetch_spec(
    name: &str,
    version: Option<&str>,
    lockfile: Option<&str>,
    snap: &Snapshot,
) -> Option<String> {
    let exact = version.filter(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    let from_lock = || {
        lockfile
            .and_then(|l| snap.text(l))
            .and_then(|t| lockfiles::reader_version(name, &t))
    };
    match name {
        "pnpm" => Some(format!(
            "pnpm@{}",
            exact.or_else(from_lock).unwrap_or("latest")
        )),
        "yarn" => {
            let classic = version.is_none_or(|v| v == "1" || v.starts_with("1."));
            if classic {
                Some(format!("yarn@{}", exact.unwrap_or("1")))
            } else {
                Some(format!(
                    "@yarnpkg/cli-dist@{}",
                    exact.or_else(from_lock).unwrap_or("4")
                ))
            }
        }
        "bun" => Some(format!("bun@{}", exact.unwrap_or("latest"))),
        _ => None,
    }
}

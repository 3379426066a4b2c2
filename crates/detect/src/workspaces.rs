//! Monorepos: which tools declare them and which folders are their packages.
//! Globs come from package.json `workspaces` (npm, yarn, bun), `pnpm-workspace.yaml`,
//! `lerna.json` `packages` (default `packages/*`); an Nx repository without globs uses every
//! folder holding a package.json or project.json. Turbo adds no globs of its own.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::listing::join;
use crate::manifest::Manifest;
use crate::snapshot::Snapshot;

/// The monorepo around the detected app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DetectedMonorepo"))]
pub struct MonorepoInfo {
    /// `npm-workspaces`, `yarn-workspaces`, `pnpm-workspaces`, `bun-workspaces`, `turbo`,
    /// `nx`, `lerna`; `folders` when there is no declaration but several package folders.
    pub tools: Vec<String>,
    /// Every package folder, repository-relative.
    pub packages: Vec<String>,
    /// The folder the root package.json's scripts run the app in (`yarn --cwd website
    /// start`, `cd client && npm run dev`), when the root is not an app itself.
    pub entry: Option<String>,
}

/// Reads the `packages:` list of a pnpm-workspace.yaml (the only part that matters).
pub(crate) fn pnpm_globs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        if code.trim().is_empty() {
            continue;
        }
        if !code.starts_with([' ', '\t', '-']) {
            inside = code.trim_end() == "packages:";
            if let Some(rest) = code.trim().strip_prefix("packages:") {
                // Flow form: packages: ['a/*', 'b']
                let rest = rest.trim();
                if rest.starts_with('[') {
                    out.extend(
                        rest.trim_matches(['[', ']'])
                            .split(',')
                            .map(unquote)
                            .filter(|s| !s.is_empty()),
                    );
                }
            }
            continue;
        }
        if inside {
            if let Some(item) = code.trim().strip_prefix('-') {
                let item = unquote(item);
                if !item.is_empty() {
                    out.push(item);
                }
            }
        }
    }
    out
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches(['"', '\'']).to_string()
}

/// Segment-wise glob match: `*` inside a segment, `**` for any number of segments.
pub(crate) fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern
        .trim_start_matches("./")
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    fn go(p: &[&str], s: &[&str]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(&"**") => (0..=s.len()).any(|i| go(&p[1..], &s[i..])),
            Some(seg) => {
                !s.is_empty() && crate::snapshot::name_matches(seg, s[0]) && go(&p[1..], &s[1..])
            }
        }
    }
    go(&p, &s)
}

/// The monorepo rooted at `root` (usually the repository root), if it is one.
pub(crate) fn detect(
    snap: &Snapshot,
    root: &str,
    root_manifest: Option<&Manifest>,
    pm: &str,
) -> Option<MonorepoInfo> {
    let has = |f: &str| snap.listing.has_file(&join(root, f));
    let mut tools = Vec::new();
    let mut globs: Vec<String> = Vec::new();
    if let Some(m) = root_manifest.filter(|m| !m.workspaces.is_empty()) {
        globs.extend(m.workspaces.iter().cloned());
        tools.push(format!(
            "{}-workspaces",
            if pm == "pnpm" { "npm" } else { pm }
        ));
    }
    if has("pnpm-workspace.yaml") {
        let g = snap
            .text(&join(root, "pnpm-workspace.yaml"))
            .map(|t| pnpm_globs(&t))
            .unwrap_or_default();
        globs.extend(g);
        tools.retain(|t| !t.ends_with("-workspaces"));
        tools.push("pnpm-workspaces".to_string());
    }
    if has("turbo.json") || has("turbo.jsonc") || root_manifest.is_some_and(|m| m.has_turbo_key) {
        tools.push("turbo".to_string());
    }
    if has("lerna.json") {
        tools.push("lerna".to_string());
        let lerna: Vec<String> = snap
            .text(&join(root, "lerna.json"))
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v.get("packages").and_then(|p| p.as_array()).map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        if !lerna.is_empty() {
            globs.extend(lerna);
        } else if globs.is_empty() {
            globs.push("packages/*".to_string());
        }
    }
    let nx = has("nx.json");
    if nx {
        tools.push("nx".to_string());
    }
    let package_dirs: Vec<String> = snap
        .listing
        .dirs()
        .filter(|d| *d != root && (root.is_empty() || d.starts_with(&format!("{root}/"))))
        .filter(|d| {
            snap.listing.has_file(&join(d, "package.json"))
                || (nx && snap.listing.has_file(&join(d, "project.json")))
        })
        .map(str::to_string)
        .collect();
    let rel = |d: &str| -> String {
        if root.is_empty() {
            d.to_string()
        } else {
            d[root.len() + 1..].to_string()
        }
    };
    let packages: Vec<String> = if globs.is_empty() && nx {
        package_dirs
    } else if globs.is_empty() {
        // No declaration: a root without package.json whose subfolders hold apps
        // (`frontend/` + `backend/`) is still treated as several apps.
        if root_manifest.is_some() || package_dirs.is_empty() {
            return None;
        }
        tools.push("folders".to_string());
        package_dirs
            .into_iter()
            .filter(|d| rel(d).split('/').count() <= 2)
            .collect()
    } else {
        let (neg, pos): (Vec<&String>, Vec<&String>) =
            globs.iter().partition(|g| g.starts_with('!'));
        package_dirs
            .into_iter()
            .filter(|d| {
                let r = rel(d);
                pos.iter().any(|g| glob_match(g, &r))
                    && !neg.iter().any(|g| glob_match(&g[1..], &r))
            })
            .collect()
    };
    if tools.is_empty() {
        return None;
    }
    Some(MonorepoInfo {
        tools,
        packages,
        entry: None,
    })
}

/// How to build the workspace packages an app depends on, before its dev server starts: run in
/// the monorepo root after the install. `None` when the app depends on no workspace package
/// with a `build` script (one that exports its sources needs no build).
///
/// The repository's own task runner when it has one (`turbo run build --filter='app^...'`, which
/// builds the app's dependencies in order and not the app), pnpm's filter otherwise
/// (`pnpm --filter 'app^...' run build`, topological), else each package's `build` script in
/// dependency order.
pub(crate) fn prepare(
    manifests: &HashMap<String, Manifest>,
    mono: &MonorepoInfo,
    app_dir: &str,
    pm: &str,
    exec: &str,
) -> Option<(String, String)> {
    let by_name: BTreeMap<&str, &str> = mono
        .packages
        .iter()
        .filter_map(|d| Some((manifests.get(d)?.name.as_deref()?, d.as_str())))
        .collect();
    let app = manifests.get(app_dir)?;
    // Depth-first, dependencies before dependents; `seen` also stops cycles.
    fn visit<'a>(
        dir: &'a str,
        manifests: &'a HashMap<String, Manifest>,
        by_name: &BTreeMap<&'a str, &'a str>,
        seen: &mut Vec<&'a str>,
        order: &mut Vec<&'a str>,
    ) {
        let Some(m) = manifests.get(dir) else { return };
        for dep in m.deps.keys() {
            if let Some(d) = by_name.get(dep.as_str()).copied() {
                if !seen.contains(&d) {
                    seen.push(d);
                    visit(d, manifests, by_name, seen, order);
                    order.push(d);
                }
            }
        }
    }
    let mut seen = vec![app_dir];
    let mut order = Vec::new();
    visit(app_dir, manifests, &by_name, &mut seen, &mut order);
    let built: Vec<&str> = order
        .into_iter()
        .filter(|d| {
            manifests
                .get(*d)
                .is_some_and(|m| m.scripts.contains_key("build"))
        })
        .collect();
    if built.is_empty() {
        return None;
    }
    let names: Vec<String> = built
        .iter()
        .map(|d| {
            manifests
                .get(*d)
                .and_then(|m| m.name.clone())
                .unwrap_or_else(|| (*d).to_string())
        })
        .collect();
    let root_has = |dep: &str| manifests.get("").is_some_and(|m| m.deps.contains_key(dep));
    let (command, how) = match (
        &app.name,
        mono.tools.iter().any(|t| t == "turbo") && root_has("turbo"),
    ) {
        (Some(name), true) => (
            format!("{exec} turbo run build --filter='{name}^...'"),
            "the repository's turbo",
        ),
        (Some(name), false) if pm == "pnpm" => (
            format!("pnpm --filter '{name}^...' run build"),
            "pnpm's filter",
        ),
        _ => (
            built
                .iter()
                .map(|d| format!("(cd {d} && {pm} run build)"))
                .collect::<Vec<_>>()
                .join(" && "),
            "each package's build script, dependencies first",
        ),
    };
    Some((
        command,
        format!(
            "the app depends on workspace packages with a build step ({}): built first with {how}",
            names.join(", ")
        ),
    ))
}

/// Folders that hold package.json files (at most two levels down) under a root that has one
/// but declares no workspaces and is no app itself: a docs site in `website/`, an app in
/// `client/`. `entry` is the folder the root's scripts point at, when one does.
pub(crate) fn folders(snap: &Snapshot, root_manifest: &Manifest) -> Option<MonorepoInfo> {
    let packages: Vec<String> = snap
        .listing
        .dirs()
        .filter(|d| !d.is_empty() && d.split('/').count() <= 2)
        .filter(|d| snap.listing.has_file(&join(d, "package.json")))
        .map(str::to_string)
        .collect();
    if packages.is_empty() {
        return None;
    }
    let scripts = ["dev", "start", "develop", "serve"]
        .iter()
        .filter_map(|n| root_manifest.scripts.get(*n))
        .chain(root_manifest.scripts.values());
    let entry = scripts
        .flat_map(|s| script_folders(s))
        .find(|d| packages.contains(d));
    Some(MonorepoInfo {
        tools: vec!["folders".to_string()],
        packages,
        entry,
    })
}

/// Folders a script runs something in: `--cwd X`, `--prefix X`, `--dir X`, `-C X` (each
/// also as `--flag=X`), `cd X`.
pub(crate) fn script_folders(script: &str) -> Vec<String> {
    const FLAGS: &[&str] = &["--cwd", "--prefix", "--dir", "-C", "cd"];
    let words: Vec<&str> = script.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let value = match w.split_once('=') {
            Some((f, v)) if FLAGS.contains(&f) => Some(v),
            _ if FLAGS.contains(w) => words.get(i + 1).copied(),
            _ => None,
        };
        if let Some(v) = value {
            let v = v
                .trim_matches(['"', '\'', ';'])
                .trim_start_matches("./")
                .trim_end_matches('/');
            if !v.is_empty() && !v.starts_with(['-', '/', '$']) && !v.contains("..") {
                out.push(v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("apps/*", "apps/web"));
        assert!(!glob_match("apps/*", "apps/web/sub"));
        assert!(glob_match("packages/**", "packages/a/b"));
        assert!(glob_match("./apps/*/", "apps/x"));
        assert!(glob_match("app-*", "app-one"));
    }

    #[test]
    fn folders_scripts_point_at() {
        assert_eq!(script_folders("yarn --cwd website start"), ["website"]);
        assert_eq!(script_folders("cd ./client/ && npm run dev"), ["client"]);
        assert_eq!(script_folders("npm --prefix=app run dev"), ["app"]);
        assert!(script_folders("cd .. && npm start").is_empty());
    }

    #[test]
    fn pnpm_yaml() {
        let t = "packages:\n  - 'apps/*'\n  - \"packages/*\" # libs\n  - '!**/test/**'\ncatalog:\n  react: ^19\n";
        assert_eq!(pnpm_globs(t), ["apps/*", "packages/*", "!**/test/**"]);
        assert_eq!(pnpm_globs("packages: ['a/*', b]\n"), ["a/*", "b"]);
    }
}

//! Lockfiles: which package manager wrote each, which version of it can read it, and whether a
//! lockfile still agrees with its package.json.
//!
//! Why agreement matters: a repository that moved from yarn to npm often keeps its old
//! `yarn.lock` beside a fresh `package-lock.json`; a fixed priority then installs with the stale
//! one. A lockfile *agrees* when every direct dependency of the package.json appears in it with
//! the same range (the check `npm ci` and `yarn --frozen-lockfile` make before refusing).
//! Modification times cannot decide it: a clone gives every file the time of the checkout.

use std::collections::BTreeMap;

use crate::manifest::Manifest;

/// One lockfile name: the package manager it belongs to, in the priority order used when
/// nothing else decides (bun > pnpm > yarn > npm: a stray package-lock.json is the usual
/// accident, an explicit bun or pnpm lockfile rarely is).
pub(crate) struct Lockfile {
    pub file: &'static str,
    pub manager: &'static str,
    /// How to read it for agreement with package.json.
    pub format: Format,
}

#[derive(Clone, Copy)]
pub(crate) enum Format {
    /// `package-lock.json` / `npm-shrinkwrap.json`: `packages[""]` (v2, v3) or `dependencies`.
    NpmJson,
    /// `pnpm-lock.yaml`: `importers['.']` (v6+) or top-level `specifiers` (v5).
    PnpmYaml,
    /// `yarn.lock` (Classic and Berry): entry keys `name@range` / `name@npm:range`.
    YarnLock,
    /// Not read (binary `bun.lockb`, or a format without a stable root section).
    Opaque,
}

pub(crate) const LOCKFILES: &[Lockfile] = &[
    Lockfile {
        file: "bun.lock",
        manager: "bun",
        format: Format::Opaque,
    },
    Lockfile {
        file: "bun.lockb",
        manager: "bun",
        format: Format::Opaque,
    },
    Lockfile {
        file: "pnpm-lock.yaml",
        manager: "pnpm",
        format: Format::PnpmYaml,
    },
    Lockfile {
        file: "yarn.lock",
        manager: "yarn",
        format: Format::YarnLock,
    },
    Lockfile {
        file: "package-lock.json",
        manager: "npm",
        format: Format::NpmJson,
    },
    Lockfile {
        file: "npm-shrinkwrap.json",
        manager: "npm",
        format: Format::NpmJson,
    },
];

/// Bytes of a lockfile read when only its header matters (format version, Berry metadata).
pub(crate) const HEADER_BYTES: usize = 1024;
/// Bytes read when several lockfiles compete and agreement decides: the root sections of npm
/// and pnpm lockfiles come first; yarn.lock is sorted, so a cut file still answers for the
/// dependencies sorted before the cut.
pub(crate) const COMPARE_BYTES: usize = 2 << 20;

/// Whether a lockfile agrees with its package.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Agreement {
    /// Every direct dependency is locked with the range package.json asks for.
    Agrees,
    /// The first disagreement: `name` is asked for as `wanted` and locked as `locked` (or not
    /// locked at all).
    Stale {
        name: String,
        wanted: String,
        locked: Option<String>,
    },
    /// Could not tell (binary, unreadable, or cut before the answer).
    Unknown,
}

impl Agreement {
    /// Better agreement sorts first.
    pub fn rank(&self) -> u8 {
        match self {
            Agreement::Agrees => 0,
            Agreement::Unknown => 1,
            Agreement::Stale { .. } => 2,
        }
    }

    pub fn describe(&self, file: &str) -> String {
        match self {
            Agreement::Agrees => format!("{file} agrees with package.json"),
            Agreement::Unknown => format!("{file} could not be compared with package.json"),
            Agreement::Stale {
                name,
                wanted,
                locked: Some(l),
            } => format!("{file} is stale: it locks {name} as {l}, package.json asks for {wanted}"),
            Agreement::Stale {
                name,
                wanted,
                locked: None,
            } => format!("{file} is stale: it does not lock {name} ({wanted}) from package.json"),
        }
    }
}

/// The direct dependencies a lockfile must lock: dependencies, devDependencies and
/// optionalDependencies (peers are not locked as such), without workspace links.
fn direct(m: &Manifest) -> BTreeMap<&str, &str> {
    m.direct
        .iter()
        .filter(|(_, v)| !v.starts_with("workspace:") && !v.starts_with("link:"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Compares a lockfile's text (possibly cut: `truncated`) with its package.json.
pub(crate) fn agreement(
    format: Format,
    text: &str,
    truncated: bool,
    manifest: &Manifest,
) -> Agreement {
    let wanted = direct(manifest);
    // name → the range locked (`None`: locked, range not recorded).
    let locked: Option<BTreeMap<String, Option<String>>> = match format {
        Format::NpmJson => npm_root(text),
        Format::PnpmYaml => pnpm_root(text),
        Format::YarnLock => return yarn_agreement(text, truncated, &wanted),
        Format::Opaque => None,
    };
    let Some(locked) = locked else {
        return Agreement::Unknown;
    };
    for (name, want) in wanted {
        match locked.get(name) {
            Some(None) => {}
            Some(Some(l)) if l == want => {}
            other => {
                return Agreement::Stale {
                    name: name.to_string(),
                    wanted: want.to_string(),
                    locked: other.cloned().flatten(),
                }
            }
        }
    }
    Agreement::Agrees
}

/// npm v2/v3: the ranges in `packages[""]`; v1: the names in `dependencies` (ranges are not
/// kept there, so a v1 lockfile agrees on names only).
fn npm_root(text: &str) -> Option<BTreeMap<String, Option<String>>> {
    // The root entry comes first; parse just that object so that a cut file still answers.
    if let Some(at) = text.find("\"packages\"") {
        let rest = &text[at..];
        let open = rest.find("\"\"")?;
        let obj = rest[open + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        let mut it = serde_json::Deserializer::from_str(obj).into_iter::<serde_json::Value>();
        let root = it.next()?.ok()?;
        let mut out = BTreeMap::new();
        for key in ["dependencies", "devDependencies", "optionalDependencies"] {
            if let Some(m) = root.get(key).and_then(serde_json::Value::as_object) {
                for (k, v) in m {
                    if let Some(s) = v.as_str() {
                        out.insert(k.clone(), Some(s.to_string()));
                    }
                }
            }
        }
        return Some(out);
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let deps = v.get("dependencies")?.as_object()?;
    Some(deps.keys().map(|k| (k.clone(), None)).collect())
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches(['"', '\''])
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// pnpm v6+: `importers: '.': dependencies: name: specifier: range`; v5: top-level
/// `specifiers: name: range`.
fn pnpm_root(text: &str) -> Option<BTreeMap<String, Option<String>>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    if let Some(start) = lines.iter().position(|l| l.trim_end() == "specifiers:") {
        for l in &lines[start + 1..] {
            if indent(l) == 0 && !l.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = l.trim().split_once(": ") {
                out.insert(unquote(k).to_string(), Some(unquote(v).to_string()));
            }
        }
        return Some(out);
    }
    let imp = lines.iter().position(|l| l.trim_end() == "importers:")?;
    let dot = lines[imp + 1..]
        .iter()
        .position(|l| indent(l) == 2 && matches!(l.trim(), ".:" | "'.':" | "\".\":"))?
        + imp
        + 1;
    let mut name: Option<&str> = None;
    let mut complete = false;
    for l in &lines[dot + 1..] {
        if l.trim().is_empty() {
            continue;
        }
        if indent(l) <= 2 {
            complete = true;
            break;
        }
        match indent(l) {
            6 => name = l.trim().strip_suffix(':').map(unquote),
            8 => {
                if let (Some(n), Some(v)) = (name, l.trim().strip_prefix("specifier:")) {
                    out.insert(n.to_string(), Some(unquote(v).to_string()));
                }
            }
            _ => {}
        }
    }
    // A cut file whose root section never ended cannot say a dependency is missing.
    complete.then_some(out)
}

/// yarn.lock: every `name@range` the package.json asks for must be an entry key (Berry writes
/// `name@npm:range`). Entries are sorted, so a cut file answers for names before the cut.
fn yarn_agreement(text: &str, truncated: bool, wanted: &BTreeMap<&str, &str>) -> Agreement {
    let mut keys = std::collections::HashSet::new();
    let mut last_name = String::new();
    for line in text.lines() {
        if line.starts_with([' ', '#']) || !line.ends_with(':') || line.starts_with("__metadata") {
            continue;
        }
        for desc in line.trim_end_matches(':').split(", ") {
            let d = unquote(desc);
            keys.insert(d.replacen("@npm:", "@", 1));
            if let Some(at) = d[1..].find('@') {
                last_name = d[..=at].to_string();
            }
        }
    }
    if keys.is_empty() {
        return Agreement::Unknown;
    }
    for (name, want) in wanted {
        if keys.contains(&format!("{name}@{want}")) {
            continue;
        }
        if truncated && *name > last_name.as_str() {
            return Agreement::Unknown;
        }
        let locked = keys
            .iter()
            .find(|k| k.strip_prefix(name).is_some_and(|r| r.starts_with('@')))
            .map(|k| k[name.len() + 1..].to_string());
        return Agreement::Stale {
            name: (*name).to_string(),
            wanted: (*want).to_string(),
            locked,
        };
    }
    Agreement::Agrees
}

/// The version of a package manager that reads this lockfile, from its header, when the
/// repository does not pin one: pnpm's `lockfileVersion`, Berry's `__metadata.version`.
pub(crate) fn reader_version(manager: &str, header: &str) -> Option<&'static str> {
    match manager {
        "pnpm" => {
            let v = header
                .lines()
                .find_map(|l| l.strip_prefix("lockfileVersion:"))
                .map(unquote)?;
            PNPM_LOCKFILE_READERS
                .iter()
                .find(|(prefix, _)| v.starts_with(prefix))
                .map(|(_, major)| *major)
        }
        "yarn" => {
            let meta = header.find("__metadata:")?;
            let v = header[meta..]
                .lines()
                .find_map(|l| l.trim().strip_prefix("version:"))
                .map(unquote)?;
            BERRY_LOCKFILE_READERS
                .iter()
                .find(|(lv, _)| *lv == v)
                .map(|(_, major)| *major)
        }
        _ => None,
    }
}

/// pnpm's `lockfileVersion` → the pnpm major that writes it (pnpm 10 still writes 9.0).
const PNPM_LOCKFILE_READERS: &[(&str, &str)] = &[
    ("9.", "9"),
    ("6.", "8"),
    ("5.4", "7"),
    ("5.3", "6"),
    ("5.", "6"),
];

/// Berry's `__metadata.version` → the Yarn major that writes it.
const BERRY_LOCKFILE_READERS: &[(&str, &str)] =
    &[("8", "4"), ("7", "3"), ("6", "3"), ("5", "3"), ("4", "2")];

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(deps: &[(&str, &str)]) -> Manifest {
        Manifest {
            direct: deps
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ..Manifest::default()
        }
    }

    #[test]
    fn npm_root_section_decides() {
        let m = manifest(&[("react", "^18.2.0"), ("vite", "^5.0.0")]);
        let lock = r#"{"name":"a","lockfileVersion":3,"packages":{"":{"name":"a","dependencies":{"react":"^18.2.0"},"devDependencies":{"vite":"^5.0.0"}},"node_modules/react":{"#;
        assert_eq!(
            agreement(Format::NpmJson, lock, true, &m),
            Agreement::Agrees
        );
        let stale = r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"react":"^17.0.2"}}}}"#;
        assert!(matches!(
            agreement(Format::NpmJson, stale, false, &m),
            Agreement::Stale { ref name, locked: Some(ref l), .. } if name == "react" && l == "^17.0.2"
        ));
    }

    #[test]
    fn pnpm_importers_and_v5_specifiers() {
        let m = manifest(&[("react", "^18.2.0"), ("@types/node", "^20")]);
        let v9 = "lockfileVersion: '9.0'\n\nimporters:\n\n  .:\n    dependencies:\n      react:\n        specifier: ^18.2.0\n        version: 18.3.1\n    devDependencies:\n      '@types/node':\n        specifier: ^20\n        version: 20.1.0\n\npackages:\n";
        assert_eq!(
            agreement(Format::PnpmYaml, v9, false, &m),
            Agreement::Agrees
        );
        let v5 = "lockfileVersion: 5.4\n\nspecifiers:\n  '@types/node': ^20\n  react: ^17.0.0\n\ndependencies:\n";
        assert!(matches!(
            agreement(Format::PnpmYaml, v5, false, &m),
            Agreement::Stale { .. }
        ));
        assert_eq!(reader_version("pnpm", v9), Some("9"));
        assert_eq!(reader_version("pnpm", v5), Some("7"));
    }

    #[test]
    fn yarn_keys_classic_and_berry() {
        let m = manifest(&[("react", "^18.2.0"), ("vite", "^5.0.0")]);
        let classic = "# yarn lockfile v1\n\n\nreact@^18.2.0:\n  version \"18.2.0\"\n\n\"vite@^5.0.0\", \"vite@^5.1.0\":\n  version \"5.1.0\"\n";
        assert_eq!(
            agreement(Format::YarnLock, classic, false, &m),
            Agreement::Agrees
        );
        let berry = "__metadata:\n  version: 8\n\n\"react@npm:^18.2.0\":\n  version: 18.2.0\n\n\"vite@npm:^4.0.0\":\n  version: 4.5.0\n";
        assert!(matches!(
            agreement(Format::YarnLock, berry, false, &m),
            Agreement::Stale { ref name, locked: Some(ref l), .. } if name == "vite" && l == "^4.0.0"
        ));
        assert_eq!(reader_version("yarn", berry), Some("4"));
        // Cut before `vite`: it cannot be called missing.
        let cut = "react@^18.2.0:\n  version \"18.2.0\"\n";
        assert_eq!(
            agreement(Format::YarnLock, cut, true, &m),
            Agreement::Unknown
        );
    }
}

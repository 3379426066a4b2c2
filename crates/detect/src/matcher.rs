//! Evaluates the frameworks table against one package and applies the precedence rules
//! described in [`crate::frameworks`].

use crate::error::Warning;
use crate::frameworks::{names, Cond, Framework, FRAMEWORKS};
use crate::manifest::major;
use crate::package::Pkg;

/// A framework whose detector matched, with the signals that made it match.
#[derive(Debug, Clone)]
pub(crate) struct Match {
    pub fw: &'static Framework,
    pub signals: Vec<String>,
    /// A config file (not only a dependency) was among the signals.
    pub by_file: bool,
}

/// The chosen framework, the others that matched, and precedence warnings.
pub(crate) struct Choice {
    pub chosen: Option<Match>,
    pub others: Vec<&'static str>,
    pub ambiguous: bool,
    pub warnings: Vec<Warning>,
}

fn eval(cond: &Cond, pkg: &Pkg) -> Option<(String, bool)> {
    match *cond {
        Cond::Dep(name) => pkg
            .manifest
            .deps
            .get(name)
            .map(|v| (format!("dependency {name}@{v}"), false)),
        Cond::DepMajorBelow(name, below) => {
            let v = pkg.manifest.deps.get(name)?;
            (major(v)? < below).then(|| (format!("{name}@{v} is older than {below}"), false))
        }
        Cond::File(pattern) => pkg
            .files(pattern)
            .into_iter()
            .next()
            .map(|f| (format!("file {f}"), pattern != "package.json")),
        Cond::FileContains(pattern, needle) => pkg.files(pattern).into_iter().find_map(|f| {
            pkg.text(&f)
                .is_some_and(|t| t.contains(needle))
                .then(|| (format!("{f} uses {needle}"), true))
        }),
        Cond::ServerScript => pkg
            .server_script()
            .map(|(n, v)| (format!("script {n}: `{v}` runs a server"), false)),
        Cond::EntryImports(module) => pkg
            .entry_importing(module)
            .map(|f| (format!("{f} imports {module}"), true)),
    }
}

/// Every framework whose detector matches `pkg`, in table order.
pub(crate) fn matches(pkg: &Pkg) -> Vec<Match> {
    let mut out = Vec::new();
    'fw: for fw in FRAMEWORKS {
        let mut signals = Vec::new();
        let mut by_file = false;
        for c in fw.every {
            match eval(c, pkg) {
                Some((s, f)) => {
                    by_file |= f;
                    signals.push(s);
                }
                None => continue 'fw,
            }
        }
        if !fw.some.is_empty() {
            let hits: Vec<(String, bool)> = fw.some.iter().filter_map(|c| eval(c, pkg)).collect();
            if hits.is_empty() {
                continue;
            }
            for (s, f) in hits {
                by_file |= f;
                signals.push(s);
            }
        }
        if fw.none.iter().any(|c| eval(c, pkg).is_some()) {
            continue;
        }
        out.push(Match {
            fw,
            signals,
            by_file,
        });
    }
    out
}

/// Applies precedence: `supersedes`, then kind, then signal count, then (with a warning)
/// table order.
#[allow(clippy::needless_pass_by_value)] // the matches are consumed by the caller's choice
pub(crate) fn choose(all: Vec<Match>) -> Choice {
    let ids: Vec<&'static str> = all.iter().map(|m| m.fw.id).collect();
    let mut left: Vec<Match> = all
        .iter()
        .filter(|m| {
            !all.iter()
                .any(|o| o.fw.id != m.fw.id && o.fw.supersedes.iter().any(|s| names(s, m.fw.id)))
        })
        .cloned()
        .collect();
    if let Some(top) = left.iter().map(|m| m.fw.kind).max() {
        left.retain(|m| m.fw.kind == top);
    }
    if let Some(most) = left.iter().map(|m| m.signals.len()).max() {
        left.retain(|m| m.signals.len() == most);
    }
    let mut warnings = Vec::new();
    let ambiguous = left.len() > 1;
    if ambiguous {
        let names: Vec<&str> = left.iter().map(|m| m.fw.id).collect();
        warnings.push(Warning::new(
            "AMBIGUOUS_FRAMEWORK",
            format!(
                "several frameworks match equally ({}); chose {} (set `root` or check the dependencies)",
                names.join(", "),
                names[0]
            ),
        ));
    }
    let chosen = left.into_iter().next();
    let others = ids
        .into_iter()
        .filter(|id| chosen.as_ref().is_none_or(|c| c.fw.id != *id))
        .collect();
    Choice {
        chosen,
        others,
        ambiguous,
        warnings,
    }
}

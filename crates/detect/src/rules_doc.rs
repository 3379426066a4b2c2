//! The README's detection tables, rendered from the tables detection runs on (frameworks,
//! lockfiles, dependency env) plus the package-manager rules, so that the documentation
//! cannot drift from the code: `crates/detect/tests/readme.rs` compares the README with
//! [`markdown`] (and rewrites it with `FORGE_UPDATE_README=1`).

use crate::dep_env::{Phase, DEP_ENV};
use crate::frameworks::{Cond, Dev, FRAMEWORKS};
use crate::lockfiles::{Format, LOCKFILES};
use std::fmt::Write;

/// How the package manager is chosen, in order, with the evidence each rule leaves in
/// `packageManager.evidence` / `warnings`. Mirrors `pm::detect` and `pm::fetch_spec`.
const PM_RULES: &[(&str, &str)] = &[
    (
        "The `packageManager` field (`pnpm@10.20.0`, `yarn@4.5.0+sha512…`) of the app's or the nearest ancestor's package.json: its name and version",
        "`packageManager field …`; a name that is not npm/pnpm/yarn/bun: warning `UNKNOWN_PACKAGE_MANAGER`; a lockfile of another manager: `PACKAGE_MANAGER_MISMATCH`",
    ),
    (
        "Else the lockfile that agrees with package.json (every direct dependency locked with the range package.json asks for); among several, the one that agrees, then bun > pnpm > yarn > npm",
        "`lockfile …`; several: warning `SEVERAL_LOCKFILES` naming which agrees",
    ),
    (
        "Else `engines.pnpm` / `engines.yarn` / `engines.bun`",
        "`engines.<pm> in …`",
    ),
    ("Else npm", "`no packageManager field or lockfile: npm`"),
    (
        "Install with a lockfile: `npm ci`, `pnpm install --frozen-lockfile`, `yarn install --frozen-lockfile` (Classic) or `yarn install --immutable` (Berry), `bun install --frozen-lockfile`; without one, `<pm> install`",
        "`installCommand`",
    ),
    (
        "Where the sandbox lacks the manager or has another major: `fetchSpec` names the package that provides it (`pnpm@<version or the lockfile's>`, `yarn@1`, `@yarnpkg/cli-dist@<major>` for Berry, `bun@<version>`), installed with npm into `~/.forge/pm` (corepack is not relied on: its signature check fails behind TLS-intercepting proxies)",
        "`packageManager.fetchSpec`; the install step's notes",
    ),
    (
        "npm's `ERESOLVE` (a peer-dependency conflict): one retry with `--legacy-peer-deps`",
        "the install step's notes and progress",
    ),
];

fn code(s: &str) -> String {
    format!("`{s}`")
}

fn cond(c: &Cond) -> String {
    match c {
        Cond::Dep(d) => code(d),
        Cond::DepMajorBelow(d, m) => format!("{} < {m}", code(d)),
        Cond::File(f) => format!("file {}", code(f)),
        Cond::FileContains(f, t) => format!("{} mentions {}", code(f), code(t)),
        Cond::ServerScript => "a dev/start script runs a server".into(),
        Cond::EntryImports(m) => format!("an entry file imports {}", code(m)),
    }
}

fn conds(every: &[Cond], some: &[Cond], none: &[Cond]) -> String {
    let mut parts: Vec<String> = every.iter().map(cond).collect();
    if !some.is_empty() {
        let any: Vec<String> = some.iter().map(cond).collect();
        parts.push(if any.len() == 1 {
            any[0].clone()
        } else {
            format!("one of {}", any.join(", "))
        });
    }
    for c in none {
        parts.push(format!("not {}", cond(c)));
    }
    if parts.is_empty() {
        "(fallback)".into()
    } else {
        parts.join(" and ")
    }
}

fn dev(d: &Dev) -> String {
    match d {
        Dev::Bin {
            bin, args, flags, ..
        } => {
            let words: Vec<&str> = [*bin, *args, *flags]
                .into_iter()
                .filter(|w| !w.is_empty())
                .collect();
            code(&words.join(" "))
        }
        Dev::Script { scripts } => format!(
            "the project's {} script, `PORT` set",
            scripts
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        Dev::Static => code("python3 -m http.server {port}"),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The detection section of the README (markdown, without its markers).
#[must_use]
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("Generated from `crates/detect/src` (frameworks.rs, lockfiles.rs, pm.rs, dep_env.rs) by `FORGE_UPDATE_README=1 cargo test -p forge-detect readme`; a test fails when it differs.\n\n");
    out.push_str("**Frameworks** — precedence: `beats` first, then kind (framework > build tool > server library > tooling > fallback), then the number of matched signals. Placeholders: `{host}` 0.0.0.0, `{port}` the chosen port, `{allowedHosts}` the preview hosts. A `dev`/`start` script that is a single call of the framework's binary keeps its own arguments.\n\n");
    out.push_str("| framework | recognised by | beats | dev command | default port |\n|---|---|---|---|---|\n");
    for f in FRAMEWORKS {
        let port = match f.old_port {
            Some((dep, below, p)) => format!("{} ({p} with `{dep}` < {below})", f.port),
            None if f.port == 0 => "—".into(),
            None => f.port.to_string(),
        };
        let mut how = dev(&f.dev);
        if !f.env.is_empty() {
            let env: Vec<String> = f.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(how, "; env {}", code(&env.join(" ")));
        }
        let _ = writeln!(
            out,
            "| {} (`{}`) | {} | {} | {} | {} |",
            cell(f.name),
            f.id,
            cell(&conds(f.every, f.some, f.none)),
            if f.supersedes.is_empty() {
                "—".into()
            } else {
                f.supersedes
                    .iter()
                    .map(|s| code(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            cell(&how),
            port
        );
    }
    out.push_str("\n**Package managers**, in order:\n\n| rule | evidence |\n|---|---|\n");
    for (rule, evidence) in PM_RULES {
        let _ = writeln!(out, "| {} | {} |", cell(rule), cell(evidence));
    }
    out.push_str("\n**Lockfiles** (priority order when agreement does not decide):\n\n| lockfile | manager | agreement read from |\n|---|---|---|\n");
    for l in LOCKFILES {
        let how = match l.format {
            Format::NpmJson => "`packages[\"\"]` (v2, v3) or `dependencies`",
            Format::PnpmYaml => "`importers['.']` (v6+) or `specifiers` (v5)",
            Format::YarnLock => "entry keys `name@range` / `name@npm:range`",
            Format::Opaque => "not read (agreement unknown)",
        };
        let _ = writeln!(out, "| `{}` | {} | {} |", l.file, l.manager, how);
    }
    out.push_str("\n**Environment a dependency needs** (`installEnv` for the install, `env` for the dev server):\n\n| dependency | when | variable | why |\n|---|---|---|---|\n");
    for r in DEP_ENV {
        let dep = match r.below_major {
            Some(m) => format!("`{}` < {m}", r.dep),
            None => code(r.dep),
        };
        let phase = match r.phase {
            Phase::Install => "install",
            Phase::Dev => "dev",
        };
        let _ = writeln!(
            out,
            "| {dep} | {phase} | `{}={}` | {} |",
            r.var,
            r.value,
            cell(r.why)
        );
    }
    out
}

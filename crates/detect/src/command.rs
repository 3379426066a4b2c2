//! Turns a chosen framework into a dev command: the framework's own binary with the flags
//! that make it listen on 0.0.0.0 on the port, keeping what the project's own script adds
//! (`--turbo`, `--mode ssr`, a docs folder) and honouring a port the project pins.

use std::collections::BTreeMap;

use crate::error::Warning;
use crate::frameworks::{Dev, Framework};
use crate::manifest::major;
use crate::package::Pkg;
use crate::pm::PackageManagerInfo;

/// What the dev command needs besides the framework.
pub(crate) struct Settings<'a> {
    pub host: &'a str,
    pub chosen_port: Option<u16>,
    pub allowed_hosts: &'a [String],
}

pub(crate) struct DevPlan {
    pub command: Option<String>,
    pub build: Option<String>,
    pub port: Option<u16>,
    pub env: BTreeMap<String, String>,
    pub evidence: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// Script names tried, in order, when looking for the project's own dev script.
const DEV_SCRIPTS: &[&str] = &["dev", "develop", "start", "serve"];

/// Flags removed from an adopted script because we set them: `(flag, takes a value)`.
const HOST_PORT_FLAGS: &[(&str, bool)] = &[
    ("--host", true),
    ("--hostname", true),
    ("-H", true),
    ("--port", true),
    ("-p", true),
    ("--strictPort", false),
    ("--strict-port", false),
    ("--open", false),
    ("-o", false),
    ("--no-open", false),
    ("--ci", false),
    ("--allowed-hosts", true),
];

/// Splits a script into words after leading `VAR=value` assignments and `cross-env`.
/// Returns nothing for compound scripts (`&&`, `|`, `;`, `concurrently`, `run-p`).
pub(crate) fn script_words(script: &str) -> Vec<String> {
    if script.contains("&&")
        || script.contains("||")
        || script.contains(';')
        || script.contains('|')
        || script.contains(" & ")
    {
        return Vec::new();
    }
    let mut words: Vec<String> = split_words(script);
    while let Some(first) = words.first().cloned() {
        let is_assign = first.contains('=')
            && !first.starts_with('-')
            && first.split('=').next().is_some_and(|k| {
                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.is_empty()
            });
        if is_assign
            || first == "cross-env"
            || first == "env"
            || first == "npx"
            || first == "dotenv"
        {
            words.remove(0);
            if first == "dotenv" && words.first().is_some_and(|w| w == "--") {
                words.remove(0);
            }
        } else {
            break;
        }
    }
    if words.first().is_some_and(|w| {
        [
            "concurrently",
            "run-p",
            "run-s",
            "npm-run-all",
            "turbo",
            "nx",
            "lerna",
        ]
        .contains(&w.as_str())
    }) {
        return Vec::new();
    }
    words
}

/// A script's `&&`-joined steps before its last one, and the last one: `yarn gen && vite`
/// → (`yarn gen`, `vite`). A script with other operators (`||`, `;`, `|`, `&`) is returned
/// whole, for [`script_words`] to refuse.
pub(crate) fn pre_steps(script: &str) -> (Option<String>, &str) {
    let mut quote: Option<char> = None;
    let mut cut = None;
    let bytes = script.as_bytes();
    for (i, c) in script.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '&') if bytes.get(i + 1) == Some(&b'&') => cut = Some(i),
            _ => {}
        }
    }
    let Some(at) = cut else {
        return (None, script);
    };
    let (pre, last) = (script[..at].trim(), script[at + 2..].trim());
    let others =
        |s: &str| s.contains("||") || s.contains(';') || s.contains('|') || s.contains(" & ");
    if pre.is_empty() || others(pre) || others(last) {
        return (None, script);
    }
    (Some(pre.to_string()), last)
}

fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes host/port flags; returns the kept words and a port they pinned.
fn strip_host_port(words: &[String]) -> (Vec<String>, Option<u16>) {
    let mut kept = Vec::new();
    let mut port = None;
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_string())),
            _ => (w.as_str(), None),
        };
        match HOST_PORT_FLAGS.iter().find(|(f, _)| *f == flag) {
            Some((f, takes)) => {
                let mut value = inline;
                if *takes && value.is_none() {
                    if let Some(next) = words.get(i + 1).filter(|n| !n.starts_with('-')) {
                        value = Some(next.clone());
                        i += 1;
                    }
                }
                if *f == "--port" || *f == "-p" {
                    port = value.and_then(|v| v.parse().ok()).or(port);
                }
            }
            None => kept.push(w.clone()),
        }
        i += 1;
    }
    (kept, port)
}

/// `server: { port: 3000 }` in a Vite config (or `"port": 4200` in angular.json serve options).
pub(crate) fn config_port(text: &str, anchor: &str) -> Option<u16> {
    let start = text.find(anchor)?;
    let window: String = text[start..].chars().take(600).collect();
    let at = window.find("port")?;
    let rest = window[at + 4..]
        .trim_start_matches(['"', '\''])
        .trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p > 0)
}

/// A port in server code: `(port, read from env first)`. Recognises `.listen(3000`,
/// `port: 3000`, `PORT || 3000`, `PORT ?? 3000`.
pub(crate) fn code_port(text: &str) -> Option<(u16, bool)> {
    let uses_env =
        text.contains("env.PORT") || text.contains("env[\"PORT\"]") || text.contains("env['PORT']");
    for key in [
        "PORT ||", "PORT ??", ".listen(", "port:", "port =", "PORT =",
    ] {
        let mut from = 0;
        while let Some(i) = text[from..].find(key) {
            let after = text[from + i + key.len()..].trim_start();
            let after = after.trim_start_matches(['{', '(', '"', '\'']).trim_start();
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(p) = digits.parse::<u16>() {
                if p >= 80 {
                    return Some((p, uses_env));
                }
            }
            from += i + key.len();
        }
    }
    None
}

/// `npx` / `pnpm exec` / `yarn` / `bunx`: runs a binary of the installed dependencies.
pub(crate) fn exec_prefix(pm: &PackageManagerInfo) -> &'static str {
    match pm.name.as_str() {
        "pnpm" => "pnpm exec",
        "yarn" => "yarn",
        "bun" => "bunx",
        _ => "npx",
    }
}

/// `npm run dev` and friends.
pub(crate) fn run_script(pm: &PackageManagerInfo, script: &str) -> String {
    format!("{} run {script}", pm.name)
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn plan(
    fw: &'static Framework,
    pkg: &Pkg,
    pm: &PackageManagerInfo,
    set: &Settings,
) -> DevPlan {
    let mut evidence = Vec::new();
    let mut warnings = Vec::new();
    let mut default_port = fw.port;
    if let Some((dep, below, old)) = fw.old_port {
        if pkg
            .manifest
            .deps
            .get(dep)
            .and_then(|v| major(v))
            .is_some_and(|m| m < below)
        {
            default_port = old;
        }
    }
    let mut pinned: Option<(u16, String)> = None;
    let mut can_set_port = true;

    let docs_dir = ["docs", "src", "."]
        .into_iter()
        .find(|d| pkg.has_dir(&format!("{d}/.vitepress")) || pkg.has_dir(&format!("{d}/.vuepress")))
        .unwrap_or(if pkg.has_dir(".vitepress") || pkg.has_dir(".vuepress") {
            "."
        } else {
            "docs"
        });
    let entry = if pkg.manifest.source.is_some() {
        String::new()
    } else {
        ["index.html", "src/index.html"]
            .into_iter()
            .find(|f| pkg.has_file(f))
            .unwrap_or("index.html")
            .to_string()
    };

    let mut command = None;
    match fw.dev {
        Dev::Bin {
            bin,
            alt_bins,
            args,
            flags,
        } => {
            let mut used_bin = bin;
            let mut used_args = args.to_string();
            let mut before: Option<String> = None;
            let adopt = DEV_SCRIPTS
                .iter()
                .filter_map(|n| pkg.manifest.scripts.get(*n).map(|v| (*n, v)))
                .chain(pkg.manifest.scripts.iter().map(|(n, v)| (n.as_str(), v)))
                .find_map(|(name, value)| {
                    let (pre, last) = pre_steps(value);
                    let words = script_words(last);
                    let first = words.first()?;
                    let b = std::iter::once(&bin)
                        .chain(alt_bins)
                        .find(|b| *b == first)?;
                    Some((name, value, *b, words, pre))
                });
            if let Some((name, value, b, words, pre)) = adopt {
                let (kept, port) = strip_host_port(&words[1..]);
                // Only adopt a script that runs the dev server (not `vite build`, `next start`).
                let first_arg = kept.first().map_or("", String::as_str);
                let expected = args.split_whitespace().next().unwrap_or("");
                let is_dev = b != bin
                    || first_arg == expected
                    || expected.starts_with('{')
                    || (expected.is_empty()
                        && !["build", "preview", "optimize"].contains(&first_arg))
                    || (bin == "vite" && ["dev", "serve"].contains(&first_arg));
                if is_dev {
                    used_bin = b;
                    // Flags the framework needs (`--web`, `--mode ssr`) are kept if the
                    // script lacks them.
                    let mut kept = kept;
                    let tpl: Vec<&str> = args.split_whitespace().collect();
                    for (i, w) in tpl.iter().enumerate() {
                        if w.starts_with("--") && !kept.iter().any(|k| k == w) {
                            kept.push(w.to_string());
                            if let Some(v) = tpl.get(i + 1).filter(|v| !v.starts_with('-')) {
                                kept.push(v.to_string());
                            }
                        }
                    }
                    used_args = kept.join(" ");
                    evidence.push(format!("kept the arguments of script {name}: `{value}`"));
                    if let Some(p) = &pre {
                        evidence.push(format!(
                            "kept the steps script {name} runs before the dev server: `{p}`"
                        ));
                    }
                    before = pre;
                    if let Some(p) = port {
                        pinned = Some((p, format!("script {name} pins port {p}")));
                    }
                }
            }
            if pinned.is_none() && fw.env.iter().any(|(k, _)| k.starts_with("__VITE")) {
                for f in pkg.files("vite.config.*") {
                    if let Some(p) = pkg.text(&f).and_then(|t| config_port(&t, "server")) {
                        pinned = Some((p, format!("{f} pins server.port {p}")));
                        break;
                    }
                }
            }
            if pinned.is_none() && fw.id == "angular" {
                if let Some(p) = pkg
                    .text(&crate::listing::join(&pkg.dir, "angular.json"))
                    .and_then(|t| config_port(&t, "\"serve\""))
                {
                    pinned = Some((p, format!("angular.json pins serve port {p}")));
                }
            }
            let run = format!("{} {used_bin} {used_args} {flags}", exec_prefix(pm));
            command = Some(match before {
                Some(pre) => format!("{pre} && {run}"),
                None => run,
            });
        }
        Dev::Script { scripts } => {
            let script = scripts
                .iter()
                .find(|s| pkg.manifest.scripts.contains_key(**s));
            for f in pkg.entry_files() {
                if let Some((p, env)) = pkg.text(&f).and_then(|t| code_port(&t)) {
                    if env {
                        default_port = p;
                        evidence.push(format!("{f} reads PORT (default {p})"));
                    } else {
                        can_set_port = false;
                        pinned = Some((p, format!("{f} listens on port {p}, written in the code")));
                        warnings.push(Warning::new(
                            "HARD_CODED_PORT",
                            format!("{f} listens on port {p} and does not read PORT; the app will use {p}"),
                        ));
                    }
                    break;
                }
            }
            match script {
                Some(s) => {
                    evidence.push(format!(
                        "{} has no dev binary that takes a port: the project's own `{s}` script is the only way in (port via PORT)",
                        fw.name
                    ));
                    command = Some(run_script(pm, s));
                }
                None => {
                    if let Some(e) = pkg.entry_files().into_iter().next() {
                        let rel = e
                            .strip_prefix(&format!("{}/", pkg.dir))
                            .unwrap_or(&e)
                            .to_string();
                        let rel = if pkg.dir.is_empty() { e.clone() } else { rel };
                        let runner = if pm.name == "bun" || fw.id == "elysia" {
                            "bun".to_string()
                        } else if rel.ends_with("ts") {
                            format!("{} tsx", exec_prefix(pm))
                        } else {
                            "node".to_string()
                        };
                        evidence.push(format!(
                            "no dev or start script: running the entry file {rel}"
                        ));
                        command = Some(format!("{runner} {rel}"));
                    } else {
                        warnings.push(Warning::new("NO_DEV_COMMAND", "no dev/start script and no entry file: cannot tell how to start this app"));
                    }
                }
            }
        }
        Dev::Static => {
            let dir = if pkg.has_file("index.html") {
                "."
            } else {
                "public"
            };
            command = Some(format!(
                "python3 -m http.server {{port}} --bind {{host}} --directory {dir}"
            ));
            evidence.push("static files: served with Python's http.server".to_string());
        }
    }

    let port = match (set.chosen_port, &pinned) {
        (Some(c), _) if can_set_port => {
            evidence.push(format!("port {c} chosen by the caller"));
            c
        }
        (_, Some((p, why))) => {
            evidence.push(why.clone());
            *p
        }
        _ => default_port,
    };
    let vars = [
        ("host", set.host.to_string()),
        ("port", port.to_string()),
        (
            "allowedHost",
            set.allowed_hosts.first().cloned().unwrap_or_default(),
        ),
        ("allowedHosts", set.allowed_hosts.join(",")),
        ("docsDir", docs_dir.to_string()),
        ("entry", entry),
    ];
    let command = command.map(|c| fill(&c, &vars));
    let env: BTreeMap<String, String> = fw
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), fill(v, &vars)))
        .collect();
    if let Some(note) = fw.note {
        evidence.push(note.to_string());
    }
    let build = if pkg.manifest.scripts.contains_key("build") {
        Some(run_script(pm, "build"))
    } else {
        fw.build
            .map(|b| fill(&format!("{} {b}", exec_prefix(pm)), &vars))
    };
    DevPlan {
        command,
        build,
        port: Some(port),
        env,
        evidence,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_words_skip_env_and_refuse_compound() {
        assert_eq!(
            script_words("cross-env NODE_ENV=dev vite --port 3000"),
            ["vite", "--port", "3000"]
        );
        assert!(script_words("npm run build && vite").is_empty());
        assert!(script_words("concurrently \"vite\" \"node s.js\"").is_empty());
    }

    #[test]
    fn pre_steps_are_split_off_the_last_step() {
        assert_eq!(
            pre_steps("yarn build:css && docusaurus start"),
            (Some("yarn build:css".to_string()), "docusaurus start")
        );
        assert_eq!(
            pre_steps("npm run a && npm run b && vite --port 3000"),
            (
                Some("npm run a && npm run b".to_string()),
                "vite --port 3000"
            )
        );
        assert_eq!(pre_steps("vite"), (None, "vite"));
        assert_eq!(pre_steps("a || b && vite").0, None);
        assert_eq!(pre_steps("echo '&&' && vite").1, "vite");
    }

    #[test]
    fn strip_keeps_other_flags_and_reads_the_port() {
        let w: Vec<String> = ["dev", "--turbo", "-p", "4000", "--host"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(
            strip_host_port(&w),
            (vec!["dev".to_string(), "--turbo".to_string()], Some(4000))
        );
        let w: Vec<String> = ["--port=3001", "--mode", "ssr"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(
            strip_host_port(&w),
            (vec!["--mode".to_string(), "ssr".to_string()], Some(3001))
        );
    }

    #[test]
    fn ports_in_config_and_code() {
        assert_eq!(
            config_port("export default { server: { port: 3000 } }", "server"),
            Some(3000)
        );
        assert_eq!(
            config_port("export default { plugins: [] }", "server"),
            None
        );
        assert_eq!(
            code_port("serve({ fetch: app.fetch, port: 3000 })"),
            Some((3000, false))
        );
        assert_eq!(
            code_port("const port = process.env.PORT || 8080; app.listen(port)"),
            Some((8080, true))
        );
    }
}

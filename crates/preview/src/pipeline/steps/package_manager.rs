//! The package manager the repository asks for, present in the sandbox.
//!
//! Sandboxes (the embedded backend's, Daytona's `node` images) usually have npm only, or a
//! pnpm of another major than the repository pins (pnpm 9 reading a pnpm 10 workspace fails
//! with "packages field missing"). When the wanted one is missing or of another major, the
//! npm package detection named ([`PackageManagerInfo::fetch_spec`]) is installed with npm into
//! `~/.forge/pm` inside the sandbox, and every later command runs with that folder first on
//! `PATH`, so that scripts calling `pnpm` or `yarn` themselves find it too. Corepack is not
//! used: Node 20's corepack refuses today's pnpm and yarn signatures unless verification is
//! switched off.

use super::ms;
use crate::pipeline::failure::{AtStep, Step, StepError, StepFailure};
use crate::PreviewError;
use forge_daytona::{CallOptions, ExecOptions, Toolbox};
use forge_detect::PackageManagerInfo;
use std::time::{Duration, Instant};

/// Where the fetched package managers go, relative to the sandbox user's home.
const PREFIX: &str = ".forge/pm";
/// How long installing a package manager may take.
const FETCH_TIMEOUT: Duration = Duration::from_mins(5);

/// The package manager as the later commands will find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready {
    /// `PATH` for the install and the dev server (the fetch folder first); `None` for npm.
    pub path: Option<String>,
    /// What was done and why, for the step's message and the evidence.
    pub note: Option<String>,
}

/// The major version a spec or a `--version` answer names (`pnpm@10.2.0` → 10, `9.15.0` → 9);
/// `None` for `latest` and tags.
fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.trim().parse().ok()
}

/// The version part of a spec (`@yarnpkg/cli-dist@4` → `4`).
fn spec_version(spec: &str) -> &str {
    spec.rsplit_once('@').map_or("", |(_, v)| v)
}

/// A spec is only ever `name@version` with the characters of npm names and semver (it comes
/// from the repository's package.json: nothing else may reach a shell).
fn safe_spec(spec: &str) -> bool {
    !spec.is_empty()
        && spec.len() < 120
        && spec
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@/._-+".contains(c))
}

/// Makes `pm` runnable in `cwd` of the sandbox: a probe (one `execute`), and when the wanted
/// package manager is missing or of another major, an npm install of it into `~/.forge/pm`.
/// Fails with `PREVIEW_INSTALL_FAILED` (at `step`) when it cannot be had.
pub(crate) async fn ensure(
    tb: &Toolbox,
    sandbox_id: &str,
    step: Step,
    pm: &PackageManagerInfo,
    cwd: &str,
    call: &CallOptions,
) -> Result<Ready, PreviewError> {
    let name = pm.name.as_str();
    let (Some(spec), true) = (
        pm.fetch_spec.as_deref(),
        ["pnpm", "yarn", "bun"].contains(&name),
    ) else {
        return Ok(Ready {
            path: None,
            note: None,
        });
    };
    let probed = probe(tb, sandbox_id, step, name, cwd, call).await?;
    let wanted = major(spec_version(spec));
    let fits = |v: &str| !v.is_empty() && wanted.is_none_or(|w| major(v) == Some(w));
    if fits(&probed.version) {
        return Ok(Ready {
            path: Some(probed.path),
            note: None,
        });
    }
    if !safe_spec(spec) {
        return Err(StepFailure::new(
            step,
            StepError::InstallFailed { exit_code: 127 },
            format!("{name} is not in the sandbox, and the version the repository asks for is not a version"),
        )
        .in_sandbox(sandbox_id)
        .into_error());
    }
    let t = Instant::now();
    // A project folder of its own, not `--global --prefix`: moving npm's prefix would also
    // move its global config (and the CA settings a machine may keep there).
    let command = format!(
        "mkdir -p \"$HOME/{PREFIX}\" && cd \"$HOME/{PREFIX}\" && \
         {{ [ -f package.json ] || echo '{{\"private\":true}}' > package.json; }} && \
         npm install --no-audit --no-fund --loglevel=error {spec}"
    );
    let opts = ExecOptions {
        cwd: Some(cwd.to_owned()),
        env: std::collections::BTreeMap::default(),
        timeout: Some(FETCH_TIMEOUT),
    };
    let fetched = tb
        .process()
        .execute(&command, &opts, call)
        .await
        .at(step, sandbox_id)?;
    let after = probe(tb, sandbox_id, step, name, cwd, call).await?;
    if fetched.exit_code != 0 || after.version.is_empty() {
        let mut f = StepFailure::new(
            step,
            StepError::InstallFailed {
                exit_code: fetched.exit_code,
            },
            if fetched.exit_code == 0 {
                format!(
                    "installed {spec} with npm, but `{name} --version` fails in the project: {}",
                    after.said.trim()
                )
            } else {
                format!(
                    "{name} is not in the sandbox and installing {spec} with npm failed (exit code {})",
                    fetched.exit_code
                )
            },
        )
        .in_sandbox(sandbox_id);
        f.log_tail = crate::pipeline::failure::tail_lines(&fetched.result, 20);
        return Err(f.into_error());
    }
    let had = if probed.version.is_empty() {
        format!("{name} is not in the sandbox")
    } else {
        format!("the sandbox has {name} {}", probed.version)
    };
    Ok(Ready {
        path: Some(after.path),
        note: Some(format!(
            "{had}; the repository asks for {spec} ({}): installed {name} {} into ~/{PREFIX} with npm in {} ms",
            pm.source,
            after.version,
            ms(t.elapsed())
        )),
    })
}

struct Probed {
    /// `PATH` with the fetch folder first.
    path: String,
    /// `--version`'s answer when it is a version; empty when the command is missing or fails.
    version: String,
    /// What `--version` printed (an error, when it failed).
    said: String,
}

async fn probe(
    tb: &Toolbox,
    sandbox_id: &str,
    step: Step,
    name: &str,
    cwd: &str,
    call: &CallOptions,
) -> Result<Probed, PreviewError> {
    // `name` is one of pnpm/yarn/bun (checked by the caller): no quoting needed.
    let script = format!(
        "PATH=\"$HOME/{PREFIX}/node_modules/.bin:$PATH\"; export PATH; \
         printf 'PATH=%s\\n' \"$PATH\"; \
         printf 'VERSION=%s\\n' \"$({name} --version 2>&1 | tr '\\n' ' ' | cut -c1-300)\""
    );
    let opts = ExecOptions {
        cwd: Some(cwd.to_owned()),
        env: std::collections::BTreeMap::default(),
        timeout: Some(Duration::from_mins(1)),
    };
    let r = tb
        .process()
        .execute(&script, &opts, call)
        .await
        .at(step, sandbox_id)?;
    let field = |key: &str| {
        r.result
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let said = field("VERSION=");
    let version = if said.starts_with(|c: char| c.is_ascii_digit()) {
        said.split_whitespace().next().unwrap_or("").to_owned()
    } else {
        String::new()
    };
    Ok(Probed {
        path: field("PATH="),
        version,
        said,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_and_specs() {
        assert_eq!(major("10.2.0"), Some(10));
        assert_eq!(major("latest"), None);
        assert_eq!(spec_version("@yarnpkg/cli-dist@4"), "4");
        assert_eq!(spec_version("pnpm@10.2.0"), "10.2.0");
        assert!(safe_spec("@yarnpkg/cli-dist@4.5.0"));
        assert!(!safe_spec("pnpm@1; rm -rf ~"));
        assert!(!safe_spec("pnpm@$(id)"));
    }
}

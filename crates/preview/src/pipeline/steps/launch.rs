//! How step 5 launches the dev command: a binary of the installed dependencies that the
//! command runs through a package manager's runner (`npx vite …`, `pnpm exec next …`) is run
//! directly when it is installed, because the runner's own start is most of a warm preview's
//! start: in a sandbox of the embedded backend (2026-12-04), `npx vite --version` took 1.07 s
//! and `node_modules/.bin/vite --version` 0.43 s, while the whole second preview of a Vite app
//! took about 2.1 s.
//!
//! What the runner would do is kept: the binary is the one it would pick (the nearest
//! `node_modules/.bin` from the app folder up to the repository's root), the `node_modules/.bin`
//! folders are on `PATH` as the runner puts them, and when the binary is not installed there
//! the command runs as written (the runner then fetches it). The command shown to the user
//! ([`super::start::Started::command`]) stays the detected one.

/// Runners of an installed binary: `<runner> <bin> <args>` runs `node_modules/.bin/<bin>
/// <args>`. Not `yarn <bin>` (yarn runs a script of that name first) nor `bunx` (fast).
const RUNNERS: &[&str] = &["npx", "pnpm exec"];

/// `command` as the sandbox's `sh` should run it from the app folder, `levels` folders below
/// the repository's root (see the module docs); other commands unchanged.
pub(crate) fn launch(command: &str, levels: usize) -> String {
    let Some((bin, args)) = runner_bin(command) else {
        return command.to_owned();
    };
    let ups: Vec<String> = (0..=levels).map(|n| "../".repeat(n)).collect();
    let path: Vec<String> = ups
        .iter()
        .map(|up| format!("$PWD/{up}node_modules/.bin"))
        .collect();
    let bins: Vec<String> = ups
        .iter()
        .map(|up| format!("{up}node_modules/.bin/{bin}"))
        .collect();
    format!(
        "PATH=\"{}:$PATH\"; for b in {}; do [ -x \"$b\" ] && exec \"$b\"{args}; done; exec {command}",
        path.join(":"),
        bins.join(" "),
    )
}

/// How many folders `root` (repository-relative, `.` for the root) is below the repository's
/// root; `None` when it leaves it (`..`).
pub(crate) fn depth(root: &str) -> Option<usize> {
    let parts: Vec<&str> = root
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (!parts.contains(&"..")).then_some(parts.len())
}

/// The binary a runner command runs and the rest of the command (with its leading space):
/// only a plain binary name (no version, no flag, nothing a shell would read specially).
fn runner_bin(command: &str) -> Option<(&str, &str)> {
    let rest = RUNNERS.iter().find_map(|r| {
        command
            .strip_prefix(r)
            .filter(|rest| rest.starts_with(' '))
            .map(str::trim_start)
    })?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (bin, args) = rest.split_at(end);
    let plain = bin.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    plain.then_some((bin, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::Command;

    fn script(path: &Path, body: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `launch(command, levels)` with the real `sh` in `cwd`, where `npx` and
    /// `pnpm` are stand-ins that say they ran.
    fn run(cwd: &Path, fake: &Path, command: &str, levels: usize) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(launch(command, levels))
            .current_dir(cwd)
            .env("PATH", format!("{}:/usr/bin:/bin", fake.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn an_installed_binary_runs_without_its_runner() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, fake) = (dir.path().join("repo"), dir.path().join("fake"));
        script(&fake.join("npx"), "echo \"npx $*\"");
        script(&fake.join("pnpm"), "echo \"pnpm $*\"");
        // Hoisted to the repository's root, as a workspace installs it; the app has its own
        // `.bin` too, without that binary.
        script(
            &repo.join("node_modules/.bin/vite"),
            "echo \"root vite $* on $(echo \"$PATH\" | cut -d: -f1-2)\"",
        );
        script(&repo.join("apps/web/node_modules/.bin/other"), "true");
        script(
            &repo.join("apps/web/node_modules/.bin/next"),
            "echo \"app next $*\"",
        );
        let web = repo.join("apps/web");
        // Found two levels up, with the `.bin` folders on PATH, nearest first.
        assert_eq!(
            run(&web, &fake, "npx vite --host 0.0.0.0 --port 5173", 2),
            format!(
                "root vite --host 0.0.0.0 --port 5173 on {w}/node_modules/.bin:{w}/../node_modules/.bin",
                w = web.display()
            )
        );
        assert_eq!(
            run(&web, &fake, "pnpm exec next dev -p 3000", 2),
            "app next dev -p 3000"
        );
        // Not installed: the runner runs it (and fetches it).
        assert_eq!(
            run(&web, &fake, "npx serve -l 3000", 2),
            "npx serve -l 3000"
        );
        // Above the repository's root is not the project's.
        assert_eq!(run(&web, &fake, "npx vite", 1), "npx vite");
    }

    #[test]
    fn other_commands_are_left_as_they_are() {
        for c in [
            "npm run dev",
            "npx -y pnpm@10.4.1 run dev",
            "npx vite@5 --port 1",
            "npx",
            "npxvite",
            "yarn vite",
            "npm run gen && npx vite",
            "npx $(evil)",
        ] {
            assert_eq!(launch(c, 0), c);
        }
        assert_eq!(depth("."), Some(0));
        assert_eq!(depth("./apps/web/"), Some(2));
        assert_eq!(depth("../x"), None);
    }
}

//! Reading an install's log the way a developer does: past the package managers' notices
//! (update offers, funding, deprecations, peer warnings) to the first line that says what went
//! wrong. The rules are data: [`NOISE`] lines are skipped, [`ERROR_MARKERS`] start an error.

/// Line prefixes that are never the error (after trimming), besides [`NOTICES`]: npm's and
/// yarn's warnings, progress, funding.
const NOISE: &[&str] = &[
    "npm warn",
    "npm WARN",
    "npm http",
    "npm timing",
    "npm info",
    "npm verb",
    "npm error A complete log of this run can be found in",
    "npm ERR! A complete log of this run can be found in",
    "npm error Log files were not written",
    "warning ",
    "info ",
    "[1/",
    "[2/",
    "[3/",
    "[4/",
    "[5/",
    "Progress:",
    "Packages:",
    "WARN ",
    " WARN ",
    "Done in ",
    "added ",
    "up to date",
    "found 0 vulnerabilities",
    "run `npm fund`",
    "packages are looking for funding",
];

/// Where an error starts, most specific first: `(marker, lines to keep from it)`. npm prints
/// its code on one line and the reason on the next.
const ERROR_MARKERS: &[(&str, usize)] = &[
    ("npm error code ", 2),
    ("npm ERR! code ", 2),
    ("npm error ", 1),
    ("npm ERR! ", 1),
    ("ERR_PNPM_", 1),
    ("ERROR ", 1),
    ("error ", 1),
    ("YN0001", 1),
    ("YN0028", 1),
    ("YN0018", 1),
    ("Error: ", 1),
    ("Error [", 1),
    ("gyp ERR!", 1),
    ("fatal:", 1),
    ("sh: ", 1),
    ("command not found", 1),
];

fn clean(text: &str) -> String {
    crate::ansi::strip_ansi(&text.replace(['\u{1}', '\u{2}'], "")).into_owned()
}

/// Package managers' notices that can end any log, a dev server's too (`npm run dev` prints
/// npm's update offer when the server stops): never what a developer needs to read.
const NOTICES: &[&str] = &[
    "npm notice",
    "New major version of npm",
    "New minor version of npm",
    "New patch version of npm",
    "To update run:",
    "Changelog:",
    "Update available",
    "Run `npm install -g",
];

/// Whether a line is a package manager's notice (see [`NOTICES`]).
pub fn is_notice(line: &str) -> bool {
    let l = line.trim_start();
    NOTICES.iter().any(|n| l.starts_with(n))
}

fn is_noise(line: &str) -> bool {
    let l = line.trim_start();
    l.is_empty() || is_notice(l) || NOISE.iter().any(|n| l.starts_with(n))
}

/// The first real error of an install log: the line with the most specific marker (npm's
/// `code` line with the reason after it), shortened; `None` when nothing looks like one.
pub fn first_error(text: &str) -> Option<String> {
    let text = clean(text);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (marker, keep) in ERROR_MARKERS {
        let Some(i) = lines
            .iter()
            .position(|l| l.contains(marker) && !is_noise(l))
        else {
            continue;
        };
        let picked: Vec<&str> = lines[i..]
            .iter()
            .filter(|l| !l.is_empty())
            .take(*keep)
            .copied()
            .collect();
        let joined = picked.join(" — ");
        return Some(joined.chars().take(300).collect());
    }
    None
}

/// The last `n` lines of an install log that are not notices: what a developer reads when the
/// install failed, instead of npm's update offer.
pub fn tail(text: &str, n: usize) -> Vec<String> {
    let text = clean(text);
    let kept: Vec<&str> = text.lines().filter(|l| !is_noise(l)).collect();
    kept[kept.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(500).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_real_error_past_the_notices() {
        let npm = "npm warn deprecated inflight@1.0.6: leaks\nnpm error code ERESOLVE\nnpm error ERESOLVE could not resolve\nnpm error\nnpm error While resolving: app@1.0.0\nnpm notice\nnpm notice New major version of npm available! 10.8.2 -> 11.6.0\nnpm notice To update run: npm install -g npm@11.6.0\nnpm error A complete log of this run can be found in: /x.log\n";
        assert_eq!(
            first_error(npm).as_deref(),
            Some("npm error code ERESOLVE — npm error ERESOLVE could not resolve")
        );
        let t = tail(npm, 2);
        assert_eq!(t, ["npm error", "npm error While resolving: app@1.0.0"]);
        let pnpm = "Progress: resolved 1, reused 0\n ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with \"frozen-lockfile\"\n";
        assert!(first_error(pnpm)
            .unwrap()
            .contains("ERR_PNPM_OUTDATED_LOCKFILE"));
        let yarn = "yarn install v1.22.22\n[1/4] Resolving packages...\nerror Couldn't find any versions for \"nope\"\ninfo Visit https://yarnpkg.com\n";
        assert_eq!(
            first_error(yarn).as_deref(),
            Some("error Couldn't find any versions for \"nope\"")
        );
        assert_eq!(first_error("added 3 packages\n"), None);
        // A dev server's log tail drops the same notices (verify.rs).
        assert!(is_notice(
            "npm notice New major version of npm available! 10.8.2 -> 11.6.0"
        ));
        assert!(!is_notice("  VITE v6.0.0  ready in 300 ms"));
    }
}

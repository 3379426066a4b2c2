//! Reading a dev server's log for a crash, the way a developer does: a watcher that says the
//! app died (`[nodemon] app crashed`, `node --watch`'s `Failed running`), and the first error
//! with where it was thrown. The rules are data: [`WATCHER_CRASHED`] lines end the wait at
//! once (nothing will listen until a file changes), [`ERROR_STARTS`] find the error's text.

/// Lines a watcher prints when the app it runs died and it waits for a file change: the app
/// will not come back by itself. `(marker, who prints it)`.
pub const WATCHER_CRASHED: &[(&str, &str)] = &[
    ("[nodemon] app crashed", "nodemon"),
    ("Failed running '", "node --watch"),
    ("waiting for changes to restart", "Nx's node executor"),
    ("Waiting for file changes before starting", "nodemon"),
];

/// Where an error's text starts in a dev server's log, most specific first.
pub const ERROR_STARTS: &[&str] = &[
    "Error: Cannot find module",
    "Error [ERR_",
    "SyntaxError:",
    "TypeError:",
    "ReferenceError:",
    "RangeError:",
    "UnhandledPromiseRejection",
    "EADDRINUSE",
    "Module not found:",
    "Failed to compile",
    "error TS",
    "Error: ",
    "ERROR ",
    "[ERROR]",
    " ERROR ",
];

/// Lines that look like errors but are not the app's: package managers' notices.
const NOT_THE_APP: &[&str] = &[
    "npm warn",
    "npm WARN",
    "npm notice",
    "npm error A complete log",
];

/// The longest excerpt, in characters.
const EXCERPT_CHARS: usize = 400;

/// What the log says about a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// A watcher said the app died (the wait can end now); otherwise only an error was seen.
    pub watcher: Option<&'static str>,
    /// The error and where it was thrown, or the watcher's line when no error was printed.
    pub excerpt: String,
}

fn clean(text: &str) -> String {
    crate::ansi::strip_ansi(text).into_owned()
}

/// The first error the log shows: its line (and the next one when it continues the message),
/// with the first stack frame that is not Node's own. `None` when nothing looks like one.
pub fn first_error(text: &str) -> Option<String> {
    let text = clean(text);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let usable = |l: &&str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with("at ") && !NOT_THE_APP.iter().any(|n| t.starts_with(n))
    };
    let i = ERROR_STARTS.iter().find_map(|m| {
        lines
            .iter()
            .position(|l| l.contains(m) && usable(l) && !is_watcher_line(l))
    })?;
    let mut out = lines[i].trim().to_owned();
    let frame = lines[i + 1..]
        .iter()
        .take(30)
        .map(|l| l.trim())
        .filter(|l| l.starts_with("at "))
        .find(|l| !l.contains("node:internal") && !l.contains("(node:"));
    if let Some(f) = frame {
        out.push_str(" (");
        out.push_str(f);
        out.push(')');
    }
    Some(out.chars().take(EXCERPT_CHARS).collect())
}

fn is_watcher_line(line: &str) -> bool {
    WATCHER_CRASHED.iter().any(|(m, _)| line.contains(m))
}

/// The crash the log shows, if any: a watcher's "app crashed" line (with the error before it),
/// or only an error. Whether an error alone means a crash is the caller's call (nothing
/// listens and the log has gone quiet).
pub fn crash(text: &str) -> Option<Crash> {
    let plain = clean(text);
    let watcher = WATCHER_CRASHED
        .iter()
        .find(|(m, _)| plain.contains(m))
        .map(|(_, who)| *who);
    let error = first_error(&plain);
    match (watcher, error) {
        (_, Some(excerpt)) => Some(Crash { watcher, excerpt }),
        (Some(who), None) => {
            let line = plain
                .lines()
                .find(|l| is_watcher_line(l))
                .unwrap_or(who)
                .trim();
            Some(Crash {
                watcher,
                excerpt: line.chars().take(EXCERPT_CHARS).collect(),
            })
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `node --watch` printed on this machine (Node 20) for an app that throws at start.
    const NODE_WATCH: &str = "up\n/tmp/nw/i.js:1\nconsole.log(\"up\"); throw new Error(\"boom at start\")\n                   ^\n\nError: boom at start\n    at Object.<anonymous> (/tmp/nw/i.js:1:26)\n    at Module._compile (node:internal/modules/cjs/loader:1521:14)\n\nNode.js v20.20.2\nFailed running 'i.js'\n";

    #[test]
    fn a_watcher_that_waits_after_a_crash() {
        let c = crash(NODE_WATCH).unwrap();
        assert_eq!(c.watcher, Some("node --watch"));
        assert_eq!(
            c.excerpt,
            "Error: boom at start (at Object.<anonymous> (/tmp/nw/i.js:1:26))"
        );
        let nodemon = "[nodemon] starting `node server.js`\n\x1b[31m[nodemon] app crashed - waiting for file changes before starting...\x1b[39m\n";
        let c = crash(nodemon).unwrap();
        assert_eq!(c.watcher, Some("nodemon"));
        assert_eq!(
            c.excerpt,
            "[nodemon] app crashed - waiting for file changes before starting..."
        );
    }

    #[test]
    fn the_most_specific_error_first_and_notices_skipped() {
        let log = "npm warn config production Use `--omit=dev` instead.\nError: listen EADDRINUSE: address already in use :::3000\n    at Server.setupListenHandle [as _listen2] (node:net:1817:16)\n";
        assert_eq!(
            first_error(log).as_deref(),
            Some("Error: listen EADDRINUSE: address already in use :::3000")
        );
        let missing = "node:internal/modules/cjs/loader:1148\n  throw err;\n  ^\n\nError: Cannot find module './routes'\nRequire stack:\n- /home/daytona/app/server.js\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)\n    at Object.<anonymous> (/home/daytona/app/server.js:2:16)\n";
        assert_eq!(
            first_error(missing).as_deref(),
            Some("Error: Cannot find module './routes' (at Object.<anonymous> (/home/daytona/app/server.js:2:16))")
        );
        assert_eq!(crash("  VITE v5 ready in 300 ms\n"), None);
    }
}

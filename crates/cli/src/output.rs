//! What the CLI prints: one JSON shape for every command, and writes that never panic.
//!
//! `--json` success: `{"ok":true, ...the command's result}`; failure:
//! `{"ok":false,"error":{"code":"...","message":"...", ...details}}`, both one line on stdout.
//! The codes are the library's (`DAYTONA_*`, `PREVIEW_*`, `DETECT_*`, `LOCAL_*`): bad arguments
//! are `DAYTONA_INVALID_ARGUMENT`, an interrupted command `DAYTONA_ABORTED`.

use serde_json::{Map, Value};
use std::io::Write;

/// Exit code of a command that failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of a command interrupted by SIGINT / SIGTERM before its work was done (128 + 2,
/// as shells report a process that SIGINT ended).
pub const EXIT_CANCELLED: i32 = 130;

/// Writes to stdout; a closed pipe (`forge list | head`) is not an error, and nothing panics
/// (the same code runs inside Node through the addon).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes a line to stderr (progress, warnings, human errors); never panics.
pub fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// Prints a success: `{"ok":true, ...result}` with `--json`, else `human` (may be empty).
pub fn success(json: bool, result: Value, human: &str) {
    if json {
        let mut obj = Map::new();
        obj.insert("ok".into(), true.into());
        if let Value::Object(fields) = result {
            obj.extend(fields);
        }
        out(&format!("{}\n", Value::Object(obj)));
    } else {
        out(human);
    }
}

/// A failed command: its code and message, details for JSON, and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub details: Map<String, Value>,
    pub exit: i32,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
            details: Map::new(),
            exit: EXIT_FAILURE,
        }
    }

    /// Bad arguments (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: EXIT_USAGE,
            ..Failure::new("DAYTONA_INVALID_ARGUMENT", message)
        }
    }

    /// Interrupted (exit 130).
    pub fn cancelled(message: impl Into<String>) -> Failure {
        Failure {
            exit: EXIT_CANCELLED,
            ..Failure::new("DAYTONA_ABORTED", message)
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Failure {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Prints the failure (JSON on stdout, or a line on stderr) and gives the exit code.
    pub fn report(self, command: &str, json: bool) -> i32 {
        if json {
            let mut error = Map::new();
            error.insert("code".into(), self.code.into());
            error.insert("message".into(), self.message.into());
            error.extend(self.details);
            let v = serde_json::json!({ "ok": false, "error": error });
            out(&format!("{v}\n"));
        } else {
            say(&format!(
                "forge {command}: {} [{}]",
                self.message, self.code
            ));
        }
        self.exit
    }
}

impl From<forge_daytona::Error> for Failure {
    fn from(e: forge_daytona::Error) -> Failure {
        let exit = match e {
            forge_daytona::Error::InvalidArgument(_) => EXIT_USAGE,
            forge_daytona::Error::Aborted => EXIT_CANCELLED,
            _ => EXIT_FAILURE,
        };
        Failure {
            exit,
            ..Failure::new(e.code(), e.to_string())
        }
    }
}

/// A clap error: help and version go to stdout (exit 0), anything else is a usage failure.
pub fn usage_error(e: &clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        out(&e.render().to_string());
        return 0;
    }
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        say(&e.render().to_string());
        return EXIT_USAGE;
    }
    if json {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        return Failure::usage(message).report("", true);
    }
    say(e.render().to_string().trim_end());
    EXIT_USAGE
}

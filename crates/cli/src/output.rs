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

/// Writes all of `bytes`, waiting where the descriptor is non-blocking: under Node (`npx`, the
/// addon's `runCli`) a terminal or pipe the process shares with Node may have O_NONBLOCK set,
/// and a long output would otherwise be cut at the first `EAGAIN`. Other errors (a closed pipe:
/// `forge list | head`) end the write quietly; nothing panics.
fn write_fully(w: &mut impl Write, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
    let _ = w.flush();
}

/// Writes to stdout.
pub fn out(text: &str) {
    write_fully(&mut std::io::stdout().lock(), text.as_bytes());
}

/// Writes to stderr as it is (a command's own error output).
pub fn err(text: &str) {
    write_fully(&mut std::io::stderr().lock(), text.as_bytes());
}

/// Writes a line to stderr (progress, warnings, human errors).
pub fn say(line: &str) {
    err(&format!("{line}\n"));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor with O_NONBLOCK whose reader is slow: every other write is `EAGAIN`, the
    /// others take at most 3 bytes.
    struct Busy {
        got: Vec<u8>,
        calls: usize,
    }

    impl Write for Busy {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(3);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_non_blocking_descriptor_gets_the_whole_output() {
        let text = "a line of output\n".repeat(100);
        let mut w = Busy {
            got: Vec::new(),
            calls: 0,
        };
        write_fully(&mut w, text.as_bytes());
        assert_eq!(String::from_utf8(w.got).unwrap(), text);
    }

    #[test]
    fn failures_carry_their_codes_and_exit_codes() {
        let f = Failure::usage("port must be 1-65535").with("option", "port");
        assert_eq!(f.exit, EXIT_USAGE);
        assert_eq!(f.code, "DAYTONA_INVALID_ARGUMENT");
        assert_eq!(Failure::cancelled("x").exit, EXIT_CANCELLED);
        assert_eq!(
            Failure::from(forge_daytona::Error::Aborted).exit,
            EXIT_CANCELLED
        );
    }
}

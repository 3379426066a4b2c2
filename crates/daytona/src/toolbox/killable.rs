//! Session commands that can be killed on the real Daytona API, which has no route to kill one
//! command (daytona-wire.md §7: only `DELETE /process/session/{id}` for the whole session).
//!
//! How: a command the library starts in the background is sent wrapped, so that it runs as
//! the leader of its own process group (`setsid`) and writes that group id to
//! `/tmp/.forge-cmd/<token>.pgid` inside the sandbox. The token is the first word of the
//! command text the session keeps (`: /tmp/.forge-cmd/<token>; ...`), so a later call, from
//! another process or Inngest step, finds it from `GET .../command/{cmdId}` alone: no state
//! on the client. Killing is then `POST /process/execute` with `kill -TERM -<pgid>` and,
//! after a grace period, `KILL`. The wrapper prints nothing (its own errors go to
//! `/dev/null`), keeps the command's stdin (fd 3 carries it past the `&`), runs it in the
//! session's shell (`$BASH`, else `sh`), and ends with the command's exit code (143 when
//! killed by TERM); it removes its pgid file when the command ends.
//!
//! The price: the wrapped command runs in a child shell, so a `cd` or `export` inside it does
//! not carry over to later commands of the session. That is why only background commands
//! (`run_async`, `spawn`) are wrapped, and foreground ones, the usual way to set session
//! state, are sent as they are (and cannot be killed one by one).

use crate::error::Result;
use crate::shell::quote;

/// Folder of the pgid files inside the sandbox.
pub(crate) const PGID_DIR: &str = "/tmp/.forge-cmd";

/// Seconds between `TERM` and `KILL`.
pub(crate) const GRACE_SECS: u32 = 5;

/// A fresh random token (32 hex digits).
pub(crate) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn pgid_file(token: &str) -> String {
    format!("{PGID_DIR}/{token}.pgid")
}

/// `command` wrapped as described in the module docs.
pub(crate) fn wrap(command: &str, token: &str) -> Result<String> {
    let file = pgid_file(token);
    let inner = r#"{ echo $$ > "$0"; } 2>/dev/null; exec "${BASH:-sh}" -c "$1""#;
    Ok(format!(
        ": {PGID_DIR}/{token}; mkdir -p {PGID_DIR} 2>/dev/null; \
         {{ setsid \"${{BASH:-sh}}\" -c {inner} {file} {cmd} <&3 3<&- & }} 3<&0; \
         wait $!; sh -c 'rm -f \"$0\"; exit \"$1\"' {file} $?",
        inner = quote(inner)?,
        cmd = quote(command)?,
    ))
}

/// The token of a command text made by [`wrap`], `None` for a command sent as is.
pub(crate) fn token_of(command_text: &str) -> Option<&str> {
    let rest = command_text.strip_prefix(": ")?.strip_prefix(PGID_DIR)?;
    let rest = rest.strip_prefix('/')?;
    let token = rest.get(..32)?;
    (token.bytes().all(|b| b.is_ascii_hexdigit()) && rest[32..].starts_with(';')).then_some(token)
}

/// What [`kill_script`] printed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KillOutcome {
    /// The group got `TERM` (and `KILL` if it outlived the grace period).
    Killed,
    /// No process of the group was left.
    Gone,
    /// No pgid file appeared within 2 s: the command was not started wrapped, or ended.
    NoPgid,
}

/// A `sh` script for `process/execute` that kills the group of every token and prints one
/// line per token: `killed`, `gone` or `nopgid` ([`KillOutcome`]).
pub(crate) fn kill_script(tokens: &[&str]) -> String {
    let files: Vec<String> = tokens.iter().map(|t| pgid_file(t)).collect();
    format!(
        "for f in {files}; do \
           i=0; while [ ! -s \"$f\" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; \
           p=$(cat \"$f\" 2>/dev/null); \
           case \"$p\" in ''|*[!0-9]*) echo nopgid; continue;; esac; \
           if ! kill -TERM \"-$p\" 2>/dev/null; then rm -f \"$f\"; echo gone; continue; fi; \
           i=0; while kill -0 \"-$p\" 2>/dev/null && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; \
           kill -KILL \"-$p\" 2>/dev/null; rm -f \"$f\"; echo killed; \
         done",
        files = files.join(" "),
        ticks = GRACE_SECS * 10,
    )
}

/// Parses [`kill_script`]'s output, one outcome per token.
pub(crate) fn parse_outcomes(output: &str) -> Vec<KillOutcome> {
    output
        .lines()
        .filter_map(|l| match l.trim() {
            "killed" => Some(KillOutcome::Killed),
            "gone" => Some(KillOutcome::Gone),
            "nopgid" => Some(KillOutcome::NoPgid),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_user_text_is_not_a_token() {
        let t = new_token();
        let w = wrap("echo ': /tmp/.forge-cmd/x'", &t).unwrap();
        assert_eq!(token_of(&w), Some(t.as_str()));
        assert_eq!(token_of("echo hi"), None);
        assert_eq!(token_of(": /tmp/.forge-cmd/zz; x"), None);
    }

    #[test]
    fn wrapped_command_keeps_output_stdin_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let t = new_token();
        let w = wrap("read x; echo \"got $x\"; echo err >&2; exit 7", &t)
            .unwrap()
            .replace(PGID_DIR, dir.path().to_str().unwrap());
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&w)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"line\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "got line\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert_eq!(out.status.code(), Some(7));
        assert!(!dir.path().join(format!("{t}.pgid")).exists());
    }
}

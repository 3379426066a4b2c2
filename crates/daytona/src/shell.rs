//! POSIX shell quoting for the few operations built on `process/execute` (git fetch, amend,
//! exec with cwd/env). User input is always quoted, never pasted into a command line.

use crate::error::{Error, Result};

/// Quotes one word for `sh`: `'...'` with every `'` written as `'\''`. NUL bytes cannot be
/// passed to a process and are refused.
pub fn quote(word: &str) -> Result<String> {
    if word.contains('\0') {
        return Err(Error::InvalidArgument(
            "a NUL byte cannot go into a command".into(),
        ));
    }
    Ok(format!("'{}'", word.replace('\'', r"'\''")))
}

/// Checks an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn env_name(name: &str) -> Result<&str> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(name)
    } else {
        Err(Error::InvalidArgument(format!(
            "not an environment variable name: {name:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_through_a_real_shell() {
        for s in ["plain", "it's", "$(rm -rf /)", "a\nb", "`x` \"y\" \\z", ""] {
            let q = quote(s).unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {q}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
        assert!(quote("a\0b").is_err());
        assert!(env_name("A_1").is_ok());
        assert!(env_name("1A").is_err());
        assert!(env_name("A=B").is_err());
    }
}

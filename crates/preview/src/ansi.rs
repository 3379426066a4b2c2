//! Removal of terminal escape sequences from dev-server output. Dev servers colour their
//! "Local:" lines (Vite prints the port digits in bold inside the URL), so log matching must
//! run on the plain text.

use std::borrow::Cow;

const ESC: char = '\x1b';
const BEL: char = '\x07';

/// `s` without ANSI escape sequences: CSI (`ESC [ params intermediates final`, colours and
/// cursor moves), OSC (`ESC ] … BEL` or `ESC ] … ESC \`, e.g. hyperlinks and titles) and the
/// other `ESC` sequences (`ESC (B`, `ESC =`). Borrows when there is nothing to strip. An unterminated
/// sequence at the end (a log cut mid-sequence) is dropped.
pub fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !s.contains(ESC) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ESC {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameter and intermediate bytes (0x20–0x3F), then one final byte (0x40–0x7E).
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                    if !(' '..='?').contains(&c) {
                        // Not a CSI after all: keep the text that follows.
                        out.push(c);
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == BEL {
                        break;
                    }
                    if c == ESC && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // Other escapes (`ESC (B` charset selection, `ESC =` keypad mode, …): intermediate
            // bytes (0x20–0x2F), then one final byte.
            Some(c) if (' '..='/').contains(&c) => {
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            Some(_) | None => {}
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;
    use std::borrow::Cow;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(strip_ansi("Local: http://x:1/"), Cow::Borrowed(_)));
    }

    #[test]
    fn csi_and_osc_are_removed() {
        let vite = "  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m";
        assert_eq!(strip_ansi(vite), "  ➜  Local:   http://localhost:5173/");
        let link = "\x1b]8;;http://localhost:3000\x07here\x1b]8;;\x1b\\ done";
        assert_eq!(strip_ansi(link), "here done");
        assert_eq!(strip_ansi("a\x1b[?25lb\x1b(Bc\x1b[2K"), "abc");
        assert_eq!(strip_ansi("cut \x1b[3"), "cut ");
    }
}

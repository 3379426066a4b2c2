//! The glob of `files/search`: shell-style patterns on one base name (Go's `filepath.Match`
//! subset the daemon serves: `*`, `?`, `[a-z]`, `[!x]` / `[^x]`, `\x`).
//!
//! Why not a recursive matcher: `*a*a*a*a*a*a*a*a*a*a*a*a*b` against a long name of `a`s
//! backtracks through every way of splitting the name, which is exponential (a sandbox's file
//! names and a client's pattern are both untrusted). This one is the greedy two-pointer match:
//! a `*` only remembers where it last started, and a mismatch retries from there one character
//! further, so a match costs at most (pattern tokens × name characters) steps, and both are
//! capped ([`MAX_PATTERN`], [`MAX_WILDCARDS`]; names are at most 255 bytes on Linux).

/// Longest pattern accepted, in characters.
pub const MAX_PATTERN: usize = 256;
/// Most wildcards (`*` and `?`) one pattern may hold.
pub const MAX_WILDCARDS: usize = 32;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is too long: {0} characters (at most {MAX_PATTERN})")]
    TooLong(usize),
    #[error("pattern has too many wildcards: {0} (at most {MAX_WILDCARDS})")]
    TooManyWildcards(usize),
    #[error("pattern is empty")]
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Lit(char),
    Any,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this one-character token matches `c` (`Star` never is asked).
    fn one(&self, c: char) -> bool {
        match self {
            Token::Lit(l) => *l == c,
            Token::Any => true,
            Token::Class { negate, ranges } => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
            }
            Token::Star => false,
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`, refusing one past the caps.
    pub fn new(pattern: &str) -> Result<Glob, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.is_empty() {
            return Err(PatternError::Empty);
        }
        if chars.len() > MAX_PATTERN {
            return Err(PatternError::TooLong(chars.len()));
        }
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    // `**` is `*`.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                '\\' if i + 1 < chars.len() => {
                    tokens.push(Token::Lit(chars[i + 1]));
                    i += 2;
                }
                '[' => match chars[i + 1..].iter().position(|c| *c == ']') {
                    // No closing bracket: a literal `[`.
                    None => {
                        tokens.push(Token::Lit('['));
                        i += 1;
                    }
                    Some(len) => {
                        let mut class = &chars[i + 1..i + 1 + len];
                        let negate = matches!(class.first(), Some('!' | '^'));
                        if negate {
                            class = &class[1..];
                        }
                        let mut ranges = Vec::new();
                        let mut j = 0;
                        while j < class.len() {
                            if j + 2 < class.len() && class[j + 1] == '-' {
                                ranges.push((class[j], class[j + 2]));
                                j += 3;
                            } else {
                                ranges.push((class[j], class[j]));
                                j += 1;
                            }
                        }
                        tokens.push(Token::Class { negate, ranges });
                        i += len + 2;
                    }
                },
                c => {
                    tokens.push(Token::Lit(c));
                    i += 1;
                }
            }
        }
        let wildcards = tokens
            .iter()
            .filter(|t| matches!(t, Token::Star | Token::Any))
            .count();
        if wildcards > MAX_WILDCARDS {
            return Err(PatternError::TooManyWildcards(wildcards));
        }
        Ok(Glob { tokens })
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let t = &self.tokens;
        let (mut p, mut n) = (0usize, 0usize);
        // Where the last `*` is (token index) and the name position it now starts at.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            if p < t.len() {
                if t[p] == Token::Star {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                if t[p].one(name[n]) {
                    p += 1;
                    n += 1;
                    continue;
                }
            }
            match star {
                // The last `*` takes one more character; everything after it is retried.
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            }
        }
        t[p..].iter().all(|tok| *tok == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::new(p).unwrap().matches(n)
    }

    #[test]
    fn globs() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[x", "[x"));
        assert!(m("**.rs", "main.rs"));
        assert!(m("package.json", "package.json"));
        assert!(!m("package.json", "package.jsonx"));
    }

    #[test]
    fn a_pattern_bomb_is_cheap() {
        let g = Glob::new("*a*a*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        let name = "a".repeat(255);
        // The recursive matcher this replaces would not finish this in a lifetime.
        for _ in 0..100 {
            assert!(!g.matches(&name));
        }
    }

    #[test]
    fn caps_are_enforced() {
        assert_eq!(
            Glob::new(&"a".repeat(MAX_PATTERN + 1)).unwrap_err(),
            PatternError::TooLong(MAX_PATTERN + 1)
        );
        assert_eq!(
            Glob::new(&"*a".repeat(MAX_WILDCARDS + 1)).unwrap_err(),
            PatternError::TooManyWildcards(MAX_WILDCARDS + 1)
        );
        assert_eq!(Glob::new("").unwrap_err(), PatternError::Empty);
    }
}

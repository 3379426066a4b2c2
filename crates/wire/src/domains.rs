//! A `domainAllowList` (`example.com,*.daytona.io`, the API's own example): what an entry is
//! and which names it lets through. Here, in the wire crate, so that the client refuses a list
//! before sending it with the same words the embedded backend would answer, and the backend's
//! resolver and proxies match names by the same rules.
//!
//! Matching: an entry `example.com` is that name only; `*.example.com` is every name below
//! it (`a.example.com`, `a.b.example.com`) and not `example.com` itself (list both to allow
//! both). Case and one trailing dot are ignored. Daytona's API and SDKs document the format
//! only by that example and "domains and wildcard domains"; this is the usual meaning of a
//! leading `*.`.

/// The most entries a list may hold (as `networkAllowList`: a long list is a mistake).
pub const MAX_DOMAINS: usize = 64;

/// The most characters of a bad entry quoted in an error (a pasted file is not echoed whole).
const QUOTED: usize = 80;

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pattern {
    /// This name only.
    Exact(String),
    /// Every name below this one (`*.` + it).
    Below(String),
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Exact(d) => f.write_str(d),
            Pattern::Below(d) => write!(f, "*.{d}"),
        }
    }
}

/// A name lowercased, without its trailing dot; `None` when it is not a host name (labels of
/// 1-63 letters, digits, `-` or `_`, not starting or ending with `-`; 253 characters at most).
pub fn normalise(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (!name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)).then_some(name)
}

/// A `domainAllowList` as the wire carries it: comma-separated names or `*.`names.
/// See [`parse_entries`].
pub fn parse(list: &str) -> Result<Vec<Pattern>, String> {
    parse_entries(list.split(','))
}

/// Entries (each one name or `*.`name; blank ones skipped) normalised, sorted, without
/// repeats. `Err` says, naming `domainAllowList`, which entry is not one or that there are
/// more than [`MAX_DOMAINS`].
pub fn parse_entries<'a>(
    entries: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for raw in entries.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            let quoted: String = raw.chars().take(QUOTED).collect();
            let more = if quoted.len() < raw.len() { "…" } else { "" };
            format!("domainAllowList: {quoted:?}{more} is not a domain name or a *.domain wildcard")
        };
        let pattern = match raw.strip_prefix("*.") {
            Some(rest) => Pattern::Below(normalise(rest).ok_or_else(bad)?),
            None => Pattern::Exact(normalise(raw).ok_or_else(bad)?),
        };
        out.push(pattern);
        if out.len() > MAX_DOMAINS {
            return Err(format!(
                "domainAllowList: more than {MAX_DOMAINS} entries (at most {MAX_DOMAINS})"
            ));
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The list as the API shows it (comma-separated, normalised).
pub fn render(list: &[Pattern]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `name` (as a client wrote it: any case, maybe a trailing dot) is on the list.
pub fn allows(list: &[Pattern], name: &str) -> bool {
    let Some(name) = normalise(name) else {
        return false;
    };
    list.iter().any(|p| match p {
        Pattern::Exact(d) => name == *d,
        Pattern::Below(d) => name
            .strip_suffix(d.as_str())
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_parsed_and_match_names_and_wildcards() {
        let l = parse(" Example.com., *.daytona.io,example.com").unwrap();
        assert_eq!(render(&l), "example.com,*.daytona.io");
        assert!(allows(&l, "example.com"));
        assert!(allows(&l, "EXAMPLE.com."));
        assert!(
            !allows(&l, "www.example.com"),
            "an exact entry is that name only"
        );
        assert!(!allows(&l, "badexample.com"));
        assert!(allows(&l, "app.daytona.io"));
        assert!(allows(&l, "a.b.daytona.io"));
        assert!(
            !allows(&l, "daytona.io"),
            "*. is below the name, not the name"
        );
        assert!(!allows(&l, "xdaytona.io"));
        assert!(!allows(&l, "evil.com/daytona.io"));
        assert!(!allows(&l, ""));
        for bad in [
            "*",
            "*.",
            "a..b",
            "-a.com",
            "a b.com",
            "http://x.com",
            "x.com:80",
            "**.x",
        ] {
            assert!(parse(bad).unwrap_err().contains(bad), "{bad}");
        }
        assert_eq!(parse(" , ").unwrap(), vec![]);
    }

    #[test]
    fn entries_are_one_name_each_and_lists_are_bounded() {
        let l = parse_entries(["B.test", "*.a.test", " "]).unwrap();
        assert_eq!(render(&l), "b.test,*.a.test");
        // One entry cannot smuggle in a second name.
        let e = parse_entries(["a.test,b.test"]).unwrap_err();
        assert!(e.starts_with("domainAllowList: \"a.test,b.test\""), "{e}");
        let names: Vec<String> = (0..=MAX_DOMAINS).map(|i| format!("n{i}.test")).collect();
        let e = parse_entries(names.iter().map(String::as_str)).unwrap_err();
        assert!(e.contains("at most 64"), "{e}");
        assert_eq!(
            parse_entries(names[..MAX_DOMAINS].iter().map(String::as_str))
                .unwrap()
                .len(),
            MAX_DOMAINS
        );
        // A huge bad entry is quoted, not echoed whole.
        let e = parse(&"x ".repeat(100_000)).unwrap_err();
        assert!(e.len() < 200 && e.contains('…'), "{}", e.len());
    }
}

//! A `domainAllowList` (`example.com,*.daytona.io`, the API's own example): what an entry is,
//! which names it lets through, and the answers of the sandbox's resolver. Pure functions;
//! the resolver and the proxy that use them are in `egress.rs`.
//!
//! Matching: an entry `example.com` is that name only; `*.example.com` is every name below
//! it (`a.example.com`, `a.b.example.com`) and not `example.com` itself (list both to allow
//! both). Case and one trailing dot are ignored. Daytona's API and SDKs document the format
//! only by that example and "domains and wildcard domains"; this is the usual meaning of a
//! leading `*.`.

/// The most entries a list may hold (as `networkAllowList`: a long list is a mistake).
pub const MAX_DOMAINS: usize = 64;

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

/// A `domainAllowList`: comma-separated names or `*.`names, normalised, sorted, without
/// repeats. `Err` names the entry that is not one.
pub fn parse(list: &str) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad =
            || format!("domainAllowList: {raw:?} is not a domain name or a *.domain wildcard");
        let pattern = match raw.strip_prefix("*.") {
            Some(rest) => Pattern::Below(normalise(rest).ok_or_else(bad)?),
            None => Pattern::Exact(normalise(raw).ok_or_else(bad)?),
        };
        out.push(pattern);
    }
    if out.len() > MAX_DOMAINS {
        return Err(format!(
            "domainAllowList: {} entries, at most {MAX_DOMAINS}",
            out.len()
        ));
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

/// DNS header flags and codes used below.
const QR: u16 = 0x8000;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
/// Seconds a client may keep an answer (the list can change while the sandbox runs).
const TTL: u32 = 5;

/// The resolver's answer to one DNS query (UDP wire format): names on the list resolve to
/// `to` (the proxy's address in the sandbox, whatever their real address is), every other
/// name is NXDOMAIN. Only A records are answered (the sandbox has no IPv6 way out); other
/// types of an allowed name get an empty NOERROR. `None`: not a DNS query at all (dropped).
pub fn answer(query: &[u8], list: &[Pattern], to: std::net::Ipv4Addr) -> Option<Vec<u8>> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]))
    };
    let (id, flags, questions) = (word(0)?, word(2)?, word(4)?);
    if flags & QR != 0 {
        return None;
    }
    let reply = |code: u16, question: &[u8], answer: Option<[u8; 4]>| {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(QR | (flags & 0x7800) | (flags & RD) | RA | code).to_be_bytes());
        out.extend_from_slice(&u16::from(!question.is_empty()).to_be_bytes());
        out.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(question);
        if let Some(addr) = answer {
            // The question's name (a pointer to offset 12), A, IN, TTL, 4 bytes.
            out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&[0, 4]);
            out.extend_from_slice(&addr);
        }
        out
    };
    if (flags >> 11) & 0xf != 0 {
        return Some(reply(NOTIMP, &[], None));
    }
    if questions != 1 {
        return Some(reply(FORMERR, &[], None));
    }
    // The name: labels, no compression in a question.
    let (mut at, mut labels) = (12usize, Vec::new());
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return Some(reply(FORMERR, &[], None));
        }
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    let qtype = word(at)?;
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    if !allows(list, &name) {
        return Some(reply(NXDOMAIN, question, None));
    }
    let a = matches!(qtype, TYPE_A | TYPE_ANY).then_some(to.octets());
    Some(reply(NOERROR, question, a))
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

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(u8::try_from(l.len()).unwrap());
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0]);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn the_resolver_answers_listed_names_with_the_proxy_and_nothing_else() {
        let l = parse("allowed.test").unwrap();
        let to = std::net::Ipv4Addr::new(10, 0, 2, 3);
        let a = answer(&query("Allowed.test", TYPE_A), &l, to).unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0xf, 0, "NOERROR");
        assert_eq!(&a[6..8], &[0, 1], "one answer");
        assert_eq!(&a[a.len() - 4..], &[10, 0, 2, 3]);
        let n = answer(&query("other.test", TYPE_A), &l, to).unwrap();
        assert_eq!(n[3] & 0xf, 3, "NXDOMAIN");
        assert_eq!(&n[6..8], &[0, 0]);
        let six = answer(&query("allowed.test", 28), &l, to).unwrap();
        assert_eq!((six[3] & 0xf, six[7]), (0, 0), "AAAA: no address");
        assert!(answer(&[1, 2, 3], &l, to).is_none());
    }
}

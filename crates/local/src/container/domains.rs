//! The answers of a sandbox's resolver for its `domainAllowList`. What an entry is and which
//! names it lets through is the wire crate's ([`forge_wire::domains`]: the client checks lists
//! by the same rules); the resolver and the proxy that use them are in `egress.rs`.

pub use forge_wire::domains::{allows, normalise, parse, render, Pattern};

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

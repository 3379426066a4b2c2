//! The port a dev server announces in its log. Servers move off a busy port (Vite: "Port 5173
//! is in use, trying another one..."), so the port printed in the log is the truth, not the
//! one that was asked for. Formats (reference §4), matched line by line after ANSI removal:
//!
//! - `➜  Local:   http://localhost:5173/` (Vite, Angular ≥ 17, Nuxt), `- Local: http://…:3000`
//!   (Next.js), `┃ Local    http://localhost:4321/` (Astro);
//! - `… listening on localhost:4200, …` (Angular's webpack builder), `started server on
//!   0.0.0.0:3000` (Next ≤ 13.4), `listening on http://…:8080`, `listening on port 3000`;
//! - last resort: any `http(s)://localhost|127.0.0.1|0.0.0.0|[::1]|[::]:PORT`.

use crate::ansi::strip_ansi;

/// What the log says about the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub port: u16,
    /// `true` for a "Local:" or "listening on" line; `false` when only a loopback URL was
    /// found somewhere in the log (it may belong to something else, e.g. an API the app calls).
    pub strong: bool,
}

/// The port the dev server's log announces: the last "Local:"/"listening on" line wins (a
/// restarted server prints a new one); without such a line, the last loopback URL.
pub fn port_from_log(text: &str) -> Option<u16> {
    announced_port(text).map(|a| a.port)
}

/// Like [`port_from_log`], and says how sure it is.
pub fn announced_port(text: &str) -> Option<Announcement> {
    let text = strip_ansi(text);
    let mut strong = None;
    let mut weak = None;
    // `\r` too: progress output redraws lines with carriage returns.
    for line in text.split(['\n', '\r']) {
        if let Some(p) = local_line(line).or_else(|| listening_line(line)) {
            strong = Some(p);
        } else if let Some(p) = loopback_url(line) {
            weak = Some(p);
        }
    }
    strong
        .map(|port| Announcement { port, strong: true })
        .or(weak.map(|port| Announcement {
            port,
            strong: false,
        }))
}

/// `(?:➜|-|┃)\s*Local:?\s+https?://HOST:PORT`.
fn local_line(line: &str) -> Option<u16> {
    let at = line.find("Local")?;
    let before = line[..at].trim_end();
    if !before.ends_with(['➜', '-', '┃']) {
        return None;
    }
    let rest = &line[at + "Local".len()..];
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let trimmed = rest.trim_start();
    if trimmed.len() == rest.len() {
        return None;
    }
    url_port(trimmed)
}

/// `(?i)(?:listening on|started server on)\s+(?:https?://)?HOST:PORT`, and `… on port PORT`.
fn listening_line(line: &str) -> Option<u16> {
    let lower = line.to_ascii_lowercase();
    let end = ["listening on", "started server on"]
        .iter()
        .find_map(|k| lower.find(k).map(|i| i + k.len()))?;
    let rest = &line[end..];
    let trimmed = rest.trim_start();
    if trimmed.len() == rest.len() {
        return None;
    }
    if let Some(p) = trimmed
        .strip_prefix("port")
        .or_else(|| trimmed.strip_prefix("Port"))
    {
        return digits(p.trim_start());
    }
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return url_port(trimmed);
    }
    let token: &str = trimmed
        .split(|c: char| !(c.is_alphanumeric() || "_.-[]:".contains(c)))
        .next()?;
    port_suffix(token)
}

/// The first `http(s)://` URL of the line whose host is a loopback or any-address.
fn loopback_url(line: &str) -> Option<u16> {
    const HOSTS: [&str; 5] = ["localhost:", "127.0.0.1:", "0.0.0.0:", "[::1]:", "[::]:"];
    let mut rest = line;
    while let Some(i) = rest.find("http") {
        let url = &rest[i..];
        let after = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if let Some(host_port) = after {
            if let Some(h) = HOSTS.iter().find(|h| host_port.starts_with(**h)) {
                if let Some(p) = digits(&host_port[h.len()..]) {
                    return Some(p);
                }
            }
        }
        rest = &rest[i + 4..];
    }
    None
}

/// The port of `http(s)://HOST:PORT…` at the start of `s`.
fn url_port(s: &str) -> Option<u16> {
    let after = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))?;
    let authority = after
        .split(|c: char| c.is_whitespace() || "/,;\"'*)>".contains(c))
        .next()?;
    port_suffix(authority)
}

/// `HOST:PORT` → PORT (2–5 digits, 1–65535).
fn port_suffix(authority: &str) -> Option<u16> {
    let (_, port) = authority.rsplit_once(':')?;
    if !(2..=5).contains(&port.len()) {
        return None;
    }
    digits(port)
}

/// The 2–5 digit number at the start of `s` (not followed by another digit).
fn digits(s: &str) -> Option<u16> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if !(2..=5).contains(&n) {
        return None;
    }
    s[..n].parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_port() {
        assert_eq!(port_from_log("  ➜  Network: use --host to expose"), None);
        assert_eq!(port_from_log("- Local: http://localhost/"), None);
        assert_eq!(port_from_log("Local: http://localhost:99999/"), None);
        assert_eq!(port_from_log("ready in 312 ms"), None);
    }

    #[test]
    fn strong_beats_weak() {
        let log = "proxying /api to http://localhost:8000\n  ➜  Local:   http://localhost:5173/\n";
        assert_eq!(
            announced_port(log),
            Some(Announcement {
                port: 5173,
                strong: true
            })
        );
        assert_eq!(
            announced_port("see http://127.0.0.1:8000/docs"),
            Some(Announcement {
                port: 8000,
                strong: false
            })
        );
    }
}

//! How a sandbox reaches the outside (`npm install`, `git clone`): its own network namespace
//! attached to this machine's network by a user-mode network tool, as rootless podman does.
//! The table below is every tool we know how to drive; the first one on the PATH is used.
//!
//! What a sandbox can reach: the internet (through this machine's sockets), never this
//! machine's loopback (the backend, other sandboxes' previews, local services): slirp4netns's
//! `--disable-host-loopback`. Host ports a sandbox may reach on purpose (a local git server
//! or registry) are relayed one by one by the sandbox's monitor (`forward_ports`), so
//! `127.0.0.1:<port>` inside reaches the host's.
//!
//! pasta (Debian's `passt`) is not in the table: the version Debian 12 ships keeps about
//! 29 MiB of memory per sandbox and does not exit when the sandbox's namespace goes away
//! (both measured here), where slirp4netns takes about 3 MiB and ends with the sandbox
//! through `--exit-fd`.

/// One tool: its program and arguments (`{pid}` is the sandbox init's pid, `{exitfd}` a pipe
/// that closes when the sandbox ends, `{readyfd}` where the tool says it is ready), and the
/// resolver address the sandbox should use through it.
pub struct Tool {
    pub program: &'static str,
    pub args: &'static [&'static str],
    pub nameserver: &'static str,
}

pub const TOOLS: [Tool; 1] = [Tool {
    program: "slirp4netns",
    args: &[
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--exit-fd={exitfd}",
        "--ready-fd={readyfd}",
        "--userns-path=/proc/{pid}/ns/user",
        "--netns-type=path",
        "/proc/{pid}/ns/net",
        "tap0",
    ],
    nameserver: "10.0.2.3",
}];

/// The network sandboxes get on this machine.
#[derive(Clone, Debug)]
pub struct Network {
    /// The tool's full path and arguments; `None`: loopback only.
    pub argv: Option<Vec<String>>,
    pub nameservers: Vec<String>,
    pub name: String,
}

impl Network {
    /// The first tool of [`TOOLS`] on `path`, unless `FORGE_SANDBOX_NETWORK=none`.
    pub fn detect(path: Option<&std::ffi::OsStr>, wanted: Option<&str>) -> Network {
        let none = Network {
            argv: None,
            nameservers: Vec::new(),
            name: "loopback only (no slirp4netns on PATH)".into(),
        };
        if wanted == Some("none") {
            return Network {
                name: "loopback only (FORGE_SANDBOX_NETWORK=none)".into(),
                ..none
            };
        }
        let Some(path) = path else { return none };
        for tool in &TOOLS {
            if wanted.is_some_and(|w| w != tool.program) {
                continue;
            }
            if let Some(full) = crate::procs::which(tool.program, path) {
                let mut argv = vec![full.to_string_lossy().into_owned()];
                argv.extend(tool.args.iter().map(std::string::ToString::to_string));
                return Network {
                    argv: Some(argv),
                    nameservers: vec![tool.nameserver.to_string()],
                    name: tool.program.to_string(),
                };
            }
        }
        none
    }

    /// The `--net` arguments of `forge-sandbox start`.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.argv.iter().flatten() {
            out.push("--net".to_string());
            out.push(a.clone());
        }
        out
    }
}

/// What slirp4netns gives the sandbox (its `--configure` defaults): the device, the gateway
/// every outside address is routed through, and the sandbox's own network (the gateway, the
/// resolver, the sandbox), which an allow list leaves reachable.
pub const DEVICE: &str = "tap0";
pub const GATEWAY: &str = "10.0.2.2";

/// The most addresses an allow list may hold (Daytona's API documents no limit; a long list
/// is a mistake, and each entry is a route).
pub const MAX_ALLOWED: usize = 64;

/// A `networkAllowList`: comma-separated IPv4 addresses or CIDR blocks (`192.168.1.0/16`,
/// `203.0.113.80`), each normalised to its network (`192.168.0.0/16`). `Err` names the entry
/// that is not one.
pub fn parse_allow_list(list: &str) -> Result<Vec<(std::net::Ipv4Addr, u8)>, String> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, len) = raw.split_once('/').unwrap_or((raw, "32"));
        let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| {
            format!("networkAllowList: {raw:?} is not an IPv4 address or CIDR block")
        })?;
        let len: u8 =
            len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| {
                format!("networkAllowList: {raw:?} has a prefix length outside 0-32")
            })?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        out.push((std::net::Ipv4Addr::from(u32::from(addr) & mask), len));
    }
    if out.len() > MAX_ALLOWED {
        return Err(format!(
            "networkAllowList: {} entries, at most {MAX_ALLOWED}",
            out.len()
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The `ip -batch` commands that route only `allow` (or, empty, everything) through the
/// gateway: the routes slirp4netns or an earlier list made are flushed first, so the same
/// commands apply a list at start, change it, or lift it.
pub fn allow_commands(allow: &[(std::net::Ipv4Addr, u8)]) -> String {
    // Scope global: the default route and routes through the gateway; the sandbox's own
    // network (scope link) stays.
    let mut out = format!("route flush dev {DEVICE} scope global\n");
    if allow.is_empty() {
        out.push_str(&format!(
            "route add default via {GATEWAY} dev {DEVICE} proto static\n"
        ));
    }
    for (addr, len) in allow {
        out.push_str(&format!(
            "route add {addr}/{len} via {GATEWAY} dev {DEVICE} proto static\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_are_parsed_normalised_and_routed() {
        let l =
            parse_allow_list("192.168.1.0/16, 203.0.113.80,10.0.0.0/24,203.0.113.80/32").unwrap();
        assert_eq!(
            l,
            vec![
                ("10.0.0.0".parse().unwrap(), 24),
                ("192.168.0.0".parse().unwrap(), 16),
                ("203.0.113.80".parse().unwrap(), 32)
            ]
        );
        assert!(parse_allow_list("example.com")
            .unwrap_err()
            .contains("example.com"));
        assert!(parse_allow_list("10.0.0.0/33").is_err());
        assert_eq!(parse_allow_list(" , ").unwrap(), vec![]);
        let cmds = allow_commands(&l);
        assert!(cmds.starts_with("route flush dev tap0 scope global\n"));
        assert!(!cmds.contains("default"));
        assert!(cmds.contains("route add 192.168.0.0/16 via 10.0.2.2 dev tap0 proto static\n"));
        assert!(allow_commands(&[]).contains("route add default via 10.0.2.2"));
    }
}

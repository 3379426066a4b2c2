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

//! The toolbox of one sandbox: `{toolboxProxyUrl}/{id}/...` with the same headers as the API
//! (daytona-wire.md §4). Sub-handles: [`Toolbox::process`], [`Toolbox::pty`], [`Toolbox::fs`], [`Toolbox::git`].

pub mod fs;
pub mod git;
mod hostfile;
pub mod killable;
pub mod logs;
pub mod process;
pub mod pty;

use crate::call::{CallOptions, Deadline};
use crate::fetch::Method;
use crate::http::{Req, Transport};

/// A sandbox's toolbox. Cheap to clone.
#[derive(Clone)]
pub struct Toolbox {
    transport: Transport,
    base: String,
    sandbox_id: String,
    language: Option<String>,
    /// Deadline and cancel token of the calls that take no [`CallOptions`] of their own.
    pub(crate) opts: CallOptions,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("base", &self.base)
            .field("sandbox_id", &self.sandbox_id)
            .finish()
    }
}

impl Toolbox {
    pub(crate) fn new(
        transport: Transport,
        base: String,
        sandbox_id: String,
        language: Option<String>,
    ) -> Self {
        Toolbox {
            transport,
            base,
            sandbox_id,
            language,
            opts: CallOptions::default(),
        }
    }

    /// `{toolboxProxyUrl}/{id}`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    pub fn process(&self) -> process::Process {
        process::Process { tb: self.clone() }
    }

    /// PTY sessions: interactive terminals.
    pub fn pty(&self) -> pty::Pty {
        pty::Pty { tb: self.clone() }
    }

    pub fn fs(&self) -> fs::Fs {
        fs::Fs { tb: self.clone() }
    }

    pub fn git(&self) -> git::Git {
        git::Git { tb: self.clone() }
    }

    pub(crate) fn req(&self, method: Method, path: &str, what: &'static str) -> Req {
        Req::new(method, format!("{}{}", self.base, path), what)
    }

    /// The same toolbox whose calls without their own [`CallOptions`] (list, info, git status,
    /// push, pull, sessions, ...) use `opts`: a deadline and a cancel token for those too.
    pub fn with_options(&self, opts: CallOptions) -> Toolbox {
        Toolbox {
            opts,
            ..self.clone()
        }
    }

    pub(crate) fn default_deadline(&self) -> Deadline {
        self.deadline(&self.opts)
    }

    pub(crate) fn deadline(&self, opts: &CallOptions) -> Deadline {
        opts.deadline(self.transport.default_timeout())
    }

    /// The deadline of a command run with its own `timeout`: the call's, else the config's
    /// default or the command's timeout and a minute more, whichever is longer (a 20-minute
    /// install is not cut by a 10-minute request default).
    pub(crate) fn command_deadline(
        &self,
        opts: &CallOptions,
        command_timeout: Option<std::time::Duration>,
    ) -> Deadline {
        let default = self.transport.default_timeout();
        let for_command = command_timeout.map(|t| t + std::time::Duration::from_mins(1));
        let effective = match (default, for_command) {
            (Some(d), Some(c)) => Some(d.max(c)),
            (d, None) => d,
            (None, c) => c,
        };
        let opts = if opts.timeout.is_some() {
            opts.clone()
        } else {
            match effective {
                Some(t) => opts.clone().with_timeout(t),
                None => opts.clone(),
            }
        };
        opts.deadline(default)
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// `GET /port/{port}/in-use`: whether something listens on `port` inside the sandbox.
    /// Daytona's daemon only checks ports 3000–9999 and answers 400 ([`crate::Error::BadRequest`])
    /// for the others.
    pub async fn port_in_use(&self, port: u16) -> crate::Result<bool> {
        let r: forge_wire::IsPortInUseResponse = self
            .transport
            .json(
                self.req(Method::GET, &format!("/port/{port}/in-use"), "port in use"),
                &self.default_deadline(),
            )
            .await?;
        Ok(r.is_in_use)
    }

    /// `GET /work-dir`.
    pub async fn work_dir(&self) -> crate::Result<String> {
        let r: forge_wire::DirResponse = self
            .transport
            .json(
                self.req(Method::GET, "/work-dir", "work dir"),
                &self.default_deadline(),
            )
            .await?;
        Ok(r.dir)
    }
}

//! `forge-preview`: the clone → detect → install → start → verify pipeline
//! ([`pipeline`]), preview verification ([`verify_preview`]: readiness conditions, probe
//! classification, log-announced ports) and detection of a repository that lives inside a
//! sandbox ([`detect_in_sandbox`]).

mod ansi;
pub mod browser;
mod classify;
mod conditions;
pub mod crash_log;
mod error;
pub mod install_log;
mod logport;
pub mod pipeline;
mod probe;
mod remote_detect;
mod verify;

pub use ansi::strip_ansi;
pub use classify::{
    classify, classify_entry_module, entry_module, Answer, Outcome, Probe, Reason, TransportError,
    ALLOWED_HOSTS_HINT,
};
pub use conditions::{
    port_listening, HttpAnswers, HttpPolicy, NotServing, PortListening, PORT_CHECK_RANGE,
};
pub use error::PreviewError;
pub use logport::{announced_port, port_from_log, Announcement};
pub use probe::{Prober, BODY_LIMIT, PROBE_USER_AGENT};
pub use remote_detect::{detect_in_sandbox, listing_command, MAX_LISTED_FILES};
pub use verify::{verify_preview, verify_preview_with, DevProcess, VerifyOptions, VerifyReport};

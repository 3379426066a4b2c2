//! The session log demuxer (`\x01\x01\x01` stdout / `\x02\x02\x02` stderr markers, frames cut
//! anywhere): never panics, and the text it gives does not depend on where the input was cut
//! (pushing the input in arbitrary pieces equals `demux_all` of the whole).
#![no_main]

use arbitrary::Arbitrary;
use forge_daytona::toolbox::logs::{demux_all, Demuxer, LogStreamKind};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    bytes: Vec<u8>,
    cuts: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let (want_out, want_err) = demux_all(&input.bytes);
    let mut d = Demuxer::new();
    let (mut out, mut err) = (String::new(), String::new());
    let mut rest: &[u8] = &input.bytes;
    let mut chunks = Vec::new();
    for c in input.cuts {
        let at = (c as usize).min(rest.len());
        let (a, b) = rest.split_at(at);
        chunks.extend(d.push(a));
        rest = b;
    }
    chunks.extend(d.push(rest));
    chunks.extend(d.finish());
    for c in chunks {
        match c.stream {
            LogStreamKind::Stdout => out.push_str(&c.data),
            LogStreamKind::Stderr => err.push_str(&c.data),
        }
    }
    assert_eq!(out, want_out, "stdout depends on where the input was cut");
    assert_eq!(err, want_err, "stderr depends on where the input was cut");
});

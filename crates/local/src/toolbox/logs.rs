//! A session command's log: the daemon's marked format (`\x01\x01\x01<stdout line>\n`,
//! `\x02\x02\x02<stderr line>\n`), one file per command, bounded.
//!
//! The command's monitor in the sandbox writes the file (so the log goes on when the backend
//! is restarted) and keeps it bounded by punching out its oldest part (the file's offsets stay
//! those of the output since the command started; the holes read as nothing). Readers here
//! find the oldest byte kept with `SEEK_DATA` and start at the next whole line. They are told
//! of new output by the monitor's ticks (see `container::process`).

use forge_wire::{STDERR_MARKER, STDOUT_MARKER};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use tokio::sync::watch;

pub struct LogStore {
    file: Option<File>,
    tick: watch::Receiver<u64>,
    done: watch::Receiver<bool>,
}

impl LogStore {
    /// A reader of the log at `path`, woken by `tick`; `done` turns true once the monitor
    /// has written its last byte.
    #[allow(clippy::needless_pass_by_value)] // the store's own path, kept by the caller
    pub fn open(
        path: PathBuf,
        tick: watch::Receiver<u64>,
        done: watch::Receiver<bool>,
    ) -> LogStore {
        let file = File::open(&path).ok();
        LogStore { file, tick, done }
    }

    /// A receiver that changes whenever the log grew.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.clone()
    }

    /// True once no more output will come.
    pub fn writers_done(&self) -> bool {
        *self.done.borrow()
    }

    fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// The first offset still kept: 0, or the start of the first whole line after the part
    /// the monitor punched out.
    #[allow(clippy::unused_self)] // a question about this store's file
    fn oldest(&self, f: &File) -> u64 {
        // SAFETY: lseek(2) on a descriptor we own; SEEK_DATA finds the first byte not in a hole.
        let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
        if data <= 0 {
            return 0;
        }
        let mut at = data as u64;
        let mut buf = [0u8; 4096];
        loop {
            let n = match f.read_at(&mut buf, at) {
                Ok(0) | Err(_) => return at,
                Ok(n) => n,
            };
            if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
                return at + i as u64 + 1;
            }
            at += n as u64;
        }
    }

    /// Up to `max` bytes from `offset` (moved forward to the oldest kept byte if it was
    /// cut), whole lines only while the command may still write. Returns the bytes and the
    /// offset after them.
    pub fn read_at(&self, offset: u64, max: usize) -> (Vec<u8>, u64) {
        let Some(f) = self.file() else {
            return (Vec::new(), offset);
        };
        let total = f.metadata().map_or(0, |m| m.len());
        let offset = offset.max(self.oldest(f));
        if offset >= total {
            return (Vec::new(), offset);
        }
        let want = ((total - offset) as usize).min(max);
        let mut buf = vec![0u8; want];
        match f.read_at(&mut buf, offset) {
            Ok(n) => {
                buf.truncate(n);
                // A write still under way may be cut anywhere: hand out whole lines.
                if !self.writers_done() {
                    match buf.iter().rposition(|b| *b == b'\n') {
                        Some(i) => buf.truncate(i + 1),
                        None if buf.len() < max => buf.clear(),
                        None => {}
                    }
                }
                let n = buf.len();
                (buf, offset + n as u64)
            }
            Err(_) => (Vec::new(), offset),
        }
    }

    /// Everything still kept, and whether older output was cut.
    pub fn read_all(&self) -> (Vec<u8>, bool) {
        let Some(f) = self.file() else {
            return (Vec::new(), false);
        };
        let oldest = self.oldest(f);
        let mut out = Vec::new();
        let mut offset = oldest;
        loop {
            let (chunk, next) = self.read_at(offset, 1024 * 1024);
            if chunk.is_empty() {
                return (out, oldest > 0);
            }
            out.extend_from_slice(&chunk);
            offset = next;
        }
    }
}

/// Splits marked output into (stdout, stderr); bytes before the first marker are dropped.
pub fn demux(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut current: Option<bool> = None; // Some(true) = stdout
    let mut i = 0;
    let mut run_start = 0;
    let flush = |cur: Option<bool>, bytes: &[u8], out: &mut Vec<u8>, err: &mut Vec<u8>| match cur {
        Some(true) => out.extend_from_slice(bytes),
        Some(false) => err.extend_from_slice(bytes),
        None => {}
    };
    while i < raw.len() {
        let rest = &raw[i..];
        let is_out = rest.starts_with(&STDOUT_MARKER);
        if is_out || rest.starts_with(&STDERR_MARKER) {
            flush(current, &raw[run_start..i], &mut out, &mut err);
            current = Some(is_out);
            i += 3;
            run_start = i;
        } else {
            i += 1;
        }
    }
    flush(current, &raw[run_start..], &mut out, &mut err);
    (out, err)
}

/// The marked output with the markers removed (the "combined output" of old clients).
pub fn strip(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        if rest.starts_with(&STDOUT_MARKER) || rest.starts_with(&STDERR_MARKER) {
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_marked_lines() {
        let raw = b"junk\x01\x01\x01a\n\x02\x02\x02b\n\x01\x01\x01c\n";
        let (o, e) = demux(raw);
        assert_eq!(o, b"a\nc\n");
        assert_eq!(e, b"b\n");
        assert_eq!(strip(raw), b"junka\nb\nc\n");
    }

    /// A log whose head was punched out (as the monitor bounds it) reads from the first
    /// whole line after the hole, and says it was cut.
    #[test]
    fn a_punched_log_reads_from_the_next_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut text = Vec::new();
        for i in 0..2000 {
            text.extend_from_slice(format!("\x01\x01\x01line {i:05}\n").as_bytes());
        }
        std::fs::write(&path, &text).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // SAFETY: fallocate(2) on our own file.
        let punched = unsafe {
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                8192,
            )
        };
        let (_t, tick) = watch::channel(0);
        let (_d, done) = watch::channel(true);
        let log = LogStore::open(path, tick, done);
        let (all, truncated) = log.read_all();
        if punched != 0 {
            // A file system without hole punching keeps everything.
            assert!(!truncated);
            return;
        }
        assert!(truncated);
        assert!(all.starts_with(&STDOUT_MARKER));
        assert!(all.len() < text.len());
        assert!(text.ends_with(&all));
        let (chunk, _) = log.read_at(0, 16);
        assert!(chunk.starts_with(&STDOUT_MARKER));
    }
}

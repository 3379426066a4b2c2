//! A session command's log: the daemon's marked format (`\x01\x01\x01<stdout line>\n`,
//! `\x02\x02\x02<stderr line>\n`), kept on disk and bounded.
//!
//! Bytes are addressed by their absolute offset since the command started. The log is two
//! segment files of at most half the limit each: when the current one is full a new one is
//! started and the older one deleted, so the oldest output is cut (always at a line
//! boundary) and readers that fell behind skip to the oldest byte still kept. Readers wait
//! on a watch channel that ticks on every append.

use forge_wire::{STDERR_MARKER, STDOUT_MARKER};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Default bound of one command's log on disk.
pub const DEFAULT_LIMIT: u64 = 64 * 1024 * 1024;

/// Longest line kept whole; longer output without a newline is split into lines this long.
const MAX_LINE: usize = 64 * 1024;

struct Inner {
    file: File,
    seq: u64,
    cur_start: u64,
    prev_start: Option<u64>,
    total: u64,
    writers_done: bool,
}

pub struct LogStore {
    dir: PathBuf,
    half: u64,
    inner: Mutex<Inner>,
    tick: tokio::sync::watch::Sender<u64>,
}

/// The limit from `FORGE_SESSION_LOG_LIMIT` (bytes), else [`DEFAULT_LIMIT`].
pub fn configured_limit() -> u64 {
    std::env::var("FORGE_SESSION_LOG_LIMIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v >= 1024)
        .unwrap_or(DEFAULT_LIMIT)
}

impl LogStore {
    /// Creates the log in `dir` (created), bounded to about `limit` bytes.
    pub fn create(dir: PathBuf, limit: u64) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(&dir)?;
        let file = File::create(dir.join("0.log"))?;
        Ok(LogStore {
            dir,
            half: (limit / 2).max(512),
            inner: Mutex::new(Inner {
                file,
                seq: 0,
                cur_start: 0,
                prev_start: None,
                total: 0,
                writers_done: false,
            }),
            tick: tokio::sync::watch::channel(0).0,
        })
    }

    fn seg(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq}.log"))
    }

    /// Appends whole marked lines. A burst longer than a segment (a fast writer read late)
    /// keeps only its newest whole lines and cuts everything older, so the log never holds
    /// more than the limit (plus at most one line longer than half of it).
    pub fn append(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let Ok(mut g) = self.inner.lock() else { return };
        let skip = newest_lines_within(bytes, self.half as usize);
        let cur_len = g.total - g.cur_start;
        if skip > 0 || (cur_len > 0 && cur_len + bytes.len() as u64 > self.half) {
            if let Ok(file) = File::create(self.seg(g.seq + 1)) {
                if g.seq > 0 {
                    let _ = std::fs::remove_file(self.seg(g.seq - 1));
                }
                if skip > 0 {
                    let _ = std::fs::remove_file(self.seg(g.seq));
                    g.prev_start = None;
                } else {
                    g.prev_start = Some(g.cur_start);
                }
                g.cur_start = g.total + skip as u64;
                g.seq += 1;
                g.file = file;
            }
        }
        // A failed rotation writes into the current segment: offsets stay consistent.
        let skip = g.cur_start.saturating_sub(g.total) as usize;
        if g.file.write_all(&bytes[skip..]).is_ok() {
            g.total += bytes.len() as u64;
        } else {
            g.cur_start = g.cur_start.min(g.total);
        }
        let total = g.total;
        drop(g);
        self.tick.send_replace(total);
    }

    /// Marks that no more output will come (both pipes reached EOF).
    pub fn finish(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.writers_done = true;
            let total = g.total;
            drop(g);
            self.tick.send_replace(total);
        }
    }

    /// A receiver that changes on every append and on [`LogStore::finish`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// True once both output pipes are closed.
    pub fn writers_done(&self) -> bool {
        self.inner.lock().map(|g| g.writers_done).unwrap_or(true)
    }

    /// Up to `max` bytes from `offset` (moved forward to the oldest kept byte if it was
    /// cut). Returns the bytes and the offset after them.
    pub fn read_at(&self, offset: u64, max: usize) -> (Vec<u8>, u64) {
        let Ok(g) = self.inner.lock() else {
            return (Vec::new(), offset);
        };
        let oldest = g.prev_start.unwrap_or(g.cur_start);
        let offset = offset.max(oldest);
        if offset >= g.total {
            return (Vec::new(), offset);
        }
        let (seq, start, end) = if offset >= g.cur_start {
            (g.seq, g.cur_start, g.total)
        } else {
            (g.seq - 1, g.prev_start.unwrap_or(0), g.cur_start)
        };
        let want = ((end - offset) as usize).min(max);
        let mut buf = vec![0u8; want];
        let read = File::open(self.seg(seq)).and_then(|mut f| {
            f.seek(SeekFrom::Start(offset - start))?;
            f.read_exact(&mut buf)
        });
        match read {
            Ok(()) => (buf, offset + want as u64),
            Err(_) => (Vec::new(), offset),
        }
    }

    /// Everything still kept, and whether older output was cut.
    pub fn read_all(&self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut offset = 0;
        let mut first = true;
        let mut truncated = false;
        loop {
            let (chunk, next) = self.read_at(offset, 1024 * 1024);
            if first {
                truncated = next > chunk.len() as u64;
                first = false;
            }
            if chunk.is_empty() {
                return (out, truncated);
            }
            out.extend_from_slice(&chunk);
            offset = next;
        }
    }
}

/// Where the newest whole lines of `bytes` that fit in `max` bytes start (0: all fit). When
/// even the last line is longer, it is kept whole.
fn newest_lines_within(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return 0;
    }
    let from = bytes.len() - max;
    if bytes[from - 1] == b'\n' {
        return from;
    }
    match bytes[from..bytes.len() - 1]
        .iter()
        .position(|b| *b == b'\n')
    {
        Some(i) => from + i + 1,
        None => bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1),
    }
}

/// Copies one output pipe into the log, line by line, each line marked with `marker`.
pub async fn pump<R: AsyncRead + Unpin>(mut pipe: R, marker: [u8; 3], log: &LogStore) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut marked = Vec::with_capacity(pending.len() + 64);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            marked.extend_from_slice(&marker);
            marked.extend_from_slice(&pending[start..start + pos + 1]);
            start += pos + 1;
        }
        while pending.len() - start >= MAX_LINE {
            marked.extend_from_slice(&marker);
            marked.extend_from_slice(&pending[start..start + MAX_LINE]);
            marked.push(b'\n');
            start += MAX_LINE;
        }
        pending.drain(..start);
        log.append(&marked);
    }
    if !pending.is_empty() {
        let mut marked = marker.to_vec();
        marked.extend_from_slice(&pending);
        marked.push(b'\n');
        log.append(&marked);
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

    #[test]
    fn the_log_is_bounded_and_cut_at_the_oldest_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::create(dir.path().join("l"), 2048).unwrap();
        for i in 0..1000 {
            log.append(format!("\x01\x01\x01line {i:04}\n").as_bytes());
        }
        let (all, truncated) = log.read_all();
        assert!(truncated);
        assert!(all.len() <= 2048);
        let text = String::from_utf8(strip(&all)).unwrap();
        assert!(text.ends_with("line 0999\n"));
        assert!(text.starts_with("line "));
        // a reader far behind skips to the oldest kept byte
        let (chunk, _) = log.read_at(0, 16);
        assert!(chunk.starts_with(&STDOUT_MARKER));
    }

    #[test]
    fn bursts_longer_than_a_segment_keep_the_newest_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::create(dir.path().join("l"), 2048).unwrap();
        let line = |i: usize| format!("\x01\x01\x01line {i:04}\n");
        let mut i = 0;
        // Bursts of 1, 40 and 300 lines (13 bytes each; a segment holds 1024 bytes).
        for burst in [1, 40, 300, 1, 300, 40] {
            let chunk: String = (i..i + burst).map(line).collect();
            i += burst;
            log.append(chunk.as_bytes());
            let (all, truncated) = log.read_all();
            assert!(all.len() <= 2048, "{} bytes kept", all.len());
            assert!(all.starts_with(&STDOUT_MARKER));
            let text = String::from_utf8(strip(&all)).unwrap();
            assert!(text.ends_with(&format!("line {:04}\n", i - 1)));
            assert_eq!(truncated, i * 13 > all.len());
            // the kept lines are consecutive
            let nums: Vec<usize> = text.lines().map(|l| l[5..].parse().unwrap()).collect();
            assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        }
        // One line longer than a segment is kept whole (after at most a segment of older lines).
        let long = format!("\x01\x01\x01{}\n", "x".repeat(3000));
        log.append(long.as_bytes());
        let (all, _) = log.read_all();
        assert!(all.ends_with(long.as_bytes()) && all.len() <= 1024 + long.len());
        assert_eq!(newest_lines_within(b"ab\ncd\n", 3), 3);
        assert_eq!(newest_lines_within(b"ab\ncd\n", 4), 3);
        assert_eq!(newest_lines_within(b"ab\ncd\n", 2), 3);
        assert_eq!(newest_lines_within(b"abcdef\n", 2), 0);
    }

    #[tokio::test]
    async fn pump_marks_every_line_and_the_unterminated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::create(dir.path().join("l"), DEFAULT_LIMIT).unwrap();
        pump(&b"one\ntwo\nthree"[..], STDERR_MARKER, &log).await;
        let (all, _) = log.read_all();
        assert_eq!(
            all,
            b"\x02\x02\x02one\n\x02\x02\x02two\n\x02\x02\x02three\n"
        );
    }
}

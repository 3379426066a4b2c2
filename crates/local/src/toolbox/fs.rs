//! File-system routes (daytona-wire.md §5), every path confined to the sandbox root and
//! pinned by descriptors ([`crate::confine`]): what a route checked is what it uses, whatever
//! the sandbox renames meanwhile. Only regular files and folders are read or written (a FIFO
//! or a device is refused, never opened). Paths in answers are the sandbox's view
//! (`/home/daytona/...`), never host paths.

use super::Sbx;
use crate::confine::{self, Dir, Resolved};
use crate::error::Failure;
use crate::glob::Glob;
use crate::util::{query_flag, query_get, query_pairs, JsonBody};
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forge_wire::{FileInfo, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse};
use rustix::fs::{FileType, Stat};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Most matches `files/find` returns, and most files `files/search` lists.
const MAX_RESULTS: usize = 10_000;

/// Most entries one `find` or `search` looks at: a walk over a huge tree ends.
const MAX_VISITED: usize = 1_000_000;

/// Deepest folder nesting a walk descends into (each level holds a descriptor).
const MAX_DEPTH: usize = 128;

/// Largest file `files/replace` rewrites (it holds the file's text in memory).
const MAX_REPLACE_BYTES: u64 = 64 * 1024 * 1024;

/// Longest line `files/find` reads whole; longer lines are matched on their first part.
const MAX_LINE: u64 = 64 * 1024;

/// The required `path` query parameter, resolved (following a final symlink).
fn path_param(sbx: &Sbx, query: Option<&str>, key: &str) -> Result<Resolved, Failure> {
    let q = query_pairs(query);
    let p = query_get(&q, key).ok_or_else(|| Failure::bad_request(format!("{key} is required")))?;
    sbx.root.resolve(p)
}

fn required<'a>(q: &'a [(String, String)], key: &str) -> Result<&'a str, Failure> {
    query_get(q, key).ok_or_else(|| Failure::bad_request(format!("{key} is required")))
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::internal(format!("file worker failed: {e}")))?
}

/// Set when the request that started a walk is gone (its handler future dropped), so the
/// blocking walk stops instead of burning a thread for an answer no one reads.
#[derive(Clone, Default)]
struct Cancel(Arc<AtomicBool>);

impl Cancel {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sets its [`Cancel`] when dropped (held by the handler's future).
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0 .0.store(true, Ordering::Relaxed);
    }
}

/// `FileInfo` from (l)stat data, its owner and group named as the sandbox sees them
/// (`contained`: see [`names`]).
pub fn file_info(name: String, path: Option<String>, st: &Stat, contained: bool) -> FileInfo {
    let modified = confine::modified(st);
    let rfc = humantime::format_rfc3339_nanos(modified).to_string();
    FileInfo {
        name,
        path,
        is_dir: confine::file_type(st) == FileType::Directory,
        size: st.st_size as u64,
        mode: mode_string(st),
        permissions: format!("{:04o}", st.st_mode & 0o7777),
        owner: names::user(st.st_uid, contained),
        group: names::group(st.st_gid, contained),
        mod_time: go_time(&rfc),
        modified_at: humantime::format_rfc3339_seconds(modified).to_string(),
    }
}

/// Go's `time.Time.String()` form, which the daemon's deprecated `modTime` carries.
fn go_time(rfc: &str) -> String {
    let s = rfc.trim_end_matches('Z').replacen('T', " ", 1);
    let s = match s.split_once('.') {
        Some((a, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                a.to_string()
            } else {
                format!("{a}.{frac}")
            }
        }
        None => s,
    };
    format!("{s} +0000 UTC")
}

/// Go's `os.FileMode.String()`: `drwxr-xr-x`, `-rw-r--r--`, `Lrwxrwxrwx`.
fn mode_string(st: &Stat) -> String {
    let kind = match confine::file_type(st) {
        FileType::Symlink => 'L',
        FileType::Directory => 'd',
        _ => '-',
    };
    let m = st.st_mode;
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (bit, ch) in [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ] {
        s.push(if m & bit != 0 { ch } else { '-' });
    }
    s
}

/// Most entries one listing returns.
const MAX_LISTED: usize = 100_000;

/// `sandbox path/name`.
fn child_path(base: &str, name: &std::ffi::OsStr) -> String {
    format!("{}/{}", base.trim_end_matches('/'), name.to_string_lossy())
}

/// `GET /files?path=&depth=`: the entries of a folder (symlinks described, not followed);
/// with `depth` > 1, the entries of its subfolders too, down to that depth, each with its
/// `path`.
pub async fn list(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<Vec<FileInfo>>, Failure> {
    let q = query_pairs(query.as_deref());
    let path = query_get(&q, "path").unwrap_or(".").to_string();
    let depth = match query_get(&q, "depth") {
        None | Some("") => 1,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| Failure::bad_request("depth must be an integer of at least 1"))?,
    };
    let root = sbx.root.clone();
    let contained = sbx.state.runtime.contained();
    let items = blocking(move || {
        let dir = root.resolve(&path)?;
        dir.readable()?;
        let handle = dir.dir()?;
        let mut out = Vec::new();
        let depth = depth.min(MAX_DEPTH);
        list_into(handle, &dir.shown, depth, contained, &mut out);
        Ok(out)
    })
    .await?;
    Ok(Json(items))
}

fn list_into(dir: &Dir, shown: &str, depth: usize, contained: bool, out: &mut Vec<FileInfo>) {
    let Ok(entries) = confine::entries(dir, MAX_LISTED) else {
        return;
    };
    for e in entries {
        if out.len() >= MAX_LISTED {
            return;
        }
        let path = child_path(shown, &e.name);
        out.push(file_info(
            e.name.to_string_lossy().into_owned(),
            Some(path.clone()),
            &e.stat,
            contained,
        ));
        if depth > 1 && e.file_type() == FileType::Directory {
            if let Ok(sub) = e.open_dir(dir) {
                list_into(&sub, &path, depth - 1, contained, out);
            }
        }
    }
}

/// `GET /files/info?path=`.
pub async fn info(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<FileInfo>, Failure> {
    let p = path_param(&sbx, query.as_deref(), "path")?;
    let st = *p.stat()?;
    let contained = sbx.state.runtime.contained();
    Ok(Json(file_info(
        p.name(),
        Some(p.shown.clone()),
        &st,
        contained,
    )))
}

/// `DELETE /files?path=&recursive=`: a folder needs `recursive=true`; a symlink is removed,
/// never what it points to; the root itself cannot be deleted.
pub async fn delete(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let path = required(&q, "path")?.to_string();
    let recursive = query_flag(&q, "recursive");
    let root = sbx.root.clone();
    blocking(move || {
        let p = root.resolve_nofollow(&path)?;
        if p.shown == "/" {
            return Err(Failure::bad_request("cannot delete the sandbox root"));
        }
        p.writable()?;
        let st = *p.stat()?;
        let (dir, name) = p.at()?;
        let res = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if !recursive {
                return Err(Failure::bad_request(
                    "cannot delete directory without recursive flag",
                ));
            }
            // std's remove_dir_all opens every level with O_NOFOLLOW from the folder above
            // (no path race); it starts from the pinned parent through its /proc link.
            std::fs::remove_dir_all(confine::proc_path(dir, Some(name)))
        } else {
            rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()).map_err(Into::into)
        };
        res.map_err(|e| Failure::from_io(&e, &p.shown))
    })
    .await?;
    sbx.state.runtime.disk.forget(&sbx.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse_mode(mode: &str) -> Result<u32, Failure> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Failure::bad_request(format!("invalid mode {mode}: use octal like 755")))
}

/// `POST /files/folder?path=&mode=`: creates the folder and its parents.
pub async fn create_folder(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let path = required(&q, "path")?.to_string();
    let mode = parse_mode(query_get(&q, "mode").unwrap_or("755"))?;
    let p = sbx.mkdirs(&path).await?;
    blocking(move || {
        std::fs::set_permissions(p.proc_path()?, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Failure::from_io(&e, &p.shown))
    })
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// A walk's bounds: the request still there, not too many entries looked at.
struct Budget {
    cancel: Cancel,
    visited: usize,
}

impl Budget {
    fn go_on(&mut self) -> bool {
        self.visited += 1;
        self.visited <= MAX_VISITED && !self.cancel.is_set()
    }
}

/// Walks `dir` recursively without following symlinks (every folder opened from the one
/// above it), calling `visit` with each entry and its sandbox path; `visit` returns false to
/// stop, and so does the budget.
fn walk(
    dir: &Dir,
    shown: &str,
    depth: usize,
    budget: &mut Budget,
    visit: &mut dyn FnMut(&confine::Entry, &str) -> bool,
) -> bool {
    let Ok(entries) = confine::entries(dir, MAX_VISITED) else {
        return true;
    };
    for e in entries {
        if !budget.go_on() {
            return false;
        }
        let path = child_path(shown, &e.name);
        if !visit(&e, &path) {
            return false;
        }
        if e.file_type() == FileType::Directory && depth < MAX_DEPTH {
            if let Ok(sub) = e.open_dir(dir) {
                if !walk(&sub, &path, depth + 1, budget, visit) {
                    return false;
                }
            }
        }
    }
    true
}

/// `GET /files/find?path=&pattern=`: lines containing `pattern` (plain substring) in the
/// text files under `path`.
pub async fn find(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<Vec<Match>>, Failure> {
    let q = query_pairs(query.as_deref());
    let path = required(&q, "path")?.to_string();
    let pattern = required(&q, "pattern")?.to_string();
    let root = sbx.root.clone();
    let cancel = Cancel::default();
    let _guard = CancelOnDrop(cancel.clone());
    let found = blocking(move || {
        let p = root.resolve(&path)?;
        p.readable()?;
        let mut out = Vec::new();
        if !p.is_dir() {
            let file = p.open_read()?;
            grep_file(file, &p.shown, &pattern, &mut out);
            return Ok(out);
        }
        let read_only = p.read_only;
        let mut budget = Budget { cancel, visited: 0 };
        walk(p.dir()?, &p.shown, 1, &mut budget, &mut |entry, shown| {
            let others_read = entry.stat.st_mode & 0o004 != 0;
            if !read_only || others_read {
                if let Some(f) = entry.open_regular() {
                    grep_file(f, shown, &pattern, &mut out);
                }
            }
            out.len() < MAX_RESULTS
        });
        Ok(out)
    })
    .await?;
    Ok(Json(found))
}

fn grep_file(f: std::fs::File, shown: &str, pattern: &str, out: &mut Vec<Match>) {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(f);
    if reader.fill_buf().is_ok_and(|head| head.contains(&0)) {
        return; // binary
    }
    let mut line = Vec::new();
    let mut n = 0u64;
    while out.len() < MAX_RESULTS {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") && line.len() as u64 == MAX_LINE {
            // The rest of an overlong line: skipped, not counted as more lines.
            let mut rest = Vec::new();
            while let Ok(k) = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut rest) {
                if k == 0 || rest.ends_with(b"\n") {
                    break;
                }
                rest.clear();
            }
        }
        n += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.contains(pattern) {
            out.push(Match {
                file: shown.to_string(),
                line: n,
                content: text.to_string(),
            });
        }
    }
}

/// `GET /files/search?path=&pattern=`: files and folders under `path` whose base name
/// matches the glob `pattern` (`*`, `?`, `[...]`; see [`crate::glob`] for its caps). The walk
/// stops when the request goes away.
pub async fn search(
    sbx: Sbx,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchFilesResponse>, Failure> {
    let q = query_pairs(query.as_deref());
    let path = required(&q, "path")?.to_string();
    let glob = Glob::new(required(&q, "pattern")?).map_err(|e| {
        Failure::bad_request(format!("invalid pattern: {e}")).with_code("INVALID_PATTERN")
    })?;
    let root = sbx.root.clone();
    let cancel = Cancel::default();
    let _guard = CancelOnDrop(cancel.clone());
    let files = blocking(move || {
        let p = root.resolve(&path)?;
        p.readable()?;
        let mut out = Vec::new();
        let mut budget = Budget { cancel, visited: 0 };
        walk(p.dir()?, &p.shown, 1, &mut budget, &mut |entry, shown| {
            if glob.matches(&entry.name.to_string_lossy()) {
                out.push(shown.to_string());
            }
            out.len() < MAX_RESULTS
        });
        Ok(out)
    })
    .await?;
    Ok(Json(SearchFilesResponse { files }))
}

/// `POST /files/replace`: literal replace in each file; one result per file.
pub async fn replace(
    sbx: Sbx,
    JsonBody(req): JsonBody<ReplaceRequest>,
) -> Result<Json<Vec<ReplaceResult>>, Failure> {
    let root = sbx.root.clone();
    let results = blocking(move || {
        Ok(req
            .files
            .iter()
            .map(|f| {
                let outcome = root
                    .resolve(f)
                    .and_then(|p| replace_in(&p, &req.pattern, &req.new_value));
                ReplaceResult {
                    file: f.clone(),
                    success: outcome.is_ok(),
                    error: outcome.err().map(|e| e.message),
                }
            })
            .collect())
    })
    .await?;
    Ok(Json(results))
}

fn replace_in(p: &Resolved, pattern: &str, new_value: &str) -> Result<(), Failure> {
    use std::io::{Read, Write};
    p.writable()?;
    if pattern.is_empty() {
        return Err(Failure::bad_request("pattern must not be empty"));
    }
    let file = p.open_read()?;
    let size = p.stat()?.st_size as u64;
    if size > MAX_REPLACE_BYTES {
        return Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} is too large to replace in: {size} bytes (at most {MAX_REPLACE_BYTES})",
                p.shown
            ),
        )
        .with_code("FILE_TOO_LARGE"));
    }
    let mut text = String::new();
    file.take(MAX_REPLACE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Failure::from_io(&e, &p.shown))?;
    let replaced = text.replace(pattern, new_value);
    p.open_truncate()?
        .write_all(replaced.as_bytes())
        .map_err(|e| Failure::from_io(&e, &p.shown))
}

/// `POST /files/permissions?path=&mode=&owner=&group=`. Owner/group `daytona` is the
/// sandbox's user.
pub async fn permissions(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let path = required(&q, "path")?.to_string();
    let mode = query_get(&q, "mode")
        .filter(|m| !m.is_empty())
        .map(parse_mode)
        .transpose()?;
    let owner = query_get(&q, "owner")
        .filter(|o| !o.is_empty())
        .map(|o| names::uid_of(o).ok_or_else(|| Failure::bad_request(format!("unknown user {o}"))))
        .transpose()?;
    let group = query_get(&q, "group")
        .filter(|g| !g.is_empty())
        .map(|g| names::gid_of(g).ok_or_else(|| Failure::bad_request(format!("unknown group {g}"))))
        .transpose()?;
    let root = sbx.root.clone();
    blocking(move || {
        let p = root.resolve(&path)?;
        p.writable()?;
        let st = *p.stat()?;
        if let Some(m) = mode {
            // Through the pinned inode's /proc link (fchmod needs an fd opened for I/O).
            std::fs::set_permissions(p.proc_path()?, std::fs::Permissions::from_mode(m))
                .map_err(|e| Failure::from_io(&e, &p.shown))?;
        }
        let owner = owner.filter(|o| *o != st.st_uid);
        let group = group.filter(|g| *g != st.st_gid);
        if owner.is_some() || group.is_some() {
            rustix::fs::chownat(
                p.fd()?,
                c"",
                owner.map(rustix::fs::Uid::from_raw),
                group.map(rustix::fs::Gid::from_raw),
                rustix::fs::AtFlags::EMPTY_PATH,
            )
            .map_err(|e| Failure::from_io(&e.into(), &p.shown))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /files/move?source=&destination=`: a rename inside the sandbox (`renameat` between
/// the two pinned folders).
pub async fn move_files(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let source = required(&q, "source")?.to_string();
    let destination = required(&q, "destination")?.to_string();
    let root = sbx.root.clone();
    let runtime = sbx.state.clone();
    blocking(move || {
        let src = root.resolve_nofollow(&source)?;
        let give = |fd: std::os::fd::BorrowedFd<'_>| runtime.runtime.give_fd(fd);
        let dst = root.resolve_for_create(&destination, false, &give)?;
        if src.shown == "/" || dst.shown == "/" {
            return Err(Failure::bad_request("cannot move the sandbox root"));
        }
        src.writable()?;
        dst.writable()?;
        src.stat()?;
        let (from, from_name) = src.at()?;
        let (to, to_name) = dst.at()?;
        rustix::fs::renameat(from, from_name, to, to_name)
            .map_err(|e| Failure::from_io(&e.into(), &dst.shown))
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// User and group names as the sandbox's own `stat` gives them (the daemon runs inside the
/// sandbox and names owners so). In a container only the sandbox user's ids are mapped into
/// its user namespace: it is `daytona`, and every other owner (this machine's root among them)
/// is the kernel's overflow id, `nobody` / `nogroup` in the sandbox's `/etc`. Unconfined, the
/// sandbox's processes see this machine's names, from `/etc/passwd` and `/etc/group` (numeric
/// when unknown).
mod names {
    fn lookup(file: &str, id: u32) -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            f.next()?;
            (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_string())
        })
    }
    fn reverse(file: &str, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|line| {
            let mut f = line.split(':');
            (f.next()? == name).then_some(())?;
            f.next()?;
            f.next()?.parse().ok()
        })
    }
    /// Names as the sandbox sees them: its user (this machine's sandbox uid) is `daytona`.
    pub fn user(uid: u32, contained: bool) -> String {
        if uid == crate::container::sandbox_ids().0 {
            return "daytona".into();
        }
        if contained {
            return "nobody".into();
        }
        lookup("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
    }
    pub fn group(gid: u32, contained: bool) -> String {
        if gid == crate::container::sandbox_ids().1 {
            return "daytona".into();
        }
        if contained {
            return "nogroup".into();
        }
        lookup("/etc/group", gid).unwrap_or_else(|| gid.to_string())
    }
    pub fn uid_of(name: &str) -> Option<u32> {
        if name == "daytona" {
            return Some(crate::container::sandbox_ids().0);
        }
        reverse("/etc/passwd", name)
    }
    pub fn gid_of(name: &str) -> Option<u32> {
        if name == "daytona" {
            return Some(crate::container::sandbox_ids().1);
        }
        reverse("/etc/group", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_stops_once_its_request_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("root/home/daytona");
        std::fs::create_dir_all(&home).unwrap();
        for i in 0..10 {
            std::fs::write(home.join(format!("f{i}")), "x").unwrap();
        }
        let layout = crate::container::layout::Layout::for_this_machine(&dir.path().join("etc"));
        let root = crate::confine::Root::new(dir.path().join("root"), Arc::new(layout));
        let p = root.resolve("/home/daytona").unwrap();
        let cancel = Cancel::default();
        let mut guard = Some(CancelOnDrop(cancel.clone()));
        let mut budget = Budget { cancel, visited: 0 };
        let mut seen = 0;
        let finished = walk(p.dir().unwrap(), &p.shown, 1, &mut budget, &mut |_, _| {
            seen += 1;
            if seen == 3 {
                guard.take(); // the handler's future is dropped: the client went away
            }
            true
        });
        assert!(!finished);
        assert_eq!(seen, 3);
    }

    #[test]
    fn go_time_form() {
        assert_eq!(
            go_time("2026-11-27T15:09:21.258000000Z"),
            "2026-11-27 15:09:21.258 +0000 UTC"
        );
    }
}

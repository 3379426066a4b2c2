//! File-system routes (daytona-wire.md §5), every path confined to the sandbox root
//! ([`crate::confine`]). Paths in answers are the sandbox's view (`/home/daytona/...`), never
//! host paths.

use super::Sbx;
use crate::confine::Resolved;
use crate::error::Failure;
use crate::util::{query_flag, query_get, query_pairs, JsonBody};
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use forge_wire::{FileInfo, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse};
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Most matches `files/find` returns, and most files `files/search` lists.
const MAX_RESULTS: usize = 10_000;

/// The required `path` query parameter, resolved (following a final symlink).
fn path_param(sbx: &Sbx, query: &Option<String>, key: &str) -> Result<Resolved, Failure> {
    let q = query_pairs(query.as_deref());
    let p = query_get(&q, key).ok_or_else(|| Failure::bad_request(format!("{key} is required")))?;
    sbx.root.resolve(p)
}

fn nofollow_param(sbx: &Sbx, query: &Option<String>, key: &str) -> Result<Resolved, Failure> {
    let q = query_pairs(query.as_deref());
    let p = query_get(&q, key).ok_or_else(|| Failure::bad_request(format!("{key} is required")))?;
    sbx.root.resolve_nofollow(p)
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::internal(format!("file worker failed: {e}")))?
}

/// `FileInfo` from (l)stat data.
pub fn file_info(name: String, path: Option<String>, meta: &Metadata) -> FileInfo {
    let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let rfc = humantime::format_rfc3339_nanos(modified).to_string();
    FileInfo {
        name,
        path,
        is_dir: meta.is_dir(),
        size: meta.len(),
        mode: mode_string(meta),
        permissions: format!("{:04o}", meta.mode() & 0o7777),
        owner: names::user(meta.uid()),
        group: names::group(meta.gid()),
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
fn mode_string(meta: &Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        'L'
    } else if ft.is_dir() {
        'd'
    } else {
        '-'
    };
    let m = meta.mode();
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

/// `GET /files?path=&depth=`: the entries of a folder (symlinks described, not followed);
/// with `depth` > 1, the entries of its subfolders too, down to that depth, each with its
/// `path`.
pub async fn list(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<Vec<FileInfo>>, Failure> {
    let q = query_pairs(query.as_deref());
    let dir = sbx.root.resolve(query_get(&q, "path").unwrap_or("."))?;
    let depth = match query_get(&q, "depth") {
        None | Some("") => 1,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| Failure::bad_request("depth must be an integer of at least 1"))?,
    };
    let items = blocking(move || {
        let meta = std::fs::metadata(&dir.host).map_err(|e| Failure::from_io(&e, &dir.shown))?;
        if dir.read_only && !crate::confine::others_may_read(&meta) {
            return Err(Failure::from_io(
                &std::io::ErrorKind::PermissionDenied.into(),
                &dir.shown,
            ));
        }
        if !meta.is_dir() {
            return Err(Failure::bad_request(format!(
                "{} is not a directory",
                dir.shown
            )));
        }
        let mut out = Vec::new();
        list_into(&dir, &dir.host, depth, &mut out);
        Ok(out)
    })
    .await?;
    Ok(Json(items))
}

fn list_into(base: &Resolved, dir: &Path, depth: usize, out: &mut Vec<FileInfo>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<std::fs::DirEntry> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if out.len() >= MAX_LISTED {
            return;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push(file_info(name, Some(base.shown_of(&entry.path())), &meta));
        if depth > 1 && meta.is_dir() {
            list_into(base, &entry.path(), depth - 1, out);
        }
    }
}

/// `GET /files/info?path=`.
pub async fn info(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<FileInfo>, Failure> {
    let p = path_param(&sbx, &query, "path")?;
    let meta = tokio::fs::metadata(&p.host)
        .await
        .map_err(|e| Failure::from_io(&e, &p.shown))?;
    let name = p.host.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(Json(file_info(
        name.unwrap_or_else(|| "/".into()),
        Some(p.shown.clone()),
        &meta,
    )))
}

/// `DELETE /files?path=&recursive=`: a folder needs `recursive=true`; a symlink is removed,
/// never what it points to; the root itself cannot be deleted.
pub async fn delete(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let p = nofollow_param(&sbx, &query, "path")?;
    let recursive = query_flag(&query_pairs(query.as_deref()), "recursive");
    if p.shown == "/" {
        return Err(Failure::bad_request("cannot delete the sandbox root"));
    }
    p.writable()?;
    blocking(move || {
        let meta =
            std::fs::symlink_metadata(&p.host).map_err(|e| Failure::from_io(&e, &p.shown))?;
        let res = if meta.is_dir() {
            if !recursive {
                return Err(Failure::bad_request(
                    "cannot delete directory without recursive flag",
                ));
            }
            std::fs::remove_dir_all(&p.host)
        } else {
            std::fs::remove_file(&p.host)
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
    let p = path_param(&sbx, &query, "path")?;
    let q = query_pairs(query.as_deref());
    let mode = parse_mode(query_get(&q, "mode").unwrap_or("755"))?;
    sbx.mkdirs(&p).await?;
    blocking(move || {
        std::fs::set_permissions(&p.host, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Failure::from_io(&e, &p.shown))
    })
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// Walks `dir` recursively without following symlinks, calling `visit` on every file.
/// `visit` returns false to stop.
fn walk(dir: &Path, visit: &mut dyn FnMut(&Path, &std::fs::DirEntry) -> bool) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return true;
    };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let path = entry.path();
        if !visit(&path, &entry) {
            return false;
        }
        if ft.is_dir() && !walk(&path, visit) {
            return false;
        }
    }
    true
}

/// `GET /files/find?path=&pattern=`: lines containing `pattern` (plain substring) in the
/// text files under `path`.
pub async fn find(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Json<Vec<Match>>, Failure> {
    let p = path_param(&sbx, &query, "path")?;
    let q = query_pairs(query.as_deref());
    let pattern = query_get(&q, "pattern")
        .ok_or_else(|| Failure::bad_request("pattern is required"))?
        .to_string();
    let found = blocking(move || {
        let mut out = Vec::new();
        let meta = std::fs::metadata(&p.host).map_err(|e| Failure::from_io(&e, &p.shown))?;
        if meta.is_file() {
            grep_file(&p, &p.host, &pattern, &mut out);
        } else {
            walk(&p.host, &mut |path, entry| {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    grep_file(&p, path, &pattern, &mut out);
                }
                out.len() < MAX_RESULTS
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Json(found))
}

fn grep_file(base: &Resolved, file: &Path, pattern: &str, out: &mut Vec<Match>) {
    use std::io::BufRead;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
    else {
        return;
    };
    if base.read_only
        && !f
            .metadata()
            .is_ok_and(|m| crate::confine::others_may_read(&m))
    {
        return;
    }
    let mut reader = std::io::BufReader::new(f);
    if reader.fill_buf().is_ok_and(|head| head.contains(&0)) {
        return; // binary
    }
    let shown = base.shown_of(file);
    let mut line = Vec::new();
    let mut n = 0u64;
    while out.len() < MAX_RESULTS {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        n += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.contains(pattern) {
            out.push(Match {
                file: shown.clone(),
                line: n,
                content: text.to_string(),
            });
        }
    }
}

/// `GET /files/search?path=&pattern=`: files and folders under `path` whose base name
/// matches the glob `pattern` (`*`, `?`, `[...]`).
pub async fn search(
    sbx: Sbx,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchFilesResponse>, Failure> {
    let p = path_param(&sbx, &query, "path")?;
    let q = query_pairs(query.as_deref());
    let pattern = query_get(&q, "pattern")
        .ok_or_else(|| Failure::bad_request("pattern is required"))?
        .to_string();
    let files = blocking(move || {
        std::fs::metadata(&p.host).map_err(|e| Failure::from_io(&e, &p.shown))?;
        let pat: Vec<char> = pattern.chars().collect();
        let mut out = Vec::new();
        walk(&p.host, &mut |path, entry| {
            let name: Vec<char> = entry.file_name().to_string_lossy().chars().collect();
            if glob_match(&pat, &name) {
                out.push(p.shown_of(path));
            }
            out.len() < MAX_RESULTS
        });
        Ok(out)
    })
    .await?;
    Ok(Json(SearchFilesResponse { files }))
}

/// Shell-style glob on one name (Go's `filepath.Match` subset: `*`, `?`, `[a-z]`, `[!x]`).
pub fn glob_match(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pat[1..], &name[1..]),
        Some('[') => {
            let Some(close) = pat.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                return name.first() == Some(&'[') && glob_match(&pat[1..], &name[1..]);
            };
            let Some(c) = name.first() else { return false };
            let mut class = &pat[1..close];
            let negate = matches!(class.first(), Some('!') | Some('^'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == *c;
                    i += 1;
                }
            }
            hit != negate && glob_match(&pat[close + 1..], &name[1..])
        }
        Some('\\') if pat.len() > 1 => {
            name.first() == Some(&pat[1]) && glob_match(&pat[2..], &name[1..])
        }
        Some(p) => name.first() == Some(p) && glob_match(&pat[1..], &name[1..]),
    }
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
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p.host)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| Failure::from_io(&e, &p.shown))?;
    let replaced = text.replace(pattern, new_value);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p.host)
        .and_then(|mut f| f.write_all(replaced.as_bytes()))
        .map_err(|e| Failure::from_io(&e, &p.shown))
}

/// `POST /files/permissions?path=&mode=&owner=&group=`. Owner/group `daytona` is the
/// sandbox's user.
pub async fn permissions(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let p = path_param(&sbx, &query, "path")?;
    let q = query_pairs(query.as_deref());
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
    p.writable()?;
    blocking(move || {
        std::fs::metadata(&p.host).map_err(|e| Failure::from_io(&e, &p.shown))?;
        if let Some(m) = mode {
            std::fs::set_permissions(&p.host, std::fs::Permissions::from_mode(m))
                .map_err(|e| Failure::from_io(&e, &p.shown))?;
        }
        let meta = std::fs::metadata(&p.host).map_err(|e| Failure::from_io(&e, &p.shown))?;
        let owner = owner.filter(|o| *o != meta.uid());
        let group = group.filter(|g| *g != meta.gid());
        if owner.is_some() || group.is_some() {
            std::os::unix::fs::chown(&p.host, owner, group)
                .map_err(|e| Failure::from_io(&e, &p.shown))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /files/move?source=&destination=`: a rename inside the sandbox.
pub async fn move_files(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let src = nofollow_param(&sbx, &query, "source")?;
    let dst = nofollow_param(&sbx, &query, "destination")?;
    if src.shown == "/" || dst.shown == "/" {
        return Err(Failure::bad_request("cannot move the sandbox root"));
    }
    src.writable()?;
    dst.writable()?;
    let parent = sbx.root.resolve(&format!("{}/..", dst.shown))?;
    sbx.mkdirs(&parent).await?;
    blocking(move || {
        std::fs::symlink_metadata(&src.host).map_err(|e| Failure::from_io(&e, &src.shown))?;
        std::fs::rename(&src.host, &dst.host).map_err(|e| Failure::from_io(&e, &dst.shown))
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// User and group names from `/etc/passwd` and `/etc/group` (numeric when unknown).
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
    pub fn user(uid: u32) -> String {
        if uid == crate::container::sandbox_ids().0 {
            return "daytona".into();
        }
        lookup("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
    }
    pub fn group(gid: u32) -> String {
        if gid == crate::container::sandbox_ids().1 {
            return "daytona".into();
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

    fn m(p: &str, n: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("*", ""));
    }

    #[test]
    fn go_time_form() {
        assert_eq!(
            go_time("2026-11-27T15:09:21.258000000Z"),
            "2026-11-27 15:09:21.258 +0000 UTC"
        );
    }
}

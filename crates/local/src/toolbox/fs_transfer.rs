//! File transfer: multipart bulk upload, multipart bulk download and raw download, all
//! streamed (a file is never held whole in memory on either side).

use super::Sbx;
use crate::confine::Resolved;
use crate::error::Failure;
use crate::util::{query_get, query_pairs, JsonBody};
use axum::body::Body;
use axum::extract::{Multipart, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use forge_wire::{BulkUploadResponse, FilesDownloadRequest, UploadedFileResult, DOWNLOAD_BOUNDARY};
use rustix::fs::{Mode, OFlags};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read and write size for file transfers.
const CHUNK: usize = 1024 * 1024;

/// Longest text field of an upload form (a `files[i].path`): a path, not a file. Longer ones
/// are refused as soon as they pass the cap, never buffered whole.
const MAX_TEXT_FIELD: usize = 16 * 1024;

/// Most paths an upload form may announce before their files come.
const MAX_PENDING_PATHS: usize = 1024;

/// Most paths one bulk download may ask for.
const MAX_DOWNLOAD_PATHS: usize = 10_000;

/// Resolves and opens a regular file for reading, off the async threads (see
/// [`Resolved::open_read`]: a FIFO or a device is refused, never opened).
async fn open_read(sbx: &Sbx, path: &str) -> Result<(Resolved, tokio::fs::File), Failure> {
    let (root, path) = (sbx.root.clone(), path.to_string());
    let (p, file) = super::fs::blocking(move || {
        let p = root.resolve(&path)?;
        let file = p.open_read()?;
        Ok((p, file))
    })
    .await?;
    Ok((p, tokio::fs::File::from_std(file)))
}

/// Reads a text field, refusing it past `cap` bytes (the rest of the form is not read).
async fn text_field(
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
    cap: usize,
) -> Result<String, String> {
    let mut buf = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > cap {
                    return Err(format!(
                        "{name}: field too large (more than {cap} bytes): a path is expected"
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    String::from_utf8(buf).map_err(|_| format!("{name}: not UTF-8 text"))
}

/// `POST /files/bulk-upload`: parts `files[i].path` (text) then `files[i].file` (bytes),
/// each file streamed to disk chunk by chunk; parents are created, files overwritten.
pub async fn bulk_upload(sbx: Sbx, mut form: Multipart) -> Response {
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut done: Vec<UploadedFileResult> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                errors.push(format!("invalid multipart form: {e}"));
                break;
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if let Some(index) = name.strip_suffix(".path") {
            if paths.len() >= MAX_PENDING_PATHS && !paths.contains_key(index) {
                errors.push(format!(
                    "{name}: too many paths without their files (at most {MAX_PENDING_PATHS})"
                ));
                break;
            }
            match text_field(&mut field, &name, MAX_TEXT_FIELD).await {
                Ok(p) => {
                    paths.insert(index.to_string(), p);
                }
                Err(e) => {
                    errors.push(e);
                    break;
                }
            }
            continue;
        }
        let Some(index) = name.strip_suffix(".file") else {
            continue;
        };
        let Some(dest) = paths.remove(index) else {
            errors.push(format!("{name}: missing .path metadata"));
            continue;
        };
        match write_field(&sbx, &dest, &mut field).await {
            Ok(bytes) => done.push(UploadedFileResult { path: dest, bytes }),
            Err(f) => {
                errors.push(format!("{dest}: {}", f.message));
                // Drain the rest of this part so the next one can be read.
                while let Ok(Some(_)) = field.chunk().await {}
            }
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        Json(BulkUploadResponse {
            files: done,
            errors,
        }),
    )
        .into_response()
}

async fn write_field(
    sbx: &Sbx,
    dest: &str,
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<u64, Failure> {
    let p = sbx.for_create(dest).await?;
    if p.shown == "/" {
        return Err(Failure::bad_request("cannot write to the sandbox root"));
    }
    p.writable()?;
    if p.is_dir() {
        return Err(
            Failure::bad_request(format!("path points to a directory: {}", p.shown))
                .with_code("INVALID_FILE_PATH"),
        );
    }
    // Written to a temp file in the sandbox's private state folder (same file system as its
    // root), renamed into place when complete: a crash or a cut connection never leaves a
    // partial file under the requested name, nor a temp file the sandbox sees; a start after
    // a crash empties that folder (see `LocalBackend::start`).
    let uploads = sbx.state.store.uploads_dir(&sbx.id);
    tokio::fs::create_dir_all(&uploads)
        .await
        .map_err(|e| Failure::from_io(&e, &p.shown))?;
    let tmp_name = format!("forge-upload-{}", crate::util::random_token(16));
    let tmp = uploads.join(&tmp_name);
    // The sandbox's disk: what is left of it is what this upload may write.
    let limit = sbx.limits.disk_gib * 1024 * 1024 * 1024;
    let used = {
        let (disk, id, root) = (
            sbx.state.runtime.disk.clone(),
            sbx.id.clone(),
            sbx.root.host().to_path_buf(),
        );
        tokio::task::spawn_blocking(move || disk.bytes(&id, &root))
            .await
            .unwrap_or(0)
    };
    let room = limit.saturating_sub(used);
    let result = write_to(&tmp, field, &p.shown, room).await;
    if let Ok(bytes) = &result {
        sbx.state.runtime.disk.add(&sbx.id, *bytes);
    }
    let result = match result {
        Ok(bytes) => {
            let state = sbx.state.clone();
            let tmp = tmp.clone();
            super::fs::blocking(move || {
                // Overwriting keeps the existing file's permissions; a new file is the
                // sandbox user's, as one it wrote itself.
                if p.file_type() == Some(rustix::fs::FileType::RegularFile) {
                    let mode = p.stat()?.st_mode & 0o7777;
                    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode));
                }
                let _ = state.runtime.give(&tmp);
                let uploads = rustix::fs::open(
                    tmp.parent().unwrap_or(&tmp),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Failure::from_io(&e.into(), &p.shown))?;
                // Into the pinned folder, under the last name (a link there is replaced,
                // never followed).
                let (dir, name) = p.at()?;
                rustix::fs::renameat(&uploads, tmp_name.as_str(), dir, name)
                    .map(|()| bytes)
                    .map_err(|e| Failure::from_io(&e.into(), &p.shown))
            })
            .await
        }
        Err(f) => Err(f),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

async fn write_to(
    tmp: &std::path::Path,
    field: &mut axum::extract::multipart::Field<'_>,
    shown: &str,
    room: u64,
) -> Result<u64, Failure> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .await
        .map_err(|e| Failure::from_io(&e, shown))?;
    // Batch the many small multipart chunks into large writes (each tokio file write is a
    // trip to the blocking pool).
    let mut file = tokio::io::BufWriter::with_capacity(CHUNK, file);
    let mut bytes = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if bytes + chunk.len() as u64 > room {
                    return Err(Failure::new(
                        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                        format!("{shown}: the sandbox's disk is full (its limit is reached)"),
                    )
                    .with_code("DISK_LIMIT_EXCEEDED"));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| Failure::from_io(&e, shown))?;
                bytes += chunk.len() as u64;
            }
            Ok(None) => break,
            Err(e) => return Err(Failure::bad_request(format!("upload interrupted: {e}"))),
        }
    }
    file.flush()
        .await
        .map_err(|e| Failure::from_io(&e, shown))?;
    Ok(bytes)
}

/// `GET /files/download?path=`: the raw bytes, streamed.
pub async fn download(sbx: Sbx, RawQuery(query): RawQuery) -> Result<Response, Failure> {
    let q = query_pairs(query.as_deref());
    let path = query_get(&q, "path").ok_or_else(|| Failure::bad_request("path is required"))?;
    let (p, file) = open_read(&sbx, path).await?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Failure::from_io(&e, &p.shown))?;
    let name = p.name().replace('"', "%22");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, CHUNK)),
    )
        .into_response())
}

/// `POST /files/bulk-download` `{"paths":[...]}`: a multipart answer with boundary
/// `DAYTONA-FILE-BOUNDARY`, one part per path in order: `file` with the bytes, or `error`
/// with a daemon error body. If a file fails mid-stream the body stops without the closing
/// boundary, which tells the reader the answer is incomplete.
pub async fn bulk_download(
    sbx: Sbx,
    body: Result<JsonBody<FilesDownloadRequest>, Failure>,
) -> Response {
    let paths = match body {
        Ok(JsonBody(req)) if req.paths.len() > MAX_DOWNLOAD_PATHS => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "error": format!("too many paths: {} (at most {MAX_DOWNLOAD_PATHS})", req.paths.len())
                })),
            )
                .into_response()
        }
        Ok(JsonBody(req)) if !req.paths.is_empty() => req.paths,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "error": "request body must be {\"paths\": [ ... ]} and non-empty"
                })),
            )
                .into_response()
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for path in paths {
            if !send_part(&sbx, &path, &tx).await {
                return;
            }
        }
        let _ = tx
            .send(Ok(Bytes::from(format!("--{DOWNLOAD_BOUNDARY}--\r\n"))))
            .await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={DOWNLOAD_BOUNDARY}"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Writes one part; false when the answer must stop (client gone or a read failed).
async fn send_part(
    sbx: &Sbx,
    path: &str,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> bool {
    let quoted = path.replace('"', "%22").replace(['\r', '\n'], "");
    let opened = match open_read(sbx, path).await {
        Err(f) => Err(f),
        Ok((_, file)) => match file.metadata().await {
            Err(e) => Err(Failure::from_io(&e, path)),
            Ok(m) => Ok((file, m.len())),
        },
    };
    let (mut file, len) = match opened {
        Ok(x) => x,
        Err(f) => {
            let body = serde_json::json!({
                "statusCode": f.status.as_u16(),
                "message": f.message,
                "code": f.code.unwrap_or("BAD_REQUEST"),
                "timestamp": crate::error::now_rfc3339(),
                "path": path,
                "method": "POST",
                "source": "DAYTONA_DAEMON",
            })
            .to_string();
            let part = format!(
                "--{DOWNLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"error\"; filename=\"{quoted}\"\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}\r\n",
                body.len()
            );
            return tx.send(Ok(Bytes::from(part))).await.is_ok();
        }
    };
    let head = format!(
        "--{DOWNLOAD_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{quoted}\"; filename*=utf-8''{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n",
        pct_encode(path)
    );
    // The head, the bytes and the part's closing CRLF go out in as few chunks as possible: a
    // small file is one chunk (one write), a large one is CHUNK-sized pieces.
    let mut left = len;
    let mut out = bytes::BytesMut::with_capacity(head.len() + (len as usize).min(CHUNK) + 2);
    out.extend_from_slice(head.as_bytes());
    while left > 0 {
        if out.len() >= CHUNK {
            let full = std::mem::replace(&mut out, bytes::BytesMut::with_capacity(CHUNK));
            if tx.send(Ok(full.freeze())).await.is_err() {
                return false;
            }
        }
        let want = (CHUNK - out.len()).min(left as usize);
        let start = out.len();
        out.resize(start + want, 0);
        match file.read(&mut out[start..]).await {
            Ok(0) | Err(_) => {
                // Truncated under us: stop without the closing boundary.
                let _ = tx
                    .send(Err(std::io::Error::other("file changed while sending")))
                    .await;
                return false;
            }
            Ok(n) => {
                out.truncate(start + n);
                left -= n as u64;
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    tx.send(Ok(out.freeze())).await.is_ok()
}

/// RFC 5987 percent-encoding for `filename*`.
fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! `sandbox.fs`: files over the toolbox (daytona-wire.md §5). Uploads are one streamed
//! multipart `POST /files/bulk-upload` (`files[i].path` before `files[i].file`); downloads
//! parse the multipart answer of `POST /files/bulk-download` as a stream.

use super::{hostfile, Toolbox};
use crate::call::{CallOptions, Deadline};
use crate::error::{classify, ApiError, Error, Result};
use crate::fetch::{FetchError, Method, PartData, Response};
use crate::retry::RetryClass;
/// Re-exported so the binding can hand bytes over without copying.
pub use bytes::Bytes;
use forge_wire::{
    FileInfo, FilesDownloadRequest, Match, ReplaceRequest, ReplaceResult, SearchFilesResponse,
};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncRead;

/// Default deadline of uploads and downloads (the SDK's 30 min).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_mins(30);

/// Read and write size of streamed transfers: large enough for throughput, small enough that
/// memory stays flat.
const CHUNK: usize = 256 * 1024;

/// What to upload.
pub enum UploadSource {
    Bytes(Bytes),
    /// A local file, streamed from disk.
    File(PathBuf),
    /// Any reader, streamed.
    Reader(Box<dyn AsyncRead + Send + Sync + Unpin>),
}

impl std::fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            UploadSource::File(p) => write!(f, "File({})", p.display()),
            UploadSource::Reader(_) => f.write_str("Reader"),
        }
    }
}

impl From<Vec<u8>> for UploadSource {
    fn from(v: Vec<u8>) -> Self {
        UploadSource::Bytes(v.into())
    }
}
impl From<&str> for UploadSource {
    fn from(v: &str) -> Self {
        UploadSource::Bytes(Bytes::copy_from_slice(v.as_bytes()))
    }
}
impl From<Bytes> for UploadSource {
    fn from(v: Bytes) -> Self {
        UploadSource::Bytes(v)
    }
}

/// One file of an upload.
#[derive(Debug)]
pub struct UploadItem {
    pub source: UploadSource,
    /// Path in the sandbox (relative paths resolve against the work dir).
    pub destination: String,
}

/// One file of a bulk download: its bytes, or why it failed.
#[derive(Debug)]
pub struct DownloadResult {
    pub path: String,
    pub content: Option<Bytes>,
    pub error: Option<Error>,
}

/// One path of [`Fs::delete_many`].
#[derive(Debug)]
pub struct PathResult {
    pub path: String,
    pub error: Option<Error>,
}

/// `setFilePermissions` options; unset fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Octal, e.g. `"755"`.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

fn require_path(p: &str) -> Result<()> {
    if p.is_empty() {
        return Err(Error::InvalidArgument("path must not be empty".into()));
    }
    if p.contains('\0') {
        return Err(Error::InvalidArgument("path contains a NUL byte".into()));
    }
    Ok(())
}

/// The file-system sub-handle of a [`Toolbox`].
#[derive(Clone, Debug)]
pub struct Fs {
    pub(crate) tb: Toolbox,
}

impl Fs {
    /// This handle with a deadline / cancel token for its calls without their own options.
    pub fn with_options(&self, opts: CallOptions) -> Fs {
        Fs {
            tb: self.tb.with_options(opts),
        }
    }

    fn plain(&self) -> Deadline {
        self.tb.default_deadline()
    }

    /// `GET /files?path=`.
    pub async fn list(&self, path: &str) -> Result<Vec<FileInfo>> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::GET, "/files", "list files")
            .query("path", path);
        self.tb.transport().json(req, &self.plain()).await
    }

    /// `GET /files/info?path=`.
    pub async fn info(&self, path: &str) -> Result<FileInfo> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::GET, "/files/info", "file info")
            .query("path", path);
        self.tb.transport().json(req, &self.plain()).await
    }

    /// `POST /files/folder?path=&mode=` (parents created). `mode` is octal, e.g. `"755"`.
    pub async fn create_folder(&self, path: &str, mode: &str) -> Result<()> {
        require_path(path)?;
        if mode.is_empty() || !mode.chars().all(|c| ('0'..='7').contains(&c)) {
            return Err(Error::InvalidArgument(format!(
                "mode must be octal digits, not {mode:?}"
            )));
        }
        let req = self
            .tb
            .req(Method::POST, "/files/folder", "create folder")
            .query("path", path)
            .query("mode", mode)
            .accept("*/*");
        self.tb.transport().empty(req, &self.plain()).await
    }

    /// `DELETE /files?path=[&recursive=true]`: a folder needs `recursive`.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<()> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::DELETE, "/files", "delete file")
            .query("path", path)
            .query_opt("recursive", recursive.then_some(true))
            .accept("*/*");
        self.tb.transport().empty(req, &self.plain()).await
    }

    /// Deletes each path (folders recursively), reporting each failure; there is no bulk
    /// endpoint.
    pub async fn delete_many(&self, paths: &[String]) -> Vec<PathResult> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let error = self.delete(p, true).await.err();
            out.push(PathResult {
                path: p.clone(),
                error,
            });
        }
        out
    }

    /// `POST /files/permissions?path=&mode=&owner=&group=`.
    pub async fn set_permissions(&self, path: &str, p: &Permissions) -> Result<()> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::POST, "/files/permissions", "set permissions")
            .query("path", path)
            .query_opt("owner", p.owner.as_ref())
            .query_opt("group", p.group.as_ref())
            .query_opt("mode", p.mode.as_ref())
            .accept("*/*");
        self.tb.transport().empty(req, &self.plain()).await
    }

    /// `chmod(path, mode)`.
    pub async fn chmod(&self, path: &str, mode: &str) -> Result<()> {
        self.set_permissions(
            path,
            &Permissions {
                mode: Some(mode.to_string()),
                ..Default::default()
            },
        )
        .await
    }

    /// `POST /files/move?source=&destination=`.
    pub async fn move_files(&self, source: &str, destination: &str) -> Result<()> {
        require_path(source)?;
        require_path(destination)?;
        let req = self
            .tb
            .req(Method::POST, "/files/move", "move file")
            .query("source", source)
            .query("destination", destination)
            .accept("*/*");
        self.tb.transport().empty(req, &self.plain()).await
    }

    /// `GET /files/find?path=&pattern=`: lines containing `pattern` (the guide's
    /// `searchFiles`).
    pub async fn find(&self, path: &str, pattern: &str) -> Result<Vec<Match>> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::GET, "/files/find", "find in files")
            .query("path", path)
            .query("pattern", pattern);
        self.tb.transport().json(req, &self.plain()).await
    }

    /// `GET /files/search?path=&pattern=`: file names matching a glob (the official SDK's
    /// `searchFiles`).
    pub async fn search(&self, path: &str, pattern: &str) -> Result<Vec<String>> {
        require_path(path)?;
        let req = self
            .tb
            .req(Method::GET, "/files/search", "search files")
            .query("path", path)
            .query("pattern", pattern);
        let r: SearchFilesResponse = self.tb.transport().json(req, &self.plain()).await?;
        Ok(r.files)
    }

    /// `POST /files/replace`: literal replace in each file.
    pub async fn replace(
        &self,
        files: &[String],
        pattern: &str,
        new_value: &str,
    ) -> Result<Vec<ReplaceResult>> {
        if pattern.is_empty() {
            return Err(Error::InvalidArgument("pattern must not be empty".into()));
        }
        let body = ReplaceRequest {
            files: files.to_vec(),
            pattern: pattern.to_string(),
            new_value: new_value.to_string(),
        };
        let req = self
            .tb
            .req(Method::POST, "/files/replace", "replace in files")
            .json(&body)?;
        self.tb.transport().json(req, &self.plain()).await
    }

    /// The guide's `replaceInFile(path, from, to)`; a per-file failure is an error here.
    pub async fn replace_in_file(&self, path: &str, from: &str, to: &str) -> Result<()> {
        let results = self.replace(&[path.to_string()], from, to).await?;
        match results.into_iter().find(|r| !r.success) {
            Some(r) => Err(Error::BadRequest(ApiError {
                status: 0,
                message: format!(
                    "replace in {} failed: {}",
                    r.file,
                    r.error.unwrap_or_default()
                ),
                code: None,
                source: None,
            })),
            None => Ok(()),
        }
    }

    /// One streamed multipart `POST /files/bulk-upload`; nothing is held whole in memory.
    /// Not retried (the body is a stream). Default deadline 30 min.
    pub async fn upload(&self, items: Vec<UploadItem>, opts: &CallOptions) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut form = crate::fetch::Form::default();
        for (i, item) in items.into_iter().enumerate() {
            require_path(&item.destination)?;
            let name = item
                .destination
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or("file")
                .to_string();
            // A file's part carries its length, so that the request has a Content-Length
            // (not chunked), like curl's.
            let data = match item.source {
                UploadSource::Bytes(b) => PartData::Bytes(b),
                UploadSource::File(p) => {
                    let cannot = |e: std::io::Error| {
                        Error::InvalidArgument(format!("cannot read {}: {e}", p.display()))
                    };
                    let (len, body) = hostfile::read(&p, CHUNK).await.map_err(cannot)?;
                    PartData::Stream(body, Some(len))
                }
                UploadSource::Reader(r) => PartData::Stream(
                    tokio_util::io::ReaderStream::with_capacity(r, CHUNK).boxed(),
                    None,
                ),
            };
            form = form
                .text(format!("files[{i}].path"), item.destination)
                .file(format!("files[{i}].file"), name, data);
        }
        let mut req = self
            .tb
            .req(Method::POST, "/files/bulk-upload", "upload files")
            .class(RetryClass::Once)
            .accept("*/*");
        req.body = crate::http::ReqBody::Multipart(Some(form));
        let deadline = opts.deadline(Some(TRANSFER_TIMEOUT));
        self.tb.transport().empty(req, &deadline).await
    }

    /// Uploads one file.
    pub async fn upload_file(
        &self,
        source: UploadSource,
        destination: &str,
        opts: &CallOptions,
    ) -> Result<()> {
        self.upload(
            vec![UploadItem {
                source,
                destination: destination.to_string(),
            }],
            opts,
        )
        .await
    }

    async fn bulk_download(
        &self,
        paths: &[String],
        deadline: &Deadline,
    ) -> Result<multer::Multipart<'static>> {
        let (resp, boundary) = self.bulk_download_response(paths, deadline).await?;
        Ok(multer::Multipart::new(resp.bytes_stream(), boundary))
    }

    /// `POST /files/bulk-download`: the answer (body unread) and its multipart boundary.
    async fn bulk_download_response(
        &self,
        paths: &[String],
        deadline: &Deadline,
    ) -> Result<(Response, String)> {
        for p in paths {
            require_path(p)?;
        }
        let req = self
            .tb
            .req(Method::POST, "/files/bulk-download", "download files")
            .json(&FilesDownloadRequest {
                paths: paths.to_vec(),
            })?
            .accept("multipart/form-data");
        let resp = self.tb.transport().send(req, deadline).await?;
        let ct = resp
            .headers()
            .get(crate::fetch::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let boundary = multer::parse_boundary(&ct).map_err(|_| Error::BadResponse {
            message: format!("download answer is not multipart (content-type {ct:?})"),
            status: Some(resp.status().as_u16()),
        })?;
        Ok((resp, boundary))
    }

    /// Downloads several files (the multipart answer read as a stream); a file that fails
    /// has its `error`, the others their bytes. A cut-off answer fails the call.
    pub async fn download_many(
        &self,
        paths: &[String],
        opts: &CallOptions,
    ) -> Result<Vec<DownloadResult>> {
        let deadline = opts.deadline(Some(TRANSFER_TIMEOUT));
        let secrets = self.tb.transport().secrets().to_vec();
        deadline
            .run("download files", async {
                let mp = self.bulk_download(paths, &deadline).await?;
                collect_parts(mp, paths, &secrets).await
            })
            .await
    }

    /// Downloads one file into memory.
    ///
    /// The daemon's answer for one path is one part with a `Content-Length`: its bytes are
    /// copied from the network buffers straight into one allocation of that size (no
    /// multipart parser buffer in between, nothing held twice). Any other shape (an error
    /// part, no length, several parts) goes through the general parser.
    pub async fn download(&self, path: &str, opts: &CallOptions) -> Result<Bytes> {
        Ok(self.download_body(path, opts).await?.into_bytes())
    }

    /// [`Fs::download`], the bytes still counted against the reading budget until the
    /// returned [`Body`] is released or dropped: for a caller that hands them on through a
    /// queue of its own (the binding: to the JavaScript thread), so that bodies waiting there
    /// count like bodies being read.
    pub async fn download_body(&self, path: &str, opts: &CallOptions) -> Result<Body> {
        let deadline = opts.deadline(Some(TRANSFER_TIMEOUT));
        let secrets = self.tb.transport().secrets().to_vec();
        let paths = [path.to_string()];
        let (mut r, budget) = deadline
            .run("download files", async {
                let (mut resp, boundary) = self.bulk_download_response(&paths, &deadline).await?;
                let mut head = Vec::new();
                loop {
                    let Some(chunk) = resp.chunk().await.map_err(cut_off)? else {
                        break;
                    };
                    head.extend_from_slice(&chunk);
                    if find(&head, b"\r\n\r\n").is_some() || head.len() > 64 * 1024 {
                        break;
                    }
                }
                if let Some(part) = single_part(&head, &boundary) {
                    let rest = resp.bytes_stream();
                    if let Some(body) = read_sized_part(rest, &head, part, &boundary).await? {
                        let result = DownloadResult {
                            path: paths[0].clone(),
                            content: Some(body.bytes),
                            error: None,
                        };
                        return Ok((vec![result], body.budget));
                    }
                    return Err(cut_off_message());
                }
                // Not the common shape: parse what was read and the rest as multipart.
                let rest =
                    futures_util::stream::once(
                        async move { Ok::<_, FetchError>(Bytes::from(head)) },
                    )
                    .chain(resp.bytes_stream());
                let mp = multer::Multipart::new(rest, boundary);
                Ok((collect_parts(mp, &paths, &secrets).await?, None))
            })
            .await?;
        let first = r.pop().ok_or_else(|| Error::BadResponse {
            message: "empty download answer".into(),
            status: None,
        })?;
        match (first.content, first.error) {
            (_, Some(e)) => Err(e),
            (Some(bytes), None) => Ok(Body { bytes, budget }),
            (None, None) => Err(Error::BadResponse {
                message: format!("{path} missing from the download answer"),
                status: None,
            }),
        }
    }

    /// Downloads one file to `local`, streamed: written to `local.part` and renamed when
    /// complete, so a cut-off download never looks complete. Returns the byte count.
    pub async fn download_to_file(
        &self,
        path: &str,
        local: &Path,
        opts: &CallOptions,
    ) -> Result<u64> {
        let deadline = opts.deadline(Some(TRANSFER_TIMEOUT));
        let secrets = self.tb.transport().secrets().to_vec();
        let mut part_name = local.as_os_str().to_owned();
        part_name.push(".part");
        let part_path = PathBuf::from(part_name);
        let io = |e: std::io::Error| {
            Error::InvalidArgument(format!("cannot write {}: {e}", local.display()))
        };
        let result = deadline
            .run("download file", async {
                let mut mp = self.bulk_download(&[path.to_string()], &deadline).await?;
                let mut written = None;
                while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
                    if field.name() == Some("error") {
                        let data = field.bytes().await.map_err(multipart_error)?;
                        return Err(part_error(&data, &secrets));
                    }
                    if written.is_some() {
                        continue;
                    }
                    let mut f = hostfile::Writer::create(&part_path, 4 * CHUNK)
                        .await
                        .map_err(io)?;
                    let mut n = 0u64;
                    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                        n += chunk.len() as u64;
                        f.write(&chunk).await.map_err(io)?;
                    }
                    f.finish().await.map_err(io)?;
                    written = Some(n);
                }
                written.ok_or_else(|| Error::BadResponse {
                    message: format!("{path} missing from the download answer"),
                    status: None,
                })
            })
            .await;
        match result {
            Ok(n) => {
                tokio::fs::rename(&part_path, local).await.map_err(io)?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part_path).await;
                Err(e)
            }
        }
    }
}

/// Reads every part of a bulk-download answer and orders them as `paths` asked.
async fn collect_parts(
    mut mp: multer::Multipart<'static>,
    paths: &[String],
    secrets: &[String],
) -> Result<Vec<DownloadResult>> {
    let mut got: Vec<(String, std::result::Result<Bytes, Error>)> = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        let file = field.file_name().unwrap_or("").to_string();
        let data = read_field(field).await?;
        let item = if name == "error" {
            Err(part_error(&data, secrets))
        } else {
            Ok(data)
        };
        got.push((file, item));
    }
    Ok(match_parts(paths, got))
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The first part of an answer, when it is the common shape: the answer starts with the
/// delimiter, and the part is a `file` part with a `Content-Length`. Its body starts at
/// `body_at` in `head`.
struct SizedPart {
    body_at: usize,
    len: usize,
}

fn single_part(head: &[u8], boundary: &str) -> Option<SizedPart> {
    let opening = format!("--{boundary}\r\n");
    let rest = head.strip_prefix(opening.as_bytes())?;
    let end = find(rest, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&rest[..end]).ok()?;
    let mut len = None;
    let mut is_file = false;
    for line in headers.split("\r\n") {
        let (k, v) = line.split_once(':')?;
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            len = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("content-disposition") {
            is_file = v.split(';').any(|p| p.trim() == "name=\"file\"");
        }
    }
    let len = len.filter(|n| *n <= MAX_PREALLOCATED)?;
    is_file.then_some(SizedPart {
        body_at: opening.len() + end + 4,
        len,
    })
}

/// Reads the body of `part` (its start already in `head`) into one allocation, then the
/// closing delimiter. `None` when the answer is cut off or does not close as it should.
async fn read_sized_part(
    mut rest: impl futures_util::Stream<Item = std::result::Result<Bytes, FetchError>> + Unpin,
    head: &[u8],
    part: SizedPart,
    boundary: &str,
) -> Result<Option<Body>> {
    let budget = reading_budget(part.len).await;
    let mut data = Vec::with_capacity(part.len);
    let mut tail = Vec::new();
    let take = |bytes: &[u8], data: &mut Vec<u8>, tail: &mut Vec<u8>| {
        let n = (part.len - data.len()).min(bytes.len());
        data.extend_from_slice(&bytes[..n]);
        tail.extend_from_slice(&bytes[n..]);
    };
    take(&head[part.body_at.min(head.len())..], &mut data, &mut tail);
    while let Some(chunk) = rest.next().await.transpose().map_err(cut_off)? {
        take(&chunk, &mut data, &mut tail);
        if tail.len() > 4 * 1024 {
            break;
        }
    }
    let closing = format!("\r\n--{boundary}--");
    let another = format!("\r\n--{boundary}\r\n");
    let closed = tail.starts_with(closing.as_bytes()) || tail.starts_with(another.as_bytes());
    Ok((data.len() == part.len && closed).then(|| Body {
        bytes: Bytes::from(data),
        budget,
    }))
}

#[allow(clippy::needless_pass_by_value)] // a `map_err` function
fn cut_off(e: FetchError) -> Error {
    Error::BadResponse {
        message: format!(
            "download answer cut off: {}",
            crate::http::transport_message(&e, &[])
        ),
        status: None,
    }
}

fn cut_off_message() -> Error {
    Error::BadResponse {
        message: "download answer cut off or malformed".into(),
        status: None,
    }
}

/// Largest part read into one allocation sized from its `Content-Length` up front; a larger
/// (or unsized) part grows as it arrives.
const MAX_PREALLOCATED: usize = 256 * 1024 * 1024;

/// Reads one part whole. The daemon gives each file part a `Content-Length`: the bytes are then
/// copied into one allocation of exactly that size as they arrive, instead of multer's
/// growing buffer (which doubles, so a 1 MiB file could hold 2 MiB plus the copies made while
/// growing), and the result pins no larger network buffer. A part longer than it said is
/// still read whole (the length is only a hint).
async fn read_field(mut field: multer::Field<'static>) -> Result<Bytes> {
    let declared = field
        .headers()
        .get(crate::fetch::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n <= MAX_PREALLOCATED);
    let Some(len) = declared else {
        return field.bytes().await.map_err(multipart_error);
    };
    let _budget = reading_budget(len).await;
    let mut data = Vec::with_capacity(len);
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        data.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(data))
}

/// Download bodies being read into memory, or read and not yet taken (see
/// [`Fs::download_body`]), at once, per process, in [`BUDGET_UNIT`]s.
///
/// Why: with many downloads at once the client read every body as fast as the network gave
/// it, so its memory held all of them at the same time (64 × 1 MiB plus buffers), where a
/// slower client leaves them in the kernel's socket buffers until it gets to them. Past this
/// budget a download waits, with its body unread (TCP holds the rest back), until others are
/// done. Measured with 64 concurrent 1 MiB downloads through the binding (`bench/client.mjs`):
/// counting bodies until JavaScript has them and a 4 MiB budget took peak RSS from about 195
/// to 175 MiB with the same downloads per second (a 16 MiB budget, or counting only the
/// reading, left it at about 195-210).
static READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUDGET_UNITS);
const BUDGET_UNIT: usize = 64 * 1024;
/// 4 MiB.
const BUDGET_UNITS: usize = 64;

/// A share of the reading budget, held while a body is read and, for [`Body`], until it is
/// taken.
type Budget = Option<tokio::sync::SemaphorePermit<'static>>;

/// A downloaded file's bytes, counted against the reading budget until
/// [`Body::into_bytes`] or drop.
pub struct Body {
    bytes: Bytes,
    budget: Budget,
}

impl Body {
    /// The bytes, no longer counted.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The bytes (still counted while `self` lives).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.bytes.len())
    }
}

/// A share of [`READING`] for a body of `len` bytes (a body larger than the whole budget
/// waits for all of it, so it still goes alone).
/// What [`Fs::download_many`] does with an answer once it has it, on bytes held in memory
/// and cut into `piece`-byte chunks as the network would: for the fuzz target
/// `download_multipart` (bench/fuzz), which must find no input that panics it.
#[doc(hidden)]
pub async fn parse_download_answer(
    body: &[u8],
    piece: usize,
    boundary: &str,
    paths: &[String],
) -> Result<Vec<DownloadResult>> {
    let chunks: Vec<std::result::Result<Bytes, std::io::Error>> = body
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mp = multer::Multipart::new(futures_util::stream::iter(chunks), boundary.to_string());
    collect_parts(mp, paths, &[]).await
}

/// The one-part fast path's reading of an answer's head (`(body offset, length)`): for the
/// same fuzz target.
#[doc(hidden)]
pub fn parse_single_part_head(head: &[u8], boundary: &str) -> Option<(usize, usize)> {
    single_part(head, boundary).map(|p| (p.body_at, p.len))
}

async fn reading_budget(len: usize) -> Option<tokio::sync::SemaphorePermit<'static>> {
    let units = len.div_ceil(BUDGET_UNIT).clamp(1, BUDGET_UNITS);
    READING.acquire_many(units as u32).await.ok()
}

/// Orders parts as requested, matching by file name (the SDK's rule), falling back to order.
fn match_parts(
    paths: &[String],
    mut got: Vec<(String, std::result::Result<Bytes, Error>)>,
) -> Vec<DownloadResult> {
    paths
        .iter()
        .map(|p| {
            let idx = got
                .iter()
                .position(|(name, _)| name == p)
                .or(if got.is_empty() { None } else { Some(0) });
            match idx.map(|i| got.remove(i)) {
                Some((_, Ok(b))) => DownloadResult {
                    path: p.clone(),
                    content: Some(b),
                    error: None,
                },
                Some((_, Err(e))) => DownloadResult {
                    path: p.clone(),
                    content: None,
                    error: Some(e),
                },
                None => DownloadResult {
                    path: p.clone(),
                    content: None,
                    error: Some(Error::BadResponse {
                        message: format!("{p} missing from the download answer"),
                        status: None,
                    }),
                },
            }
        })
        .collect()
}

fn part_error(data: &[u8], secrets: &[String]) -> Error {
    let status = forge_wire::ErrorBody::parse(data)
        .map(|b| b.status_code)
        .filter(|s| *s >= 400)
        .unwrap_or(500);
    let e = Error::from_response(status, data, None, secrets);
    match e {
        Error::BadRequest(a) | Error::Server(a) if a.code.is_some() => classify(a, None),
        other => other,
    }
}

#[allow(clippy::needless_pass_by_value)] // a `map_err` function
fn multipart_error(e: multer::Error) -> Error {
    Error::BadResponse {
        message: format!("download answer cut off or malformed: {e}"),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    async fn parse(body: &'static [u8]) -> Result<Vec<(String, String, Vec<u8>)>> {
        let s = stream::iter(
            body.chunks(7)
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        let mut mp = multer::Multipart::new(s, "B");
        let mut out = Vec::new();
        while let Some(f) = mp.next_field().await.map_err(multipart_error)? {
            let n = f.name().unwrap_or("").to_string();
            let file = f.file_name().unwrap_or("").to_string();
            out.push((n, file, f.bytes().await.map_err(multipart_error)?.to_vec()));
        }
        Ok(out)
    }

    /// The in-place reader over `body` arriving in chunks of 3 bytes.
    async fn sized(body: &'static [u8]) -> Result<Option<Bytes>> {
        // The head as the download loop reads it: up to a little past the part's headers.
        let at = find(body, b"\r\n\r\n").map_or(body.len(), |i| (i + 6).min(body.len()));
        let (head, rest) = body.split_at(at);
        let Some(part) = single_part(head, "B") else {
            return Ok(None);
        };
        let chunks = stream::iter(rest.chunks(3).map(|c| Ok(Bytes::from_static(c))));
        Ok(read_sized_part(chunks, head, part, "B")
            .await?
            .map(Body::into_bytes))
    }

    #[tokio::test]
    async fn single_sized_part_read_in_place() {
        let ok = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\nContent-Length: 5\r\n\r\nhe\r\nl\r\n--B--\r\n";
        assert_eq!(sized(ok).await.unwrap().as_deref(), Some(&b"he\r\nl"[..]));
        // Cut off before the closing delimiter, or shorter than announced: not accepted.
        let cut = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(sized(cut).await.unwrap(), None);
        let short = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\nContent-Length: 9\r\n\r\nhello\r\n--B--\r\n";
        assert_eq!(sized(short).await.unwrap(), None);
        // An error part or a part without a length takes the general parser.
        let err = b"--B\r\nContent-Disposition: form-data; name=\"error\"; filename=\"/a\"\r\nContent-Length: 2\r\n\r\n{}\r\n--B--\r\n";
        assert!(single_part(err, "B").is_none());
        let unsized_part = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\n\r\nhello\r\n--B--\r\n";
        assert!(single_part(unsized_part, "B").is_none());
    }

    #[tokio::test]
    async fn multipart_complete_and_cut_off() {
        let ok = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\n\r\nhello\r\n--B\r\nContent-Disposition: form-data; name=\"error\"; filename=\"/b\"\r\nContent-Type: application/json\r\n\r\n{\"statusCode\":404,\"message\":\"file not found: /b\",\"code\":\"FILE_NOT_FOUND\"}\r\n--B--\r\n";
        let parts = parse(ok).await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].2, b"hello");
        let e = part_error(&parts[1].2, &[]);
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND");
        assert_eq!(e.daemon_code(), Some("FILE_NOT_FOUND"));
        let cut =
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/a\"\r\n\r\nhel";
        assert_eq!(parse(cut).await.unwrap_err().code(), "DAYTONA_BAD_RESPONSE");
    }
}

//! Object storage for declarative images' build contexts.
//!
//! The official SDKs' `Image` builder (`addLocalFile`, `addLocalDir`, `fromDockerfile` with
//! `COPY`) uploads each local source as a tar to Daytona's object storage before it asks for
//! the build: `GET /api/object-storage/push-access` gives short-lived S3 credentials, and
//! the SDK's S3 client puts `<organizationId>/<md5 of the source>/context.tar` into the
//! bucket; the build request names the uploads by those hashes (`buildInfo.contextHashes`).
//! This module is that storage on one machine: the push-access route, and an S3-compatible
//! endpoint under `/s3` of the backend's own listener (127.0.0.1) that speaks only what the
//! SDKs send (ListObjectsV2 with a prefix, HeadObject, PutObject, and the multipart upload
//! calls a large context takes), objects kept under `<home>/object-storage` (never mounted
//! into a sandbox).
//!
//! Every S3 request is checked as S3 checks it: an AWS Signature Version 4 made with a secret
//! this backend issued (through the API key) less than an hour ago, its session token, a
//! request date within 15 minutes, and the body's SHA-256 when the client signed it. So a
//! process on this machine without the API key (a sandbox never has it, nor reaches this
//! listener) cannot write a context another build would copy.

use crate::error::Failure;
use crate::util::random_token;
use crate::Shared;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;

/// The bucket the SDKs use (their default, and what push access names).
pub const BUCKET: &str = "daytona-volume-builds";
/// The organization every object of this backend is under (sandboxes' `organizationId`).
pub const ORGANIZATION: &str = "local";
/// The region push access names (the SDKs sign with it).
const REGION: &str = "us-east-1";
/// How long issued credentials sign requests (the SDKs ask anew for each build).
const CREDENTIAL_LIFETIME: Duration = Duration::from_hours(1);
/// How far a request's `x-amz-date` may be from now (S3's own window).
const CLOCK_SKEW: Duration = Duration::from_mins(15);
/// Largest object (or part), S3's single-PUT limit.
const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in a multipart upload (S3's limit).
const MAX_PARTS: u32 = 10_000;

/// The objects and the credentials issued for them.
pub struct Storage {
    root: PathBuf,
    credentials: Mutex<HashMap<String, Credential>>,
}

struct Credential {
    secret: String,
    token: String,
    expires: Instant,
}

impl Storage {
    /// Opens `<home>/object-storage` (its unfinished uploads and temp files removed: a
    /// backend that died mid-upload leaves no half object).
    pub fn open(home: &Path) -> std::io::Result<Storage> {
        let root = home.join("object-storage");
        let _ = std::fs::remove_dir_all(root.join("tmp"));
        let _ = std::fs::remove_dir_all(root.join("uploads"));
        for sub in ["objects", "tmp", "uploads"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Storage {
            root,
            credentials: Mutex::new(HashMap::new()),
        })
    }

    /// The file of an uploaded build context (`<org>/<hash>/context.tar`), if there is one.
    pub fn context(&self, hash: &str) -> Option<PathBuf> {
        let key = format!("{ORGANIZATION}/{hash}/context.tar");
        valid_key(&key).ok()?;
        let path = self.object(&key);
        path.is_file().then_some(path)
    }

    fn object(&self, key: &str) -> PathBuf {
        self.root.join("objects").join(key)
    }

    fn issue(&self) -> (String, String, String) {
        let access = format!("FORGE{}", random_token(16).to_ascii_uppercase());
        let secret = random_token(40);
        let token = random_token(48);
        let mut creds = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        creds.retain(|_, c| c.expires > now);
        creds.insert(
            access.clone(),
            Credential {
                secret: secret.clone(),
                token: token.clone(),
                expires: now + CREDENTIAL_LIFETIME,
            },
        );
        (access, secret, token)
    }

    /// The secret of a live access key whose session token is `token`.
    fn secret_for(&self, access: &str, token: Option<&str>) -> Result<String, S3Error> {
        let creds = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = creds.get(access).ok_or(S3Error::InvalidAccessKeyId)?;
        if c.expires <= Instant::now() {
            return Err(S3Error::ExpiredToken);
        }
        match token {
            Some(t) if crate::util::same_secret(t, &c.token) => Ok(c.secret.clone()),
            _ => Err(S3Error::InvalidToken),
        }
    }
}

/// SDKs (their `X-Daytona-Source`) whose S3 client cannot use this endpoint, and why: they
/// get Daytona's "not supported" answer at push access instead of an obscure upload error.
const CANNOT_UPLOAD: &[(&str, &str)] = &[(
    "sdk-python",
    "the Python SDK makes its S3 client (obstore) with the environment cleared, so that client can neither be allowed the http:// endpoint the embedded backend serves (AWS_ALLOW_HTTP) nor trust a local certificate (SSL_CERT_FILE); an Image with local files can be built with the TypeScript SDK, or use RUN steps",
)];

/// `GET /api/object-storage/push-access`: S3 credentials for one build's uploads.
pub async fn push_access(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Failure> {
    let source = headers
        .get("x-daytona-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some((_, why)) = CANNOT_UPLOAD.iter().find(|(s, _)| *s == source) {
        return Err(Failure::bad_request(format!(
            "object storage push access is not supported for this client: {why}"
        ))
        .with_code("NOT_SUPPORTED"));
    }
    let (access, secret, token) = state.storage.issue();
    Ok(Json(serde_json::json!({
        "accessKey": access,
        "secret": secret,
        "sessionToken": token,
        "storageUrl": format!("{}/s3", state.base_url),
        "organizationId": ORGANIZATION,
        "bucket": BUCKET,
        "region": REGION,
    })))
}

/// The S3 endpoint (`/s3/…`), authenticated by signatures, not by the API key.
pub fn s3_router(state: Shared) -> axum::Router {
    axum::Router::new()
        .route("/{*path}", axum::routing::any(serve))
        .with_state(state)
}

/// An S3 error: its code, as S3 spells it, decides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S3Error {
    AccessDenied,
    InvalidAccessKeyId,
    InvalidToken,
    ExpiredToken,
    SignatureDoesNotMatch,
    RequestTimeTooSkewed,
    ContentShaMismatch,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    InvalidArgument,
    InvalidPart,
    EntityTooLarge,
    NotImplemented,
    InternalError,
}

/// (code, status, message) of each error: one table.
const ERRORS: &[(S3Error, &str, u16, &str)] = &[
    (S3Error::AccessDenied, "AccessDenied", 403, "Access Denied"),
    (
        S3Error::InvalidAccessKeyId,
        "InvalidAccessKeyId",
        403,
        "The access key was not issued by this backend",
    ),
    (
        S3Error::InvalidToken,
        "InvalidToken",
        400,
        "The session token does not match the access key",
    ),
    (
        S3Error::ExpiredToken,
        "ExpiredToken",
        400,
        "The credentials have expired: ask for push access again",
    ),
    (
        S3Error::SignatureDoesNotMatch,
        "SignatureDoesNotMatch",
        403,
        "The request signature does not match",
    ),
    (
        S3Error::RequestTimeTooSkewed,
        "RequestTimeTooSkewed",
        403,
        "The request date is more than 15 minutes from now",
    ),
    (
        S3Error::ContentShaMismatch,
        "XAmzContentSHA256Mismatch",
        400,
        "The body does not match x-amz-content-sha256",
    ),
    (
        S3Error::NoSuchBucket,
        "NoSuchBucket",
        404,
        "The bucket does not exist",
    ),
    (
        S3Error::NoSuchKey,
        "NoSuchKey",
        404,
        "The object does not exist",
    ),
    (
        S3Error::NoSuchUpload,
        "NoSuchUpload",
        404,
        "The multipart upload does not exist",
    ),
    (
        S3Error::InvalidArgument,
        "InvalidArgument",
        400,
        "Invalid argument: keys are 1-1024 characters of A-Z a-z 0-9 . _ - / in non-empty segments",
    ),
    (
        S3Error::InvalidPart,
        "InvalidPart",
        400,
        "A listed part was not uploaded",
    ),
    (
        S3Error::EntityTooLarge,
        "EntityTooLarge",
        400,
        "The object is larger than 5 GiB",
    ),
    (
        S3Error::NotImplemented,
        "NotImplemented",
        501,
        "This S3 operation is not served by the embedded backend",
    ),
    (
        S3Error::InternalError,
        "InternalError",
        500,
        "The object could not be stored",
    ),
];

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let (_, code, status, message) = ERRORS
            .iter()
            .find(|(e, ..)| *e == self)
            .copied()
            .unwrap_or((self, "InternalError", 500, "internal error"));
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("content-type", "application/xml")],
            body,
        )
            .into_response()
    }
}

async fn serve(
    State(state): State<Shared>,
    OriginalUri(uri): OriginalUri,
    req: Request,
) -> Response {
    if !crate::auth::loopback_host(req.headers(), state.config.allow_remote) {
        return S3Error::AccessDenied.into_response();
    }
    let (parts, body) = req.into_parts();
    let payload = match verify(&state.storage, &parts.method, &uri, &parts.headers) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let path = uri.path().strip_prefix("/s3/").unwrap_or("");
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    if bucket != BUCKET {
        return S3Error::NoSuchBucket.into_response();
    }
    let query = crate::util::query_pairs(uri.query());
    let q = |k: &str| crate::util::query_get(&query, k).map(str::to_string);
    let storage = &state.storage;
    let outcome = match (&parts.method, key.is_empty()) {
        (&Method::GET, true) if q("list-type").as_deref() == Some("2") => list(
            storage,
            &q("prefix").unwrap_or_default(),
            q("max-keys").as_deref(),
        ),
        (_, true) => Err(S3Error::NotImplemented),
        (m, false) => match valid_key(key) {
            Err(e) => Err(e),
            Ok(()) => match (m.as_str(), q("uploadId"), q("uploads").is_some()) {
                ("HEAD", None, false) => head(storage, key),
                ("PUT", None, false) => {
                    put_object(storage, key, body, payload, &parts.headers).await
                }
                ("POST", None, true) => create_upload(storage, key),
                ("PUT", Some(id), false) => {
                    put_part(
                        storage,
                        key,
                        &id,
                        q("partNumber"),
                        body,
                        payload,
                        &parts.headers,
                    )
                    .await
                }
                ("POST", Some(id), false) => complete_upload(storage, key, &id, body).await,
                ("DELETE", Some(id), false) => abort_upload(storage, key, &id),
                _ => Err(S3Error::NotImplemented),
            },
        },
    };
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// A key of non-empty segments of `[A-Za-z0-9._-]`, none `.` or `..`.
fn valid_key(key: &str) -> Result<(), S3Error> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(S3Error::InvalidArgument)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml(body: &str) -> Response {
    (
        [("content-type", "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

/// Every object key under `dir`, sorted.
fn keys_under(dir: &Path, prefix: &str, out: &mut Vec<(String, std::fs::Metadata)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match e.metadata() {
            Ok(m) if m.is_dir() => keys_under(&e.path(), &key, out),
            Ok(m) if m.is_file() => out.push((key, m)),
            _ => {}
        }
    }
}

/// ListObjectsV2 with a prefix (the SDKs ask whether a context was uploaded already).
fn list(storage: &Storage, prefix: &str, max_keys: Option<&str>) -> Result<Response, S3Error> {
    let max = max_keys
        .map(str::parse::<usize>)
        .transpose()
        .map_err(|_| S3Error::InvalidArgument)?
        .unwrap_or(1000)
        .min(1000);
    let mut all = Vec::new();
    keys_under(&storage.root.join("objects"), "", &mut all);
    all.retain(|(k, _)| k.starts_with(prefix));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let truncated = all.len() > max;
    let contents: String = all
        .iter()
        .take(max)
        .map(|(k, m)| {
            let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml_escape(k),
                humantime::format_rfc3339_millis(modified),
                etag_of(m),
                m.len()
            )
        })
        .collect();
    Ok(xml(&format!(
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{BUCKET}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>{contents}</ListBucketResult>",
        xml_escape(prefix),
        all.len().min(max),
    )))
}

/// An entity tag from the file's size and time (S3's is an MD5; the SDKs only echo it).
fn etag_of(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{:x}{:x}{:x}", m.ino(), m.len(), m.mtime_nsec())
}

fn head(storage: &Storage, key: &str) -> Result<Response, S3Error> {
    let m = std::fs::metadata(storage.object(key))
        .ok()
        .filter(std::fs::Metadata::is_file)
        .ok_or(S3Error::NoSuchKey)?;
    let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Ok((
        [
            ("content-length", m.len().to_string()),
            ("etag", format!("\"{}\"", etag_of(&m))),
            ("last-modified", http_date(modified)),
            ("content-type", "application/octet-stream".to_string()),
        ],
        Body::empty(),
    )
        .into_response())
}

/// An HTTP date (`Thu, 03 Dec 2026 19:43:11 GMT`).
fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What the signature says of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Payload {
    /// The body's SHA-256 (hex) was signed: it must match.
    Signed(String),
    /// `UNSIGNED-PAYLOAD`: the headers are signed, the body is not.
    Unsigned,
}

/// Streams a request body into a new temp file, at most `MAX_OBJECT_BYTES`, checking the
/// signed SHA-256; returns the temp file (removed by the caller on failure).
async fn receive(storage: &Storage, body: Body, payload: &Payload) -> Result<PathBuf, S3Error> {
    let tmp = storage.root.join("tmp").join(random_token(24));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|_| S3Error::InternalError)?;
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size = 0u64;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| S3Error::InternalError)?;
            size += chunk.len() as u64;
            if size > MAX_OBJECT_BYTES {
                return Err(S3Error::EntityTooLarge);
            }
            hash.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|_| S3Error::InternalError)?;
        }
        file.flush().await.map_err(|_| S3Error::InternalError)?;
        if let Payload::Signed(want) = payload {
            if hex(hash.finish().as_ref()) != *want {
                return Err(S3Error::ContentShaMismatch);
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

/// A body sent as `aws-chunked` (the SDKs' streaming uploads) is not decoded here.
fn refuse_chunked(headers: &HeaderMap) -> Result<(), S3Error> {
    let chunked = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == "aws-chunked"));
    if chunked {
        Err(S3Error::NotImplemented)
    } else {
        Ok(())
    }
}

/// Moves a received file to be `key`, replacing what was there in one step.
fn place(storage: &Storage, tmp: &Path, key: &str) -> Result<Response, S3Error> {
    let dest = storage.object(key);
    let placed = dest
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(tmp, &dest));
    if placed.is_err() {
        let _ = std::fs::remove_file(tmp);
        return Err(S3Error::InternalError);
    }
    let m = std::fs::metadata(&dest).map_err(|_| S3Error::InternalError)?;
    Ok(([("etag", format!("\"{}\"", etag_of(&m)))], Body::empty()).into_response())
}

async fn put_object(
    storage: &Storage,
    key: &str,
    body: Body,
    payload: Payload,
    headers: &HeaderMap,
) -> Result<Response, S3Error> {
    refuse_chunked(headers)?;
    let tmp = receive(storage, body, &payload).await?;
    place(storage, &tmp, key)
}

fn upload_dir(storage: &Storage, key: &str, id: &str) -> Result<PathBuf, S3Error> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(S3Error::NoSuchUpload);
    }
    let dir = storage.root.join("uploads").join(id);
    match std::fs::read_to_string(dir.join("key")) {
        Ok(k) if k == key => Ok(dir),
        _ => Err(S3Error::NoSuchUpload),
    }
}

fn create_upload(storage: &Storage, key: &str) -> Result<Response, S3Error> {
    let id = random_token(32);
    let dir = storage.root.join("uploads").join(&id);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("key"), key))
        .map_err(|_| S3Error::InternalError)?;
    Ok(xml(&format!(
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{BUCKET}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
        xml_escape(key)
    )))
}

async fn put_part(
    storage: &Storage,
    key: &str,
    id: &str,
    number: Option<String>,
    body: Body,
    payload: Payload,
    headers: &HeaderMap,
) -> Result<Response, S3Error> {
    refuse_chunked(headers)?;
    let dir = upload_dir(storage, key, id)?;
    let n: u32 = number
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or(S3Error::InvalidArgument)?;
    let tmp = receive(storage, body, &payload).await?;
    let part = dir.join(format!("part-{n}"));
    if std::fs::rename(&tmp, &part).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return Err(S3Error::NoSuchUpload);
    }
    let m = std::fs::metadata(&part).map_err(|_| S3Error::InternalError)?;
    Ok(([("etag", format!("\"{}\"", etag_of(&m)))], Body::empty()).into_response())
}

/// The part numbers a CompleteMultipartUpload body lists, in its order.
fn listed_parts(body: &str) -> Vec<u32> {
    body.split("<PartNumber>")
        .skip(1)
        .filter_map(|s| s.split("</PartNumber>").next()?.trim().parse().ok())
        .collect()
}

async fn complete_upload(
    storage: &Storage,
    key: &str,
    id: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let dir = upload_dir(storage, key, id)?;
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .map_err(|_| S3Error::InvalidArgument)?;
    let parts = listed_parts(&String::from_utf8_lossy(&body));
    if parts.is_empty() || parts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(S3Error::InvalidPart);
    }
    let tmp = storage.root.join("tmp").join(random_token(24));
    let (dir2, tmp2) = (dir.clone(), tmp.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let mut out = std::fs::File::create(&tmp2).map_err(|_| S3Error::InternalError)?;
        let mut total = 0u64;
        for n in parts {
            let mut part = std::fs::File::open(dir2.join(format!("part-{n}")))
                .map_err(|_| S3Error::InvalidPart)?;
            total += std::io::copy(&mut part, &mut out).map_err(|_| S3Error::InternalError)?;
            if total > MAX_OBJECT_BYTES * 2 {
                return Err(S3Error::EntityTooLarge);
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| S3Error::InternalError)?;
    if let Err(e) = joined {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    place(storage, &tmp, key)?;
    let _ = std::fs::remove_dir_all(&dir);
    let m = std::fs::metadata(storage.object(key)).map_err(|_| S3Error::InternalError)?;
    Ok(xml(&format!(
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{BUCKET}</Bucket><Key>{}</Key><ETag>&quot;{}&quot;</ETag></CompleteMultipartUploadResult>",
        xml_escape(key),
        etag_of(&m)
    )))
}

fn abort_upload(storage: &Storage, key: &str, id: &str) -> Result<Response, S3Error> {
    let dir = upload_dir(storage, key, id)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- AWS Signature Version 4 ----

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, data.as_bytes()).as_ref().to_vec()
}

/// `%XX` sequences decoded (S3 query values; `+` is a plus, not a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4's URI encoding: unreserved characters kept, every other byte `%XX` (upper case).
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let (access, date, region, service, terminal) = (
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
    );
    (terminal == "aws4_request" && scope.next().is_none()).then_some(Authorization {
        access,
        date,
        region,
        service,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

/// `20261203T194311Z` as a time.
fn amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || !s.is_ascii() {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    humantime::parse_rfc3339(&rfc).ok()
}

/// Checks the request's SigV4 signature against credentials this backend issued; answers
/// what the signature says of the body.
fn verify(
    storage: &Storage,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Payload, S3Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization")
        .and_then(parse_authorization)
        .ok_or(S3Error::AccessDenied)?;
    let secret = storage.secret_for(auth.access, header("x-amz-security-token"))?;
    let when_text = header("x-amz-date").ok_or(S3Error::AccessDenied)?;
    let when = amz_date(when_text).ok_or(S3Error::AccessDenied)?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or_default();
    if skew > CLOCK_SKEW {
        return Err(S3Error::RequestTimeTooSkewed);
    }
    if !when_text.starts_with(auth.date) || auth.date.len() != 8 || auth.service != "s3" {
        return Err(S3Error::SignatureDoesNotMatch);
    }
    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    // The signature must cover the host, the date, the token and the body's hash.
    for needed in [
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ] {
        if !names.contains(&needed) {
            return Err(S3Error::AccessDenied);
        }
    }
    let content_sha = header("x-amz-content-sha256").ok_or(S3Error::AccessDenied)?;
    let payload = match content_sha {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Signed(h.to_ascii_lowercase())
        }
        _ => return Err(S3Error::NotImplemented),
    };
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(S3Error::SignatureDoesNotMatch);
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{content_sha}",
        uri.path(),
        canonical_query(uri.query()),
        auth.signed_headers
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{when_text}\n{scope}\n{}",
        hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date);
    for part in [auth.region, auth.service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &to_sign));
    if crate::util::same_secret(&expected, auth.signature) {
        Ok(payload)
    } else {
        Err(S3Error::SignatureDoesNotMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_segments() {
        assert!(valid_key("local/0123abcd/context.tar").is_ok());
        for bad in [
            "", "a//b", "../x", "a/../b", "a/./b", "a b", "a/%2e%2e", "/a",
        ] {
            assert_eq!(valid_key(bad), Err(S3Error::InvalidArgument), "{bad}");
        }
    }

    #[test]
    fn queries_are_canonical() {
        assert_eq!(
            canonical_query(Some("prefix=local%2Fab%2F&list-type=2&max-keys=1")),
            "list-type=2&max-keys=1&prefix=local%2Fab%2F"
        );
        assert_eq!(canonical_query(Some("uploads")), "uploads=");
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_326_991)),
            "Thu, 03 Dec 2026 19:43:11 GMT"
        );
    }

    /// The example of AWS's SigV4 documentation (GET Object), computed the same way.
    #[test]
    fn signature_matches_aws_example() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), "20130524");
        for part in ["us-east-1", "s3", "aws4_request"] {
            key = hmac(&key, part);
        }
        let canonical = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{}",
            hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
        );
        assert_eq!(
            hex(&hmac(&key, &to_sign)),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}

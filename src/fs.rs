//! `sandbox.fs`: files inside a sandbox, with the integration guide's names (and the official
//! SDK's where they do not clash).
//!
//! Where one name means two things the guide wins: `searchFiles` (and the official SDK's
//! `findFiles`) search file **contents**; the official SDK's name-glob search is
//! `findFilesByName`. Uploads are one streamed multipart request; a `{ localPath }` source is
//! streamed from disk, and `downloadFile(path, localPath)` streams to disk.

use crate::client::into;
use crate::error::{IntoRejection, Rejection};
use crate::json::Json;
use crate::process::toolbox_call;
use crate::promise::Pending;
use crate::sandbox::SandboxCore;
use crate::toolbox_dto::{
    DownloadedFile, FileInfo, FileMatch, FilePermissions, FileUpload, ItemError, LocalFile,
    ReplaceResult,
};
use forge_daytona::toolbox::fs::{Body, Bytes};
use forge_daytona::{CallOptions, Permissions, UploadItem, UploadSource};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::PathBuf;
use std::sync::Arc;

/// File-system operations inside a sandbox (`sandbox.fs`). Relative paths resolve against the
/// sandbox work dir; absolute paths are taken as they are.
#[napi]
pub struct SandboxFs {
    core: Arc<SandboxCore>,
}

impl SandboxFs {
    pub(crate) fn new(core: Arc<SandboxCore>) -> Self {
        SandboxFs { core }
    }
}

/// Contents at least this large are sent straight from the caller's Buffer (no copy); smaller
/// ones are copied, which costs less than releasing the JS reference from another thread.
const BORROW_FROM: usize = 64 * 1024;

/// A JS `Uint8Array`/`Buffer` held (referenced, so not collected) while its bytes are sent.
struct HeldBytes(Uint8Array);

impl AsRef<[u8]> for HeldBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Turns what JS gave as file content into an upload source. Large buffers are not copied:
/// the request reads them in place and the reference is released when it is done (as with
/// Node's own `fs.write`, changing the buffer while the upload runs changes what is sent).
fn content_source(content: Either<String, Uint8Array>) -> UploadSource {
    match content {
        Either::A(s) => UploadSource::Bytes(s.into_bytes().into()),
        Either::B(b) if b.len() >= BORROW_FROM => {
            UploadSource::Bytes(Bytes::from_owner(HeldBytes(b)))
        }
        Either::B(b) => UploadSource::Bytes(b.to_vec().into()),
    }
}

/// Downloaded bytes handed to JS as a Buffer over the same memory (no copy); the bytes are
/// freed when the Buffer is collected. A [`Body`] stays counted against the client's reading
/// budget until the Buffer exists, so downloads waiting for the JavaScript thread count like
/// downloads being read (see `forge_daytona::toolbox::fs::READING`).
pub enum JsBytes {
    Plain(Bytes),
    Counted(Body),
}

impl From<Bytes> for JsBytes {
    fn from(b: Bytes) -> Self {
        JsBytes::Plain(b)
    }
}

impl From<Body> for JsBytes {
    fn from(b: Body) -> Self {
        JsBytes::Counted(b)
    }
}

/// Buffers at least this large are reported to V8 a second time as external memory.
///
/// Why: V8 starts a collection when external memory has grown by about 64 MiB, and a
/// downloaded body goes back to `malloc` only when its Buffer is collected, where the
/// allocator keeps about as much again (measured with `mallinfo2` at the peak of 64
/// concurrent 1 MiB downloads: 50-95 MiB free inside the heap beside what was in use).
/// Reporting large bodies twice makes V8 collect them twice as often: peak RSS of sequential
/// 1 MiB downloads fell from about 130-145 to 100-115 MiB, for 5-10 % more CPU per download
/// (`bench/client.mjs`, `downloadFile 1 MiB`). (`process.memoryUsage().external` does not
/// show the second report; what `napi_adjust_external_memory` returns does: +2 MiB per
/// 1 MiB download, back down when collected.)
const REPORTED_TWICE_FROM: usize = 64 * 1024;

impl TypeName for JsBytes {
    fn type_name() -> &'static str {
        "Buffer"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for JsBytes {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // `_counted` releases its share of the reading budget when this returns.
        let (bytes, _counted) = match val {
            JsBytes::Plain(b) => (b, None),
            JsBytes::Counted(body) => (body.bytes().clone(), Some(body)),
        };
        if bytes.is_empty() {
            return Buffer::to_napi_value(env, Buffer::from(Vec::new()));
        }
        let env = Env::from_raw(env);
        let (data, len) = (bytes.as_ptr().cast_mut(), bytes.len());
        let reported = if len >= REPORTED_TWICE_FROM {
            len as i64
        } else {
            0
        };
        // SAFETY: `data..data+len` stays valid while `bytes` (the finalize hint) lives, and
        // the hint is dropped only by the Buffer's finalizer.
        let slice = BufferSlice::from_external(&env, data, len, bytes, move |env, b| {
            drop(b);
            if reported > 0 {
                let _ = env.adjust_external_memory(-reported);
            }
        })?;
        if reported > 0 {
            let _ = env.adjust_external_memory(reported);
        }
        Ok(slice.raw())
    }
}

fn joined(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Joins per-path failures into one rejection: the first failure's code and status, every
/// failed path in the message.
#[allow(clippy::needless_pass_by_value)] // the failures end here
fn first_failure(
    total: usize,
    failed: Vec<(String, Rejection)>,
) -> std::result::Result<(), Rejection> {
    let Some((_, first)) = failed.first() else {
        return Ok(());
    };
    let list = failed
        .iter()
        .map(|(p, f)| format!("{p}: {}", f.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Rejection {
        message: format!("{} of {total} paths failed: {list}", failed.len()),
        ..first.clone()
    })
}

#[napi]
impl SandboxFs {
    /// Lists a folder: `[{ name, path, isDir, size, modTime, modifiedAt, mode, permissions,
    /// owner, group }]`.
    #[napi(ts_return_type = "Promise<Array<FileInfo>>")]
    pub fn list_files(&self, env: &Env, path: String) -> Result<Pending<Vec<FileInfo>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let list = tb.fs().list(&path).await.map_err(into)?;
            Ok(list
                .into_iter()
                .map(|f| {
                    let p = joined(&path, &f.name);
                    FileInfo::from_wire(f, p)
                })
                .collect())
        })
    }

    /// Details of one file or folder.
    #[napi(ts_return_type = "Promise<FileInfo>")]
    pub fn get_file_details(&self, env: &Env, path: String) -> Result<Pending<FileInfo>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let f = tb.fs().info(&path).await.map_err(into)?;
            Ok(FileInfo::from_wire(f, path))
        })
    }

    /// Creates a folder and its parents; `mode` is octal (`'755'`, the default).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_folder(
        &self,
        env: &Env,
        path: String,
        mode: Option<String>,
    ) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let mode = mode.unwrap_or_else(|| "755".into());
            tb.fs().create_folder(&path, &mode).await.map_err(into)
        })
    }

    /// Writes one file: `content` is a Buffer, a Uint8Array, a string (written as UTF-8) or
    /// `{ localPath }` (a local file, streamed from disk). Parents are created.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn upload_file(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Buffer | Uint8Array | string | { localPath: string }")]
        content: Either3<String, Uint8Array, LocalFile>,
        path: String,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let source = match content {
            Either3::A(s) => content_source(Either::A(s)),
            Either3::B(b) => content_source(Either::B(b)),
            Either3::C(l) => UploadSource::File(PathBuf::from(l.local_path)),
        };
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let opts = CallOptions::new().with_cancel(cancel);
            tb.fs()
                .upload_file(source, &path, &opts)
                .await
                .map_err(into)
        })
    }

    /// Writes several files in one streamed multipart request: `[{ content, path }]`
    /// (`content` as in `uploadFile`, or `localPath` instead of it).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn upload_files(
        &self,
        env: &Env,
        files: Vec<FileUpload>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<()>> {
        let mut items = Vec::with_capacity(files.len());
        let mut bad = None;
        for (i, f) in files.into_iter().enumerate() {
            let source = match (f.content, f.local_path) {
                (Some(c), None) => content_source(c),
                (None, Some(p)) => UploadSource::File(PathBuf::from(p)),
                _ => {
                    bad = Some(Rejection::invalid(format!(
                        "files[{i}] needs exactly one of `content` and `localPath`"
                    )));
                    break;
                }
            };
            items.push(UploadItem {
                source,
                destination: f.path,
            });
        }
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            if let Some(f) = bad {
                return Err(f);
            }
            let opts = CallOptions::new().with_cancel(cancel);
            tb.fs().upload(items, &opts).await.map_err(into)
        })
    }

    /// Reads a file into a Buffer; with `localPath`, streams it to that local file instead
    /// (written to `<localPath>.part` and renamed when complete) and resolves with nothing.
    #[napi(
        ts_generic_types = "L extends string | undefined = undefined",
        ts_args_type = "path: string, localPath?: L, signal?: AbortSignal",
        ts_return_type = "Promise<L extends string ? void : Buffer>"
    )]
    pub fn download_file(
        &self,
        env: &Env,
        path: String,
        local_path: Option<String>,
        signal: Option<Object>,
    ) -> Result<Pending<Either<JsBytes, ()>>> {
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let opts = CallOptions::new().with_cancel(cancel);
            if let Some(local) = local_path {
                tb.fs()
                    .download_to_file(&path, std::path::Path::new(&local), &opts)
                    .await
                    .map_err(into)?;
                Ok(Either::B(()))
            } else {
                let body = tb.fs().download_body(&path, &opts).await.map_err(into)?;
                Ok(Either::A(body.into()))
            }
        })
    }

    /// The guide's `readFile`: the file's bytes as a Buffer (`.toString('utf-8')` for text).
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_file(
        &self,
        env: &Env,
        path: String,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<JsBytes>> {
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let opts = CallOptions::new().with_cancel(cancel);
            let body = tb.fs().download_body(&path, &opts).await.map_err(into)?;
            Ok(body.into())
        })
    }

    /// Reads several files in one request: `[{ path, content?, error? }]` in the order asked;
    /// a file that could not be read has `error` (`{ code, message, status }`) and no
    /// `content`, the others are unaffected.
    #[napi(ts_return_type = "Promise<Array<DownloadedFile>>")]
    pub fn download_files(
        &self,
        env: &Env,
        paths: Vec<String>,
        #[napi(ts_arg_type = "AbortSignal")] signal: Option<Object>,
    ) -> Result<Pending<Vec<DownloadedFile>>> {
        toolbox_call(env, &self.core, signal, move |tb, cancel| async move {
            let opts = CallOptions::new().with_cancel(cancel);
            let got = tb.fs().download_many(&paths, &opts).await.map_err(into)?;
            Ok(got
                .into_iter()
                .map(|d| DownloadedFile {
                    path: d.path,
                    content: d.content.map(JsBytes::from),
                    error: d.error.map(|e| ItemError::from(e.into_rejection())),
                })
                .collect())
        })
    }

    /// Deletes a file, or a folder with everything in it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_file(&self, env: &Env, path: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs().delete(&path, true).await.map_err(into)
        })
    }

    /// Deletes each path (folders recursively). Every path is tried; when some fail the
    /// promise rejects with the first failure's `code` and a message naming each failed path.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete_files(&self, env: &Env, paths: Vec<String>) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let results = tb.fs().delete_many(&paths).await;
            let failed = results
                .into_iter()
                .filter_map(|r| r.error.map(|e| (r.path, e.into_rejection())))
                .collect();
            first_failure(paths.len(), failed)
        })
    }

    /// Changes a file's mode (octal string, e.g. `'755'`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn chmod(&self, env: &Env, path: String, mode: String) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs().chmod(&path, &mode).await.map_err(into)
        })
    }

    /// The official SDK's `setFilePermissions(path, { mode, owner, group })`.
    #[napi(
        ts_args_type = "path: string, permissions: FilePermissions",
        ts_return_type = "Promise<void>"
    )]
    pub fn set_file_permissions(
        &self,
        env: &Env,
        path: String,
        permissions: Unknown,
    ) -> Result<Pending<()>> {
        let permissions: FilePermissions = Json::read(env, permissions, "file permissions")?;
        let p = Permissions {
            mode: permissions.mode,
            owner: permissions.owner,
            group: permissions.group,
        };
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs().set_permissions(&path, &p).await.map_err(into)
        })
    }

    /// Content search (the guide's meaning): every line under `path` containing `pattern`,
    /// as `[{ file, line, content }]`.
    #[napi(ts_return_type = "Promise<Array<FileMatch>>")]
    pub fn search_files(
        &self,
        env: &Env,
        path: String,
        pattern: String,
    ) -> Result<Pending<Vec<FileMatch>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let found = tb.fs().find(&path, &pattern).await.map_err(into)?;
            Ok(found
                .into_iter()
                .map(|m| FileMatch {
                    file: m.file,
                    line: u32::try_from(m.line).unwrap_or(u32::MAX),
                    content: m.content,
                })
                .collect())
        })
    }

    /// The official SDK's `findFiles`: the same content search as `searchFiles`.
    #[napi(ts_return_type = "Promise<Array<FileMatch>>")]
    pub fn find_files(
        &self,
        env: &Env,
        path: String,
        pattern: String,
    ) -> Result<Pending<Vec<FileMatch>>> {
        self.search_files(env, path, pattern)
    }

    /// Name search (what the official SDK calls `searchFiles`): the paths under `path` whose
    /// file name matches the glob `pattern` (e.g. `'*.ts'`).
    #[napi(ts_return_type = "Promise<Array<string>>")]
    pub fn find_files_by_name(
        &self,
        env: &Env,
        path: String,
        pattern: String,
    ) -> Result<Pending<Vec<String>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs().search(&path, &pattern).await.map_err(into)
        })
    }

    /// Replaces every literal occurrence of `from` with `to` in one file; rejects when the
    /// file could not be changed.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn replace_in_file(
        &self,
        env: &Env,
        path: String,
        from: String,
        to: String,
    ) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs()
                .replace_in_file(&path, &from, &to)
                .await
                .map_err(into)
        })
    }

    /// Replaces in several files: `[{ file, success, error? }]`, one per file (the official
    /// SDK's `replaceInFiles`).
    #[napi(ts_return_type = "Promise<Array<ReplaceResult>>")]
    pub fn replace_in_files(
        &self,
        env: &Env,
        files: Vec<String>,
        from: String,
        to: String,
    ) -> Result<Pending<Vec<ReplaceResult>>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            let r = tb.fs().replace(&files, &from, &to).await.map_err(into)?;
            Ok(r.into_iter()
                .map(|r| ReplaceResult {
                    file: r.file,
                    success: r.success,
                    error: r.error,
                })
                .collect())
        })
    }

    /// Moves or renames a file or folder.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn move_files(
        &self,
        env: &Env,
        source: String,
        destination: String,
    ) -> Result<Pending<()>> {
        toolbox_call(env, &self.core, None, move |tb, _| async move {
            tb.fs()
                .move_files(&source, &destination)
                .await
                .map_err(into)
        })
    }
}

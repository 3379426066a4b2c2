//! Toolbox file-system types (daytona-wire.md §5).

use serde::{Deserialize, Serialize};

/// `FileInfo`, from `GET /files` and `GET /files/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub is_dir: bool,
    pub size: u64,
    /// Go `os.FileMode` string, e.g. `-rw-r--r--` or `drwxr-xr-x`.
    #[serde(default)]
    pub mode: String,
    /// Octal permissions, e.g. `0644`.
    #[serde(default)]
    pub permissions: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub group: String,
    /// Deprecated Go time string; kept because the SDK still reads it.
    #[serde(default)]
    pub mod_time: String,
    /// RFC 3339.
    #[serde(default)]
    pub modified_at: String,
}

/// `FilesDownloadRequest`: `POST /files/bulk-download`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilesDownloadRequest {
    pub paths: Vec<String>,
}

/// `Match`: one line found by `GET /files/find` (content search).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub file: String,
    pub line: u64,
    pub content: String,
}

/// `SearchFilesResponse`: `GET /files/search` (name glob).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchFilesResponse {
    pub files: Vec<String>,
}

/// `ReplaceRequest`: `POST /files/replace` (literal replace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceRequest {
    pub files: Vec<String>,
    pub pattern: String,
    pub new_value: String,
}

/// `ReplaceResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplaceResult {
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One file of a bulk-upload answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadedFileResult {
    pub path: String,
    #[serde(default)]
    pub bytes: u64,
}

/// The answer of `POST /files/bulk-upload`: `{"files":[...]}`, plus `errors` on 400.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkUploadResponse {
    #[serde(default)]
    pub files: Vec<UploadedFileResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The fixed multipart boundary the daemon uses for bulk downloads (parse the header anyway).
pub const DOWNLOAD_BOUNDARY: &str = "DAYTONA-FILE-BOUNDARY";

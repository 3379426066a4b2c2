//! Error bodies. The API (NestJS) and the daemon (Go) answer with different shapes; one struct
//! reads both because every field but `message` / `statusCode` is optional.

use serde::{Deserialize, Serialize};

/// An error body as the API or the daemon sends it (daytona-wire.md §9.1).
///
/// API: `{path, timestamp, statusCode, error, message}`;
/// daemon: `{statusCode, message, code, timestamp, path, method, source}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default, alias = "status_code")]
    pub status_code: u16,
    /// Human-readable message. The API may send an array of validation messages; see
    /// [`ErrorBody::parse`], which joins them with `, ` as the server's filter does.
    #[serde(default)]
    pub message: String,
    /// HTTP reason phrase (API shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Machine code (daemon shape, and newer API bodies).
    #[serde(default, alias = "error_code", skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl ErrorBody {
    /// Reads an error body of either shape. Returns `None` when the bytes are not a JSON object.
    /// A `message` that is an array of strings is joined with `, `; a missing message falls
    /// back to `error`.
    pub fn parse(bytes: &[u8]) -> Option<ErrorBody> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let obj = value.as_object_mut()?;
        if let Some(serde_json::Value::Array(items)) = obj.get("message") {
            let joined = items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ");
            obj.insert("message".into(), serde_json::Value::String(joined));
        }
        let mut body: ErrorBody = serde_json::from_value(value).ok()?;
        if body.message.is_empty() {
            if let Some(e) = &body.error {
                body.message = e.clone();
            }
        }
        Some(body)
    }
}

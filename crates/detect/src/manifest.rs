//! The parts of a package.json the detector reads. Parsing never fails the detection: a
//! malformed, non-UTF-8 or huge manifest gives a warning and is treated as empty.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Warning;

/// The most a package.json may weigh before it is ignored (real ones are a few KiB).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// A parsed package.json.
#[derive(Debug, Default, Clone)]
pub struct Manifest {
    pub name: Option<String>,
    /// dependencies + devDependencies (+ peer and optional), name → version range.
    pub deps: BTreeMap<String, String>,
    /// dependencies + devDependencies + optionalDependencies: what a lockfile must lock.
    pub direct: BTreeMap<String, String>,
    pub scripts: BTreeMap<String, String>,
    /// The corepack `packageManager` field, e.g. `pnpm@9.12.0`.
    pub package_manager: Option<String>,
    pub engines: BTreeMap<String, String>,
    /// `workspaces` (array, or `{packages: [...]}`).
    pub workspaces: Vec<String>,
    pub main: Option<String>,
    /// Parcel's `source` entry.
    pub source: Option<String>,
    /// A top-level `turbo` key (old turbo config).
    pub has_turbo_key: bool,
}

impl Manifest {
    /// Parses `bytes` read from `path`. Problems become warnings.
    pub fn parse(path: &str, bytes: &[u8], truncated: bool, warnings: &mut Vec<Warning>) -> Self {
        if truncated || bytes.len() > MAX_MANIFEST_BYTES {
            warnings.push(Warning::new(
                "PACKAGE_JSON_TOO_LARGE",
                format!("{path} is larger than {MAX_MANIFEST_BYTES} bytes and was ignored"),
            ));
            return Manifest::default();
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                let what = if std::str::from_utf8(bytes).is_err() {
                    "is not UTF-8".to_string()
                } else {
                    format!("is not valid JSON ({e})")
                };
                warnings.push(Warning::new(
                    "PACKAGE_JSON_INVALID",
                    format!("{path} {what}; it was ignored"),
                ));
                return Manifest::default();
            }
        };
        let Some(obj) = value.as_object() else {
            warnings.push(Warning::new(
                "PACKAGE_JSON_INVALID",
                format!("{path} is not a JSON object; it was ignored"),
            ));
            return Manifest::default();
        };
        let str_map = |key: &str| -> BTreeMap<String, String> {
            obj.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut direct = BTreeMap::new();
        for key in ["optionalDependencies", "devDependencies", "dependencies"] {
            direct.extend(str_map(key));
        }
        let mut deps = str_map("peerDependencies");
        deps.extend(direct.clone());
        let workspaces = match obj.get("workspaces") {
            Some(Value::Array(a)) => strings(a),
            Some(Value::Object(o)) => o
                .get("packages")
                .and_then(Value::as_array)
                .map(|a| strings(a))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let get_str = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        Manifest {
            name: get_str("name"),
            deps,
            direct,
            scripts: str_map("scripts"),
            package_manager: get_str("packageManager"),
            engines: str_map("engines"),
            workspaces,
            main: get_str("main"),
            source: get_str("source"),
            has_turbo_key: obj.contains_key("turbo"),
        }
    }
}

fn strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A clean version from a range: `^15.0.3` → `15.0.3`; `workspace:*`, `latest`, URLs → as given.
pub fn clean_version(range: &str) -> String {
    let r = range.trim();
    let stripped = r.trim_start_matches(['^', '~', '>', '<', '=', 'v', ' ']);
    if stripped.starts_with(|c: char| c.is_ascii_digit()) {
        stripped
            .split([' ', '|'])
            .next()
            .unwrap_or(stripped)
            .to_string()
    } else {
        r.to_string()
    }
}

/// The major version of a range, when it starts with a number (`^7.1.0` → 7).
pub fn major(range: &str) -> Option<u32> {
    let v = clean_version(range);
    v.split('.').next()?.parse().ok()
}

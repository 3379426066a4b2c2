//! Phase two: the few files worth reading, and the snapshot (listing + their contents) the
//! detector works on. Choosing the files from the listing alone is what lets a remote source
//! fetch them in one bulk download.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::listing::{join, Listing};
use crate::source::FileBytes;

/// A file to read, and how much of it is useful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: String,
    /// Read at most this many bytes (a remote source may download the whole file and let
    /// [`Snapshot::insert`] cut it).
    pub max_bytes: usize,
}

const SMALL: usize = 64 * 1024;

/// Files read in every package folder (and the root), with their caps.
const PACKAGE_FILES: &[(&str, usize)] = &[
    ("package.json", crate::manifest::MAX_MANIFEST_BYTES),
    ("pnpm-workspace.yaml", SMALL),
    ("lerna.json", SMALL),
    ("project.json", SMALL),
    (".nvmrc", 1024),
    (".node-version", 1024),
    ("angular.json", 256 * 1024),
];

/// Config files whose text is read (ports, plugins); `*` is an extension.
const CONFIG_STEMS: &[&str] = &["vite.config.*"];

/// Entry-file stems looked at for server imports and hard-coded ports.
pub(crate) const ENTRY_STEMS: &[&str] = &["server", "index", "app", "main"];
pub(crate) const ENTRY_EXTS: &[&str] = &["js", "mjs", "cjs", "ts", "mts", "cts"];

/// The files detection reads, chosen from the listing alone: package.json files, workspace
/// and version files, Vite configs and server entry files of every package folder (and of
/// the root). Everything else is decided from names in the listing.
pub fn candidate_paths(listing: &Listing) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut package_dirs: Vec<&str> = listing
        .dirs()
        .filter(|d| {
            listing.has_file(&join(d, "package.json")) || listing.has_file(&join(d, "project.json"))
        })
        .collect();
    if !package_dirs.contains(&"") {
        package_dirs.insert(0, "");
    }
    for dir in package_dirs {
        // Lockfiles: the header (Yarn 1 or Berry, the format's version); all of them when
        // several compete, for their agreement with package.json.
        let locks: Vec<String> = crate::lockfiles::LOCKFILES
            .iter()
            .map(|l| join(dir, l.file))
            .filter(|p| listing.has_file(p))
            .collect();
        let cap = if locks.len() > 1 {
            crate::lockfiles::COMPARE_BYTES
        } else {
            crate::lockfiles::HEADER_BYTES
        };
        out.extend(locks.into_iter().map(|path| Candidate {
            path,
            max_bytes: cap,
        }));
        for (name, cap) in PACKAGE_FILES {
            let p = join(dir, name);
            if listing.has_file(&p) {
                out.push(Candidate {
                    path: p,
                    max_bytes: *cap,
                });
            }
        }
        for sub in ["", "src", "bin"] {
            let d = join(dir, sub);
            for name in listing.files_in(&d) {
                let wanted = CONFIG_STEMS
                    .iter()
                    .any(|s| sub.is_empty() && name_matches(s, name))
                    || is_entry_name(name)
                    || (sub == "bin" && name == "www");
                if wanted {
                    out.push(Candidate {
                        path: join(&d, name),
                        max_bytes: SMALL,
                    });
                }
            }
        }
    }
    out
}

fn is_entry_name(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) => ENTRY_STEMS.contains(&stem) && ENTRY_EXTS.contains(&ext),
        None => false,
    }
}

/// `*` matches any run of characters (no `/`).
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, rest)) => {
            let Some(tail) = name.strip_prefix(pre) else {
                return false;
            };
            if !rest.contains('*') {
                return tail.len() >= rest.len() && tail.ends_with(rest);
            }
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| name_matches(rest, &tail[i..]))
        }
    }
}

/// The listing and the contents of the candidate files.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub listing: Listing,
    contents: HashMap<String, FileBytes>,
}

impl Snapshot {
    pub fn new(listing: Listing) -> Self {
        Snapshot {
            listing,
            contents: HashMap::new(),
        }
    }

    /// Adds a file's bytes, cut to its candidate cap if it is one.
    pub fn insert(&mut self, path: impl Into<String>, bytes: Vec<u8>, truncated: bool) {
        self.contents
            .insert(path.into(), FileBytes { bytes, truncated });
    }

    /// Builds a snapshot from a listing and a `{path: bytes}` map (the bulk download),
    /// keeping only the candidates and cutting each to its cap.
    pub fn from_download(
        listing: Listing,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Self {
        let caps: HashMap<String, usize> = candidate_paths(&listing)
            .into_iter()
            .map(|c| (c.path, c.max_bytes))
            .collect();
        let mut snap = Snapshot::new(listing);
        for (path, mut bytes) in files {
            let Some(path) = crate::source::normalize_path(&path) else {
                continue;
            };
            if let Some(cap) = caps.get(&path) {
                let truncated = bytes.len() > *cap;
                bytes.truncate(*cap);
                snap.insert(path, bytes, truncated);
            }
        }
        snap
    }

    pub(crate) fn bytes(&self, path: &str) -> Option<&FileBytes> {
        self.contents.get(path)
    }

    /// A file as text (lossy for non-UTF-8, so a stray byte never hides a port or import).
    pub(crate) fn text(&self, path: &str) -> Option<Cow<'_, str>> {
        self.contents
            .get(path)
            .map(|b| String::from_utf8_lossy(&b.bytes))
    }
}

//! One package folder as the matcher sees it: its manifest, its files, its entry files.

use std::borrow::Cow;

use crate::listing::{join, split_parent};
use crate::manifest::Manifest;
use crate::snapshot::{name_matches, Snapshot, ENTRY_EXTS, ENTRY_STEMS};

/// Programs that, as the first word of a `dev`/`start` script, mean "this runs a server".
const SERVER_PROGRAMS: &[&str] = &[
    "node",
    "nodemon",
    "tsx",
    "ts-node",
    "ts-node-dev",
    "bun",
    "deno",
    "pm2",
    "forever",
    "micro",
    "serve",
    "http-server",
    "live-server",
    "listhen",
    "wrangler",
];

pub(crate) struct Pkg<'a> {
    pub dir: String,
    pub manifest: Manifest,
    pub snap: &'a Snapshot,
}

impl<'a> Pkg<'a> {
    /// Files matching `pattern` (relative to the package; `*` only in the last segment).
    pub fn files(&self, pattern: &str) -> Vec<String> {
        let (sub, name_pat) = split_parent(pattern);
        let dir = join(&self.dir, sub);
        self.snap
            .listing
            .files_in(&dir)
            .filter(|n| name_matches(name_pat, n))
            .map(|n| join(&dir, n))
            .collect()
    }

    pub fn has_file(&self, rel: &str) -> bool {
        !self.files(rel).is_empty()
    }

    pub fn has_dir(&self, rel: &str) -> bool {
        self.snap.listing.has_dir(&join(&self.dir, rel))
    }

    pub fn text(&self, path: &str) -> Option<Cow<'a, str>> {
        self.snap.text(path)
    }

    /// Entry files present (read ones only), most likely first.
    pub fn entry_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(main) = &self.manifest.main {
            if let Some(p) = crate::source::normalize_path(main) {
                out.push(join(&self.dir, &p));
            }
        }
        for sub in ["", "src"] {
            for stem in ENTRY_STEMS {
                for ext in ENTRY_EXTS {
                    out.push(join(&self.dir, &join(sub, &format!("{stem}.{ext}"))));
                }
            }
        }
        out.push(join(&self.dir, "bin/www"));
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| self.snap.bytes(p).is_some() && seen.insert(p.clone()));
        out
    }

    /// The first entry file importing or requiring `module`.
    pub fn entry_importing(&self, module: &str) -> Option<String> {
        let needles: Vec<String> = ['"', '\'', '`']
            .iter()
            .map(|q| format!("{q}{module}{q}"))
            .collect();
        self.entry_files().into_iter().find(|p| {
            self.text(p).is_some_and(|t| {
                t.lines().any(|l| {
                    (l.contains("import") || l.contains("require") || l.contains("from"))
                        && needles.iter().any(|n| l.contains(n.as_str()))
                })
            })
        })
    }

    /// The `dev`/`start` script that runs a server process, if any.
    pub fn server_script(&self) -> Option<(&str, &str)> {
        ["dev", "start", "serve"].iter().find_map(|name| {
            let value = self.manifest.scripts.get(*name)?;
            let words = crate::command::script_words(value);
            let first = words.first()?;
            SERVER_PROGRAMS
                .contains(&first.as_str())
                .then_some((*name, value.as_str()))
        })
    }
}

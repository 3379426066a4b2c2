//! Detection of an in-memory repository built from the fuzz input: any of the files detection
//! reads (package.json at the root and in workspace folders, workspace and lock files,
//! version files, configs, entry files), each with arbitrary bytes, plus arbitrary options.
//! Must never panic, whatever the files say.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "package.json",
    "apps/web/package.json",
    "packages/ui/package.json",
    "pnpm-workspace.yaml",
    "pnpm-lock.yaml",
    "yarn.lock",
    "package-lock.json",
    "bun.lockb",
    "bun.lock",
    "lerna.json",
    "nx.json",
    "turbo.json",
    "project.json",
    "angular.json",
    ".nvmrc",
    ".node-version",
    "vite.config.ts",
    "vite.config.js",
    "apps/web/vite.config.mjs",
    "next.config.js",
    "nuxt.config.ts",
    "svelte.config.js",
    "astro.config.mjs",
    "server.js",
    "index.ts",
    "src/main.ts",
    "src/server.mjs",
    "bin/www",
    "apps/web/src/app.js",
];

#[derive(Arbitrary, Debug)]
struct Input {
    files: Vec<(u8, Vec<u8>)>,
    /// A free-form extra path (may be hostile: `..`, `//`, unicode).
    extra: Option<(String, Vec<u8>)>,
    root: Option<String>,
    port: Option<u16>,
}

fuzz_target!(|input: Input| {
    let mut files: Vec<(String, Vec<u8>)> = input
        .files
        .into_iter()
        .map(|(i, bytes)| (NAMES[i as usize % NAMES.len()].to_string(), bytes))
        .collect();
    if let Some(extra) = input.extra {
        files.push(extra);
    }
    let opts = forge_detect::DetectOptions {
        root: input.root,
        port: input.port,
        ..Default::default()
    };
    let _ = forge_detect::detect_files(files, &opts);
});

//! Detection of a repository whose root package.json is the fuzz input (with a lockfile and
//! a Vite config beside it, so the manifest drives every later step). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("package.json", data.to_vec()),
        ("pnpm-lock.yaml", b"lockfileVersion: '9.0'\n".to_vec()),
        (
            "vite.config.ts",
            b"export default { server: { port: 5174 } }\n".to_vec(),
        ),
        ("src/index.ts", b"console.log(1)\n".to_vec()),
    ];
    let _ = forge_detect::detect_files(files, &forge_detect::DetectOptions::default());
});

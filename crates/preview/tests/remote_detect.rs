//! Detection of a repository inside a sandbox of the embedded backend, over real HTTP: the
//! answer must equal the local detection of the same files, and pruned folders are not read.

use crate::common::local_backend as setup;
use forge_daytona::{CallOptions, CreateParams, UploadItem};
use forge_detect::DetectOptions;

const PACKAGE_JSON: &str = r#"{
  "name": "shop",
  "private": true,
  "scripts": { "dev": "vite", "build": "vite build" },
  "dependencies": { "react": "^18.3.1", "react-dom": "^18.3.1" },
  "devDependencies": { "vite": "^5.4.0", "@vitejs/plugin-react": "^4.3.0" }
}"#;
const VITE_CONFIG: &str = "import { defineConfig } from 'vite'\nexport default defineConfig({ server: { port: 4321 } })\n";

#[tokio::test]
async fn sandbox_detection_matches_local_detection() {
    let (_home, backend, client) = setup().await;
    let sandbox = client
        .create(&CreateParams::default(), &CallOptions::new())
        .await
        .unwrap();
    let tb = client.toolbox(&sandbox).await.unwrap();
    let files = [
        ("package.json", PACKAGE_JSON),
        ("vite.config.ts", VITE_CONFIG),
        ("package-lock.json", "{\"lockfileVersion\": 3}"),
        ("src/main.jsx", "import React from 'react'\n"),
        // Never read: pruned by the listing.
        ("node_modules/next/package.json", "{\"name\":\"next\"}"),
        (
            "dist/server.js",
            "require('http').createServer().listen(9999)",
        ),
    ];
    let items = files
        .iter()
        .map(|(p, c)| UploadItem {
            source: (*c).into(),
            destination: format!("workspace/shop/{p}"),
        })
        .collect();
    tb.fs().upload(items, &CallOptions::new()).await.unwrap();

    let remote = forge_preview::detect_in_sandbox(
        &tb,
        "workspace/shop",
        &DetectOptions::default(),
        &CallOptions::new(),
    )
    .await
    .unwrap();
    let local =
        forge_detect::detect_files(files.iter().take(4).copied(), &DetectOptions::default())
            .unwrap();
    assert_eq!(
        remote.framework.as_ref().map(|f| f.id.as_str()),
        Some("vite-react")
    );
    assert_eq!(remote.port, Some(4321), "the project's pinned port wins");
    assert_eq!(remote.package_manager.name, "npm");
    assert_eq!(remote.install_command.as_deref(), Some("npm ci"));
    assert_eq!(
        serde_json::to_value(&remote).unwrap(),
        serde_json::to_value(&local).unwrap(),
        "remote and local detection agree"
    );

    let missing = forge_preview::detect_in_sandbox(
        &tb,
        "workspace/nope",
        &DetectOptions::default(),
        &CallOptions::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code(), "DETECT_NOT_FOUND");
    client
        .delete(&sandbox.id, false, &CallOptions::new())
        .await
        .unwrap();
    backend.shutdown().await;
}

/// This process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_huge_sparse_package_json_is_skipped_not_downloaded() {
    let (_home, backend, client) = setup().await;
    let sandbox = client
        .create(&CreateParams::default(), &CallOptions::new())
        .await
        .unwrap();
    let tb = client.toolbox(&sandbox).await.unwrap();
    let items = [
        ("package.json", PACKAGE_JSON),
        ("vite.config.ts", VITE_CONFIG),
        ("package-lock.json", "{\"lockfileVersion\": 3}"),
    ]
    .iter()
    .map(|(p, c)| UploadItem {
        source: (*c).into(),
        destination: format!("workspace/shop/{p}"),
    })
    .collect();
    tb.fs().upload(items, &CallOptions::new()).await.unwrap();
    // A hostile repository's 1 GiB package.json (sparse: no disk used) and server.js.
    let made = tb
        .process()
        .execute(
            "mkdir -p workspace/shop/packages/big && cd workspace/shop && \
             truncate -s 1G packages/big/package.json && truncate -s 1G server.js",
            &forge_daytona::ExecOptions::default(),
            &CallOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(made.exit_code, 0, "{}", made.result);
    let before = peak_rss();
    let d = forge_preview::detect_in_sandbox(
        &tb,
        "workspace/shop",
        &DetectOptions::default(),
        &CallOptions::new(),
    )
    .await
    .unwrap();
    let grew = peak_rss().saturating_sub(before);
    assert_eq!(
        d.framework.as_ref().map(|f| f.id.as_str()),
        Some("vite-react")
    );
    let codes: Vec<(&str, &str)> = d
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.message.as_str()))
        .collect();
    assert!(
        codes.iter().any(|(c, m)| *c == "PACKAGE_JSON_TOO_LARGE"
            && m.contains("packages/big/package.json")),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|(c, m)| *c == "FILE_TOO_LARGE" && m.contains("server.js")),
        "{codes:?}"
    );
    // Neither file was fetched: the peak memory of this process did not grow by anything
    // near their size.
    assert!(
        grew < 256 * 1024 * 1024,
        "detection grew this process's peak memory by {grew} bytes"
    );
    backend.shutdown().await;
}

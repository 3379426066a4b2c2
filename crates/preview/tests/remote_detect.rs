//! Detection of a repository inside a sandbox of the embedded backend, over real HTTP: the
//! answer must equal the local detection of the same files, and pruned folders are not read.

use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, UploadItem};
use forge_detect::DetectOptions;
use forge_local::{LocalBackend, LocalConfig};

const PACKAGE_JSON: &str = r#"{
  "name": "shop",
  "private": true,
  "scripts": { "dev": "vite", "build": "vite build" },
  "dependencies": { "react": "^18.3.1", "react-dom": "^18.3.1" },
  "devDependencies": { "vite": "^5.4.0", "@vitejs/plugin-react": "^4.3.0" }
}"#;
const VITE_CONFIG: &str = "import { defineConfig } from 'vite'\nexport default defineConfig({ server: { port: 4321 } })\n";

async fn setup() -> (tempfile::TempDir, LocalBackend, Client) {
    let home = tempfile::tempdir().unwrap();
    let backend = LocalBackend::start(LocalConfig {
        home: Some(home.path().to_path_buf()),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = Client::new(
        DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url()),
    )
    .unwrap();
    (home, backend, client)
}

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

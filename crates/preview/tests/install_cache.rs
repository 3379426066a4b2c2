//! The install step with the embedded backend's dependency cache: a second install of the same
//! project and scope restores `node_modules` instead of running the command (no network: the
//! "install" is a command that makes a tiny `node_modules`).

use forge_daytona::{CallOptions, Client, CreateParams, UploadItem};
use forge_preview::pipeline::{install_dependencies, InstallInput, Installed, LogSink};

/// Makes a `node_modules` whose `stamp` is different on every run.
const INSTALL: &str = "mkdir -p node_modules/dep && echo 'module.exports = 42' > node_modules/dep/index.js && date +%s%N > node_modules/dep/stamp";

/// A sandbox with `workspace/project/package.json` and a lockfile.
pub(crate) async fn sandbox_with_project(client: &Client) -> String {
    let s = client
        .create(&CreateParams::default(), &CallOptions::new())
        .await
        .unwrap();
    let tb = client.toolbox(&s).await.unwrap();
    tb.fs()
        .upload(
            vec![
                UploadItem {
                    source: br#"{"name":"app","dependencies":{"dep":"1.0.0"}}"#.to_vec().into(),
                    destination: "workspace/project/package.json".into(),
                },
                UploadItem {
                    source: br#"{"lockfileVersion":3}"#.to_vec().into(),
                    destination: "workspace/project/package-lock.json".into(),
                },
            ],
            &CallOptions::new(),
        )
        .await
        .unwrap();
    s.id
}

async fn install(client: &Client, id: &str, cache: Option<bool>) -> Installed {
    let input = InstallInput {
        sandbox_id: id.to_owned(),
        command: Some(INSTALL.into()),
        dependency_cache: cache,
        cache_scope: Some("https://example.com/app.git".into()),
        ..Default::default()
    };
    install_dependencies(client, &input, &LogSink::none(), &CallOptions::new())
        .await
        .unwrap()
}

async fn stamp(client: &Client, id: &str) -> String {
    let tb = client.toolbox_for(id).await.unwrap();
    let b = tb
        .fs()
        .download(
            "workspace/project/node_modules/dep/stamp",
            &CallOptions::new(),
        )
        .await
        .unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

#[tokio::test]
async fn a_second_install_of_the_same_project_is_restored_from_the_cache() {
    let (_home, backend, client) = crate::common::local_backend().await;

    let a = sandbox_with_project(&client).await;
    let first = install(&client, &a, None).await;
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.starts_with("dependencies stored in the cache (key ")),
        "{:?}",
        first.notes
    );

    let b = sandbox_with_project(&client).await;
    let second = install(&client, &b, None).await;
    assert!(
        second
            .notes
            .iter()
            .any(|n| n.starts_with("dependencies restored from cache (key ")),
        "{:?}",
        second.notes
    );
    // The command did not run again: the tree is the first install's.
    assert_eq!(stamp(&client, &a).await, stamp(&client, &b).await);

    // Off: the command runs.
    let c = sandbox_with_project(&client).await;
    let third = install(&client, &c, Some(false)).await;
    assert!(
        third.notes.iter().all(|n| !n.contains("cache")),
        "{:?}",
        third.notes
    );
    assert_ne!(stamp(&client, &a).await, stamp(&client, &c).await);
    backend.shutdown().await;
}

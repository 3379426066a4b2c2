//! Concurrent creates: the store does its disk work outside its lock, so these check that the
//! name, limit and persistence guarantees still hold when many creates overlap.

use crate::common;

use forge_local::{LocalBackend, LocalConfig};
use serde_json::{json, Value};
use std::time::Instant;

async fn post_create(env: &common::Env, body: Value) -> (u16, Value) {
    env.json(reqwest::Method::POST, &env.api("/sandbox"), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_keep_names_limits_and_records() {
    // 12 creates race for 5 slots.
    let env = common::start_with(|c| c.max_sandboxes = 5).await;
    let answers = futures_util::future::join_all(
        (0..12).map(|i| post_create(&env, json!({ "name": format!("lim-{i}") }))),
    )
    .await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 5, "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 400));
    env.backend.shutdown().await;

    let env = common::start().await;
    // The same name asked for 20 times at once: exactly one wins, the rest are 409.
    let answers = futures_util::future::join_all(
        (0..20).map(|_| post_create(&env, json!({ "name": "same-name" }))),
    )
    .await;
    let codes: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes.iter().filter(|s| **s == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|s| **s == 409).count(), 19, "{codes:?}");

    // 100 creates at once, each then running a command: all succeed.
    let t0 = Instant::now();
    let created = futures_util::future::join_all((0..100).map(|i| {
        let env = &env;
        async move {
            let s0 = Instant::now();
            let (status, v) = post_create(env, json!({ "labels": { "n": i.to_string() } })).await;
            let took = s0.elapsed();
            assert_eq!(status, 200, "{v}");
            let id = v["id"].as_str().expect("id").to_string();
            let (s, out) = env
                .exec(&id, json!({ "command": format!("echo ok-{i}") }))
                .await;
            assert_eq!(s, 200, "{out}");
            assert_eq!(
                out["result"].as_str().map(str::trim),
                Some(format!("ok-{i}").as_str())
            );
            (id, took)
        }
    }))
    .await;
    let mut took: Vec<_> = created.iter().map(|(_, t)| *t).collect();
    took.sort();
    // Printed for the curious (`--nocapture`), never asserted: timing depends on the machine.
    eprintln!(
        "100 concurrent creates: p50 {:?}, p99 {:?}, all done with commands in {:?}",
        took[49],
        took[98],
        t0.elapsed()
    );

    // Every record is on disk: a new backend on the same home sees all 101 with their folders.
    let home = env.backend.home().to_path_buf();
    env.backend.shutdown().await;
    let again = LocalBackend::start(LocalConfig {
        home: Some(home.clone()),
        api_key: Some("test-key".into()),
        bind: None,
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .expect("restart");
    let http = reqwest::Client::new();
    let list: Value = http
        .get(format!("{}/sandbox?limit=200", again.api_url()))
        .bearer_auth("test-key")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 101, "{list}");
    for (id, _) in &created {
        assert!(items.iter().any(|s| s["id"] == id.as_str()), "{id} missing");
        let work = home
            .join("sandboxes")
            .join(id)
            .join("root/home/daytona/workspace");
        assert!(work.is_dir(), "{}", work.display());
    }
    again.shutdown().await;
}

/// The runtimes of the sandbox containers under `home` that are running (their command line
/// names the sandbox's root folder under the home).
fn containers_of(home: &std::path::Path) -> Vec<String> {
    let marker = format!("{}/sandboxes/", home.display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("forge-sandbox-") && c.contains(&marker))
        .collect()
}

/// A backend taken down while its sandboxes' containers are still starting (a create starts
/// its container in the background) leaves none running: a start that ends after the backend
/// began stopping its sandboxes, or whose task went with the backend's runtime, kills what it
/// had started. Before, such starts left orphaned containers behind every test run.
#[test]
fn a_backend_dropped_while_its_containers_start_leaves_none_running() {
    let home = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let env = common::start_with(|c| c.home = Some(home.path().to_path_buf())).await;
        let answers =
            futures_util::future::join_all((0..8).map(|_| post_create(&env, json!({})))).await;
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        // Dropped, not shut down: as a process exits or a test ends.
        drop(env);
    });
    // The runtime goes with the starts still in its tasks.
    drop(runtime);
    let deadline = Instant::now() + std::time::Duration::from_mins(1);
    let mut left = containers_of(home.path());
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = containers_of(home.path());
    }
    assert!(left.is_empty(), "containers left running: {left:#?}");
}

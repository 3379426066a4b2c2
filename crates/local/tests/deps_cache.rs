//! The dependency cache (`POST /api/forge/sandboxes/{id}/dependencies`): store then restore
//! with real sandboxes and tiny hand-made `node_modules` trees (no network).

use crate::common::{self, Env};

use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

const PROJECT: &str = "/home/daytona/workspace/app";

/// Runs `command` in the sandbox (in the project folder when it exists): exit code and output.
async fn sh(env: &Env, id: &str, command: &str) -> (i64, String) {
    let (s, v) = env
        .exec(id, json!({"command": command, "cwd": "/home/daytona"}))
        .await;
    assert_eq!(s, 200, "{v}");
    (
        v["exitCode"].as_i64().unwrap(),
        v["result"].as_str().unwrap_or_default().to_string(),
    )
}

/// A project with a package.json and a lockfile whose content is `lock`.
async fn project(env: &Env, id: &str, lock: &str) {
    let (code, out) = sh(
        env,
        id,
        &format!(
            "mkdir -p {PROJECT}/src && cd {PROJECT} && echo '{{\"name\":\"app\",\"dependencies\":{{\"pkg\":\"1.0.0\"}}}}' > package.json \
             && echo '{lock}' > package-lock.json && echo 'console.log(1)' > src/main.js"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
}

/// A hand-made node_modules: a package, an executable, a relative link, links out of the
/// sandbox (to /etc and to a host path), a FIFO.
async fn node_modules(env: &Env, id: &str, host_path: &str) {
    let (code, out) = sh(
        env,
        id,
        &format!(
            "cd {PROJECT} && mkdir -p node_modules/pkg/lib node_modules/.bin && \
             echo 'module.exports = 1' > node_modules/pkg/index.js && \
             echo '{{\"name\":\"pkg\",\"version\":\"1.0.0\"}}' > node_modules/pkg/package.json && \
             printf '#!/usr/bin/env node\\nconsole.log(2)\\n' > node_modules/pkg/lib/cli.js && chmod 755 node_modules/pkg/lib/cli.js && \
             ln -s ../pkg/lib/cli.js node_modules/.bin/pkg && ln -s /etc node_modules/etc-link && \
             ln -s {host_path} node_modules/host-link && mkfifo node_modules/pkg/fifo"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
}

async fn cache(env: &Env, id: &str, action: &str, scope: &str) -> (u16, Value) {
    env.json(
        Method::POST,
        &env.api(&format!("/forge/sandboxes/{id}/dependencies")),
        Some(json!({
            "action": action,
            "path": "workspace/app",
            "manager": "npm",
            "command": "npm ci",
            "env": {"CI": "true"},
            "scope": scope,
        })),
    )
    .await
}

/// Every entry of the project's node_modules: path, type, link target, content digest.
async fn listing(env: &Env, id: &str) -> String {
    let (code, out) = sh(
        env,
        id,
        &format!(
            "cd {PROJECT}/node_modules && find . -not -type p -printf '%p %y %l\\n' | sort && \
             find . -type f -exec md5sum {{}} + | sort"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    out
}

#[tokio::test]
async fn a_stored_tree_restores_the_same_read_only_and_links_unfollowed() {
    let env = common::start().await;
    let a = env.sandbox().await;
    project(&env, &a, "lock-1").await;
    let host_path = env.backend.home().display().to_string();
    node_modules(&env, &a, &host_path).await;
    let (s, stored) = cache(&env, &a, "store", "https://example.com/app.git").await;
    assert_eq!(s, 200, "{stored}");
    assert_eq!(stored["outcome"], "stored", "{stored}");
    let key = stored["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);

    // In the cache: the backend's files, read-only; links stored as links, not followed; the
    // FIFO skipped.
    let tree = env
        .backend
        .home()
        .join("dependency-cache/entries")
        .join(&key)
        .join("tree");
    let index = std::fs::symlink_metadata(tree.join("pkg/index.js")).unwrap();
    assert_eq!(index.mode() & 0o7777, 0o444);
    assert_eq!(index.uid(), rustix::process::geteuid().as_raw());
    let cli = std::fs::symlink_metadata(tree.join("pkg/lib/cli.js")).unwrap();
    assert_eq!(cli.mode() & 0o7777, 0o555);
    assert_eq!(
        std::fs::read_link(tree.join("etc-link")).unwrap(),
        std::path::Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_link(tree.join("host-link"))
            .unwrap()
            .display()
            .to_string(),
        host_path
    );
    assert!(!tree.join("pkg/fifo").exists());
    // Storing again: already there.
    let (_, again) = cache(&env, &a, "store", "https://example.com/app.git").await;
    assert_eq!(again["outcome"], "stored", "{again}");
    assert_eq!(again["key"], key.as_str());

    // A second sandbox with the same project gets the same tree.
    let b = env.sandbox().await;
    project(&env, &b, "lock-1").await;
    let (s, restored) = cache(&env, &b, "restore", "https://example.com/app.git").await;
    assert_eq!(s, 200, "{restored}");
    assert_eq!(restored["outcome"], "restored", "{restored}");
    assert_eq!(restored["key"], key.as_str());
    assert_eq!(listing(&env, &a).await, listing(&env, &b).await);
    let (code, out) = sh(
        &env,
        &b,
        &format!("cd {PROJECT} && node node_modules/.bin/pkg && readlink node_modules/etc-link"),
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "2\n/etc\n"));
    // A restore never overwrites: node_modules exists now.
    let (_, twice) = cache(&env, &b, "restore", "https://example.com/app.git").await;
    assert_eq!(twice["outcome"], "skipped", "{twice}");

    // The sandbox owns its folders (a dev server's node_modules/.vite works) ...
    let (code, out) = sh(
        &env,
        &b,
        &format!("cd {PROJECT} && mkdir node_modules/.vite && echo x > node_modules/.vite/dep.js && echo ok"),
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    // Links where the sandbox's user is not the cache files' owner (a container of a root
    // backend), copies otherwise.
    let root_container =
        env.backend.isolation().level == "container" && rustix::process::geteuid().is_root();
    assert_eq!(restored["linked"], root_container, "{restored}");
    if root_container {
        // ... but not the shared files: writing or chmod-ing one is refused, removing it
        // removes the sandbox's link only.
        let (code, out) = sh(
            &env,
            &b,
            &format!("cd {PROJECT} && echo hacked >> node_modules/pkg/index.js"),
        )
        .await;
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("Permission denied"), "{out}");
        let (code, out) = sh(
            &env,
            &b,
            &format!("cd {PROJECT} && chmod 666 node_modules/pkg/index.js"),
        )
        .await;
        assert_ne!(code, 0, "{out}");
        let (code, out) = sh(
            &env,
            &b,
            &format!("cd {PROJECT} && rm -f node_modules/pkg/index.js && echo 'module.exports = 666' > node_modules/pkg/index.js && cat node_modules/pkg/index.js"),
        )
        .await;
        assert_eq!((code, out.as_str()), (0, "module.exports = 666\n"));
    }
    // Whatever the sandbox did, the cache and a third sandbox have the original.
    assert_eq!(
        std::fs::read_to_string(tree.join("pkg/index.js")).unwrap(),
        "module.exports = 1\n"
    );
    let c = env.sandbox().await;
    project(&env, &c, "lock-1").await;
    let (_, restored) = cache(&env, &c, "restore", "https://example.com/app.git").await;
    assert_eq!(restored["outcome"], "restored", "{restored}");
    let (_, out) = sh(
        &env,
        &c,
        &format!("cat {PROJECT}/node_modules/pkg/index.js"),
    )
    .await;
    assert_eq!(out, "module.exports = 1\n");
}

#[tokio::test]
async fn another_lockfile_or_scope_is_another_key() {
    let env = common::start().await;
    let a = env.sandbox().await;
    project(&env, &a, "lock-1").await;
    node_modules(&env, &a, "/nonexistent").await;
    let (_, stored) = cache(&env, &a, "store", "repo-a").await;
    assert_eq!(stored["outcome"], "stored", "{stored}");

    let b = env.sandbox().await;
    project(&env, &b, "lock-2").await;
    let (_, v) = cache(&env, &b, "restore", "repo-a").await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    assert_ne!(v["key"], stored["key"]);
    assert_eq!(v["reason"], "not in the cache");
    let (code, _) = sh(&env, &b, &format!("test -e {PROJECT}/node_modules")).await;
    assert_ne!(code, 0, "a missed restore makes no node_modules");

    // The same files from another repository: no restore either.
    let c = env.sandbox().await;
    project(&env, &c, "lock-1").await;
    let (_, v) = cache(&env, &c, "restore", "repo-b").await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    assert_ne!(v["key"], stored["key"]);
    // A package.json changed outside node_modules changes the key too.
    let (_, same) = cache(&env, &c, "restore", "repo-a").await;
    assert_eq!(same["outcome"], "restored", "{same}");
    let d = env.sandbox().await;
    project(&env, &d, "lock-1").await;
    sh(
        &env,
        &d,
        &format!(
            "mkdir -p {PROJECT}/packages/x && echo '{{}}' > {PROJECT}/packages/x/package.json"
        ),
    )
    .await;
    let (_, v) = cache(&env, &d, "restore", "repo-a").await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    // No lockfile: the registry decides what an install gets, so nothing is cached.
    let e = env.sandbox().await;
    project(&env, &e, "lock-1").await;
    sh(&env, &e, &format!("rm {PROJECT}/package-lock.json")).await;
    node_modules(&env, &e, "/nonexistent").await;
    let (_, v) = cache(&env, &e, "store", "repo-a").await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("skipped"), Some("the project has no lockfile")),
        "{v}"
    );
}

#[tokio::test]
async fn the_cap_evicts_the_least_recently_used() {
    let env = common::start_with(|c| c.dependency_cache_max_bytes = 300_000).await;
    let big = |id: String, lock: &'static str| {
        let env = &env;
        async move {
            project(env, &id, lock).await;
            let (code, out) = sh(
                env,
                &id,
                &format!("mkdir -p {PROJECT}/node_modules/big && head -c 200000 /dev/urandom > {PROJECT}/node_modules/big/blob"),
            )
            .await;
            assert_eq!(code, 0, "{out}");
            id
        }
    };
    let a = big(env.sandbox().await, "lock-a").await;
    let (_, first) = cache(&env, &a, "store", "r").await;
    assert_eq!(first["outcome"], "stored", "{first}");
    let b = big(env.sandbox().await, "lock-b").await;
    let (_, second) = cache(&env, &b, "store", "r").await;
    assert_eq!(second["outcome"], "stored", "{second}");
    let entries = env.backend.home().join("dependency-cache/entries");
    assert!(!entries.join(first["key"].as_str().unwrap()).exists());
    assert!(entries.join(second["key"].as_str().unwrap()).exists());
    // Evicted: a new sandbox of the first project installs again.
    let c = env.sandbox().await;
    project(&env, &c, "lock-a").await;
    let (_, v) = cache(&env, &c, "restore", "r").await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    // A tree larger than the whole cap is not stored.
    let d = env.sandbox().await;
    project(&env, &d, "lock-d").await;
    sh(&env, &d, &format!("mkdir -p {PROJECT}/node_modules/big && head -c 400000 /dev/urandom > {PROJECT}/node_modules/big/blob")).await;
    let (_, v) = cache(&env, &d, "store", "r").await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("larger than"), "{v}");
    assert_eq!(
        std::fs::read_dir(env.backend.home().join("dependency-cache/tmp"))
            .unwrap()
            .count(),
        0,
        "no build left behind"
    );
}

#[tokio::test]
async fn off_unknown_and_unauthenticated() {
    let env = common::start_with(|c| c.dependency_cache = false).await;
    let a = env.sandbox().await;
    project(&env, &a, "lock-1").await;
    let (s, v) = cache(&env, &a, "restore", "r").await;
    assert_eq!((s, v["outcome"].as_str()), (200, Some("skipped")), "{v}");
    let (s, _) = cache(&env, "no-such-sandbox", "restore", "r").await;
    assert_eq!(s, 404);
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!("/forge/sandboxes/{a}/dependencies")),
            Some(json!({"action": "restore", "path": "workspace/app", "manager": "pip", "command": "x"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let res = env
        .http
        .post(env.api(&format!("/forge/sandboxes/{a}/dependencies")))
        .json(&json!({"action": "restore", "path": "workspace/app", "manager": "npm", "command": "npm ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

async fn delete(env: &Env, id: &str) {
    let (s, v) = env
        .json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
        .await;
    assert_eq!(s, 200, "{v}");
}

/// A sandbox of the project whose `node_modules` was installed (stored) or restored under
/// `scope`.
async fn installed(env: &Env, scope: &str) -> (String, Value) {
    let id = env.sandbox().await;
    project(env, &id, "lock-build").await;
    let (_, restored) = cache(env, &id, "restore", scope).await;
    if restored["outcome"] != "restored" {
        node_modules(env, &id, "/nonexistent").await;
        let (_, stored) = cache(env, &id, "store", scope).await;
        assert_eq!(stored["outcome"], "stored", "{stored}");
    }
    (id, restored)
}

/// The dev servers' build caches are kept when a sandbox is deleted and given back, as the
/// sandbox user's writable copies, to the next sandbox of the same project and repository
/// only; a build cache that is a link out of the sandbox (to this machine's `/etc`, which the
/// backend would read if it followed it) is never stored, and links inside one stay links.
#[tokio::test]
async fn build_caches_are_kept_at_delete_for_the_same_repository_only() {
    let env = common::start().await;
    let repo_a = "https://example.com/a.git";
    let repo_b = "https://example.com/b.git";

    // Repository A's first sandbox: its dev server writes its caches (and, as `next dev`
    // does, a package.json of its own in `.next`), then it is deleted.
    let (a1, _) = installed(&env, repo_a).await;
    let (code, out) = sh(
        &env,
        &a1,
        &format!(
            "cd {PROJECT} && mkdir -p .next/cache/webpack node_modules/.vite/deps && \
             echo pack-a > .next/cache/webpack/0.pack && ln -s /etc/hostname .next/cache/webpack/link && \
             echo '{{\"type\":\"commonjs\"}}' > .next/package.json && \
             mkfifo .next/cache/fifo && echo '{{\"hash\":\"a\"}}' > node_modules/.vite/deps/_metadata.json"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    delete(&env, &a1).await;

    // The next sandbox of A gets them back, its own files: writable, removable.
    let (a2, restored) = installed(&env, repo_a).await;
    assert_eq!(restored["outcome"], "restored", "{restored}");
    assert_eq!(
        restored["buildCaches"],
        json!(["node_modules/.vite", ".next/cache"]),
        "{restored}"
    );
    let (code, out) = sh(
        &env,
        &a2,
        &format!(
            "cd {PROJECT} && cat .next/cache/webpack/0.pack node_modules/.vite/deps/_metadata.json && \
             readlink .next/cache/webpack/link && test ! -e .next/cache/fifo && \
             stat -c '%U %a' .next .next/cache/webpack/0.pack node_modules/.vite/deps/_metadata.json && \
             echo more >> .next/cache/webpack/0.pack && echo '{{\"hash\":\"a2\"}}' > node_modules/.vite/deps/_metadata.json && echo written"
        ),
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "pack-a\n{\"hash\":\"a\"}\n/etc/hostname\ndaytona 755\ndaytona 644\ndaytona 644\nwritten\n"
        )
    );
    // A hostile sandbox of A makes its caches links out of the sandbox: not followed, so
    // nothing of this machine's /etc is stored, and what A2 wrote is what A3 gets.
    let (code, out) = sh(
        &env,
        &a2,
        &format!(
            "cd {PROJECT} && rm -rf node_modules/.vite && ln -s /etc node_modules/.vite && \
             mv .next .next-real && mkdir .next && ln -s /etc .next/cache && echo planted"
        ),
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "planted\n"));
    delete(&env, &a2).await;
    let (a3, restored) = installed(&env, repo_a).await;
    assert_eq!(restored["outcome"], "restored", "{restored}");
    let (code, out) = sh(
        &env,
        &a3,
        &format!(
            "cd {PROJECT} && test ! -L node_modules/.vite && test ! -L .next/cache && \
             ls node_modules/.vite node_modules/.vite/deps .next/cache"
        ),
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            ".next/cache:\nwebpack\n\nnode_modules/.vite:\ndeps\n\nnode_modules/.vite/deps:\n_metadata.json\n"
        )
    );
    let (_, out) = sh(
        &env,
        &a3,
        &format!("cat {PROJECT}/.next/cache/webpack/0.pack"),
    )
    .await;
    assert_eq!(out, "pack-a\n", "A2's links kept A1's cache in place");

    // Repository B, same files: its own node_modules entry, never A's build caches.
    let (b1, _) = installed(&env, repo_b).await;
    delete(&env, &b1).await;
    let (b2, restored) = installed(&env, repo_b).await;
    assert_eq!(restored["outcome"], "restored", "{restored}");
    assert!(restored.get("buildCaches").is_none(), "{restored}");
    let (code, out) = sh(
        &env,
        &b2,
        &format!("cd {PROJECT} && test ! -e .next && test ! -e node_modules/.vite && echo none"),
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "none\n"));
}
